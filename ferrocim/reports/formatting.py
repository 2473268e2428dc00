"""Numbers for people: how every report table (and the terminal) shows a value.

One rule per kind of column, picked from the column's name (``formats=`` overrides it):

- ``count``: integers with thousands separators (``39,970``); a float count (a mean over
  folds) keeps one decimal (``4,825.5``);
- ``large``: lifetimes and projected runs, whole numbers that reach billions: below a
  million with separators, above in words (``526 million``, ``2.5 billion``);
- ``r2``: three decimals, ``-0.000`` shown as ``0.000``;
- ``percent``: accuracies in %, two decimals;
- ``energy`` / ``time`` / ``conductance``: one SI prefix per column (pJ/nJ/µJ, ns/µs/ms,
  pS/nS/µS/mS), the unit moved into the header, chosen so that every value of the column
  reads as a plain decimal (no ``5.768e-05``): the largest prefix whose smallest value is
  still ≥ 0.001 while the largest stays below 100,000 (:func:`column_prefix`);
- ``number``: four significant digits; anything else is shown as it is.

Missing values (``None``, NaN) show as an em dash.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

Kind = Literal["count", "large", "r2", "percent", "energy", "time", "conductance", "number", "text"]

MISSING = "—"

#: SI prefixes (symbol, factor), largest first, per physical unit.
_PREFIXES = {
    "energy": (
        "J",
        (("J", 1.0), ("mJ", 1e-3), ("µJ", 1e-6), ("nJ", 1e-9), ("pJ", 1e-12), ("fJ", 1e-15)),
    ),
    "time": ("s", (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9), ("ps", 1e-12))),
    "conductance": ("S", (("S", 1.0), ("mS", 1e-3), ("µS", 1e-6), ("nS", 1e-9), ("pS", 1e-12))),
}

_COUNT_WORDS = (
    "pulses",
    "crossings",
    "events",
    "devices",
    "files",
    "sweeps",
    "params",
    "steps",
    "trials",
    "epoch",
    "fold",
    "subject",
    "runs",
)
#: Name parts of columns whose counts reach billions (``large``).
_LARGE_WORDS = ("lifetime", "runs_to")
_UNIT_SUFFIX = re.compile(r"\s*\((?:J|s|S)\)$|_(?:j|s)$")


def is_missing(v: Any) -> bool:
    """None or a NaN float."""
    return v is None or (isinstance(v, float) and math.isnan(v))


def _float(v: Any) -> float | None:
    if is_missing(v) or isinstance(v, bool | str):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def column_kind(name: str) -> Kind:
    """The formatting rule of a column, from its name (see module docstring)."""
    low = name.lower()
    if "r²" in low or re.search(r"(^|_|\s)r2(_|\s|$)", low):
        return "r2"
    if low.startswith(("g_min", "g_max", "gmin", "gmax")):
        return "conductance"
    if "energy" in low or low.endswith(("_j", "(j)")):
        return "energy"
    if "width" in low or (low.endswith(("_s", "(s)")) and "wall" not in low):
        return "time"
    if "acc" in low or low.endswith("%") or low.startswith("gain"):
        return "percent"
    if any(w in low for w in _LARGE_WORDS):
        return "large"
    # whole words only: ``n_train`` is a count, ``train_loss`` is not
    words = [w for w in re.split(r"[^a-z0-9]+", low) if w]
    if (words and words[0] == "n") or any(w.startswith(_COUNT_WORDS) for w in words):
        return "count"
    return "number"


def count(v: Any) -> str:
    """``39970`` → ``39,970``; a non-integer (mean) keeps one decimal."""
    x = _float(v)
    if x is None:
        return MISSING
    if math.isinf(x):
        return "∞"
    return f"{x:,.0f}" if x == round(x) else f"{x:,.1f}"


_SCALE_WORDS = ((1e12, "trillion"), (1e9, "billion"), (1e6, "million"))


def large_count(v: Any) -> str:
    """Whole runs or pulses that reach billions: ``526315788.5`` → ``"526 million"``.

    Below a million: the whole number (rounded down: a run either completes or not) with
    separators; up to 10¹⁵ three significant digits and a word; above, ``1.2 × 10^15``.
    """
    x = _float(v)
    if x is None:
        return MISSING
    if math.isinf(x):
        return "∞"
    if abs(x) < 1e6:
        return f"{math.floor(x):,}"
    for scale, word in _SCALE_WORDS:
        if abs(x) >= scale * 0.9995:
            if abs(x) / scale < 999.5:
                return f"{x / scale:.3g} {word}"
            break
    exp = math.floor(math.log10(abs(x)))
    return f"{x / 10**exp:.2g} × 10^{exp}"


def r2(v: Any) -> str:
    """Three decimals; ``-4e-16`` → ``0.000``."""
    x = _float(v)
    if x is None:
        return MISSING
    s = f"{x:.3f}"
    return "0.000" if s == "-0.000" else s


def percent(v: Any) -> str:
    """Accuracy in % with two decimals (no % sign; the header says it)."""
    x = _float(v)
    return MISSING if x is None else f"{x:.2f}"


def number(v: Any, digits: int = 4) -> str:
    """Four significant digits (``-0`` → ``0``), ``∞`` for infinities."""
    x = _float(v)
    if x is None:
        return MISSING if is_missing(v) else str(v)
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    if isinstance(v, numbers.Integral):
        return f"{int(x):,}"
    s = f"{x:.{digits}g}"
    return s.lstrip("-") if float(s) == 0 else s


def si_prefix(kind: str, values: Iterable[Any]) -> tuple[str, float]:
    """(unit symbol, factor) for a column of ``kind`` from its largest finite magnitude."""
    _base, table = _PREFIXES[kind]
    mags = [abs(x) for x in (_float(v) for v in values) if x is not None and math.isfinite(x)]
    top = max((m for m in mags if m > 0), default=0.0)
    if top == 0.0:
        return table[0]
    for sym, fac in table:
        if top >= fac * 0.9995:
            return sym, fac
    return table[-1]


#: Bounds of a readable scaled value: the largest below ``_TOP`` (``99,999``), the
#: smallest nonzero at least ``_BOTTOM`` (``0.001``).
_TOP, _BOTTOM = 1e5, 1e-3


def column_prefix(kind: str, values: Iterable[Any], *, floor: float = _BOTTOM) -> tuple[str, float]:
    """(unit symbol, factor) of a whole column of ``kind``, chosen for readability.

    The largest prefix (fewest digits) at which the column's largest magnitude is ≥ 1 and
    below 100,000 and its smallest nonzero one still ≥ 0.001; where the column spans more
    than that (eight decades), the smallest prefix that keeps the largest below 100,000.
    ``floor`` raises the bound on the smallest value (a log axis reads best with ``1``:
    no negative powers of ten), falling back to 0.001 where no prefix meets it.
    """
    _base, table = _PREFIXES[kind]
    mags = [abs(x) for x in (_float(v) for v in values) if x is not None and math.isfinite(x)]
    mags = [m for m in mags if m > 0]
    if not mags:
        return table[0]
    hi, lo = max(mags), min(mags)
    fits = [(sym, fac) for sym, fac in table if hi / fac < _TOP]
    if not fits:
        return table[-1]
    ok = [(sym, fac) for sym, fac in fits if lo / fac >= floor * 0.9995]
    if not ok and floor > _BOTTOM:
        return column_prefix(kind, mags)
    if not ok:
        return fits[-1]
    big = [(sym, fac) for sym, fac in ok if hi / fac >= 0.9995]
    return big[0] if big else ok[-1]


def plain(x: float, digits: int = 4) -> str:
    """``x`` with ``digits`` significant digits as a plain decimal (``0.05768``,
    ``10,870``; trailing zeros dropped); exponent notation only below 10⁻⁹."""
    if x == 0:
        return "0"
    mag = math.floor(math.log10(abs(x)))
    if mag >= digits - 1:
        s = f"{x:,.0f}"
    elif mag < -9:
        s = f"{x:.{digits}g}"
    else:
        s = f"{x:.{digits - 1 - mag}f}"
        if "." in s:
            s = s.rstrip("0").rstrip(".")
        # rounding up to the next decade (9.9996 → 10.000) keeps one digit too many
        if len(s.replace("-", "").replace(".", "").lstrip("0")) > digits:
            s = plain(float(s), digits)
    return s.lstrip("-") if float(s.replace(",", "")) == 0 else s


def scaled(v: Any, factor: float) -> str:
    """``v / factor`` with four significant digits as a plain decimal (the column's unit in
    the header)."""
    x = _float(v)
    if x is None:
        return MISSING if is_missing(v) else str(v)
    if math.isinf(x):
        return "∞"
    return plain(x / factor)


def with_unit(name: str, unit: str) -> str:
    """``"Gmin (S)"`` / ``"g_min_s"`` / ``"energy_j"`` with its unit replaced by ``unit``."""
    base = _UNIT_SUFFIX.sub("", name)
    return f"{base} ({unit})"


def format_column(
    name: str, values: Sequence[Any], kind: Kind | None = None
) -> tuple[str, list[str]]:
    """The header and the cell strings of one column."""
    kind = kind or column_kind(name)
    if kind in _PREFIXES and all(_float(v) is None for v in values):
        kind = "text"  # e.g. widths already written as "20 ns": no unit to move
    if kind in _PREFIXES:
        sym, fac = column_prefix(kind, values)
        return with_unit(name, sym), [scaled(v, fac) for v in values]
    if kind == "text":
        return name, [MISSING if is_missing(v) else str(v) for v in values]
    fmt = {
        "count": count,
        "large": large_count,
        "r2": r2,
        "percent": percent,
        "number": number,
    }[kind]
    cells = [fmt(v) if _float(v) is not None or is_missing(v) else str(v) for v in values]
    if kind == "percent" and "%" not in name:
        name = f"{name} (%)"
    return name, cells


def format_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    formats: Mapping[str, Kind] | None = None,
) -> tuple[list[str], list[list[str]]]:
    """Headers and cell strings of a whole table, column by column."""
    formats = formats or {}
    heads, cols = [], []
    for j, name in enumerate(columns):
        head, cells = format_column(str(name), [r[j] for r in rows], formats.get(str(name)))
        heads.append(head)
        cols.append(cells)
    return heads, [list(r) for r in zip(*cols, strict=True)] if cols else []


def quantity(value: Any, kind: str) -> str:
    """One value with its own SI prefix: ``quantity(3.2e-9, "energy")`` → ``"3.2 nJ"``."""
    x = _float(value)
    if x is None:
        return MISSING
    sym, fac = si_prefix(kind, [x])
    return f"{scaled(x, fac)} {sym}"


__all__ = [
    "MISSING",
    "column_kind",
    "column_prefix",
    "count",
    "format_column",
    "format_table",
    "large_count",
    "number",
    "percent",
    "plain",
    "quantity",
    "r2",
    "scaled",
    "si_prefix",
    "with_unit",
]
