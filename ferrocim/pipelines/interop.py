"""Run directories from published EEG-Ferro checkpoints (``ferrocim import eeg-ferro``).

The run directory holds the configuration (kind ``float`` or ``device``, the network width
read from the checkpoint) and ``checkpoints/best.pt`` with the imported model, so that
``evaluate``, ``retune --float-run`` (float imports) and ``sstl --base-run`` accept it.
A ``device`` import programs the weights onto the tiles of the configured array at their
stored values (an on-device checkpoint's weights are inside ``±w_max``: no loss).
"""

from __future__ import annotations

import os
from typing import Any

from ferrocim.checks import InputError
from ferrocim.pipelines.checkpoint import save_checkpoint
from ferrocim.pipelines.config import load_config
from ferrocim.pipelines.rundir import RunDir
from ferrocim.pipelines.runs import build_model


def import_eeg_ferro(
    checkpoint: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    *,
    kind: str = "float",
    config_path: str | os.PathLike[str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> RunDir:
    """Write run directory ``run_dir`` holding the published ``checkpoint``; return it."""
    from ferrocim.snn.interop import load_eeg_ferro_weights, network_shape, read_eeg_ferro

    if kind not in ("float", "device"):
        raise InputError(f"--kind must be 'float' or 'device', got {kind!r}")
    params = read_eeg_ferro(checkpoint)
    shape = network_shape(params)
    if shape["n_steps"] != 160:
        raise InputError(
            f"{checkpoint}: {shape['n_steps']} readout time weights; ferrocim runs use 160"
        )
    cfg = load_config(
        config_path, {**(overrides or {}), "network.width": shape["width"]}, kind=kind
    )
    run = RunDir(run_dir)
    if run.exists():
        raise InputError(f"Run directory {run.path} exists already; choose another --out")
    model = build_model(cfg.model_copy(update={"device": "cpu"}), analog=kind == "device")
    load_eeg_ferro_weights(model, params)
    run.start(cfg.to_toml(), cfg.device)
    save_checkpoint(run.best_checkpoint, {"model": model.state_dict(), "epoch": 0})
    run.write_summary({"kind": kind, "imported_from": str(checkpoint), "format": "eeg-ferro"})
    return run
