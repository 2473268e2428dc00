"""Running a sweep on dask.distributed: one ordinary run directory per point.

Layout of a sweep directory::

    DIR/sweep.toml             the sweep file as last run
    DIR/runs/<point id>/       each point's run directory (the id hashes its config)
    DIR/runs/<id>/failure.json the error of a point that failed (removed on retry)
    DIR/results.parquet        one row per point: config columns, metrics, status

A point whose run directory has ``summary.json`` is done and skipped; one with only a
``config.toml`` is resumed from its checkpoints; the others start. Each worker process
runs one point at a time with ``threads`` torch threads. A worker that dies (killed,
out of memory, node lost) loses nothing: the scheduler hands the point to another
worker (up to ``distributed.scheduler.allowed-failures`` times), which resumes it from
its last checkpoint. Bad input (:class:`~ferrocim.checks.FerrocimError`) fails a point at
once; other exceptions are retried ``retries`` times (resuming) before the point is
recorded as failed. Either way the sweep goes on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import traceback
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from ferrocim.atomic import atomic_path, write_json, write_text
from ferrocim.checks import FerrocimError, InputError
from ferrocim.io_errors import output_errors
from ferrocim.locks import writer_lock
from ferrocim.names import check_name, inside
from ferrocim.pipelines import sweep_spec
from ferrocim.pipelines.sweep_spec import Point, Sweep
from ferrocim.rundir import RunSummary

#: RunSummary fields copied into results.parquet (missing ones are empty)
METRIC_COLUMNS = (
    "test_acc",
    "test_loss",
    "best_val_acc",
    "best_epoch",
    "steps",
    "float_test_acc",
    "transfer_test_acc",
    "acc_before",
    "acc_after",
    "gain",
    "programming_events",
    "ltp_crossings",
    "ltd_crossings",
    "pulses",
    "ltp_pulses",
    "ltd_pulses",
    "failed_devices",
)
#: the whole-number ones among them (``int`` fields of RunSummary): nullable Int64 columns
COUNT_COLUMNS = tuple(
    c for c in METRIC_COLUMNS if typing.get_type_hints(RunSummary)[c] == (int | None)
)
PointState = Literal["done", "started", "new"]


def point_state(run_dir: str | os.PathLike[str]) -> PointState:
    """``done`` (summary written), ``started`` (config written: resume) or ``new``."""
    run = Path(run_dir)
    if (run / "summary.json").is_file():
        return "done"
    return "started" if (run / "config.toml").is_file() else "new"


def use_threads(n: int) -> None:
    """Torch threads of the calling worker process (one place for the sweep's setting);
    also keeps freed memory in it (:func:`ferrocim.allocator.keep_freed_memory`)."""
    from ferrocim.allocator import keep_freed_memory
    from ferrocim.threads import configure_threads

    keep_freed_memory()
    configure_threads(n)


# ---------------------------------------------------------------------------------------
# the worker side
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PointOutcome:
    """What a point task returns: ``done`` or ``failed`` with the error message."""

    status: Literal["done", "failed"]
    error: str | None = None


def run_point(config: dict[str, Any], run_dir: str, threads: int, *_deps: Any) -> PointOutcome:
    """Dask task: run (or resume) one point; bad input is returned as a failure.

    ``config`` is the point's canonical configuration; ``_deps`` are upstream results
    (the prepared data set) that only order the tasks.
    """
    use_threads(threads)
    state = point_state(run_dir)
    if state == "done":
        return PointOutcome("done")
    run = Path(run_dir)
    cfg = sweep_spec.from_canonical(config, name=run.name, out_dir=str(run.parent))
    try:
        sweep_spec.execute(cfg, run, resume=state == "started")
    except FerrocimError as exc:  # deterministic: no retry
        return PointOutcome("failed", f"{type(exc).__name__}: {exc}")
    return PointOutcome("done")


def prepare_data_task(config: dict[str, Any], threads: int) -> bool:
    """Dask task: prepare a data set once before the points that read it."""
    use_threads(threads)
    sweep_spec.prepare_data(sweep_spec.from_canonical(config, name="data", out_dir="."))
    return True


# ---------------------------------------------------------------------------------------
# the client side
# ---------------------------------------------------------------------------------------
def default_workers(threads_per_worker: int) -> int:
    """Worker processes that fill this machine's cores at ``threads_per_worker`` each."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // threads_per_worker)


def local_cluster(workers: int | None = None, threads_per_worker: int = 1, **kwargs: Any):
    """A LocalCluster of worker *processes*, each running one point at a time.

    Each worker gets ``threads_per_worker`` torch/OpenMP threads, so ``workers ×
    threads_per_worker`` ≤ cores by default. No memory limit (a nanny would kill a
    full-width run that outgrows an even share of RAM); progress bars of the pipelines
    are off in workers (the sweep has its own).
    """
    from distributed import LocalCluster

    if threads_per_worker < 1:
        raise InputError(f"--threads must be ≥ 1, got {threads_per_worker}")
    if workers is not None and workers < 1:
        raise InputError(f"--workers must be ≥ 1, got {workers}")
    env = {
        "OMP_NUM_THREADS": str(threads_per_worker),
        "MKL_NUM_THREADS": str(threads_per_worker),
        "TQDM_DISABLE": "1",
    }
    options: dict[str, Any] = {
        "memory_limit": 0,
        "dashboard_address": ":8787",
        "silence_logs": logging.ERROR,
    }
    options.update(kwargs)
    return LocalCluster(
        n_workers=workers or default_workers(threads_per_worker),
        threads_per_worker=1,
        processes=True,
        env=env,
        **options,
    )


@dataclass
class SweepResult:
    """What :func:`run_sweep` did: points per outcome and where the table is."""

    out: Path
    results: Path
    skipped: int = 0
    ran: int = 0
    done: int = 0
    failed: list[tuple[Point, str]] = field(default_factory=list)


def run_dir_of(out: str | os.PathLike[str], point: Point) -> Path:
    """Where ``point`` of the sweep in ``out`` keeps its run directory."""
    return inside(Path(out).resolve(), "runs", check_name(point.id, "sweep point id"))


def _progress(**kwargs: Any) -> Any:
    """The sweep's bar: :func:`ferrocim.logs.progress` (off with ``-q``, ``TQDM_DISABLE``
    or when stderr is no terminal)."""
    from ferrocim.logs import progress

    return progress(**kwargs)


@contextlib.contextmanager
def _client(scheduler: str | None, workers: int | None, threads: int) -> Iterator[Any]:
    from distributed import Client

    if scheduler is not None:
        with Client(scheduler) as client:
            yield client
        return
    with local_cluster(workers, threads) as cluster, Client(cluster) as client:
        yield client


def _dashboard_note(client: Any) -> str:
    link = client.dashboard_link
    try:
        import bokeh  # noqa: F401
    except ImportError:
        return f"{link} (install bokeh to serve it)"
    return link


def run_sweep(
    sweep: Sweep,
    out: str | os.PathLike[str],
    *,
    workers: int | None = None,
    threads_per_worker: int = 1,
    scheduler: str | None = None,
    retries: int = 2,
    echo: Any = print,
    progress: bool = True,
    poll_s: float = 0.5,
) -> SweepResult:
    """Run every unfinished point of ``sweep`` under ``out``; write ``results.parquet``.

    ``scheduler``: address of a running dask scheduler (``tcp://HOST:PORT``); without
    it a :func:`local_cluster` of ``workers`` processes is started. ``retries``: how
    often a point that raised an unexpected exception is retried (it resumes).
    """
    if retries < 0:
        raise InputError(f"--retries must be ≥ 0, got {retries}")
    if scheduler is not None and workers is not None:
        raise InputError("--workers sizes the local cluster; with --scheduler, its workers run")
    out = Path(out).resolve()
    with output_errors(out, f"writing the sweep into {out}"):
        out.mkdir(parents=True, exist_ok=True)
        with writer_lock(out, "ferrocim sweep", inside=True):  # one coordinator per --out
            return _run_sweep(
                sweep, out, workers, threads_per_worker, scheduler, retries, echo, progress, poll_s
            )


def _run_sweep(
    sweep: Sweep,
    out: Path,
    workers: int | None,
    threads_per_worker: int,
    scheduler: str | None,
    retries: int,
    echo: Any,
    progress: bool,
    poll_s: float,
) -> SweepResult:
    result = SweepResult(out, out / "results.parquet")
    todo = [p for p in sweep.points if point_state(run_dir_of(out, p)) != "done"]
    result.skipped = len(sweep.points) - len(todo)
    write_text(out / "sweep.toml", sweep.text)
    errors: dict[str, str] = {}
    if todo:
        echo(f"{len(sweep.points)} points: {result.skipped} done, {len(todo)} to run")
        with _client(scheduler, workers, threads_per_worker) as client:
            echo(f"dask dashboard: {_dashboard_note(client)}")
            errors = _submit_and_wait(
                client, todo, out, threads_per_worker, retries, progress, poll_s
            )
        result.ran = len(todo)
    else:
        echo(f"{len(sweep.points)} points: all done already")
    table = collect_results(sweep, out, errors)
    with atomic_path(result.results) as tmp:
        table.to_parquet(tmp, index=False)
    result.done = int((table["status"] == "done").sum())
    result.failed = [(p, errors[p.id]) for p in sweep.points if p.id in errors]
    return result


def _submit_and_wait(
    client: Any,
    todo: list[Point],
    out: Path,
    threads: int,
    retries: int,
    progress: bool,
    poll_s: float,
) -> dict[str, str]:
    """Submit the points (after their data sets), follow them; errors by point id."""
    tag = sweep_spec.content_hash(str(out))[:8]
    data: dict[str, Any] = {}
    futures: dict[str, Any] = {}
    for p in todo:
        run = run_dir_of(out, p)
        (run / "failure.json").unlink(missing_ok=True)
        cfg = sweep_spec.canonical(p.config)
        key = sweep_spec.data_key(p.config)
        deps = []
        if key is not None:
            if key not in data:
                data[key] = client.submit(
                    prepare_data_task, cfg, threads, key=f"data-{key}-{tag}", retries=retries
                )
            deps.append(data[key])
        futures[p.id] = client.submit(
            run_point, cfg, str(run), threads, *deps, key=f"point-{p.id}-{tag}", retries=retries
        )
    keys = {f.key: pid for pid, f in futures.items()}
    errors: dict[str, str] = {}
    by_id = {p.id: p for p in todo}
    remaining = dict(futures)
    with _progress(total=len(todo), unit="point", desc="sweep", disable=not progress) as bar:
        while remaining:
            for pid, fut in list(remaining.items()):
                if not fut.done():
                    continue
                del remaining[pid]
                error, tb = _outcome_error(fut)
                if error is not None:
                    errors[pid] = error
                    write_json(
                        run_dir_of(out, by_id[pid]) / "failure.json",
                        {
                            "point": pid,
                            "values": by_id[pid].values,
                            "error": error,
                            "traceback": tb,
                        },
                    )
                bar.update(1)
            running = _running(client, keys)
            bar.set_postfix_str(
                f"done {bar.n - len(errors)}, running {running}, failed {len(errors)}"
            )
            if remaining:
                time.sleep(poll_s)
    return errors


def _running(client: Any, keys: dict[str, str]) -> int:
    """Points executing now: ours among each worker's assigned tasks, capped by its threads."""
    threads = client.nthreads()
    return sum(
        min(sum(k in keys for k in assigned), threads.get(w, 1))
        for w, assigned in client.processing().items()
    )


def _outcome_error(fut: Any) -> tuple[str | None, str | None]:
    """(error, traceback) of a finished future: an exception or a failed PointOutcome."""
    if fut.status == "error":
        exc, tb = fut.exception(), fut.traceback()
        return f"{type(exc).__name__}: {exc}", "".join(traceback.format_tb(tb)) if tb else None
    outcome: PointOutcome = fut.result()
    return (outcome.error, None) if outcome.status == "failed" else (None, None)


# ---------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------
def _energy(run: Path) -> dict[str, float | None]:
    path = run / "energy.csv"
    if not path.is_file():
        return {"energy_j": None, "energy_write_j": None}
    e = pd.read_csv(path)
    write = e["kind"].astype(str).str.startswith("write")
    return {
        "energy_j": float(e["energy_j"].sum()),
        "energy_write_j": float(e.loc[write, "energy_j"].sum()),
    }


def point_row(point: Point, out: Path, error: str | None) -> dict[str, Any]:
    """One results row: identity, status, config columns (dotted), metrics, energy."""
    run = run_dir_of(out, point)
    summary = None
    if (run / "summary.json").is_file():
        path = run / "summary.json"
        summary = RunSummary.from_json(json.loads(path.read_text()), str(path))
    failure = run / "failure.json"
    if error is None and summary is None and failure.is_file():
        error = json.loads(failure.read_text())["error"]
    row: dict[str, Any] = {
        "point": point.id,
        "index": point.index,
        "status": "done" if summary is not None else "failed" if error else "unfinished",
        "error": error,
        "run_dir": f"runs/{point.id}",
    }
    row.update(sweep_spec.flatten(sweep_spec.canonical(point.config)))
    row.update({k: getattr(summary, k, None) for k in METRIC_COLUMNS})
    row.update(_energy(run))
    row["wall_s"] = getattr(summary, "wall_s", None)
    return row


def collect_results(sweep: Sweep, out: Path, errors: dict[str, str]) -> pd.DataFrame:
    """The results table of a sweep, one row per point in sweep order."""
    table = pd.DataFrame([point_row(p, out, errors.get(p.id)) for p in sweep.points])
    for col in COUNT_COLUMNS:
        table[col] = pd.array(table[col], dtype="Int64")
    for col in (
        *[c for c in METRIC_COLUMNS if c not in COUNT_COLUMNS],
        "energy_j",
        "energy_write_j",
        "wall_s",
    ):
        table[col] = pd.to_numeric(table[col]).astype("float64")
    return table
