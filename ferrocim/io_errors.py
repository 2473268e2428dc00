"""Output-side failures as one sentence naming the path and the cause.

A read-only folder, a folder without permission, a full disk or an exhausted quota is
not a bug of ferrocim: :func:`output_errors` turns the ``OSError`` (or torch's
``RuntimeError`` from a checkpoint that could not be written, which hides the errno) into
an :class:`OutputError` such as ``runs/x/checkpoints/last.pt: the disk is full (12.0 kB
free on /runs), while writing the run runs/x; free space or choose another output
folder``. :func:`check_writable` tries the folder before a long
computation whose output path is known (``calibrate --out``, ``data prepare --out``).

Where the size of the failed write is known or can be estimated (a device card, a
checkpoint, an HDF5 cache), the writer wraps it in :func:`expect_size` and a full disk
reads ``… the disk is full (needs about 3.7 MB, 12.0 kB free on /runs) …``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ferrocim.checks import FerrocimError

#: errno → the cause in words.
CAUSES = {
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder",
    errno.ENAMETOOLONG: "the name is too long",
}

_FULL = (errno.ENOSPC, errno.EDQUOT)
#: Attribute :func:`expect_size` sets on an exception: the bytes the failed write needed.
NEEDS_ATTR = "ferrocim_needs_bytes"


class OutputError(FerrocimError):
    """An output could not be written (the message names the path and the cause)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.errno = code


def _size(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} bytes"  # pragma: no cover


def _free(path: Path, needs: float | None = None) -> str:
    """`` (needs about 3.7 MB, 12.0 kB free on /runs)``; the clause on the bytes needed only
    when ``needs`` (bytes) is known; empty when the free space cannot be read."""
    want = f"needs about {_size(needs)}, " if needs is not None and needs > 0 else ""
    for p in (path, *path.parents):
        if p.exists():
            try:
                return f" ({want}{_size(shutil.disk_usage(p).free)} free on {p})"
            except OSError:
                break
    return f" ({want.rstrip(', ')})" if want else ""


@contextlib.contextmanager
def expect_size(nbytes: float | None) -> Iterator[None]:
    """Record on an output failure in the block that the write needed about ``nbytes``
    bytes (read by :func:`describe` for a full disk). ``None``: unknown (no record)."""
    try:
        yield
    except (OSError, RuntimeError) as exc:
        if nbytes is not None and getattr(exc, NEEDS_ATTR, None) is None:
            with contextlib.suppress(AttributeError, TypeError):
                setattr(exc, NEEDS_ATTR, float(nbytes))
        raise


def describe(
    exc: BaseException, path: str | os.PathLike[str], action: str = "writing"
) -> str | None:
    """The sentence for an output failure of ``path``, or None if ``exc`` is none.

    A full disk names the free space and, when the writer recorded it
    (:func:`expect_size`, also on an exception it was chained from), the bytes needed."""
    path = Path(getattr(exc, "filename", None) or path)
    code = getattr(exc, "errno", None)
    text = str(exc)
    if isinstance(exc, RuntimeError) and code is None:  # torch.save: errno lost in C++
        if "unexpected pos" in text or "PytorchStreamWriter failed" in text:
            code = errno.ENOSPC
    if isinstance(exc, OSError) and code is None:  # h5py: "... errno = 28, ..."
        found = re.search(r"errno = (\d+)", text)
        code = int(found.group(1)) if found else None
    if code not in CAUSES:
        return None
    needs = getattr(exc, NEEDS_ATTR, None)
    if needs is None:
        needs = getattr(exc.__cause__ or exc.__context__, NEEDS_ATTR, None)
    extra = _free(path, needs) if code in _FULL else ""
    hint = "free space or choose another output folder" if code in _FULL else "choose another"
    if code not in _FULL:
        hint += " output folder, or make this one writable"
    return f"{path}: {CAUSES[code]}{extra}, while {action}; {hint}"


@contextlib.contextmanager
def output_errors(path: str | os.PathLike[str], action: str = "writing") -> Iterator[None]:
    """Translate output failures in the block into an :class:`OutputError` about ``path``."""
    try:
        yield
    except OutputError:
        raise
    except (OSError, RuntimeError) as exc:
        msg = describe(exc, path, action)
        if msg is None:
            raise
        raise OutputError(msg, getattr(exc, "errno", None)) from exc


def check_writable(folder: str | os.PathLike[str], what: str) -> Path:
    """Check that ``folder`` can be created and written: create it if needed, write a probe
    file into it, then remove the probe and the folders this made (so a command that then
    rejects its input leaves nothing behind). An OutputError naming ``what`` (the flag,
    e.g. ``--out``) and the cause if that fails."""
    folder = Path(folder)
    made = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        with output_errors(folder, f"checking that {what} {folder} is writable"):
            folder.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".ferrocim-probe.", dir=folder)
            os.close(fd)
            os.unlink(probe)
    finally:
        remove_empty(made)
    return folder


def remove_empty(folders: list[Path]) -> None:
    """Remove those of ``folders`` (deepest first, as listed) that exist and are empty."""
    for p in folders:
        with contextlib.suppress(OSError):
            p.rmdir()


__all__ = [
    "CAUSES",
    "OutputError",
    "check_writable",
    "describe",
    "expect_size",
    "output_errors",
    "remove_empty",
]
