"""Float pretraining and on-device training from scratch (the paper's first two runs)."""

from __future__ import annotations

import os
import time
from typing import Any

import torch

from ferrocim.pipelines.config import RunConfig
from ferrocim.pipelines.data import FoldSplit, fold_split, load_dataset, to_tensors
from ferrocim.pipelines.finish import device_totals, finish_training
from ferrocim.pipelines.optim import param_groups
from ferrocim.pipelines.prefix import InputForward, PrefixForward
from ferrocim.pipelines.rundir import RunDir, programming_totals
from ferrocim.pipelines.runs import build_model, one_writer, open_run, resolve_device
from ferrocim.pipelines.training import FitResult, cosine_lr, fit


@one_writer("train")
def train(
    cfg: RunConfig,
    *,
    run_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    stop_after_steps: int | None = None,
) -> RunDir:
    """Run ``cfg.kind`` = "float" (Adam on float weights) or "device" (pulses on tiles).

    Returns the run directory; its ``summary.json`` holds the test accuracy of the best
    model by validation accuracy and, for device runs, the programming totals.
    """
    started = time.perf_counter()
    checked = DataCheck()
    run, cfg = open_run(cfg, run_dir=run_dir, resume=resume, check=checked)
    device = resolve_device(cfg.device)
    ds, split = checked.ds, checked.split
    data = to_tensors(ds, device)
    analog = cfg.kind == "device"
    model = build_model(cfg, analog=analog, card=run.read_card() if analog else None)
    optimizer: Any = torch.optim.Adam(
        param_groups(
            model,
            cfg.train.lr,
            scaling=cfg.train.lr_scaling,
            weight_decay=cfg.train.weight_decay,
        )
    )
    if analog:
        from ferrocim.crossbar import PulseOptimizer

        optimizer = PulseOptimizer(optimizer, model)
    forward = InputForward(model, data.x, data.y)
    result = fit_with_config(
        cfg, optimizer, forward, split, run, resume=resume, stop_after_steps=stop_after_steps
    )
    if stop_after_steps is not None and result.steps >= stop_after_steps:
        return run
    finish_training(run, cfg, forward, split, result, started=started)
    return run


class DataCheck:
    """``open_run(check=DataCheck())``: the run's data set and fold split, loaded (and so
    known valid) before the run directory is written; kept for the pipeline."""

    def __call__(self, cfg: RunConfig) -> None:
        self.ds = load_dataset(cfg.data)
        self.split = fold_split(self.ds, cfg.data, cfg.seed)


def fit_with_config(
    cfg: RunConfig,
    optimizer: Any,
    forward: InputForward | PrefixForward,
    split: FoldSplit,
    run: RunDir,
    *,
    resume: bool,
    stop_after_steps: int | None,
) -> FitResult:
    """:func:`fit` with the run's ``[train]`` settings; phase = ``cfg.kind``.

    With a PulseOptimizer, every epoch's metrics row also gets the pulse totals so far
    and the failed devices.
    """
    on_epoch_end = None
    if hasattr(optimizer, "layers"):  # a PulseOptimizer: record the array each epoch

        def on_epoch_end(_epoch: int) -> dict[str, Any]:
            t = programming_totals(run.read_events())
            return {"ltp_pulses": t.ltp_pulses, "ltd_pulses": t.ltd_pulses} | device_totals(
                forward.model
            )

    return fit(
        optimizer,
        forward,
        split.train,
        split.val,
        run=run,
        phase=cfg.kind,
        epochs=cfg.train.epochs,
        batch_size=cfg.train.batch_size,
        seed=cfg.seed,
        eval_batch_size=cfg.train.eval_batch_size,
        checkpoint_every=cfg.train.checkpoint_every,
        resume=resume,
        on_epoch_end=on_epoch_end,
        stop_after_steps=stop_after_steps,
        lr_at_epoch=(
            cosine_lr(cfg.train.cosine_t_max, cfg.train.cosine_eta_min)
            if cfg.train.lr_schedule == "cosine"
            else None
        ),
    )
