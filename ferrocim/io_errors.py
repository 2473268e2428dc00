"""Output-side failures as one sentence naming the path and the cause.

A read-only folder, a folder without permission, a full disk or an exhausted quota is
not a bug of ferrocim: :func:`output_errors` turns the ``OSError`` (or torch's
``RuntimeError`` from a checkpoint that could not be written, which hides the errno) into
an :class:`OutputError` such as ``runs/x/checkpoints/last.pt: the disk is full (12.0 kB
free on /runs), while writing the run runs/x; free space or choose another output
folder``. :func:`check_writable` tries the folder before a long
computation whose output path is known (``calibrate --out``, ``data prepare --out``).
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


def _free(path: Path) -> str:
    for p in (path, *path.parents):
        if p.exists():
            try:
                return f" ({_size(shutil.disk_usage(p).free)} free on {p})"
            except OSError:
                return ""
    return ""


def describe(
    exc: BaseException, path: str | os.PathLike[str], action: str = "writing"
) -> str | None:
    """The sentence for an output failure of ``path``, or None if ``exc`` is none."""
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
    extra = _free(path) if code in _FULL else ""
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
    """Create ``folder`` if needed and write a probe file into it; an OutputError naming
    ``what`` (the flag, e.g. ``--out``) and the cause if that fails."""
    folder = Path(folder)
    with output_errors(folder, f"checking that {what} {folder} is writable"):
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".ferrocim-probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    return folder


__all__ = ["CAUSES", "OutputError", "check_writable", "describe", "output_errors"]
