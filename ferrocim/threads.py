"""How many CPU threads torch uses: one function that every entry point calls.

Torch starts one compute thread per logical CPU it sees. On a machine with other jobs, or
with several workers per machine (sweeps), those threads spin against each other and a
run becomes many times slower than its share of the machine (measured: 3-10x slower than
one thread). Two things prevent that. ``import ferrocim`` asks OpenMP to wait passively
(``OMP_WAIT_POLICY=PASSIVE``, ``ferrocim/__init__.py``): idle threads sleep instead of
spinning, which removes most of the slowdown (measured beside a busy loop: 2 threads
0.85-1.05x the time of 1, against 1.7-4.7x spinning). And :func:`configure_threads` sets
an explicit count: the one asked for, else ``OMP_NUM_THREADS`` when the user set it, else
the physical cores this process may use, divided among ``workers``. That default depends
on the machine only, not on its load, because the thread count changes floating-point
rounding (parallel reductions): same seed and same machine give the same result.
``FERROCIM_THREADS=auto`` asks for the *idle* physical cores instead
(:func:`choose_threads`: the machine's physical cores less its load, rounded, capped at
this process's share, at least 1), trading that repeatability for speed on a crowded
machine. The choice and its reason are kept (:func:`last_choice`) for the run's
``env.json``; a resumed run reuses the recorded count (``ferrocim.pipelines.runs``);
``--threads N`` pins it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from ferrocim.checks import InputError

__all__ = [
    "ThreadChoice",
    "choose_threads",
    "configure_threads",
    "default_threads",
    "last_choice",
    "machine_load",
    "physical_cores",
    "single_thread",
    "system_cores",
]

log = logging.getLogger(__name__)


def _cgroup_cpus() -> float | None:
    """CPUs granted by a cgroup v2 quota (``cpu.max``), or None when unlimited/unknown."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def _core_count(cpus: object) -> int:
    """Physical cores (package, core id) among logical CPUs ``cpus``; at least 1."""
    cores = set()
    for cpu in cpus:  # type: ignore[attr-defined]
        topo = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(((topo / "physical_package_id").read_text(), (topo / "core_id").read_text()))
        except OSError:
            cores.add((str(cpu), ""))
    return len(cores) or 1


def physical_cores() -> int:
    """Physical cores among the CPUs this process may run on (hyper-threads counted once),
    capped by a cgroup CPU quota; at least 1."""
    cpus = (
        os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    )
    n = _core_count(cpus)
    quota = _cgroup_cpus()
    return max(1, min(n, math.floor(quota))) if quota else n


def system_cores() -> int:
    """Physical cores of the whole machine (all logical CPUs, not only this process's):
    the scale of the load average; at least 1."""
    return _core_count(range(os.cpu_count() or 1))


def _runnable_now(samples: int = 3, interval_s: float = 0.005) -> float | None:
    """Tasks runnable right now on the machine (``/proc/loadavg``'s 4th field), the mean
    of ``samples`` reads ``interval_s`` apart, less the reading thread; None off Linux."""
    counts = []
    for i in range(samples):
        try:
            field = Path("/proc/loadavg").read_text().split()[3]
            counts.append(int(field.split("/")[0]) - 1)
        except (OSError, IndexError, ValueError):
            return None
        if i + 1 < samples:
            time.sleep(interval_s)
    return max(0.0, sum(counts) / len(counts))


def machine_load() -> tuple[float | None, float | None]:
    """The machine's 1-minute load average (which lags a job that just started by a
    minute) and :func:`_runnable_now` (which misses a bursty one); None where unknown."""
    try:
        avg: float | None = os.getloadavg()[0]
    except (AttributeError, OSError):
        avg = None
    return avg, _runnable_now()


def _own_load() -> float:
    """This process's estimated share of the 1-minute load average: its CPU seconds per
    second since it started, weighted as the average weights them (``1 - e^(-t/60)``);
    0 where the start time is unknown."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: start time
        elapsed = float(Path("/proc/uptime").read_text().split()[0]) - started
    except (OSError, IndexError, ValueError, AttributeError):
        return 0.0
    if elapsed <= 0:
        return 0.0
    return time.process_time() / elapsed * (1.0 - math.exp(-elapsed / 60.0))


def _share(usable_cores: int, workers: int) -> tuple[int, str]:
    """This process's share of ``usable_cores`` among ``workers`` (at least 1) and a
    phrase that says how it was reached."""
    workers = max(1, workers)
    share = max(1, usable_cores // workers)
    cap = f"{usable_cores} usable physical core(s)" + (
        f" // {workers} workers = {share}" if workers > 1 else ""
    )
    return share, cap


Source = Literal["--threads", "kept", "OMP_NUM_THREADS", "idle cores", "physical cores"]


@dataclass(frozen=True)
class ThreadChoice:
    """A thread count and why: ``source`` (``--threads``: asked for; ``kept``: an earlier
    explicit count of this process; ``OMP_NUM_THREADS``; ``idle cores``: from the load;
    ``physical cores``: no load known) and a sentence for the record."""

    threads: int
    source: Source
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (``env.json``'s ``threads_choice``)."""
        return asdict(self)


def choose_threads(
    usable_cores: int,
    workers: int = 1,
    *,
    load: float | None,
    system_cores: int,
    own_load: float = 0.0,
    runnable: float | None = None,
) -> ThreadChoice:
    """The default thread count: idle cores, capped at this process's share.

    ``share = max(1, usable_cores // workers)``. The machine's busy cores are
    ``max(load - own_load, runnable, 0)``: the 1-minute load average less this process's
    share of it, or the tasks runnable now (other than the caller) when more. ``idle =
    system_cores - busy``; the count is ``round(idle)`` (halves up) within ``[1, share]``.
    With neither ``load`` nor ``runnable`` known: ``share``. Examples: 8 cores, load 3.6 →
    4; load 3.5 → 5; 2 cores, one busy loop just started (load 0.1, runnable 1) → 1;
    load 9 on 8 → 1; idle 8 cores, 2 workers → 4.
    """
    share, cap = _share(usable_cores, workers)
    if load is None and runnable is None:
        return ThreadChoice(share, "physical cores", f"{cap} (no load average here)")
    busy = max(0.0, 0.0 if load is None else load - own_load, runnable or 0.0)
    idle = system_cores - busy
    n = max(1, min(share, math.floor(idle + 0.5)))
    seen = []
    if load is not None:
        own = f" less {own_load:.2f} of this process" if own_load > 0.005 else ""
        seen.append(f"1-min load {load:.2f}{own}")
    if runnable is not None:
        seen.append(f"{runnable:.1f} runnable now")
    return ThreadChoice(
        n,
        "idle cores",
        f"{max(0.0, idle):.1f} of {system_cores} physical cores idle ({', '.join(seen)}), "
        f"capped at {cap}, at least 1",
    )


def _default_choice(workers: int = 1) -> ThreadChoice:
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return ThreadChoice(int(env), "OMP_NUM_THREADS", f"OMP_NUM_THREADS={env}")
    mode = os.environ.get("FERROCIM_THREADS", "").strip().lower()
    if mode not in ("", "auto"):
        raise InputError(
            f"FERROCIM_THREADS={mode!r}: expected 'auto' (idle cores) or unset "
            "(physical cores); for a fixed count pass --threads N"
        )
    if mode != "auto":
        share, cap = _share(physical_cores(), workers)
        return ThreadChoice(
            share, "physical cores", f"{cap} (FERROCIM_THREADS=auto: the idle ones instead)"
        )
    load, runnable = machine_load()
    return choose_threads(
        physical_cores(),
        workers,
        load=load,
        system_cores=system_cores(),
        own_load=_own_load(),
        runnable=runnable,
    )


def default_threads(workers: int = 1) -> int:
    """``OMP_NUM_THREADS`` if set, else this process's share of the usable physical cores
    (with ``FERROCIM_THREADS=auto``: the idle ones, :func:`choose_threads`; at least 1)."""
    return _default_choice(workers).threads


_chosen: list[int] = []  # the last explicit count of this process (empty: none yet)
_last: list[ThreadChoice] = []  # the last choice configure_threads made


def last_choice() -> ThreadChoice | None:
    """What the last :func:`configure_threads` of this process chose and why (None: none
    yet)."""
    return _last[0] if _last else None


def configure_threads(n: int | None = None, *, workers: int | None = None) -> int:
    """Set torch's intra-op thread count and return it.

    n: threads for this process (``--threads`` / config ``threads``); it is remembered, so a
    later ``configure_threads(None)`` (e.g. a pipeline whose config leaves ``threads``
    unset) keeps it. None with nothing chosen yet, or with ``workers`` given, picks
    :func:`default_threads` for ``workers`` processes sharing the machine (a sweep worker
    passes the worker count). The choice and its reason: :func:`last_choice`.
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise InputError(f"threads: expected a whole number >= 1 (--threads), got {n!r}")
    if workers is not None and workers < 1:
        raise InputError(f"workers: expected a whole number >= 1, got {workers!r}")
    if n is not None:
        _chosen[:] = [n]
        choice = ThreadChoice(n, "--threads", f"{n} asked for (--threads / threads =)")
    elif _chosen and workers is None:
        choice = ThreadChoice(_chosen[0], "kept", f"{_chosen[0]} asked for earlier")
    else:
        choice = _default_choice(workers or 1)
    _last[:] = [choice]
    log.debug("torch threads: %d (%s: %s)", choice.threads, choice.source, choice.reason)
    if torch.get_num_threads() != choice.threads:
        torch.set_num_threads(choice.threads)
    return choice.threads


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run the block with one torch thread, then restore the count.

    For work too small to split: each of the few hundred small operations of an online
    update at batch 1 would otherwise wake the other threads, which wait passively
    (``OMP_WAIT_POLICY=PASSIVE``), and that wake-up costs more than the work (measured,
    SSTL update at batch 1, 2-core machine: 5.3 ms with 2 threads, 2.2 ms with 1). The
    results are the same bit for bit here: these operations have no parallel reductions
    (``tests/test_threads.py::test_online_updates_on_one_thread_equal_those_on_two``).
    """
    n = torch.get_num_threads()
    if n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)
