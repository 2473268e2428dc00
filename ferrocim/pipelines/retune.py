"""Re-tuning: transfer a float model onto tiles (q levels + programming noise), fine-tune.

The transfer (``[transfer]`` q, x): symmetric uniform quantisation to q+1 levels, then
Gaussian programming noise of s.d. mean(|w| over non-zero w)/x per layer, clamped to
±w_max. Fine-tuning then trains all layers, or the ``retune.unfreeze`` set, on device.

Taken from the float run (:data:`ferrocim.pipelines.runs.FROM_FLOAT_RUN`): the network
width and the data section; the re-tuning config may repeat them but not change them.
Its own: ``array`` (the tiles the float weights go to), ``transfer``, ``train``, ``retune``.
"""

from __future__ import annotations

import os
import time

import torch

from ferrocim.checks import InputError
from ferrocim.pipelines.checkpoint import load_checkpoint
from ferrocim.pipelines.config import LAYERS, RunConfig, load_config
from ferrocim.pipelines.data import to_tensors
from ferrocim.pipelines.finish import finish_training
from ferrocim.pipelines.optim import param_groups
from ferrocim.pipelines.prefix import InputForward, make_forward
from ferrocim.pipelines.rundir import RunDir
from ferrocim.pipelines.runs import (
    build_model,
    inherit_from_base,
    one_writer,
    open_run,
    resolve_device,
)
from ferrocim.pipelines.seeding import torch_generator
from ferrocim.pipelines.train import DataCheck, fit_with_config
from ferrocim.pipelines.training import evaluate


def float_run_config(run_path: str | os.PathLike[str]) -> RunConfig:
    """The config of a float run (an error for any other kind)."""
    run = RunDir(run_path).require("float run directory (--float-run, retune.float_run)")
    cfg = load_config(run.config)
    if cfg.kind != "float":
        raise InputError(f"{run.path} is a {cfg.kind!r} run; re-tuning starts from a float run")
    return cfg


def load_float_model(run_path: str | os.PathLike[str], device: torch.device) -> torch.nn.Module:
    """The best float model of a finished float run."""
    run = RunDir(run_path)
    cfg = float_run_config(run_path)
    model = build_model(cfg.model_copy(update={"device": str(device)}), analog=False)
    model.load_state_dict(load_checkpoint(run.best_checkpoint, str(device))["model"])
    return model


def transfer_to_tiles(
    float_model: torch.nn.Module,
    analog_model: torch.nn.Module,
    *,
    q: int | None,
    x: float | None,
    seed: int,
) -> None:
    """Copy every float parameter; analog weights go through ``set_weights(w, q, x)``."""
    from ferrocim.crossbar import analog_modules

    analog = analog_modules(analog_model)
    float_state = float_model.state_dict()
    skip = {f"{name}.weight" for name in analog}
    periphery = {k: v for k, v in float_state.items() if k not in skip}
    missing = analog_model.load_state_dict(periphery, strict=False)
    unexpected = [k for k in missing.unexpected_keys]
    if unexpected:
        raise InputError(f"float model has parameters the analog model lacks: {unexpected}")
    for i, (name, mod) in enumerate(sorted(analog.items())):
        w = float_state[f"{name}.weight"].to(mod.weight.device)
        gen = torch_generator(seed, "programming-noise", i, device=mod.weight.device)
        mod.set_weights(w, q=q, x=x, generator=gen)


def set_trainable(model: torch.nn.Module, layers: list[str]) -> None:
    """Train only the parameters of ``layers`` (all parameters when all layers given)."""
    if sorted(layers) == sorted(LAYERS):
        for p in model.parameters():
            p.requires_grad_(True)
        return
    for name, p in model.named_parameters():
        p.requires_grad_(name.split(".")[0] in layers)


@one_writer("retune")
def retune(
    cfg: RunConfig,
    *,
    run_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    stop_after_steps: int | None = None,
) -> RunDir:
    """Transfer ``cfg.retune.float_run`` onto tiles and fine-tune it on device."""
    from ferrocim.crossbar import PulseOptimizer

    started = time.perf_counter()
    if cfg.retune.float_run is None and not resume:
        raise InputError("retune.float_run (--float-run) must name a finished float run")
    if not resume:
        cfg = inherit_from_base(cfg, float_run_config(cfg.retune.float_run), "re-tuning")
    checked = DataCheck()
    run, cfg = open_run(cfg, run_dir=run_dir, resume=resume, check=checked)
    device = resolve_device(cfg.device)
    ds, split = checked.ds, checked.split
    data = to_tensors(ds, device)
    model = build_model(cfg, analog=True, card=run.read_card())
    float_model = load_float_model(cfg.retune.float_run, device)
    eval_bs = cfg.train.eval_batch_size
    float_test = evaluate(InputForward(float_model, data.x, data.y), split.test, batch_size=eval_bs)
    transfer_to_tiles(float_model, model, q=cfg.transfer.q, x=cfg.transfer.x, seed=cfg.seed)
    del float_model
    transfer_test = evaluate(InputForward(model, data.x, data.y), split.test, batch_size=eval_bs)
    set_trainable(model, cfg.retune.unfreeze)
    all_layers = sorted(cfg.retune.unfreeze) == sorted(LAYERS)
    forward = make_forward(
        model,
        data.x,
        data.y,
        trained=None if all_layers else cfg.retune.unfreeze,
        frozen_dropout=cfg.retune.frozen_dropout,
        batch=eval_bs,
    )
    inner = torch.optim.Adam(
        param_groups(
            model,
            cfg.train.lr,
            scaling=cfg.train.lr_scaling,
            weight_decay=cfg.train.weight_decay,
        )
    )
    optimizer = PulseOptimizer(inner, model)

    result = fit_with_config(
        cfg, optimizer, forward, split, run, resume=resume, stop_after_steps=stop_after_steps
    )
    if stop_after_steps is not None and result.steps >= stop_after_steps:
        return run
    finish_training(
        run,
        cfg,
        forward,
        split,
        result,
        started=started,
        extra={
            "float_test_acc": float_test["acc"],
            "transfer_test_acc": transfer_test["acc"],
            "q": cfg.transfer.q,
            "x": cfg.transfer.x,
            "unfreeze": list(cfg.retune.unfreeze),
            "cached_prefix": getattr(forward, "split", None),
        },
    )
    return run
