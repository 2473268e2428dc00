"""Opening a run: run directory, compute device, model and array from a RunConfig."""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import Any

import torch

from ferrocim.checks import InputError
from ferrocim.pipelines.config import RunConfig, load_config
from ferrocim.pipelines.rundir import RunDir
from ferrocim.pipelines.seeding import torch_generator


def resolve_device(name: str) -> torch.device:
    """``cpu`` or ``cuda``; asking for CUDA without a GPU is an error, not a fallback."""
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("device='cuda' was requested but no CUDA GPU is available")
    return torch.device(name)


def open_run(
    cfg: RunConfig, *, run_dir: str | os.PathLike[str] | None = None, resume: bool = False
) -> tuple[RunDir, RunConfig]:
    """Create a new run directory, or reopen one to resume (its stored config wins).

    Resuming finds the run by ``run_dir`` or, without it, by ``cfg.name`` under
    ``cfg.out_dir`` (``--resume --name X`` is ``--resume --run-dir runs/X``).
    """
    if resume:
        if run_dir is None and cfg.name:
            run_dir = Path(cfg.out_dir) / cfg.name
        if run_dir is None:
            raise InputError("--resume needs the run to continue: --run-dir DIR or --name NAME")
        run = RunDir(run_dir).require()
        stored = load_config(run.config)
        return run, stored
    run = RunDir(run_dir if run_dir is not None else default_run_dir(cfg))
    if run.exists():
        raise InputError(
            f"Run directory {run.path} exists already; pass --resume to continue it "
            "or choose another --run-dir/--name"
        )
    run.start(cfg.to_toml(), cfg.device)
    return run, cfg


def default_run_dir(cfg: RunConfig) -> Path:
    """``OUT_DIR/NAME``, or ``OUT_DIR/<kind>-fold<k>-<timestamp>`` without a name."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(cfg.out_dir) / (cfg.name or f"{cfg.kind}-fold{cfg.data.fold}-{stamp}")


def inherit_network(cfg: RunConfig, base_run: str | os.PathLike[str]) -> RunConfig:
    """``cfg`` with the network width of ``base_run`` (its weights only fit that shape)."""
    base = load_config(RunDir(base_run).require("base run").config)
    network = cfg.network.model_copy(update={"width": base.network.width})
    return cfg.model_copy(update={"network": network})


def analog_config(cfg: RunConfig):  # -> AnalogConfig
    """The crossbar configuration of a run's ``[array]`` section."""
    from ferrocim.calibration.card import resolve_card
    from ferrocim.crossbar import AnalogConfig, EnduranceConfig, ProgrammingConfig

    a = cfg.array
    return AnalogConfig(
        card=resolve_card(a.card),
        tile_rows=a.tile_rows,
        tile_cols=a.tile_cols,
        reference=a.reference,
        d2d=a.d2d,
        read_noise=a.read_noise,
        dac_bits=a.dac_bits,
        adc_bits=a.adc_bits,
        programming=ProgrammingConfig(
            eps=a.eps,
            thr_asym=a.thr_asym,
            max_pulses_per_step=a.max_pulses_per_step,
            a_scale=a.a_scale,
            a_asym=a.a_asym,
            rsd_c2c=a.rsd_c2c,
        ),
        endurance=EnduranceConfig(lifetime_scale=a.lifetime_scale),
    )


def build_model(
    cfg: RunConfig,
    *,
    analog: bool,
    analog_layers: tuple[str, ...] | None = None,
    stream: str = "init",
) -> torch.nn.Module:
    """The EEG SNN on the run's device; analog layers on tiles when ``analog``."""
    from ferrocim.snn import EEGSNN, NetworkConfig

    device = resolve_device(cfg.device)
    net = cfg.network
    kwargs: dict[str, Any] = {"width": net.width, "dropout": net.dropout, "mode": net.mode}
    if analog:
        kwargs["analog"] = analog_config(cfg)
        if analog_layers is not None:
            kwargs["analog_layers"] = tuple(analog_layers)
    # built on the CPU from a CPU generator, so CPU and CUDA runs start identical
    model = EEGSNN(NetworkConfig(**kwargs), generator=torch_generator(cfg.seed, stream))
    return model.to(device)
