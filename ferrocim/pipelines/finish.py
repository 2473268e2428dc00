"""End of a training run: best model on the test set, tile state, energy, summary."""

from __future__ import annotations

import time
from typing import Any

import torch

from ferrocim.atomic import atomic_path
from ferrocim.pipelines.checkpoint import load_checkpoint
from ferrocim.pipelines.config import RunConfig
from ferrocim.pipelines.data import FoldSplit
from ferrocim.pipelines.prefix import InputForward, PrefixForward
from ferrocim.pipelines.rundir import RunDir
from ferrocim.pipelines.training import FitResult, evaluate


def array_totals(model: torch.nn.Module) -> dict[str, Any]:
    """Pulse, crossing and failure totals read from the tile counters of ``model``."""
    from ferrocim.crossbar import analog_modules

    mods = analog_modules(model)
    if not mods:
        return {}
    out: dict[str, Any] = {"ltp_pulses": 0, "ltd_pulses": 0, "failed_devices": 0, "devices": 0}
    for m in mods.values():
        out["ltp_pulses"] += int(m.ltp_pulses.sum())
        out["ltd_pulses"] += int(m.ltd_pulses.sum())
        out["failed_devices"] += int(m.failed.sum())
        out["devices"] += m.weight.numel()
    return out


def save_array_state(run: RunDir, cfg: RunConfig, model: torch.nn.Module) -> None:
    """Tile states (HDF5), energy ledger (CSV) and the device card of a run."""
    from ferrocim.calibration.card import resolve_card
    from ferrocim.crossbar import analog_modules, energy_ledger, save_tiles_hdf5

    if not analog_modules(model):
        return
    save_tiles_hdf5(model, run.tiles, attrs={"run": str(run.path)})
    with atomic_path(run.energy) as tmp:
        energy_ledger(model).to_csv(tmp, index=False)
    resolve_card(cfg.array.card).save(run.card)


def finish_training(
    run: RunDir,
    cfg: RunConfig,
    forward: InputForward | PrefixForward,
    split: FoldSplit,
    result: FitResult,
    *,
    started: float,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Save the array state of the last step, then test the best model; write summary."""
    model = forward.model
    save_array_state(run, cfg, model)
    totals = array_totals(model)
    events = run.read_events()
    best = load_checkpoint(run.best_checkpoint, map_location=str(forward.y.device))
    model.load_state_dict(best["model"])
    test = evaluate(forward, split.test, batch_size=cfg.train.eval_batch_size)
    summary: dict[str, Any] = {
        "kind": cfg.kind,
        "fold": cfg.data.fold,
        "seed": cfg.seed,
        "test_acc": test["acc"],
        "test_loss": test["loss"],
        "n_test": test["n"],
        "test_subjects": [int(s) for s in split.test_subjects],
        "best_epoch": result.best_epoch,
        "best_val_acc": result.best_val_acc,
        "epochs": cfg.train.epochs,
        "steps": result.steps,
        "wall_s": time.perf_counter() - started,
    }
    if totals:
        summary.update(totals)
        summary["ltp_crossings"] = int(events["ltp_crossings"].sum()) if len(events) else 0
        summary["ltd_crossings"] = int(events["ltd_crossings"].sum()) if len(events) else 0
        summary["programming_events"] = summary["ltp_crossings"] + summary["ltd_crossings"]
        summary["pulses"] = summary["ltp_pulses"] + summary["ltd_pulses"]
    if extra:
        summary.update(extra)
    run.write_summary(summary)
    return summary
