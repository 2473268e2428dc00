"""Evaluate a finished run's best model on its fold's test set (or another data source)."""

from __future__ import annotations

import os
from typing import Any

from ferrocim.atomic import write_json
from ferrocim.pipelines.checkpoint import load_checkpoint
from ferrocim.pipelines.config import DataConfig, load_config
from ferrocim.pipelines.data import fold_split, load_dataset, to_tensors
from ferrocim.pipelines.prefix import InputForward
from ferrocim.pipelines.rundir import RunDir
from ferrocim.pipelines.runs import build_model, resolve_device
from ferrocim.pipelines.training import evaluate


def evaluate_run(
    run_path: str | os.PathLike[str],
    *,
    data: DataConfig | None = None,
    device: str | None = None,
    split: str = "test",
) -> dict[str, Any]:
    """Accuracy and loss of the run's best model; written to ``RUN/evaluation.json``."""
    run = RunDir(run_path).require()
    cfg = load_config(run.config)
    if device is not None:
        cfg = cfg.model_copy(update={"device": device})
    if data is not None:
        cfg = cfg.model_copy(update={"data": data})
    dev = resolve_device(cfg.device)
    ds = load_dataset(cfg.data)
    fold = fold_split(ds, cfg.data, cfg.seed)
    idx = {"test": fold.test, "val": fold.val, "train": fold.train}[split]
    analog = cfg.kind in ("device", "retune")
    model = build_model(cfg, analog=analog, card=run.read_card() if analog else None)
    model.load_state_dict(load_checkpoint(run.best_checkpoint, str(dev))["model"])
    data = to_tensors(ds, dev)
    result = evaluate(
        InputForward(model, data.x, data.y), idx, batch_size=cfg.train.eval_batch_size
    )
    out = {"run": str(run.path), "split": split, "device": cfg.device, **result}
    write_json(run.path / "evaluation.json", out)
    return out
