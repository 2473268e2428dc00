"""Reading a run's tile-state HDF5 file (``tiles/final.h5``) into report tables.

The file holds one group per analog layer (see :mod:`ferrocim.crossbar.hdf5`); a layer's
weight is the matrix ``(outputs, fan_in)`` with crossbar rows = inputs and columns =
outputs, cut into tiles of ``tile_rows × tile_cols``. Only h5py and numpy are used here, so
a report can be rebuilt without the crossbar code that wrote the file.
"""

from __future__ import annotations

import math
import os
from typing import Any

import h5py
import numpy as np
import pandas as pd

from ferrocim.checks import InputError

_FIELDS = ("lifetime", "failed", "conductance")


def read_tile_state(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Per layer: counters, lifetimes, failures, conductances as ``(outputs, fan_in)``."""
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"Cannot read tile file {path}: {exc}") from None
    out: dict[str, dict[str, Any]] = {}
    with f:
        for name, g in f.items():
            missing = [k for k in ("pulse_counts", *_FIELDS) if k not in g]
            if missing:
                raise InputError(f"Tile file {path}, layer {name!r}: datasets {missing} missing")
            counts = np.asarray(g["pulse_counts"][()])  # (2, *weight): LTP, LTD
            layer: dict[str, Any] = {
                "ltp_pulses": counts[0].reshape(counts.shape[1], -1),
                "ltd_pulses": counts[1].reshape(counts.shape[1], -1),
            }
            for k in _FIELDS:
                arr = np.asarray(g[k][()])
                layer[k] = arr.reshape(arr.shape[0], -1)
            layer["tile_rows"] = int(g.attrs["tile_rows"])
            layer["tile_cols"] = int(g.attrs["tile_cols"])
            out[name] = layer
    return out


def tile_arrays(layer: dict[str, Any], what: str) -> list[tuple[str, np.ndarray]]:
    """The per-device values of ``what`` ("pulses", or a field) cut into tiles.

    Each tile comes as ``(name, array[rows=inputs, cols=outputs])``.
    """
    m = layer["ltp_pulses"] + layer["ltd_pulses"] if what == "pulses" else layer[what]
    mat = m.T  # (fan_in, outputs): crossbar rows are inputs
    tr, tc = layer["tile_rows"], layer["tile_cols"]
    n_col = math.ceil(mat.shape[1] / tc)
    tiles = []
    for i in range(math.ceil(mat.shape[0] / tr)):
        for j in range(n_col):
            tiles.append(
                (f"tile {i * n_col + j}", mat[i * tr : (i + 1) * tr, j * tc : (j + 1) * tc])
            )
    return tiles


def endurance_table(
    state: dict[str, dict[str, Any]],
    runs_done: int = 1,
    *,
    nominal_lifetime: float | None = None,
) -> pd.DataFrame:
    """Per layer: pulses, worst used fraction of lifetime, projected runs to first failure.

    ``runs_done`` is how many identical schedules the counters cover (1 for one run).
    Where the run drew no lifetimes (wear model off: infinite), ``nominal_lifetime`` (the
    card's median, in pulses) is used for the projection; ``lifetime_source`` says which.
    """
    rows = []
    for name, layer in state.items():
        pulses = (layer["ltp_pulses"] + layer["ltd_pulses"]).astype(np.float64)
        life = layer["lifetime"].astype(np.float64)
        drawn = bool(np.isfinite(life).any())
        if not drawn and nominal_lifetime is not None:
            life = np.full_like(life, float(nominal_lifetime))
        used = np.where(np.isfinite(life), pulses / life, 0.0)
        per_run = pulses / max(runs_done, 1)
        remaining = np.where(np.isfinite(life), life - pulses, np.inf)
        with np.errstate(divide="ignore", invalid="ignore"):
            runs_left = np.where(per_run > 0, remaining / per_run, np.inf)
        rows.append(
            {
                "layer": name,
                "devices": pulses.size,
                "total_pulses": int(pulses.sum()),
                "max_pulses_per_device": int(pulses.max()),
                "median_lifetime": float(np.median(life)),
                "lifetime_source": "drawn per device" if drawn else "card median (wear off)",
                "max_used_fraction": float(used.max()),
                "failed_devices": int(layer["failed"].sum()),
                "projected_runs_to_first_failure": float(runs_left.min()),
            }
        )
    return pd.DataFrame(rows)
