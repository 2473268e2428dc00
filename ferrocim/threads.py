"""How many CPU threads torch uses: one function that every entry point calls.

Torch starts one compute thread per logical CPU it sees. On a machine with other jobs, or
with several workers per machine (sweeps), those threads spin against each other and a
run becomes many times slower than its share of the machine. :func:`configure_threads`
sets an explicit count: the one asked for, else ``OMP_NUM_THREADS`` when the user set it,
else the physical cores this process may use divided among ``workers``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from ferrocim.checks import InputError

__all__ = ["configure_threads", "default_threads", "physical_cores"]


def _cgroup_cpus() -> float | None:
    """CPUs granted by a cgroup v2 quota (``cpu.max``), or None when unlimited/unknown."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def physical_cores() -> int:
    """Physical cores among the CPUs this process may run on (hyper-threads counted once),
    capped by a cgroup CPU quota; at least 1."""
    cpus = (
        os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    )
    cores = set()
    for cpu in cpus:
        topo = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(((topo / "physical_package_id").read_text(), (topo / "core_id").read_text()))
        except OSError:
            cores.add((str(cpu), ""))
    n = len(cores) or 1
    quota = _cgroup_cpus()
    return max(1, min(n, math.floor(quota))) if quota else n


def default_threads(workers: int = 1) -> int:
    """``OMP_NUM_THREADS`` if set, else physical cores // ``workers`` (at least 1)."""
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, physical_cores() // max(1, workers))


_chosen: list[int] = []  # the last explicit count of this process (empty: none yet)


def configure_threads(n: int | None = None, *, workers: int | None = None) -> int:
    """Set torch's intra-op thread count and return it.

    n: threads for this process (``--threads`` / config ``threads``); it is remembered, so a
    later ``configure_threads(None)`` (e.g. a pipeline whose config leaves ``threads``
    unset) keeps it. None with nothing chosen yet, or with ``workers`` given, picks
    :func:`default_threads` for ``workers`` processes sharing the machine (a sweep worker
    passes the worker count).
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise InputError(f"threads: expected a whole number >= 1 (--threads), got {n!r}")
    if workers is not None and workers < 1:
        raise InputError(f"workers: expected a whole number >= 1, got {workers!r}")
    if n is not None:
        _chosen[:] = [n]
    elif _chosen and workers is None:
        n = _chosen[0]
    else:
        n = default_threads(workers or 1)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
