"""A run directory: everything one experiment wrote, enough to rebuild its report.

Layout (all files written atomically, except the append-only event log)::

    RUN/config.toml          resolved configuration
    RUN/env.json             versions, host, device, threads, start time
    RUN/card.json            the device card the array was built from (device runs)
    RUN/metrics.csv          one row per epoch (and per phase)
    RUN/events.csv           programming events per optimiser step and layer
    RUN/energy.csv           energy ledger by layer, phase and kind (J)
    RUN/checkpoints/last.pt  resumable training state (weights_only-loadable)
    RUN/checkpoints/best.pt  best model by validation accuracy
    RUN/tiles/final.h5       tile states (conductances, counters, failures)
    RUN/summary.json         final numbers
    RUN/sstl.csv             per-subject accuracy before/after (SSTL runs)
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import os
import platform
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ferrocim import __version__
from ferrocim.atomic import atomic_path, write_json, write_text
from ferrocim.checks import InputError

EVENT_FIELDS = (
    "step",
    "epoch",
    "phase",
    "layer",
    "ltp_pulses",
    "ltd_pulses",
    "ltp_crossings",
    "ltd_crossings",
)


def environment(device: str) -> dict[str, Any]:
    """Versions and machine facts recorded with every run."""
    import mne
    import numpy

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
        "device": device,
        "started": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    if device == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


class RunDir:
    """Paths and writers of one run directory (see module docstring)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    # paths ----------------------------------------------------------------------------
    @property
    def config(self) -> Path:
        return self.path / "config.toml"

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
        if not self.config.is_file():
            raise InputError(f"{self.path} is not a ferrocim {what} (no config.toml inside)")
        return self

    # writers --------------------------------------------------------------------------
    def start(self, config_toml: str, device: str) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_text(self.config, config_toml)
        write_json(self.path / "env.json", environment(device))

    def write_metrics(self, rows: list[Mapping[str, Any]]) -> None:
        """Rewrite metrics.csv with all rows so far (atomic)."""
        with atomic_path(self.metrics) as tmp:
            pd.DataFrame(list(rows)).to_csv(tmp, index=False)

    def append_events(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append programming-event rows (append-only log; truncated on resume)."""
        new = not self.events.exists()
        self.events.parent.mkdir(parents=True, exist_ok=True)
        with open(self.events, "a", newline="", encoding="utf-8") as fh:
            # "\n" like pandas' to_csv, which rewrites this file on resume
            w = csv.DictWriter(fh, fieldnames=EVENT_FIELDS, lineterminator="\n")
            if new:
                w.writeheader()
            for r in rows:
                w.writerow({k: r[k] for k in EVENT_FIELDS})

    def truncate_events(self, after_step: int, phase: str | None = None) -> None:
        """Drop event rows written after ``after_step`` (used when resuming)."""
        if not self.events.exists():
            return
        df = pd.read_csv(self.events)
        keep = df["step"] <= after_step
        if phase is not None:
            keep |= df["phase"] != phase
        with atomic_path(self.events) as tmp:
            df[keep].to_csv(tmp, index=False)

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        write_json(self.summary, dict(summary))

    # readers --------------------------------------------------------------------------
    def read_metrics(self) -> pd.DataFrame:
        return pd.read_csv(self.metrics) if self.metrics.exists() else pd.DataFrame()

    def read_events(self) -> pd.DataFrame:
        if not self.events.exists():
            return pd.DataFrame(columns=list(EVENT_FIELDS))
        return pd.read_csv(self.events)

    def read_summary(self) -> dict[str, Any]:
        return json.loads(self.summary.read_text()) if self.summary.exists() else {}
