"""What the commands say while they run: ``logging`` messages and progress bars.

Library code logs with ``logging.getLogger(__name__)`` (one INFO line per training epoch,
where data came from, warnings) and wraps long loops in :func:`progress`. The command line
calls :func:`setup` once: INFO and above to stderr by default, DEBUG with ``-v``, only
warnings with ``--quiet``. Progress bars are drawn only on a terminal (never carriage-return
spam in a log file), and never with ``--quiet`` or ``TQDM_DISABLE=1``. Used as a library
(no :func:`setup`), ferrocim shows warnings only, as Python does by default.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from typing import Any

_quiet = False


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in ("", "0", "false", "no", "off")


def setup(verbosity: int = 0, *, quiet: bool = False) -> None:
    """Configure the ``ferrocim`` logger for a command (``-v``: 1, ``-vv``: 2)."""
    global _quiet
    _quiet = quiet
    level = logging.WARNING if quiet else logging.DEBUG if verbosity > 0 else logging.INFO
    handler = _StderrHandler()
    handler.setFormatter(_Formatter(detailed=verbosity > 1))
    root = logging.getLogger("ferrocim")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    # warnings.warn(...) of the readers and loaders go through the same handler
    logging.captureWarnings(True)
    pywarn = logging.getLogger("py.warnings")
    pywarn.handlers[:] = [handler]
    pywarn.propagate = False


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the message (test runners swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


class _Formatter(logging.Formatter):
    """``message`` for INFO, ``warning: message`` above, logger names with ``-vv``."""

    def __init__(self, *, detailed: bool) -> None:
        super().__init__()
        self.detailed = detailed

    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if record.name == "py.warnings":  # "file:line: Category: text" → the text
            msg = msg.strip().splitlines()[0]
            msg = msg.split("Warning: ", 1)[-1] if "Warning: " in msg else msg
        if self.detailed:
            msg = f"{record.name}: {msg}"
        if record.levelno >= logging.WARNING:
            msg = f"{record.levelname.lower()}: {msg}"
        return msg


def progress_disabled() -> bool | None:
    """``True`` (quiet or ``TQDM_DISABLE``), else ``None``: tqdm then draws on a TTY only."""
    if _quiet or _truthy(os.environ.get("TQDM_DISABLE")):
        return True
    return None


def progress(iterable: Iterable[Any] | None = None, **kwargs: Any) -> Any:
    """A ``tqdm`` bar on stderr that follows the rules of the module docstring."""
    from tqdm.auto import tqdm

    if kwargs.pop("disable", False):
        kwargs["disable"] = True
    else:
        kwargs["disable"] = progress_disabled()
    return tqdm(iterable, file=sys.stderr, **kwargs)


__all__ = ["progress", "progress_disabled", "setup"]
