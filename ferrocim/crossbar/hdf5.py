"""Tile state of a model to and from HDF5 (one group per analog layer, written atomically).

Each group holds every buffer of the layer (conductances, references, per-device
parameters, accumulators, pulse counters, crossings, lifetimes, failures), the programmed
``weight`` (derived, for readers), the layer's generator state and, as attributes, its
event counts, ``w_max``, tile size and configuration (JSON). Loading restores the state
and the generator, so training continues exactly as if it had not stopped (float
parameters and optimizer state travel in the usual ``state_dict``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch import nn

from ferrocim import __version__
from ferrocim.atomic import atomic_path
from ferrocim.checks import InputError
from ferrocim.crossbar.convert import analog_modules

FORMAT = "ferrocim-tiles"
FORMAT_VERSION = 1
_ROOT = "__model__"


def _group_name(name: str) -> str:
    return name if name else _ROOT


def save_tiles_hdf5(
    model: nn.Module, path: str | os.PathLike[str], *, attrs: dict[str, Any] | None = None
) -> Path:
    """Write the tile state of every analog layer of ``model`` to ``path`` (atomic)."""
    mods = analog_modules(model)
    if not mods:
        raise InputError("save_tiles_hdf5: the model has no analog layers")
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["ferrocim_version"] = __version__
        for k, v in (attrs or {}).items():
            f.attrs[k] = v if isinstance(v, int | float | str) else json.dumps(v)
        for name, m in mods.items():
            g = f.create_group(_group_name(name))
            for bname, buf in m.named_buffers(recurse=False):
                g.create_dataset(bname, data=buf.detach().cpu().numpy())
            g.create_dataset("weight", data=m.weight.detach().cpu().numpy())
            g.create_dataset("generator_state", data=m.generator.get_state().numpy())
            g.attrs["event_counts"] = json.dumps(m.event_counts)
            g.attrs["w_max"] = m.w_max
            g.attrs["layer_type"] = type(m).__name__
            g.attrs["tile_rows"] = m.layout.tile_rows
            g.attrs["tile_cols"] = m.layout.tile_cols
            g.attrs["config"] = json.dumps(m.analog_config.to_dict())
    return Path(path)


def load_tiles_hdf5(model: nn.Module, path: str | os.PathLike[str]) -> dict[str, Any]:
    """Restore the tile state saved by :func:`save_tiles_hdf5` into ``model``'s analog layers.

    Every analog layer of the model must have a group with buffers of the same shapes.
    Returns the file's root attributes.
    """
    p = Path(path)
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        raise InputError(f"Cannot read tile file {p}: {exc}") from None
    with f:
        if f.attrs.get("format") != FORMAT:
            raise InputError(
                f"Tile file {p}: attribute 'format' is {f.attrs.get('format')!r}, "
                f"expected {FORMAT!r}"
            )
        mods = analog_modules(model)
        for name, m in mods.items():
            gname = _group_name(name)
            if gname not in f:
                raise InputError(
                    f"Tile file {p} has no group for layer {name!r}; it holds {list(f.keys())}"
                )
            g = f[gname]
            with torch.no_grad():
                for bname, buf in m.named_buffers(recurse=False):
                    if bname not in g:
                        raise InputError(
                            f"Tile file {p}, layer {name!r}: dataset {bname!r} missing"
                        )
                    arr = np.asarray(g[bname][()])
                    if tuple(arr.shape) != tuple(buf.shape):
                        raise InputError(
                            f"Tile file {p}, layer {name!r}, dataset {bname!r}: shape "
                            f"{tuple(arr.shape)} does not match the layer's {tuple(buf.shape)}"
                        )
                    buf.copy_(torch.from_numpy(arr).to(buf.device, buf.dtype))
                m._refresh_flags()
                m.weight.data.copy_(m._read_weights())
            m.set_extra_state(
                {
                    "event_counts": json.loads(g.attrs["event_counts"]),
                    "generator_state": torch.from_numpy(np.asarray(g["generator_state"][()])),
                }
            )
        extra = [k for k in f.keys() if k not in {_group_name(n) for n in mods}]
        if extra:
            raise InputError(f"Tile file {p} holds layers {extra} that the model does not have")
        return dict(f.attrs)
