"""Evaluate a finished run's best model on its fold's test set, or on other data.

On the data the run was trained on, the trials are its fold's ``split`` (test by
default). On other data (``--data FILE.h5``, or the data an imported checkpoint was given)
the run has no fold there: every trial of the file is used, or those of ``subjects``.
Which data were used, and whether they are the run's own, goes into
``RUN/evaluation.json`` (and a swap is logged).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ferrocim.atomic import write_json
from ferrocim.checks import InputError, check_option
from ferrocim.pipelines.checkpoint import load_checkpoint
from ferrocim.pipelines.config import DataConfig, load_config
from ferrocim.pipelines.data import describe_data, fold_split, load_dataset, to_tensors
from ferrocim.pipelines.prefix import InputForward
from ferrocim.pipelines.rundir import RunDir
from ferrocim.pipelines.runs import build_model, resolve_device, run_data
from ferrocim.pipelines.training import evaluate


def evaluate_run(
    run_path: str | os.PathLike[str],
    *,
    data: DataConfig | None = None,
    device: str | None = None,
    split: str = "test",
    subjects: Sequence[int] | None = None,
    exclude_channels: Sequence[str] | None = None,
    q: int | None = None,
    precision: str | None = None,
) -> dict[str, Any]:
    """Accuracy (%) and loss of the run's best model; written to ``RUN/evaluation.json``.

    data: other data than the run's (``--data``). subjects: only these subjects' trials.
    exclude_channels: zero these channels after normalisation (``data.exclude_channels``;
    default: the run's own setting). q: first round every device-mapped weight to ``q + 1``
    levels in its layer's ``±A`` (:func:`quantize_weights`; the checkpoint is not changed).
    precision: "fp32" or "bf16" synapse products (``network.precision``; default: the
    run's).
    """
    if q is not None and (isinstance(q, bool) or not isinstance(q, int) or q < 2 or q % 2):
        raise InputError(f"--q {q!r}: expected a positive even number of steps (2, 4, 8, 16, 32)")
    run = RunDir(run_path).require()
    cfg = load_config(run.config)
    if device is not None:
        cfg = cfg.model_copy(update={"device": device})
    if precision is not None:
        check_option("--precision", precision, ("fp32", "bf16"))
        cfg = cfg.model_copy(
            update={"network": cfg.network.model_copy(update={"precision": precision})}
        )
    chosen, other = run_data(run, cfg, data, what="evaluating")
    if exclude_channels is not None:
        from ferrocim.snn.data.eegmmidb import expand_channels

        names = expand_channels(exclude_channels)  # InputError naming a wrong channel
        chosen = chosen.model_copy(update={"exclude_channels": names})
    dev = resolve_device(cfg.device)
    ds = load_dataset(chosen)
    if other:
        if split != "test":
            raise InputError(
                f"--split {split}: {describe_data(chosen)} is not the data {run.path} was "
                "trained on, so it has no train/val split there; every trial is a test trial"
            )
        idx = np.arange(len(ds))
    else:
        fold = fold_split(ds, chosen, cfg.seed)
        idx = {"test": fold.test, "val": fold.val, "train": fold.train}[split]
    if subjects is not None:
        wanted = sorted({int(s) for s in subjects})
        have = {int(s) for s in np.unique(ds.subject[idx])}
        missing = [s for s in wanted if s not in have]
        if missing:
            where = "" if other else f" of the run's {split} split"
            raise InputError(
                f"--subjects {missing}: not among the subjects{where} in "
                f"{describe_data(chosen)} ({sorted(have)})"
            )
        idx = idx[np.isin(ds.subject[idx], wanted)]
    analog = cfg.kind in ("device", "retune")
    model = build_model(cfg, analog=analog, card=run.read_card() if analog else None)
    model.load_state_dict(load_checkpoint(run.best_checkpoint, str(dev))["model"])
    if q is not None:
        quantize_weights(model, q)
    tensors = to_tensors(ds, dev)
    result = evaluate(
        InputForward(model, tensors.x, tensors.y), idx, batch_size=cfg.train.eval_batch_size
    )
    out = {
        "run": str(run.path),
        "split": split,
        "device": cfg.device,
        **result,
        "data": describe_data(chosen),
        "data_path": ds.meta.get("path"),
        "own_data": not other,
        "subjects": sorted(int(s) for s in np.unique(ds.subject[idx])),
        "exclude_channels": list(chosen.exclude_channels),
        "q": q,
        "precision": cfg.network.precision,
    }
    write_json(run.path / "evaluation.json", out)
    return out


@torch.no_grad()
def quantize_weights(model: torch.nn.Module, q: int) -> None:
    """Round every device-mapped weight of ``model`` (an ``EEGSNN``) to ``q + 1`` levels.

    The levels are those of the transfer onto tiles (``retune --q``):
    :func:`ferrocim.crossbar.quantize_symmetric` in the layer's bound ``A``
    (``NetworkConfig.w_max``). Tile layers re-quantise their programmed weights
    (``AnalogModule.requantize``); float layers are rounded in place.
    """
    from ferrocim.crossbar import AnalogModule, quantize_symmetric

    for name, weight in model.device_weights().items():
        module = model.get_submodule(name.rpartition(".")[0])
        if isinstance(module, AnalogModule):
            module.requantize(q)
            continue
        layer = name.split(".")[0]
        a = model.config.w_max(layer, weight[0].numel())
        weight.copy_(quantize_symmetric(weight, a, q))
