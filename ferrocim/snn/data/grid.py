"""The 64 EEGMMIDB channels and their cells on the network's 10×11 scalp grid.

Rows run front to back by 10-10 electrode row; columns run left to right by electrode
number (odd = left hemisphere, even = right, ``z`` = midline), so neighbouring electrodes
are neighbouring cells and a 3×3 convolution sees a scalp neighbourhood:

=====  ==================================  ================================================
row    10-10 prefixes                      electrodes in EEGMMIDB
=====  ==================================  ================================================
0      Fp                                  Fp1 Fpz Fp2
1      AF                                  AF7 AF3 AFz AF4 AF8
2      F                                   F7 … F8
3      FT, FC                              FT7 FC5 … FC6 FT8
4      T, C                                T9 T7 C5 … C6 T8 T10
5      TP, CP                              TP7 CP5 … CP6 TP8
6      P                                   P7 … P8
7      PO                                  PO7 PO3 POz PO4 PO8
8      O                                   O1 Oz O2
9      I                                   Iz
=====  ==================================  ================================================

Column of electrode number ``n``: ``5 - (n + 1) / 2`` for odd ``n`` (1 → 4, 3 → 3, …, 9 → 0),
``5 + n / 2`` for even ``n`` (2 → 6, …, 10 → 10), 5 for ``z``. E.g. C3 → (4, 3), C4 → (4, 7),
Cz → (4, 5), T9 → (4, 0), Iz → (9, 5). The 46 unused cells stay zero.

Layout ``"paper"`` (default) is the published EEG-Ferro grid: as above, except that the
AF and PO rows sit on adjacent columns — AF7 AF3 AFz AF4 AF8 on (1, 3) … (1, 7) and PO7 PO3
POz PO4 PO8 on (7, 3) … (7, 7) — which networks trained by the published code expect.
Layout ``"10-10"`` places those eight electrodes by the rule too (AF7 → (1, 1), AF3 →
(1, 3), AF4 → (1, 7), AF8 → (1, 9), and likewise PO).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

import numpy as np

from ferrocim.checks import InputError, check_option

__all__ = [
    "EDF_LABELS",
    "EEGMMIDB_CHANNELS",
    "GRID_SHAPE",
    "grid_index",
    "grid_position",
    "to_grid",
]

GRID_SHAPE: tuple[int, int] = (10, 11)

EDF_LABELS: tuple[str, ...] = (
    # the labels exactly as in the PhysioNet EEGMMIDB EDF files (dot-padded to 4 characters)
    "Fc5.", "Fc3.", "Fc1.", "Fcz.", "Fc2.", "Fc4.", "Fc6.",
    "C5..", "C3..", "C1..", "Cz..", "C2..", "C4..", "C6..",
    "Cp5.", "Cp3.", "Cp1.", "Cpz.", "Cp2.", "Cp4.", "Cp6.",
    "Fp1.", "Fpz.", "Fp2.",
    "Af7.", "Af3.", "Afz.", "Af4.", "Af8.",
    "F7..", "F5..", "F3..", "F1..", "Fz..", "F2..", "F4..", "F6..", "F8..",
    "Ft7.", "Ft8.", "T7..", "T8..", "T9..", "T10.", "Tp7.", "Tp8.",
    "P7..", "P5..", "P3..", "P1..", "Pz..", "P2..", "P4..", "P6..", "P8..",
    "Po7.", "Po3.", "Poz.", "Po4.", "Po8.",
    "O1..", "Oz..", "O2..", "Iz..",
)  # fmt: skip


def standard_name(label: str) -> str:
    """The 10-10 name of an EDF label, as ``mne.datasets.eegbci.standardize`` makes it."""
    name = label.strip(".").upper()
    if name.endswith("Z"):
        name = name[:-1] + "z"
    if name.startswith("FP"):
        name = "Fp" + name[2:]
    return name


EEGMMIDB_CHANNELS: tuple[str, ...] = tuple(standard_name(s) for s in EDF_LABELS)
"""The 64 channel names after standardisation, in file order."""

_ROWS = {
    "FP": 0, "AF": 1, "F": 2, "FT": 3, "FC": 3, "T": 4, "C": 4,
    "TP": 5, "CP": 5, "P": 6, "PO": 7, "O": 8, "I": 9,
}  # fmt: skip
_NAME = re.compile(r"^([A-Za-z]+?)(z|Z|\d+)$")
#: the published grid's columns of the AF and PO electrodes (adjacent, centred on z)
_PAPER_ADJACENT = {7: 3, 3: 4, 4: 6, 8: 7}
GridLayout = Literal["paper", "10-10"]


def grid_position(name: str, layout: GridLayout = "paper") -> tuple[int, int]:
    """(row, column) of a 10-10 electrode name on the 10×11 grid (see module docstring)."""
    m = _NAME.match(name.strip("."))
    if m is None or m.group(1).upper() not in _ROWS:
        raise InputError(f"channel {name!r} is not a 10-10 electrode name with a grid cell")
    row = _ROWS[m.group(1).upper()]
    num = m.group(2)
    if num in ("z", "Z"):
        return row, 5
    n = int(num)
    if not 1 <= n <= 10:
        raise InputError(f"channel {name!r}: electrode number {n} outside 1..10")
    check_option("layout", layout, ("paper", "10-10"))
    if layout == "paper" and m.group(1).upper() in ("AF", "PO") and n in _PAPER_ADJACENT:
        return row, _PAPER_ADJACENT[n]
    col = 5 - (n + 1) // 2 if n % 2 else 5 + n // 2
    return row, col


def grid_index(
    ch_names: Sequence[str], layout: GridLayout = "paper"
) -> tuple[np.ndarray, np.ndarray]:
    """Row and column index arrays for ``ch_names``; raises if two share a cell."""
    pos = [grid_position(n, layout) for n in ch_names]
    seen: dict[tuple[int, int], str] = {}
    for name, p in zip(ch_names, pos, strict=True):
        if p in seen:
            raise InputError(f"channels {seen[p]!r} and {name!r} map to the same grid cell {p}")
        seen[p] = name
    rows, cols = zip(*pos, strict=True) if pos else ((), ())
    return np.asarray(rows, dtype=np.intp), np.asarray(cols, dtype=np.intp)


def to_grid(data: np.ndarray, ch_names: Sequence[str], layout: GridLayout = "paper") -> np.ndarray:
    """Place ``data`` of shape ``(..., n_channels, T)`` on the grid: ``(..., 1, 10, 11, T)``.

    Unused cells are zero. The output dtype is the input's.
    """
    if data.shape[-2] != len(ch_names):
        raise InputError(
            f"data has {data.shape[-2]} channels but {len(ch_names)} channel names were given"
        )
    rows, cols = grid_index(ch_names, layout)
    out = np.zeros((*data.shape[:-2], 1, *GRID_SHAPE, data.shape[-1]), dtype=data.dtype)
    out[..., 0, rows, cols, :] = data
    return out
