"""ferrocim: ferroelectric-synapse calibration, crossbar simulation and SNN training.

Stages, in the order a user meets them (imports run the same way):

- :mod:`ferrocim.calibration` — raw pulse-train files → device cards;
- :mod:`ferrocim.crossbar` — tiles of active + reference devices built from cards;
- :mod:`ferrocim.snn` — CUBA-LIF spiking CNN for EEG motor imagery and its data;
- :mod:`ferrocim.pipelines` — float / on-device / re-tune / SSTL experiments;
- :mod:`ferrocim.reports` — HTML reports read from run directories.
"""

import os as _os
import sys as _sys
from importlib.metadata import PackageNotFoundError, version


def _passive_openmp() -> bool:
    """Let idle OpenMP threads sleep at once (``OMP_WAIT_POLICY=PASSIVE``) instead of
    spinning (libgomp's default: about 300,000 spins first), which collapses a run when
    other jobs share the cores (measured: 2 threads beside a busy loop 5.9× the time of
    one thread; passive 1.3×; ``benchmarks/bench_network.py --case busy``). libgomp reads
    it once, when torch loads it, so it is set only before torch is imported, and never
    over the user's own ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT``. Returns whether it set
    it. ``OMP_WAIT_POLICY=ACTIVE`` (or ``GOMP_SPINCOUNT=300000``) restores spinning."""
    if "torch" in _sys.modules or {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"} & _os.environ.keys():
        return False
    _os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True


_passive_openmp()

try:
    __version__ = version("ferrocim")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
