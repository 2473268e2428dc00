"""EEG data: the EEGMMIDB loader, the synthetic generator, the HDF5 cache and the splits.

Synthesize → prepare (the real loader) → HDF5 cache → :class:`EEGDataset`::

    root = synthesize_edf("data/synthetic", 6, seed=0)
    h5 = prepare_eegmmidb(root, "data/synthetic.h5")
    ds = load_prepared(h5)
"""

from ferrocim.snn.data.cache import load_prepared
from ferrocim.snn.data.dataset import EEGDataset
from ferrocim.snn.data.eegmmidb import EXCLUDED_SUBJECTS, RUNS, prepare_eegmmidb, read_run
from ferrocim.snn.data.grid import EEGMMIDB_CHANNELS, grid_position, to_grid
from ferrocim.snn.data.splits import sstl_folds, stratified_val_split, subject_block_folds
from ferrocim.snn.data.synthetic import synthesize_edf

__all__ = [
    "EEGMMIDB_CHANNELS",
    "EXCLUDED_SUBJECTS",
    "RUNS",
    "EEGDataset",
    "grid_position",
    "load_prepared",
    "prepare_eegmmidb",
    "read_run",
    "sstl_folds",
    "stratified_val_split",
    "subject_block_folds",
    "synthesize_edf",
    "to_grid",
]
