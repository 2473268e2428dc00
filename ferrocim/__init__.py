"""ferrocim: ferroelectric-synapse calibration, crossbar simulation and SNN training.

Stages, in the order a user meets them (imports run the same way):

- :mod:`ferrocim.calibration` — raw pulse-train files → device cards;
- :mod:`ferrocim.crossbar` — tiles of active + reference devices built from cards;
- :mod:`ferrocim.snn` — CUBA-LIF spiking CNN for EEG motor imagery and its data;
- :mod:`ferrocim.pipelines` — float / on-device / re-tune / SSTL experiments;
- :mod:`ferrocim.reports` — HTML reports read from run directories.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ferrocim")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
