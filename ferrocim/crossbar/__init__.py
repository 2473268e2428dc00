"""Crossbar tiles of ferroelectric synapses for any torch model.

Device cards (:mod:`ferrocim.calibration`) become arrays of active + reference devices:
Beta-kernel pulse programming with device-to-device and cycle-to-cycle variation,
threshold-accumulated updates (:class:`PulseOptimizer`), analog MAC with optional read
noise, DAC and per-tile ADC, endurance counters and wear, an energy ledger, and HDF5 /
``state_dict`` persistence of the tile state.
"""

from ferrocim.crossbar.config import (
    AnalogConfig,
    EnduranceConfig,
    EnergyConfig,
    ProgrammingConfig,
)
from ferrocim.crossbar.convert import analog_modules, convert
from ferrocim.crossbar.functional import programming_noise, quantize_symmetric
from ferrocim.crossbar.guard import AnalogBypassWarning
from ferrocim.crossbar.hdf5 import load_tiles_hdf5, save_tiles_hdf5
from ferrocim.crossbar.layers import AnalogConv2d, AnalogLinear
from ferrocim.crossbar.layout import TileLayout
from ferrocim.crossbar.ledger import energy_ledger
from ferrocim.crossbar.module import AnalogModule, LayerStepStats
from ferrocim.crossbar.optimizer import PulseOptimizer, StepStats

__all__ = [
    "AnalogBypassWarning",
    "AnalogConfig",
    "AnalogConv2d",
    "AnalogLinear",
    "AnalogModule",
    "EnduranceConfig",
    "EnergyConfig",
    "LayerStepStats",
    "ProgrammingConfig",
    "PulseOptimizer",
    "StepStats",
    "TileLayout",
    "analog_modules",
    "convert",
    "energy_ledger",
    "load_tiles_hdf5",
    "programming_noise",
    "quantize_symmetric",
    "save_tiles_hdf5",
]
