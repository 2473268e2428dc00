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

from ferrocim.calibration.card import resolve_card
from ferrocim.checks import InputError
from ferrocim.pipelines.checkpoint import save_checkpoint
from ferrocim.pipelines.config import load_config
from ferrocim.pipelines.rundir import RunDir, RunSummary
from ferrocim.pipelines.runs import build_model, open_run


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
    if RunDir(run_dir).exists():
        raise InputError(f"Run directory {run_dir} exists already; choose another --out")
    analog = kind == "device"
    card = resolve_card(cfg.array.card) if analog else None
    model = build_model(cfg.model_copy(update={"device": "cpu"}), analog=analog, card=card)
    load_eeg_ferro_weights(model, params)
    run, cfg = open_run(cfg, run_dir=run_dir, card=card)
    save_checkpoint(run.best_checkpoint, {"model": model.state_dict(), "epoch": 0})
    run.write_summary(RunSummary(kind=kind, imported_from=str(checkpoint)))
    return run
