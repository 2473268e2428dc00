"""Spiking network for EEG motor imagery: CUBA-LIF neurons, the EEG network and its data.

``from ferrocim.snn import EEGSNN, NetworkConfig, LAYER_ORDER``; the neuron maths is in
:mod:`ferrocim.snn.functional`, the data sets in :mod:`ferrocim.snn.data`.
"""

from ferrocim.snn.interop import load_eeg_ferro
from ferrocim.snn.modules import AdaptiveCubaLIF, CubaLIF
from ferrocim.snn.network import (
    EEGSNN,
    LAYER_ORDER,
    LAYER_SHAPES,
    N_DEVICE_WEIGHTS,
    N_PARAMETERS,
    NetworkConfig,
)

__all__ = [
    "EEGSNN",
    "LAYER_ORDER",
    "LAYER_SHAPES",
    "N_DEVICE_WEIGHTS",
    "N_PARAMETERS",
    "AdaptiveCubaLIF",
    "CubaLIF",
    "NetworkConfig",
    "load_eeg_ferro",
]
