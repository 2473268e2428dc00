"""Run directories from published EEG-Ferro checkpoints (``ferrocim import eeg-ferro``).

The run directory holds the configuration (kind ``float`` or ``device``, the network width
read from the checkpoint) and ``checkpoints/best.pt`` with the imported model, so that
``evaluate``, ``retune --float-run`` (float imports) and ``sstl --base-run`` accept it.
A ``device`` import programs the weights onto the tiles of the configured array at their
stored values (an on-device checkpoint's weights are inside ``±w_max``: no loss).

``data`` (``--data FILE.h5``, or any ``data.`` field set at import) names the data the
run is evaluated and personalised on by default; ``RUN/data.json`` records it with
``trained_on: false`` (the checkpoint was trained elsewhere, on subjects and with channel
statistics the published code does not publish). Without it, ``evaluate`` and ``sstl``
ask for ``--data``.
"""

from __future__ import annotations

import os
from typing import Any

from ferrocim.calibration.card import resolve_card
from ferrocim.checks import InputError
from ferrocim.pipelines.checkpoint import save_checkpoint
from ferrocim.pipelines.config import load_config
from ferrocim.pipelines.data import check_prepared_path
from ferrocim.pipelines.rundir import RunDir, RunSummary
from ferrocim.pipelines.runs import build_model, data_record, explicit_fields, open_run

#: What ``RUN/data.json`` says of an imported checkpoint's training data.
IMPORTED_NOTE = (
    "imported from {checkpoint}: trained elsewhere; the training population's channel "
    "statistics are not published (new subjects are normalised with their own)"
)


def import_eeg_ferro(
    checkpoint: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    *,
    kind: str = "float",
    config_path: str | os.PathLike[str] | None = None,
    overrides: dict[str, Any] | None = None,
    data: str | os.PathLike[str] | None = None,
) -> RunDir:
    """Write run directory ``run_dir`` holding the published ``checkpoint``; return it.

    ``data``: a prepared HDF5 file to evaluate and personalise the run on by default.
    """
    from ferrocim.snn.interop import load_eeg_ferro_weights, network_shape, read_eeg_ferro

    if kind not in ("float", "device"):
        raise InputError(f"--kind must be 'float' or 'device', got {kind!r}")
    params = read_eeg_ferro(checkpoint)
    shape = network_shape(params)
    if shape["n_steps"] != 160:
        raise InputError(
            f"{checkpoint}: {shape['n_steps']} readout time weights; ferrocim runs use 160"
        )
    over = {**(overrides or {}), "network.width": shape["width"]}
    if data is not None:
        check_prepared_path(str(data))
        over.update({"data.source": "prepared", "data.path": str(data)})
    cfg = load_config(config_path, over, kind=kind)
    if RunDir(run_dir).exists():
        raise InputError(f"Run directory {run_dir} exists already; choose another --out")
    analog = kind == "device"
    card = resolve_card(cfg.array.card) if analog else None
    model = build_model(cfg.model_copy(update={"device": "cpu"}), analog=analog, card=card)
    load_eeg_ferro_weights(model, params)
    note = IMPORTED_NOTE.format(checkpoint=checkpoint)
    given = any(k.startswith("data.") for k in explicit_fields(cfg))
    record = (
        data_record(cfg, trained_on=False, note=note)
        if given
        else {"trained_on": False, "source": None, "note": note}
    )
    run, cfg = open_run(cfg, run_dir=run_dir, card=card, data=record)
    save_checkpoint(run.best_checkpoint, {"model": model.state_dict(), "epoch": 0})
    run.write_summary(RunSummary(kind=kind, imported_from=str(checkpoint)))
    return run
