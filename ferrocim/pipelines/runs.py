"""Opening a run: run directory, device card, compute device and model from a RunConfig.

A run resolves its device card once, when it opens, and stores it as ``RUN/card.json``;
building, resuming, finishing and reporting load that file. Runs built on another run
(re-tuning on a float run, SSTL on a pooled run) take some fields from it
(:func:`inherit`); their own config may repeat those values but not change them.

Every new run also records its data in ``RUN/data.json`` (:data:`DATA_RECORD`): the
prepared file, its preprocessing, subjects, the per-channel mean/s.d. it was z-scored
with (what ``ferrocim data prepare --stats-from RUN`` reads), and ``trained_on`` (False
for an imported checkpoint, trained elsewhere). Evaluating or personalising a run on
other data is explicit (``--data``), logged, and written into the run that does it.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel

from ferrocim.atomic import remove_temporaries, write_json
from ferrocim.calibration.card import DeviceCard, resolve_card
from ferrocim.checks import InputError
from ferrocim.io_errors import check_writable, output_errors
from ferrocim.locks import writer_lock
from ferrocim.names import check_name, inside
from ferrocim.pipelines.config import RunConfig, load_config
from ferrocim.pipelines.rundir import RunDir, environment
from ferrocim.pipelines.seeding import torch_generator
from ferrocim.threads import configure_threads

log = logging.getLogger(__name__)

#: Run kinds whose model lives on tiles (they record a card.json when they open).
ARRAY_KINDS = ("device", "retune", "sstl")

#: The file in a run directory that records the run's data (see module docstring).
DATA_RECORD = "data.json"

#: The file in a run directory that records each session (start, wall time, outcome)
#: of the run: ``summary.json``'s ``wall_s`` is their sum (see :func:`session_wall_s`).
SESSIONS = "sessions.json"

#: What :func:`open_run` writes before the run computes anything: a run that fails with
#: only these files in its folder leaves no folder (``ferrocim.cli``).
SETUP_FILES = frozenset({"config.toml", "env.json", "card.json", DATA_RECORD, SESSIONS})

#: What a run built on a float run takes from it: the weights fit only that network, and
#: the trials are that run's (its test subjects stay unseen). The rest of ``network``
#: (dropout, mode) defaults to the base run's and may be overridden.
FROM_FLOAT_RUN = ("network.width", "data")

#: What SSTL on a device or re-tuned run also takes from it: everything the tile state
#: was made of (the devices are loaded, not rebuilt). Fields of ``array`` not listed here
#: (programming, read noise, DAC/ADC, energy) default to the base run's and may be
#: overridden; ``transfer`` does not apply (nothing is transferred) and must not be set.
FROM_DEVICE_RUN = (
    *FROM_FLOAT_RUN,
    "array.card",
    "array.tile_rows",
    "array.tile_cols",
    "array.reference",
    "array.reference_scale",
    "array.symmetry_reference",
    "array.weight_window",
    "array.weight_bound",
    "array.weight_omega",
    "array.d2d",
    "array.endurance",
)


def resolve_device(name: str) -> torch.device:
    """``cpu`` or ``cuda``; asking for CUDA without a GPU is an error, not a fallback."""
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("device='cuda' was requested but no CUDA GPU is available")
    return torch.device(name)


def default_run_dir(cfg: RunConfig) -> Path:
    """``OUT_DIR/NAME``, or ``OUT_DIR/<kind>-fold<k>-<timestamp>`` without a name."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = cfg.name or f"{cfg.kind}-fold{cfg.data.fold}-{stamp}"
    return inside(cfg.out_dir, check_name(name, "the run name (--name)"))


def run_path(
    cfg: RunConfig, run_dir: str | os.PathLike[str] | None = None, *, resume: bool = False
) -> Path:
    """The run directory a pipeline writes: ``run_dir``, else ``OUT_DIR/NAME`` (a new run
    without a name: :func:`default_run_dir`)."""
    if run_dir is not None:
        return Path(run_dir)
    if resume:
        if not cfg.name:
            raise InputError("--resume needs the run to continue: --run-dir DIR or --name NAME")
        return inside(cfg.out_dir, check_name(cfg.name, "the run name (--name)"))
    return default_run_dir(cfg)


#: Written into a run directory whose pipeline failed after the run opened.
FAILURE_RECORD = "failure.json"


def retry_hint(run_dir: str | os.PathLike[str], command: str | None = None) -> str:
    """How to retry a failed run (the sentence of ``failure.json`` and of the CLI);
    ``command``: the exact command that continues it (default: the flags only)."""
    how = f"`{command}`" if command else f"--resume --run-dir {run_dir}"
    return (
        f"The run {run_dir} is kept and marked failed ({FAILURE_RECORD}). After fixing the "
        f"cause, continue it with {how}, or start afresh under another --name (or remove "
        "the folder first)"
    )


def resume_command(cfg: RunConfig, run_dir: str | os.PathLike[str]) -> str:
    """The command that continues the run ``cfg`` in ``run_dir``."""
    what = f"train {cfg.kind}" if cfg.kind in ("float", "device") else cfg.kind
    return f"ferrocim {what} --resume --run-dir {run_dir}"


def resume_point(run_dir: str | os.PathLike[str]) -> str:
    """Where a resume of the run in ``run_dir`` continues, in words: the epoch and step
    of its last checkpoint, or for SSTL the (subject, fold) pairs already done."""
    from ferrocim.pipelines.checkpoint import load_checkpoint
    from ferrocim.pipelines.training import checkpoint_position

    run = RunDir(run_dir)
    try:
        cfg = load_config(run.config)
    except InputError:
        return "its last checkpoint"
    if cfg.kind == "sstl":
        done = len(run.read_sstl()) if run.sstl.is_file() else 0
        return f"the next (subject, fold) after the {done} finished (a started fold starts over)"
    if not run.last_checkpoint.is_file():
        return "epoch 1 (no checkpoint had been written yet)"
    try:
        ck = load_checkpoint(run.last_checkpoint)
    except InputError:
        return "its last checkpoint"
    return checkpoint_position(ck, cfg.train.epochs)


def _read_sessions(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads((path / SESSIONS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return data if isinstance(data, list) else []


def _newest_write(path: Path) -> float:
    """The modification time of the newest file in the run directory (not sessions.json)."""
    times = [p.stat().st_mtime for p in path.rglob("*") if p.is_file() and p.name != SESSIONS]
    return max(times, default=0.0)


def begin_session(run: RunDir) -> None:
    """Record in ``sessions.json`` that a session of the run starts now. A session that
    never recorded its end (the process was killed) is closed first, its wall time
    estimated as the time to the newest file it wrote (``estimated: true``)."""
    sessions = _read_sessions(run.path)
    for s in sessions:
        if s.get("wall_s") is None:
            newest = _newest_write(run.path)
            s["wall_s"] = max(0.0, newest - float(s.get("started_unix", newest)))
            s["outcome"], s["estimated"] = "killed", True
    now = time.time()
    sessions.append(
        {
            "started": _dt.datetime.fromtimestamp(now, _dt.UTC).isoformat(timespec="seconds"),
            "started_unix": now,
            "wall_s": None,
            "outcome": None,
        }
    )
    write_json(run.path / SESSIONS, sessions)


def end_session(path: Path, wall_s: float, outcome: str) -> None:
    """Close the session :func:`begin_session` opened (nothing when there is none)."""
    sessions = _read_sessions(path)
    if not sessions or sessions[-1].get("wall_s") is not None:
        return
    sessions[-1].update(wall_s=wall_s, outcome=outcome)
    try:
        write_json(path / SESSIONS, sessions)
    except (OSError, ValueError):  # a full or read-only disk: the run's own error says so
        pass


def session_wall_s(run: RunDir, started: float) -> float:
    """The run's wall time over all its sessions: the earlier sessions' recorded times
    plus this one's since ``started`` (``time.perf_counter()``)."""
    earlier = sum(float(s["wall_s"]) for s in _read_sessions(run.path) if s.get("wall_s"))
    return earlier + time.perf_counter() - started


def one_writer(what: str) -> Callable[[Callable[..., RunDir]], Callable[..., RunDir]]:
    """Decorate a pipeline ``fn(cfg, *, run_dir, resume, **kw)``: it runs holding the
    run directory's writer lock (:func:`ferrocim.locks.writer_lock`), with output
    failures as one sentence (:func:`ferrocim.io_errors.output_errors`).

    On resume, temporary files a killed writer left are removed first. A new run that
    fails with only its setup files written leaves no folder; a run that fails later is
    marked with ``failure.json`` (error, time, how to retry) and the error is raised on;
    a run that then finishes has the mark removed.
    """

    def decorate(fn: Callable[..., RunDir]) -> Callable[..., RunDir]:
        @wraps(fn)
        def wrapper(
            cfg: RunConfig,
            *,
            run_dir: str | os.PathLike[str] | None = None,
            resume: bool = False,
            **kw: Any,
        ) -> RunDir:
            target = run_path(cfg, run_dir, resume=resume)
            command = resume_command(cfg, target)
            t0 = time.perf_counter()
            with writer_lock(target, f"ferrocim {what}"):
                existed = target.exists()
                if resume and RunDir(target).exists():  # before anything is marked
                    check_resume_settings(cfg, load_config(RunDir(target).config), RunDir(target))
                if resume and target.is_dir():
                    remove_temporaries(target)
                    if (target / FAILURE_RECORD).is_file():
                        log.info("resuming %s, which had failed (%s)", target, FAILURE_RECORD)
                try:
                    with output_errors(target, f"writing the run {target}"):
                        run = fn(cfg, run_dir=target, resume=resume, **kw)
                except BaseException as exc:
                    _mark_failed(target, existed, resume, exc, what, command)
                    if target.is_dir():
                        outcome = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
                        end_session(target, time.perf_counter() - t0, outcome)
                    raise
                (target / FAILURE_RECORD).unlink(missing_ok=True)
                outcome = "finished" if run.summary.is_file() else "stopped"
                end_session(target, time.perf_counter() - t0, outcome)
                return run

        return wrapper

    return decorate


def _mark_failed(
    target: Path, existed: bool, resume: bool, exc: BaseException, what: str, command: str
) -> None:
    if not target.is_dir() or (existed and not resume):  # another run's folder: untouched
        return
    if not existed and {p.name for p in target.iterdir()} <= SETUP_FILES:
        shutil.rmtree(target, ignore_errors=True)  # nothing computed: leave no folder
        return
    try:
        write_json(
            target / FAILURE_RECORD,
            {
                "command": f"ferrocim {what}",
                "error": (
                    "KeyboardInterrupt: interrupted (Ctrl-C)"
                    if isinstance(exc, KeyboardInterrupt)
                    else f"{type(exc).__name__}: {exc}"
                )[:4000],
                "failed": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                "retry": retry_hint(target, command),
            },
        )
    except (OSError, ValueError):  # a full or read-only disk: the error raised says so
        pass


def open_run(
    cfg: RunConfig,
    *,
    run_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    card: DeviceCard | None = None,
    data: dict[str, Any] | None = None,
    check: Callable[[RunConfig], Any] | None = None,
) -> tuple[RunDir, RunConfig]:
    """Create a new run directory, or reopen one to resume (its stored config wins, except
    a ``threads`` given now); sets torch's CPU threads for the run (a resumed run without
    a count given or stored: the count it started with, :func:`recorded_threads`).

    A new array run stores ``card`` (default: the card ``cfg.array.card`` names) as
    ``card.json``. Every new run records ``data`` (default: :func:`data_record` of
    ``cfg.data``, trained on) as ``data.json``. Everything that can be checked (card,
    compute device, free directory, the data file) is checked before anything is written;
    so is whatever ``check(cfg)`` checks (the pipeline's data and fold split), for a
    resumed run too.
    """
    if resume:
        # --resume --name X is --resume --run-dir OUT_DIR/X
        run = RunDir(run_path(cfg, run_dir, resume=True)).require()
        stored = load_config(run.config)
        check_resume_settings(cfg, stored, run)  # (one_writer checks it first, too)
        if cfg.threads is not None:
            stored = stored.model_copy(update={"threads": cfg.threads})
        # neither given now nor stored: the count the run started with (rounding, hence
        # the resumed numbers, depend on it; the default depends on the machine's load)
        configure_threads(stored.threads or recorded_threads(run))
        if check is not None:
            check(stored)
        begin_session(run)
        return run, stored
    resolve_device(cfg.device)
    if cfg.kind in ARRAY_KINDS and card is None:
        card = resolve_card(cfg.array.card)
    run = RunDir(run_path(cfg, run_dir))
    if run.exists():
        failed = run.path / FAILURE_RECORD
        why = f" (it failed: see {failed})" if failed.is_file() else ""
        raise InputError(
            f"Run directory {run.path} exists already{why}; pass --resume to continue it "
            "or choose another --run-dir/--name"
        )
    # an unwritable runs folder is found before the data are loaded (or synthesised)
    check_writable(run.path.parent, "the runs folder (--out-dir, or the parent of --run-dir)")
    if check is not None:
        check(cfg)
    if data is None:
        data = data_record(cfg, trained_on=True)
    configure_threads(cfg.threads)
    run.start(cfg.to_toml(), environment(cfg.device), card if cfg.kind in ARRAY_KINDS else None)
    write_json(run.path / DATA_RECORD, data)
    begin_session(run)
    return run, cfg


def recorded_threads(run: RunDir) -> int | None:
    """The torch threads ``run`` started with (``env.json``'s ``torch_threads``), or None
    when not recorded."""
    try:
        n = json.loads(run.env.read_text()).get("torch_threads")
    except (OSError, ValueError, AttributeError):
        return None
    return n if isinstance(n, int) and not isinstance(n, bool) and n >= 1 else None


class ResumeSettingsDiffer(InputError):
    """A resume was given settings other than the run's own (the run is left as it was)."""


#: Settings a resume may give: where the run is, and the CPU threads of this session.
RESUME_MAY_SET = ("kind", "name", "out_dir", "threads")


def check_resume_settings(cfg: RunConfig, stored: RunConfig, run: RunDir) -> None:
    """A resumed run continues with the settings it was started with (``stored``): a
    setting given now (flag, ``--set``, TOML) that differs from them is an error, not
    silently ignored; the same value, ``threads`` and where the run is are fine."""
    have = stored.model_dump()
    for key, value in sorted(explicit_fields(cfg).items()):
        if key.split(".")[0] in RESUME_MAY_SET:
            continue
        try:
            old = _get(have, key)
        except (KeyError, TypeError):
            continue
        if value != old and not (isinstance(value, BaseModel) and value.model_dump() == old):
            raise ResumeSettingsDiffer(
                f"{key} = {value!r} differs from the run's {old!r} ({run.config}): a resumed "
                "run continues with the settings it was started with; leave it out, or "
                "start a new run (another --name) to change it"
            )


def data_record(cfg: RunConfig, *, trained_on: bool, **extra: Any) -> dict[str, Any]:
    """``RUN/data.json`` for a run on ``cfg.data``: :func:`~ferrocim.pipelines.data.
    data_summary` plus ``trained_on`` and ``extra`` (e.g. where the base run's data were)."""
    from ferrocim.pipelines.data import data_summary

    return {"trained_on": trained_on, **data_summary(cfg.data), **extra}


def read_data_record(run: RunDir) -> dict[str, Any] | None:
    """``RUN/data.json`` (None for a run made before ferrocim recorded it)."""
    path = run.path / DATA_RECORD
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable data record ({exc})") from None


def trained_on_own_data(run: RunDir) -> bool:
    """Whether the run's model was trained on the data its config names (False for an
    imported checkpoint: it was trained elsewhere)."""
    rec = read_data_record(run)
    if rec is not None:
        return bool(rec.get("trained_on", True))
    return run.read_summary().imported_from is None if run.summary.is_file() else True


def run_data(run: RunDir, cfg: RunConfig, given: Any = None, *, what: str) -> tuple[Any, bool]:
    """The data to ``what`` (evaluate, personalise) run ``run`` on: ``given`` (a
    DataConfig from ``--data``) or the run's own, and whether they are other than what it
    was trained on. A swap is logged; a missing prepared file of the run is an error
    naming it; an imported run whose data were never given needs ``--data``."""
    from ferrocim.pipelines.data import data_identity, describe_data

    own = trained_on_own_data(run)
    rec = read_data_record(run)
    if given is None:
        if rec is not None and rec.get("source") is None:
            raise InputError(
                f"{run.path} holds an imported checkpoint ({rec.get('note', 'trained elsewhere')})"
                f" and no data were given at import: {what} it on a prepared file with "
                "--data FILE.h5 (or --data synthetic, explicitly)"
            )
        if cfg.data.source == "prepared" and not Path(str(cfg.data.path)).is_file():
            raise InputError(
                f"{run.path}: its data file {cfg.data.path} (data.path in its config.toml) is "
                f"missing; restore it (`ferrocim data prepare` with the parameters recorded in "
                f"{run.path / DATA_RECORD}), or {what} the run on other data with --data FILE.h5"
            )
        data, other = cfg.data, not own
        if other:
            log.info("%s %s on %s (given at import)", what, run.path, describe_data(data))
        return data, other
    if not own:
        log.info("%s %s (an imported checkpoint) on %s", what, run.path, describe_data(given))
        return given, True
    same = data_identity(given) == data_identity(cfg.data)
    if not same:
        log.warning(
            "%s %s on %s, not on the data it was trained on (%s); recorded in the run",
            what,
            run.path,
            describe_data(given),
            describe_data(cfg.data),
        )
    return given, not same


def explicit_fields(model: BaseModel, prefix: str = "") -> dict[str, Any]:
    """Dotted leaf fields set explicitly (TOML, ``--set``, flags), not left at defaults."""
    out: dict[str, Any] = {}
    for name in model.model_fields_set:
        v = getattr(model, name)
        if isinstance(v, BaseModel) and not isinstance(v, DeviceCard):
            out.update(explicit_fields(v, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = v
    return out


def _get(data: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        data = data[part]
    return data


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    *head, last = dotted.split(".")
    for part in head:
        data = data[part]
    data[last] = value


def inherit(
    cfg: RunConfig,
    base: RunConfig,
    fields: tuple[str, ...],
    *,
    defaults: tuple[str, ...] = (),
    forbidden: tuple[str, ...] = (),
    why: str,
) -> RunConfig:
    """``cfg`` with the dotted ``fields`` (leaves or sections) taken from ``base``.

    An explicit value in ``cfg`` that differs from the base's is an error; so is any
    explicit value under ``forbidden``. Sections in ``defaults`` start from the base's
    values, with ``cfg``'s explicit values on top.
    """
    explicit = explicit_fields(cfg)
    mine, theirs = cfg.model_dump(), base.model_dump()
    for key, value in explicit.items():
        for f in forbidden:
            if key == f or key.startswith(f + "."):
                raise InputError(f"{key} = {value!r} does not apply: {why}; leave it out")
        for f in fields:
            if (key == f or key.startswith(f + ".")) and value != _get(theirs, key):
                raise InputError(
                    f"{key} = {value!r} cannot differ from the base run's "
                    f"{_get(theirs, key)!r}: {why}; leave it out"
                )
    for section in defaults:
        _set(mine, section, _get(theirs, section))
        for key, value in explicit.items():
            if key.startswith(section + "."):
                _set(mine, key, value)
    for f in fields:
        _set(mine, f, _get(theirs, f))
    return RunConfig.model_validate(mine)


def inherit_from_base(cfg: RunConfig, base: RunConfig, what: str) -> RunConfig:
    """``cfg`` of a re-tuning or SSTL run with what it takes from its base run ``base``."""
    if base.kind == "float":
        return inherit(
            cfg,
            base,
            FROM_FLOAT_RUN,
            defaults=("network",),
            why=f"{what} continues the base run's model",
        )
    return inherit(
        cfg,
        base,
        FROM_DEVICE_RUN,
        defaults=("network", "array"),
        forbidden=("transfer",),
        why=f"{what} loads the base run's devices from its tiles",
    )


def build_model(
    cfg: RunConfig,
    *,
    analog: bool,
    card: DeviceCard | None = None,
    analog_layers: tuple[str, ...] | None = None,
    stream: str = "init",
) -> torch.nn.Module:
    """The EEG SNN on the run's device; analog layers on tiles of ``card`` when ``analog``.

    ``card`` is the run's card (``RunDir.read_card()``); the array is ``cfg.array`` with it.
    """
    from ferrocim.snn import EEGSNN, NetworkConfig

    device = resolve_device(cfg.device)
    net = cfg.network
    kwargs: dict[str, Any] = {
        "width": net.width,
        "dropout": net.dropout,
        "mode": net.mode,
        "w_max_rule": net.w_max_rule,
        "surrogate_window": net.surrogate_window,
        "surrogate_height": net.surrogate_height,
        "precision": net.precision,
    }
    if analog:
        if card is None:
            raise ValueError("build_model(analog=True) needs the run's device card")
        kwargs["analog"] = cfg.array.replace(card=card)
        if analog_layers is not None:
            kwargs["analog_layers"] = tuple(analog_layers)
    # built on the CPU from a CPU generator, so CPU and CUDA runs start identical
    model = EEGSNN(NetworkConfig(**kwargs), generator=torch_generator(cfg.seed, stream))
    return model.to(device)


def population_stats(source: str | os.PathLike[str]):  # -> ChannelStats
    """The per-channel mean/s.d. a run was trained with, or a prepared file was z-scored
    with (``ferrocim data prepare --stats-from RUN_OR_CACHE``).

    An imported checkpoint has none to give (the published code does not publish its
    population's statistics): the error says so and what to do instead.
    """
    from ferrocim.pipelines.data import prepared_data_file
    from ferrocim.snn.data.cache import ChannelStats, read_channel_stats

    path = Path(source)
    if path.is_dir():
        run = RunDir(path).require("run directory (--stats-from)")
        rec = read_data_record(run)
        if rec is None:  # a run made before data.json: its config names the data
            stats = read_channel_stats(prepared_data_file(load_config(run.config).data))
            return _with_origin(stats, f"run {path} ({stats.origin})")
        if not rec.get("trained_on", True):
            raise InputError(
                f"--stats-from {path}: an imported checkpoint ({rec.get('note', '')}); the "
                "channel statistics of the population it was trained on are not published. "
                "Leave out --stats-from: the subject is then normalised with its own "
                "statistics over all its runs, as the published preprocessing does"
            )
        if rec.get("stats") is None:
            raise InputError(
                f"--stats-from {path}: the run's data ({rec.get('path')}) were z-scored per "
                "run, so it has no population statistics to give"
            )
        stats = ChannelStats.from_json(rec["stats"], str(path / DATA_RECORD))
        return _with_origin(stats, f"run {path} ({stats.origin})")
    if not path.exists():
        raise InputError(f"--stats-from {path}: no such run directory or prepared HDF5 file")
    stats = read_channel_stats(path)
    return _with_origin(stats, f"{path} ({stats.origin})")


def _with_origin(stats: Any, origin: str) -> Any:
    import dataclasses

    return dataclasses.replace(stats, origin=origin)
