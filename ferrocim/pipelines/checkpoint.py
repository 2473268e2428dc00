"""Training checkpoints: tensors and plain values only, loadable with ``weights_only=True``.

A checkpoint holds the model and optimiser state, the loop position (epoch, step) and
the bookkeeping needed to continue (best validation accuracy, metrics rows). Shuffling
and dropout streams are derived from (seed, step) by :mod:`ferrocim.pipelines.seeding`;
the analog layers keep their noise generator's state in the model ``state_dict``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ferrocim.atomic import atomic_path
from ferrocim.checks import InputError

FORMAT = 1


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write ``state`` (tensors, numbers, strings, lists, dicts) atomically."""
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **state}, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike[str], map_location: str = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; errors name the file."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"No checkpoint at {p}")
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for damaged files
        if "weights_only" in str(exc) or "Weights only load failed" in str(exc):
            raise InputError(
                f"Cannot read checkpoint {p}: it holds Python objects besides tensors and "
                "plain values, which could run code when loaded; ferrocim will not load it "
                "(ferrocim's own checkpoints never do: it was changed or made elsewhere)"
            ) from None
        raise InputError(f"Cannot read checkpoint {p}: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise InputError(f"{p} is not a ferrocim checkpoint of format {FORMAT}")
    return state
