"""Names that become file names: the one place they are checked or made safe.

Every name that comes from a file, a flag or a configuration and ends up in a path
passes through here:

* names the user chooses (``--name``, ``name`` in a config, sweep point ids) are
  **checked** with :func:`check_name`: an unsafe one is an :class:`InputError` naming
  where it came from and why, so the user picks another;
* names read from measurement files (the B2912B ``Device:`` header, a CSV mapping's
  ``device_id``, B1500 device columns) are **made safe** with :func:`safe_name`: the
  file cannot be changed, so the card gets a safe name (the original id stays in the
  card's description and provenance, and a warning gives the mapping);
* :func:`inside` is the last guard where a path is built: the result must lie inside
  the folder the user named.

A safe name is one path component: not empty, at most :data:`MAX_NAME_BYTES` bytes of
UTF-8, no ``/`` or ``\\``, no NUL or other control character, none of ``<>:"|?*``, not
starting with ``.`` (no ``..``, no hidden files) or with white space, not ending with
white space or ``.``, and not a reserved device name on Windows (``CON``, ``NUL``, …).
Letters of any script are allowed.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from pathlib import Path

from ferrocim.checks import InputError

#: Longest name in bytes (UTF-8); leaves room for suffixes such as ``_g_vs_pulse.png``
#: and the atomic writer's ``.NAME.xxxxxxxx.tmp`` within the usual 255-byte limit.
MAX_NAME_BYTES = 120

#: Characters refused (besides control characters): separators and what Windows refuses.
FORBIDDEN = '/\\<>:"|?*'

_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{i}" for p in ("COM", "LPT") for i in range(10)}


def name_problem(name: object) -> str | None:
    """Why ``name`` is not a safe file name (None: it is one)."""
    if not isinstance(name, str):
        return f"it is a {type(name).__name__}, not text"
    if not name:
        return "it is empty"
    if "\x00" in name:
        return "it contains a NUL character"
    if "/" in name or "\\" in name:
        return "it contains a path separator ('/' or '\\'), so it would name another folder"
    if name in (".", ".."):
        return "it names a folder ('.' or '..')"
    if name.startswith("."):
        return "it starts with '.'"
    if any(unicodedata.category(c).startswith("C") for c in name):
        return "it contains a control character"
    bad = sorted({c for c in name if c in FORBIDDEN})
    if bad:
        return f"it contains {' '.join(repr(c) for c in bad)}"
    if name != name.strip() or name.endswith("."):
        return "it starts or ends with white space, or ends with '.'"
    if name.split(".")[0].upper() in _RESERVED:
        return "it is a reserved device name on Windows"
    size = len(name.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        return f"it is {size} bytes long (at most {MAX_NAME_BYTES})"
    return None


def check_name(name: str, what: str) -> str:
    """Return ``name`` if it is a safe file name, else raise an InputError naming ``what``
    (the flag or field it came from, e.g. ``"--name (name)"``)."""
    problem = name_problem(name)
    if problem is not None:
        raise InputError(
            f"{what}: {name!r} cannot be a file or folder name: {problem}. Use one name "
            f"(letters, digits, '-', '_', '.'; at most {MAX_NAME_BYTES} bytes), not a path"
        )
    return name


def safe_name(raw: str, *, fallback: str = "unnamed") -> str:
    """``raw`` if it is a safe file name, else a safe name made from it.

    Forbidden and control characters become ``_``, leading dots and white space are
    dropped, the name is cut to fit, and a short hash of ``raw`` is appended, so two
    different unsafe names never give the same file name.
    """
    if name_problem(raw) is None:
        return raw
    text = unicodedata.normalize("NFC", str(raw))
    text = "".join(
        "_" if c in FORBIDDEN or unicodedata.category(c).startswith("C") else c for c in text
    )
    text = re.sub(r"\.{2,}", "_", text)
    text = re.sub(r"_{2,}", "_", text).strip(" ._")
    tag = hashlib.sha256(str(raw).encode("utf-8", "surrogatepass")).hexdigest()[:8]
    room = MAX_NAME_BYTES - len(tag) - 1
    cut = text.encode("utf-8")[:room].decode("utf-8", "ignore").rstrip(". ")
    out = f"{cut or fallback}-{tag}"
    assert name_problem(out) is None, out
    return out


def inside(root: str | os.PathLike[str], *parts: str) -> Path:
    """``root/parts…``, refusing any result that does not lie inside ``root``.

    The last guard where a path is built from names: a name that slipped past
    :func:`check_name` or :func:`safe_name` cannot write outside the folder the user named.
    """
    base = Path(root)
    if any("\x00" in p for p in parts):
        raise InputError(f"{parts!r}: a NUL character cannot be in a file name")
    path = base.joinpath(*parts)
    try:
        path.resolve().relative_to(base.resolve())
    except ValueError:
        raise InputError(
            f"{path} would lie outside the output folder {base}; ferrocim writes only inside it"
        ) from None
    return path


__all__ = ["FORBIDDEN", "MAX_NAME_BYTES", "check_name", "inside", "name_problem", "safe_name"]
