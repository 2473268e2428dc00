"""One writer per output folder: an advisory lock file holding the writer's pid and host.

:func:`writer_lock` is held by every command that writes a run directory or an output
folder (``train``, ``retune``, ``sstl``, ``sweep``, ``calibrate``, ``data prepare``). The
lock is an ``fcntl.flock`` on a small file beside (or inside) the folder: the kernel
drops it when the holder exits, however it exits, so a lock file left by a killed process
is *stale* — the next writer takes it over and warns, naming the former holder. A second
writer while the first still runs gets an :class:`LockedError` naming the holder (pid,
host, command, start time) and the lock file — except where the folder is a shared cache
whose content does not depend on who writes it (the synthetic data set, the prepared file
of an ``--data`` EDF folder): there the lock is taken with ``wait=True``, and a second run
started beside the first logs whom it waits for and goes on once the first has written it
(then finds it current and reuses it).

The lock file is ``.<name>.lock`` beside a run directory or prepared file (it exists
before the folder does, so two runs started together cannot both create it) and
``.ferrocim.lock`` inside a calibration or sweep folder. The Python-API entry points
(:func:`ferrocim.calibration.calibrate`, :func:`ferrocim.snn.data.prepare_eegmmidb`) take
the same lock with ``reentrant=True``: inside a command that already holds it (the CLI
wraps them) they go on under that lock; called on their own they take it. A lock inside
its folder (``inside=True``) removes the folders it had to create again, when still empty,
if the block raises (a calibration that rejects its input leaves no ``--out`` behind).
On platforms without ``fcntl`` the file is created with ``O_EXCL`` and a lock whose pid
is not running on this host is stale.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import functools
import inspect
import json
import logging
import os
import socket
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from ferrocim.checks import FerrocimError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class LockedError(FerrocimError):
    """Another ferrocim process is writing the folder (the message names it)."""


def lock_file_for(target: str | os.PathLike[str], *, inside: bool = False) -> Path:
    """The lock file of ``target``: ``TARGET/.ferrocim.lock`` (``inside``) or
    ``PARENT/.NAME.lock`` beside it."""
    t = Path(target)
    return t / ".ferrocim.lock" if inside else t.parent / f".{t.name}.lock"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def _read_holder(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def describe_holder(holder: dict[str, Any]) -> str:
    """``pid 123 on host h (ferrocim train device, since 2026-…)``."""
    if not holder:
        return "an unknown process (the lock file is empty)"
    what = holder.get("command") or "ferrocim"
    return (
        f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')} "
        f"({what}, since {holder.get('since', '?')})"
    )


def _holder_record(what: str) -> dict[str, Any]:
    argv = " ".join(Path(sys.argv[0]).name if i == 0 else a for i, a in enumerate(sys.argv))
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": what if not argv else f"{what}: {argv}"[:300],
        "since": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def _locked(target: Path, lock: Path, holder: dict[str, Any]) -> LockedError:
    return LockedError(
        f"{target} is being written by another ferrocim process: {describe_holder(holder)}. "
        f"Wait for it to finish or stop it; the lock file is {lock}"
    )


log = logging.getLogger(__name__)

#: Lock files this process holds (absolute path → how many blocks hold it).
_HELD: dict[str, int] = {}


def holds(target: str | os.PathLike[str], *, inside: bool = False) -> bool:
    """True when this process holds the writer lock of ``target``."""
    return _HELD.get(str(lock_file_for(Path(target).absolute(), inside=inside)), 0) > 0


@contextlib.contextmanager
def writer_lock(
    target: str | os.PathLike[str],
    what: str,
    *,
    inside: bool = False,
    reentrant: bool = False,
    wait: bool = False,
) -> Iterator[Path]:
    """Hold the writer lock of ``target`` for the block (see module docstring).

    ``what`` names the command in the lock file and in the other writer's error. Raises
    :class:`LockedError` when another process holds it, or this one (unless
    ``reentrant``: then a lock this process already holds is used as it is); takes over a
    stale one with a warning. With ``wait`` it waits instead of raising, for as long as
    the other process holds the lock, after one INFO line naming it. The lock file is
    removed on exit; with ``inside``, so are the folders taking it created, when the block
    raises and they are empty.
    """
    target = Path(target)
    lock = lock_file_for(target, inside=inside)
    key = str(lock_file_for(target.absolute(), inside=inside))
    if reentrant and _HELD.get(key, 0) > 0:
        _HELD[key] += 1
        try:
            yield lock
        finally:
            _HELD[key] -= 1
        return
    from ferrocim.io_errors import output_errors, remove_empty

    made = [p for p in (lock.parent, *lock.parent.parents) if not p.exists()] if inside else []
    try:
        with output_errors(lock, f"taking the writer lock of {target}"):
            lock.parent.mkdir(parents=True, exist_ok=True)
            fd = _acquire(target, lock, wait=wait)
    except BaseException:
        remove_empty(made)
        raise
    _HELD[key] = _HELD.get(key, 0) + 1
    failed = False
    try:
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(_holder_record(what)) + "\n").encode("utf-8"))
        yield lock
    except BaseException:
        failed = True
        raise
    finally:
        _HELD[key] -= 1
        if not _HELD[key]:
            del _HELD[key]
        with contextlib.suppress(OSError):
            if os.fstat(fd).st_ino == os.stat(lock).st_ino:
                lock.unlink()
        os.close(fd)  # releases the flock
        if failed:
            remove_empty(made)


F = TypeVar("F", bound=Callable[..., Any])


def locked(argument: str, what: str, *, inside: bool = False) -> Callable[[F], F]:
    """Decorate a Python-API writer: it runs holding the writer lock of its ``argument``
    (the output path), taken with ``reentrant=True`` (see the module docstring)."""

    def decorate(fn: F) -> F:
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            target = sig.bind(*args, **kwargs).arguments[argument]
            with writer_lock(target, what, inside=inside, reentrant=True):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def _acquire(target: Path, lock: Path, *, wait: bool = False) -> int:
    """Open and lock ``lock``; the file descriptor (held for as long as the lock is).
    ``wait``: block while another process holds it instead of raising."""
    if fcntl is None:  # pragma: no cover - Windows
        return _acquire_excl(target, lock, wait=wait)
    for _ in range(20):
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                os.close(fd)
                raise
            if not wait:
                os.close(fd)
                raise _locked(target, lock, _read_holder(lock)) from None
            log.info(
                "%s is being written by another ferrocim process, %s; waiting for it "
                "(the lock file is %s)",
                target,
                describe_holder(_read_holder(lock)),
                lock,
            )
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # blocks until the holder releases it
            except BaseException:
                os.close(fd)
                raise
        try:  # the file may have been removed (and recreated) by its last holder meanwhile
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            continue
        before = _read_holder(lock)
        if before:  # a lock file whose holder no longer holds it: it stopped without cleanup
            alive = before.get("host") == socket.gethostname() and _pid_alive(
                int(before.get("pid", -1))
            )
            why = "no longer running" if not alive else "no longer holding it"
            warnings.warn(
                f"{target}: took over the stale writer lock {lock} of "
                f"{describe_holder(before)}, {why} (it stopped without releasing it)",
                stacklevel=4,
            )
        return fd
    raise _locked(target, lock, _read_holder(lock))  # pragma: no cover - endless churn


def _acquire_excl(target: Path, lock: Path, *, wait: bool = False) -> int:  # pragma: no cover
    for _ in range(10**6 if wait else 2):
        try:
            return os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            holder = _read_holder(lock)
            same_host = holder.get("host") == socket.gethostname()
            if same_host and not _pid_alive(int(holder.get("pid", -1))):
                warnings.warn(
                    f"{target}: took over the stale writer lock {lock} of "
                    f"{describe_holder(holder)}, no longer running",
                    stacklevel=4,
                )
                lock.unlink(missing_ok=True)
                continue
            if wait:
                time.sleep(1.0)
                continue
            raise _locked(target, lock, holder) from None
    raise _locked(target, lock, _read_holder(lock))


__all__ = [
    "LockedError",
    "describe_holder",
    "holds",
    "lock_file_for",
    "locked",
    "writer_lock",
]
