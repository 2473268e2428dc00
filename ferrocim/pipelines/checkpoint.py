"""Training checkpoints: tensors and plain values only, loadable with ``weights_only=True``.

A checkpoint holds the model and optimiser state, the loop position (epoch, step) and
the bookkeeping needed to continue (best validation accuracy, metrics rows). Shuffling
and dropout streams are derived from (seed, step) by :mod:`ferrocim.pipelines.seeding`;
the analog layers keep their noise generator's state in the model ``state_dict``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch

from ferrocim.atomic import atomic_path
from ferrocim.checks import InputError

FORMAT = 1


def state_digest(state: Any) -> str:
    """BLAKE2b digest (16 hex digits) of a checkpoint's content: every tensor's dtype,
    shape and bytes and every plain value, with their keys. Stored in the checkpoint
    (``digest``) and checked on load, so a changed byte is found (torch would load it)."""
    h = hashlib.blake2b(digest_size=8)

    def walk(node: Any, key: str) -> None:
        h.update(key.encode("utf-8", "surrogatepass") + b"\0")
        if isinstance(node, torch.Tensor):
            t = node.detach().cpu().contiguous()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(node, dict):
            for k in sorted(node, key=str):
                walk(node[k], f"{key}/{k}")
        elif isinstance(node, list | tuple):
            for i, v in enumerate(node):
                walk(v, f"{key}[{i}]")
        else:
            h.update(f"{type(node).__name__}:{node!r}".encode())

    walk(state, "")
    return h.hexdigest()


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write ``state`` (tensors, numbers, strings, lists, dicts) atomically, with its
    :func:`state_digest`."""
    from ferrocim.io_errors import expect_size

    body = {"format": FORMAT, **state}
    with expect_size(_tensor_bytes(body)), atomic_path(path) as tmp:
        torch.save({**body, "digest": state_digest(body)}, tmp)
    return Path(path)


def _tensor_bytes(obj: Any) -> int:
    """Bytes of the tensors in ``obj`` (nested dicts, lists, tuples): a checkpoint's size
    to within its small header."""
    if isinstance(obj, torch.Tensor):
        return obj.element_size() * obj.numel()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


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
    digest = state.pop("digest", None)  # checkpoints written before it have none
    if digest is not None and digest != state_digest(state):
        raise InputError(
            f"Cannot read checkpoint {p}: its content does not match the digest recorded when "
            "it was written (the file was changed or damaged); resume from another copy, or "
            "start the run afresh"
        )
    return state
