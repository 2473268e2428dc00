"""Run directories as the pipelines see them: the schema (:mod:`ferrocim.rundir`) plus
the environment record written when a run opens."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import socket
from typing import Any

import torch

from ferrocim import __version__
from ferrocim.rundir import (
    EVENT_FIELDS,
    EventRow,
    ProgrammingTotals,
    RunDir,
    RunSummary,
    SSTLRow,
    programming_totals,
)


def environment(device: str) -> dict[str, Any]:
    """Versions and machine facts recorded with every run."""
    import mne
    import numpy

    from ferrocim.threads import last_choice

    choice = last_choice()
    info: dict[str, Any] = {
        "ferrocim": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "mne": mne.__version__,
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        # how that count was chosen (ferrocim.threads: --threads, OMP_NUM_THREADS, idle cores)
        "threads_choice": None if choice is None else choice.to_dict(),
        # how idle OpenMP threads wait (PASSIVE: set by ferrocim before torch loaded)
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "gomp_spincount": os.environ.get("GOMP_SPINCOUNT"),
        "device": device,
        "started": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    if device == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


__all__ = [
    "EVENT_FIELDS",
    "EventRow",
    "ProgrammingTotals",
    "RunDir",
    "RunSummary",
    "SSTLRow",
    "environment",
    "programming_totals",
]
