"""The run-directory schema: layout, event columns, summary keys, programming totals.

Pipelines write a run directory through :class:`RunDir` and reports read it through the
same class, so both agree on every file name, column and key (this module imports no
pipeline, network or crossbar code). Layout (all files written atomically, except the
append-only event log)::

    RUN/config.toml          resolved configuration
    RUN/env.json             versions, host, device, threads, start time
    RUN/card.json            the device card the array is built from (written when the
                             run opens; build, resume, finish and report load this file)
    RUN/metrics.csv          one row per epoch (and per phase)
    RUN/events.csv           programming events per optimiser step and layer (EventRow)
    RUN/energy.csv           energy ledger by layer, phase and kind (J)
    RUN/checkpoints/last.pt  resumable training state (weights_only-loadable)
    RUN/checkpoints/best.pt  best model by validation accuracy
    RUN/tiles/final.h5       tile states (conductances, counters, failures)
    RUN/summary.json         final numbers (RunSummary)
    RUN/sstl.csv             per-subject accuracy before/after (SSTLRow; SSTL runs)
    RUN/failure.json         only while the run is marked failed: error, time, how to
                             retry (removed when a resume finishes it)
    PARENT/.RUN.lock         the writer lock while a command writes RUN (ferrocim.locks)
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import shlex
import tomllib
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd

from ferrocim.atomic import atomic_path, write_json, write_text
from ferrocim.calibration.card import DeviceCard
from ferrocim.checks import InputError


@dataclass(frozen=True)
class ProgrammingTotals:
    """Pulses fired and threshold crossings (the paper's "programming events")."""

    ltp_pulses: int = 0
    ltd_pulses: int = 0
    ltp_crossings: int = 0
    ltd_crossings: int = 0

    @property
    def pulses(self) -> int:
        return self.ltp_pulses + self.ltd_pulses

    @property
    def programming_events(self) -> int:
        return self.ltp_crossings + self.ltd_crossings

    def as_dict(self) -> dict[str, int]:
        """The four counts plus ``pulses`` and ``programming_events``."""
        return {
            **dataclasses.asdict(self),
            "pulses": self.pulses,
            "programming_events": self.programming_events,
        }


COUNT_FIELDS = tuple(f.name for f in fields(ProgrammingTotals))


@dataclass(frozen=True)
class EventRow:
    """One row of ``events.csv``: what one optimiser step did to one layer."""

    step: int
    epoch: int
    phase: str
    layer: str
    ltp_pulses: int
    ltd_pulses: int
    ltp_crossings: int
    ltd_crossings: int


EVENT_FIELDS = tuple(f.name for f in fields(EventRow))


def programming_totals(events: pd.DataFrame | Iterable[EventRow]) -> ProgrammingTotals:
    """Totals of an event table (``events.csv``, ``sstl.csv``) or of event rows.

    The one place programming totals are computed.
    """
    if not isinstance(events, pd.DataFrame):
        events = pd.DataFrame([dataclasses.asdict(e) for e in events], columns=EVENT_FIELDS)
    return ProgrammingTotals(
        **{k: int(events[k].sum()) if len(events) else 0 for k in COUNT_FIELDS}
    )


@dataclass(frozen=True)
class SSTLRow:
    """One row of ``sstl.csv``: one subject and fold of an SSTL run."""

    subject: int
    fold: int
    n_train: int
    n_test: int
    acc_before: float
    acc_after: float
    ltp_pulses: int
    ltd_pulses: int
    ltp_crossings: int
    ltd_crossings: int


SSTL_FIELDS = tuple(f.name for f in fields(SSTLRow))


@dataclass(frozen=True)
class RunSummary:
    """``summary.json``: the final numbers of a run (None: not applicable to its kind).

    Accuracies in %, times in s, counts are totals over the run.
    """

    kind: str
    fold: int | None = None
    seed: int | None = None
    test_acc: float | None = None
    test_loss: float | None = None
    n_test: int | None = None
    test_subjects: list[int] | None = None
    best_epoch: int | None = None
    best_val_acc: float | None = None
    epochs: int | None = None
    steps: int | None = None
    # programming totals (device, retune and SSTL runs)
    ltp_pulses: int | None = None
    ltd_pulses: int | None = None
    ltp_crossings: int | None = None
    ltd_crossings: int | None = None
    pulses: int | None = None
    programming_events: int | None = None
    failed_devices: int | None = None
    devices: int | None = None
    # re-tuning
    float_test_acc: float | None = None
    transfer_test_acc: float | None = None
    q: int | None = None
    x: float | None = None
    unfreeze: list[str] | None = None
    cached_prefix: str | None = None
    # SSTL
    base_run: str | None = None
    subjects: list[int] | None = None
    acc_before: float | None = None
    acc_after: float | None = None
    gain: float | None = None
    wall_s: float | None = None
    # imported published checkpoints (``ferrocim import eeg-ferro``)
    imported_from: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The summary as written (fields that do not apply left out)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: str = "summary.json") -> RunSummary:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"{source}: unknown summary key(s) {unknown}")
        return cls(**data)


SUMMARY_FIELDS = tuple(f.name for f in fields(RunSummary))


def config_value(config: Mapping[str, Any], dotted: str) -> Any:
    """``config['array']['programming']['eps']`` for ``"array.programming.eps"`` (None if
    absent) — for readers of ``config.toml`` that do not import the pipelines."""
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


#: The command that runs (and, with ``--resume --run-dir``, continues) a run of each kind.
RUN_COMMANDS = {
    "float": "ferrocim train float",
    "device": "ferrocim train device",
    "retune": "ferrocim retune",
    "sstl": "ferrocim sstl",
}


def resume_command(kind: str | None, run_dir: str | os.PathLike[str]) -> str | None:
    """``ferrocim train device --resume --run-dir /abs/RUN``: the exact command that
    continues an unfinished run of ``kind`` (its stored config wins, so no other flag is
    needed); None for a kind that cannot be resumed."""
    cmd = RUN_COMMANDS.get(str(kind))
    if cmd is None:
        return None
    return f"{cmd} --resume --run-dir {shlex.quote(str(Path(run_dir).absolute()))}"


class RunDir:
    """Paths, writers and readers of one run directory (see module docstring)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    # paths ----------------------------------------------------------------------------
    @property
    def config(self) -> Path:
        return self.path / "config.toml"

    @property
    def env(self) -> Path:
        return self.path / "env.json"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def events(self) -> Path:
        return self.path / "events.csv"

    @property
    def energy(self) -> Path:
        return self.path / "energy.csv"

    @property
    def summary(self) -> Path:
        return self.path / "summary.json"

    @property
    def card(self) -> Path:
        return self.path / "card.json"

    @property
    def last_checkpoint(self) -> Path:
        return self.path / "checkpoints" / "last.pt"

    @property
    def best_checkpoint(self) -> Path:
        return self.path / "checkpoints" / "best.pt"

    @property
    def tiles(self) -> Path:
        return self.path / "tiles" / "final.h5"

    @property
    def sstl(self) -> Path:
        return self.path / "sstl.csv"

    def exists(self) -> bool:
        return self.config.is_file()

    def require(self, what: str = "run directory") -> RunDir:
        """Raise a clear error unless this is a run directory with a config."""
        if not self.path.exists():
            raise InputError(f"{self.path} does not exist; expected a ferrocim {what}")
        if not self.config.is_file():
            raise InputError(f"{self.path} is not a ferrocim {what}: no config.toml inside")
        return self

    # writers --------------------------------------------------------------------------
    def start(self, config_toml: str, env: Mapping[str, Any], card: DeviceCard | None) -> None:
        """Create the directory with its config, environment and (array runs) card."""
        self.path.mkdir(parents=True, exist_ok=True)
        write_text(self.config, config_toml)
        write_json(self.env, dict(env))
        if card is not None:
            card.save(self.card)

    def write_metrics(self, rows: list[Mapping[str, Any]]) -> None:
        """Rewrite metrics.csv with all rows so far (atomic)."""
        with atomic_path(self.metrics) as tmp:
            pd.DataFrame(list(rows)).to_csv(tmp, index=False)

    def append_events(self, rows: Iterable[EventRow]) -> None:
        """Append programming-event rows (append-only log; truncated on resume).

        The rows go out in one ``write`` of whole lines to a file opened for appending, so
        an interrupted run leaves at most one unfinished last line, which
        :meth:`read_events` drops (and says so)."""
        new = not self.events.exists()
        self.events.parent.mkdir(parents=True, exist_ok=True)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")  # as pandas writes it on resume
        if new:
            w.writerow(EVENT_FIELDS)
        for r in rows:
            w.writerow(dataclasses.astuple(r))
        data = buf.getvalue().encode("utf-8")
        fd = os.open(self.events, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)  # umask applies
        try:
            while data:
                data = data[os.write(fd, data) :]
        finally:
            os.close(fd)

    def keep_events(self, keep: pd.Series, events: pd.DataFrame | None = None) -> None:
        """Rewrite the event log with the rows where ``keep`` is true (resume); ``events``:
        the log as already read (else it is read here)."""
        events = self.read_events() if events is None else events
        with atomic_path(self.events) as tmp:
            events[keep].to_csv(tmp, index=False)

    def truncate_events(self, after_step: int, phase: str | None = None) -> None:
        """Drop event rows written after ``after_step`` (used when resuming)."""
        if not self.events.exists():
            return
        df = self.read_events()  # warns once about an unfinished last line
        keep = df["step"] <= after_step
        if phase is not None:
            keep |= df["phase"] != phase
        self.keep_events(keep, df)

    def write_summary(self, summary: RunSummary) -> None:
        write_json(self.summary, summary.to_json())

    def write_sstl(self, rows: Iterable[SSTLRow]) -> None:
        with atomic_path(self.sstl) as tmp:
            pd.DataFrame([dataclasses.asdict(r) for r in rows], columns=SSTL_FIELDS).to_csv(
                tmp, index=False
            )

    # readers --------------------------------------------------------------------------
    def read_config(self) -> dict[str, Any]:
        """``config.toml`` as a plain dict (the pipelines validate it as a RunConfig)."""
        return tomllib.loads(self.require().config.read_text(encoding="utf-8"))

    def read_card(self) -> DeviceCard:
        """The device card of this run (``card.json``, written when the run opened)."""
        if not self.card.is_file():
            raise InputError(
                f"{self.path} has no card.json (runs record their device card when they "
                "open; this run was made without one or by an older ferrocim)"
            )
        return DeviceCard.load(self.card)

    def read_metrics(self) -> pd.DataFrame:
        return pd.read_csv(self.metrics) if self.metrics.exists() else pd.DataFrame()

    def read_events(self) -> pd.DataFrame:
        """``events.csv`` as a table; an unfinished last line (a run stopped while
        appending) is left out with a warning naming the file."""
        if not self.events.exists():
            return pd.DataFrame(columns=list(EVENT_FIELDS))
        text = self.events.read_text(encoding="utf-8")
        if text and not text.endswith("\n"):
            cut = text.rfind("\n") + 1
            warnings.warn(
                f"{self.events}: unfinished last line {text[cut:]!r} left out (the run stopped "
                "while writing it)",
                stacklevel=2,
            )
            text = text[:cut]
        if not text:
            return pd.DataFrame(columns=list(EVENT_FIELDS))
        return pd.read_csv(io.StringIO(text))

    def read_energy(self) -> pd.DataFrame | None:
        return pd.read_csv(self.energy) if self.energy.is_file() else None

    def read_sstl(self) -> list[SSTLRow]:
        if not self.sstl.exists():
            return []
        return [SSTLRow(**r) for r in pd.read_csv(self.sstl).to_dict("records")]

    def read_summary(self) -> RunSummary | None:
        if not self.summary.exists():
            return None
        return RunSummary.from_json(json.loads(self.summary.read_text()), str(self.summary))
