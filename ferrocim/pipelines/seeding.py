"""Random streams derived from (seed, stream, counter): reproducible and resumable.

Every stochastic step of a pipeline (shuffling, dropout masks, cycle-to-cycle noise,
programming noise) takes a generator made here from the run seed, a stream name and a
counter (epoch or step). A run resumed at step k therefore draws exactly what an
uninterrupted run draws at step k, without saving generator states.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch


def derive_seed(seed: int, stream: str, *counters: int) -> int:
    """A 63-bit seed from the run seed, a stream name and counters (stable across runs)."""
    text = f"{seed}/{stream}/" + "/".join(str(c) for c in counters)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def torch_generator(
    seed: int, stream: str, *counters: int, device: str | torch.device = "cpu"
) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded from :func:`derive_seed`."""
    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(seed, stream, *counters))
    return g


def numpy_generator(seed: int, stream: str, *counters: int) -> np.random.Generator:
    """A ``numpy.random.Generator`` seeded from :func:`derive_seed`."""
    return np.random.default_rng(derive_seed(seed, stream, *counters))
