"""The 10×11 scalp grid: documented cells, all 64 channels distinct, MNE's names."""

from __future__ import annotations

import re

import mne
import numpy as np
import pytest
from mne.datasets import eegbci

from ferrocim.checks import InputError
from ferrocim.snn.data.grid import (
    EDF_LABELS,
    EEGMMIDB_CHANNELS,
    GRID_SHAPE,
    grid_index,
    grid_position,
    to_grid,
)


def test_names_are_what_mne_standardize_makes() -> None:
    info = mne.create_info(list(EDF_LABELS), 160.0, "eeg")
    raw = mne.io.RawArray(np.zeros((64, 10)), info, verbose="error")
    eegbci.standardize(raw)
    assert tuple(raw.ch_names) == EEGMMIDB_CHANNELS
    assert len(set(EEGMMIDB_CHANNELS)) == 64
    assert {"FC5", "FCz", "Fp1", "Fpz", "AFz", "CPz", "POz", "Iz", "T10"} <= set(raw.ch_names)


@pytest.mark.parametrize(
    ("name", "cell"),
    [
        ("Fp1", (0, 4)), ("Fpz", (0, 5)), ("Fp2", (0, 6)), ("AF7", (1, 3)), ("F8", (2, 9)),
        ("FT7", (3, 1)), ("FC5", (3, 2)), ("T9", (4, 0)), ("T7", (4, 1)), ("C3", (4, 3)),
        ("Cz", (4, 5)), ("C4", (4, 7)), ("T10", (4, 10)), ("TP8", (5, 9)), ("P1", (6, 4)),
        ("PO3", (7, 4)), ("O2", (8, 6)), ("Iz", (9, 5)),
    ],
)  # fmt: skip
def test_documented_cells(name: str, cell: tuple[int, int]) -> None:
    assert grid_position(name) == cell


# the published grid (EEG-Ferro utility.get_eeg_2d_map), cells in the files' channel order
PUBLISHED_CELLS = (
    [(3, c) for c in range(2, 9)] + [(4, c) for c in range(2, 9)]
    + [(5, c) for c in range(2, 9)] + [(0, 4), (0, 5), (0, 6)]
    + [(1, 3), (1, 4), (1, 5), (1, 6), (1, 7)] + [(2, c) for c in range(1, 10)]
    + [(3, 1), (3, 9), (4, 1), (4, 9), (4, 0), (4, 10), (5, 1), (5, 9)]
    + [(6, c) for c in range(1, 10)] + [(7, 3), (7, 4), (7, 5), (7, 6), (7, 7)]
    + [(8, 4), (8, 5), (8, 6), (9, 5)]
)  # fmt: skip


def test_paper_grid_is_the_published_one() -> None:
    rows, cols = grid_index(EEGMMIDB_CHANNELS)
    assert list(zip(rows.tolist(), cols.tolist(), strict=True)) == PUBLISHED_CELLS
    # the 10-10 spacing option differs in exactly the AF/PO electrodes 7, 3, 4, 8
    _, c2 = grid_index(EEGMMIDB_CHANNELS, "10-10")
    moved = [n for n, a, b in zip(EEGMMIDB_CHANNELS, cols, c2, strict=True) if a != b]
    assert moved == ["AF7", "AF3", "AF4", "AF8", "PO7", "PO3", "PO4", "PO8"]
    assert grid_position("AF8", "10-10") == (1, 9) and grid_position("PO7", "10-10") == (7, 1)
    with pytest.raises(InputError, match="layout"):
        grid_position("C3", "other")  # type: ignore[arg-type]


def test_all_64_channels_on_distinct_cells() -> None:
    rows, cols = grid_index(EEGMMIDB_CHANNELS)
    cells = set(zip(rows.tolist(), cols.tolist(), strict=True))
    assert len(cells) == 64
    assert rows.min() == 0 and rows.max() == GRID_SHAPE[0] - 1
    assert cols.min() == 0 and cols.max() == GRID_SHAPE[1] - 1
    # left hemisphere (odd numbers) left of the midline, right hemisphere right of it
    for name, c in zip(EEGMMIDB_CHANNELS, cols, strict=True):
        if name.endswith("z"):
            assert c == 5
        else:
            assert (c < 5) == (int(re.search(r"\d+$", name).group()) % 2 == 1)


def test_to_grid_places_values_and_zeros_the_rest() -> None:
    data = np.arange(64 * 3, dtype=np.float32).reshape(64, 3) + 1
    g = to_grid(data, EEGMMIDB_CHANNELS)
    assert g.shape == (1, 10, 11, 3) and g.dtype == np.float32
    assert np.count_nonzero(g[0, :, :, 0] == 0) == 110 - 64
    r, c = grid_position("C3")
    np.testing.assert_array_equal(g[0, r, c], data[EEGMMIDB_CHANNELS.index("C3")])
    batch = to_grid(np.stack([data, 2 * data]), EEGMMIDB_CHANNELS)
    assert batch.shape == (2, 1, 10, 11, 3)


def test_bad_names() -> None:
    with pytest.raises(InputError, match="'EOG1' is not a 10-10"):
        grid_position("EOG1")
    with pytest.raises(InputError, match="'C3' and 'C3' map to the same grid cell"):
        grid_index(["C3", "C3"])
    with pytest.raises(InputError, match="2 channels but 3 channel names"):
        to_grid(np.zeros((2, 4)), ["C3", "C4", "Cz"])
