"""Input validation that names the argument, the allowed values and what was received.

Modelled on MNE's ``_validate_type`` / ``_check_option``: every user-facing entry point
checks its inputs with these so the messages read the same everywhere.
"""

from __future__ import annotations

import difflib
import math
import os
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class FerrocimError(Exception):
    """Base class of errors ferrocim raises on bad user input."""


class InputError(FerrocimError, ValueError):
    """Bad user input (a file, a field, an option). The message names where and what."""


def read_toml(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    """The TOML file ``path`` as a dict; an :class:`InputError` naming ``what`` (e.g.
    "configuration", "mapping file") and the path when it cannot be read or parsed."""
    p = Path(path)
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"Cannot read {what} {p}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{what[:1].upper()}{what[1:]} {p} is not valid TOML: {exc}") from None


def check_option(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``; else raise naming close matches."""
    allowed = list(allowed)
    if value in allowed:
        return value
    hint = ""
    if isinstance(value, str):
        close = difflib.get_close_matches(value, [str(a) for a in allowed], n=1)
        if close:
            hint = f" Did you mean {close[0]!r}?"
    raise InputError(
        f"Invalid value for {name!r}: got {value!r}; allowed values are "
        f"{', '.join(repr(a) for a in allowed)}.{hint}"
    )


def validate_type(name: str, value: Any, types: type | tuple[type, ...]) -> Any:
    """Return ``value`` if it is an instance of ``types``; else raise naming both."""
    if isinstance(value, types):
        return value
    names = types.__name__ if isinstance(types, type) else " or ".join(t.__name__ for t in types)
    raise InputError(f"{name!r} must be {names}, got {type(value).__name__} ({value!r})")


def check_range(
    name: str,
    value: float,
    low: float | None = None,
    high: float | None = None,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Return ``value`` if it is finite and inside the given bounds; else raise."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name!r} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise InputError(f"{name!r} must be finite, got {value!r}")
    if low is not None and (v < low or (v == low and not low_inclusive)):
        op = ">=" if low_inclusive else ">"
        raise InputError(f"{name!r} must be {op} {low}, got {value!r}")
    if high is not None and (v > high or (v == high and not high_inclusive)):
        op = "<=" if high_inclusive else "<"
        raise InputError(f"{name!r} must be {op} {high}, got {value!r}")
    return v
