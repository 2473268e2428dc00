"""Atomic file output: write to a temporary file beside the target, then rename.

A crash or a full disk leaves either the old file or the new one, never half a file.
Files get the permissions an ordinary ``open()`` would give them (0666 less the umask),
not the 0600 of :func:`tempfile.mkstemp`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def _umask() -> int:
    """The process umask (read by setting it and restoring it at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``path`` on success.

    Use this for libraries that want a file name (h5py, matplotlib, torch.save).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file for writing; it replaces ``path`` when the block exits cleanly."""
    if not mode.startswith("w"):
        raise ValueError(f"atomic_open writes only; mode must start with 'w', got {mode!r}")
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and return the path."""
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return Path(path)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def write_json(path: str | os.PathLike[str], obj: Any, *, indent: int = 2) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically (NaN refused: JSON has none)."""
    return write_text(path, json.dumps(obj, indent=indent, allow_nan=False, sort_keys=False) + "\n")


#: The names :func:`atomic_path` gives its temporary files (mkstemp's 8 random characters).
_TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


def remove_temporaries(
    folder: str | os.PathLike[str], name: str | None = None, *, recursive: bool = True
) -> list[Path]:
    """Remove the temporary files of :func:`atomic_path` (``.NAME.xxxxxxxx.tmp``) that a
    killed writer left in ``folder`` (and below it when ``recursive``; only those of
    ``name`` when given); the removed paths. Call it holding the folder's writer lock."""
    pattern = f".{name}.*.tmp" if name is not None else ".*.tmp"
    base = Path(folder)
    found = base.rglob(pattern) if recursive and name is None else base.glob(pattern)
    removed = []
    for p in found:
        if _TEMPORARY.match(p.name) and p.is_file():
            p.unlink(missing_ok=True)
            removed.append(p)
    if removed:
        import logging

        logging.getLogger(__name__).info(
            "removed %d temporary file(s) a stopped writer left in %s", len(removed), folder
        )
    return removed
