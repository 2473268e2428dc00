"""End of a training run: best model on the test set, tile state, energy, summary."""

from __future__ import annotations

from typing import Any

import torch

from ferrocim.atomic import atomic_path
from ferrocim.pipelines.checkpoint import load_checkpoint
from ferrocim.pipelines.config import RunConfig
from ferrocim.pipelines.data import FoldSplit
from ferrocim.pipelines.prefix import InputForward, PrefixForward
from ferrocim.pipelines.rundir import RunDir, RunSummary, programming_totals
from ferrocim.pipelines.runs import session_wall_s
from ferrocim.pipelines.training import FitResult, evaluate


def device_totals(model: torch.nn.Module) -> dict[str, int]:
    """Failed and total devices of ``model``'s tiles ({} for a float model)."""
    from ferrocim.crossbar import analog_modules

    mods = analog_modules(model).values()
    if not mods:
        return {}
    return {
        "failed_devices": sum(int(m.failed.sum()) for m in mods),
        "devices": sum(m.weight.numel() for m in mods),
    }


def save_array_state(run: RunDir, model: torch.nn.Module) -> None:
    """Tile states (HDF5) and energy ledger (CSV) of a run (card.json is written at open)."""
    from ferrocim.crossbar import analog_modules, energy_ledger, save_tiles_hdf5

    if not analog_modules(model):
        return
    save_tiles_hdf5(model, run.tiles, attrs={"run": str(run.path)})
    with atomic_path(run.energy) as tmp:
        energy_ledger(model).to_csv(tmp, index=False)


def finish_training(
    run: RunDir,
    cfg: RunConfig,
    forward: InputForward | PrefixForward,
    split: FoldSplit,
    result: FitResult,
    *,
    started: float,
    extra: dict[str, Any] | None = None,
) -> RunSummary:
    """Save the array state of the last step, then test the best model; write summary
    (``wall_s``: every session of the run, this one since ``started``)."""
    model = forward.model
    save_array_state(run, model)
    devices = device_totals(model)
    totals = programming_totals(run.read_events()).as_dict() if devices else {}
    best = load_checkpoint(run.best_checkpoint, map_location=str(forward.y.device))
    model.load_state_dict(best["model"])
    test = evaluate(forward, split.test, batch_size=cfg.train.eval_batch_size)
    summary = RunSummary(
        kind=cfg.kind,
        fold=cfg.data.fold,
        seed=cfg.seed,
        test_acc=test["acc"],
        test_loss=test["loss"],
        n_test=test["n"],
        test_subjects=[int(s) for s in split.test_subjects],
        best_epoch=result.best_epoch,
        best_val_acc=result.best_val_acc,
        epochs=cfg.train.epochs,
        steps=result.steps,
        wall_s=session_wall_s(run, started),
        **totals,
        **devices,
        **(extra or {}),
    )
    run.write_summary(summary)
    return summary
