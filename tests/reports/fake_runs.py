"""Small hand-made run directories for report tests (no training: milliseconds to write)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

METRIC_COLUMNS = ("train_loss", "train_acc", "val_loss", "val_acc")


def write_run(
    path: Path,
    kind: str,
    *,
    summary: dict[str, Any] | None,
    epochs: int = 3,
    layers: dict[str, tuple[int, int]] | None = None,
    energy: bool = False,
    seed: int = 0,
) -> Path:
    """A run directory of ``kind`` with ``epochs`` rows of metrics; ``summary=None`` leaves
    it unfinished (no ``summary.json``). Array runs get events, and with ``layers``
    (name → (outputs, fan_in)) a tile file whose pulse counts differ per layer."""
    path.mkdir(parents=True)
    cfg = f'kind = "{kind}"\n[train]\nepochs = {max(epochs, 1)}\n'
    # every kind's config holds the array defaults, as a resolved config.toml does
    cfg += '[array]\ncard = "dut2"\n[array.programming]\neps = 0.025\nthr_asym = 1.0\n'
    cfg += "[transfer]\nq = 8\nx = 4.0\n"
    (path / "config.toml").write_text(cfg)
    if summary is not None:
        (path / "summary.json").write_text(json.dumps({"kind": kind, **summary}))
    rng = np.random.default_rng(seed)
    rows = [
        {
            "phase": kind,
            "epoch": e + 1,
            "step": 10 * (e + 1),
            "train_loss": 0.7 - 0.0123 * e - 0.0001 * seed,
            "train_acc": 50 + 3.0 * e,
            "val_loss": 0.69 - 0.0211 * e,
            "val_acc": 50 + 4.0 * e + seed,
        }
        for e in range(epochs)
    ]
    if rows:
        pd.DataFrame(rows).to_csv(path / "metrics.csv", index=False)
    if kind in ("device", "retune", "sstl") and layers:
        ev = [
            {
                "step": s, "epoch": s // 10, "phase": kind, "layer": name,
                "ltp_pulses": 2, "ltd_pulses": 1, "ltp_crossings": 2, "ltd_crossings": 1,
            }
            for s in (1, 11, 21)
            for name in layers
        ]  # fmt: skip
        pd.DataFrame(ev).to_csv(path / "events.csv", index=False)
        (path / "tiles").mkdir()
        with h5py.File(path / "tiles" / "final.h5", "w") as f:
            for name, shape in layers.items():
                g = f.create_group(name)
                g["pulse_counts"] = rng.integers(0, 3, size=(2, *shape))
                g["lifetime"] = np.full(shape, 1e9)
                g["failed"] = np.zeros(shape, dtype=bool)
                g["conductance"] = np.full(shape, 1e-6)
                g.attrs["tile_rows"] = 8
                g.attrs["tile_cols"] = 8
    if energy:
        pd.DataFrame(
            {
                "layer": ["fc1", "fc1", "fc1", "fc2"],
                "phase": ["train", "train", "inference", "train"],
                "kind": ["adc", "write_ltp", "adc", "write_ltd"],
                "energy_j": [0.6691e-3, 5.768e-11, 0.2e-3, 1.5e-11],
            }
        ).to_csv(path / "energy.csv", index=False)
    return path


def write_sweep(path: Path, events: list[int], accs: list[float], status=None) -> Path:
    """A sweep folder with a hand-made ``results.parquet`` (one row per point)."""
    n = len(events)
    status = status or ["done"] * n
    path.mkdir()
    pd.DataFrame(
        {
            "point": [f"p{i}" for i in range(n)],
            "index": range(n),
            "status": status,
            "error": [None if s == "done" else "stopped" for s in status],
            "run_dir": [f"runs/p{i}" for i in range(n)],
            "kind": ["device"] * n,
            "seed": [0] * n,
            "array.programming.eps": [0.05 * (1 + i) for i in range(n)],
            "test_acc": accs,
            "transfer_test_acc": [None] * n,
            "acc_before": [None] * n,
            "acc_after": [None] * n,
            "programming_events": pd.array(events, dtype="Int64"),
            "pulses": pd.array(events, dtype="Int64"),
            "energy_j": [1e-6] * n,
            "wall_s": [2.0] * n,
        }
    ).to_parquet(path / "results.parquet")
    return path


WIDTHS = (2e-8, 2e-6)


def energy_results(*, reached: bool, epochs: int = 2) -> pd.DataFrame:
    """A hand-made ``results.parquet`` table: two widths × two rules, one seed."""
    rows = []
    for w in WIDTHS:
        for rule, acc in (("plain", 0.5), ("mixed", 0.85)):
            hit = reached and rule == "mixed"
            rows.append(
                {
                    "width_s": w,
                    "rule": rule,
                    "seed": 0,
                    "card": f"c{w}",
                    "energy_per_pulse_j": 3e-12 * w / 2e-8,
                    "energy_source": "assumed: scaled to 20 ns (x1, x100) at 20 ns, 2 us",
                    "final_acc": acc,
                    "best_acc": acc + 0.01,
                    "acc_per_epoch": list(np.linspace(0.3, acc, epochs)),
                    "pulses": 1000,
                    "ltp_pulses": 600,
                    "ltd_pulses": 400,
                    "write_energy_j": 1000 * 3e-12 * w / 2e-8,
                    "read_energy_j": 6.02e-6,
                    "total_energy_j": 6.02e-6 + 1000 * 3e-12 * w / 2e-8,
                    "target": 0.8,
                    "epochs_to_target": 2.0 if hit else np.nan,
                    "energy_to_target_j": 4.98e-6 * (w / 2e-8) ** 0.5 if hit else np.nan,
                    "wall_s": 2.5,
                    "programming_s": 1.9,
                    "run_dir": f"runs/{rule}",
                }
            )
    return pd.DataFrame(rows)


def write_energy_study(path: Path, *, reached: bool = True, epochs: int = 2) -> Path:
    """A study folder holding only a hand-made ``results.parquet``."""
    path.mkdir(parents=True)
    energy_results(reached=reached, epochs=epochs).to_parquet(path / "results.parquet")
    return path
