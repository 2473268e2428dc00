"""Helpers shared by the readers: numbers with messages that name file, line and field."""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

from ferrocim.checks import FerrocimError, InputError


class NotPulseData(FerrocimError):
    """A recognised file that holds no pulse train (e.g. a DC I-V sweep); skip it."""


def read_lines(path: str | os.PathLike[str]) -> list[str]:
    """The file's lines without line ends; raises on unreadable or empty files."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InputError(f"Cannot read {p}: {exc.strerror}") from None
    if not raw.strip():
        raise InputError(f"{p}: the file is empty")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return text.splitlines()


def to_float(cell: str, *, source: str, line: int, field: str) -> float:
    """``float(cell)`` or an InputError naming file, line and field."""
    try:
        return float(cell.strip())
    except ValueError:
        raise InputError(
            f"{source}, line {line}, field {field!r}: expected a number, got {cell.strip()!r}"
        ) from None


def positive_resistance(value: float, *, source: str, line: int, field: str) -> float:
    """``value`` if it is a finite resistance > 0 ohm; else an InputError."""
    if not math.isfinite(value) or value <= 0:
        raise InputError(
            f"{source}, line {line}, field {field!r}: resistance must be a positive finite "
            f"number of ohms, got {value!r}"
        )
    return value


def short_row(*, source: str, line: int, is_last: bool, expected: int, got: int, what: str) -> None:
    """A row with fewer fields than the header: the last row of a file cut off mid-row is
    dropped with a warning naming the line; anywhere else it is an error."""
    if is_last:
        warnings.warn(
            f"{source}, line {line}: incomplete last row (file truncated mid-row); "
            "the row is dropped",
            stacklevel=3,
        )
        return
    raise InputError(f"{source}, line {line}: expected {expected} {what}, got {got}")
