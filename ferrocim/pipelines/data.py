"""Data for the pipelines: the configured EEG source, its fold split, tensors on a device.

The synthetic default is generated once into ``data.cache_dir`` as PhysioNet-layout EDF
files and prepared by the real EEGMMIDB loader, so the real path is the tested path.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ferrocim.checks import InputError
from ferrocim.pipelines.config import DataConfig
from ferrocim.pipelines.seeding import numpy_generator
from ferrocim.pipelines.training import Tensors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FoldSplit:
    """Trial indices of one cross-validation fold."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    test_subjects: np.ndarray


def synthetic_cache_path(cfg: DataConfig) -> Path:
    """Where the synthetic data set for ``cfg`` lives (EDF tree and prepared HDF5).

    Keyed by the generator version too, so a changed generator never reuses old files.
    """
    from ferrocim.snn.data.synthetic import GENERATOR_VERSION

    name = f"synthetic-v{GENERATOR_VERSION}-n{cfg.n_subjects}-seed{cfg.synth_seed}"
    return Path(cfg.cache_dir) / name


def check_prepared_path(path: str | None) -> Path:
    """``path`` as a prepared HDF5 file, or an error saying which command makes one.

    An EDF folder (``ferrocim data synth`` output or an EEGMMIDB download) is named as
    such, with the exact ``ferrocim data prepare`` command that turns it into a cache.
    """
    if path is None:
        raise InputError(
            "data.path (--data FILE.h5) must name a prepared HDF5 file when data.source='prepared'"
        )
    p = Path(path)
    if p.is_dir():
        h5 = p.with_suffix(".h5") if p.name else p / "prepared.h5"
        raise InputError(
            f"--data {path} is a folder (data.path); training reads a prepared HDF5 cache. "
            f"Prepare it once with `ferrocim data prepare --root {path} --out {h5}`, "
            f"then pass `--data {h5}`"
        )
    if not p.is_file():
        raise InputError(
            f"--data {path} (data.path) does not exist; create it with "
            f"`ferrocim data prepare --root EDF_FOLDER --out {path}`, or omit --data to use "
            "the synthetic generator"
        )
    return p


def load_dataset(cfg: DataConfig):  # -> EEGDataset
    """The configured data set (synthesised and prepared on first use)."""
    from ferrocim.snn.data import load_prepared, prepare_eegmmidb, synthesize_edf

    if cfg.source == "prepared":
        return load_prepared(check_prepared_path(cfg.path))
    root = synthetic_cache_path(cfg)
    h5 = root / "prepared.h5"
    edf_root = root / "edf"
    if not (edf_root / "SYNTHETIC.json").is_file():  # written last by synthesize_edf
        log.info(
            "generating synthetic EEG (%d subjects, seed %d) in %s",
            cfg.n_subjects,
            cfg.synth_seed,
            root,
        )
        synthesize_edf(edf_root, cfg.n_subjects, seed=cfg.synth_seed)
    else:
        log.info("synthetic EEG (%d subjects) from %s", cfg.n_subjects, root)
    from ferrocim.snn.data.synthetic import RUNS

    # the synthetic set has only the imagery runs: their statistics are the global ones
    prepare_eegmmidb(edf_root, h5, normalization=cfg.normalization, stats_runs=RUNS)
    return load_prepared(h5)


def fold_split(ds, cfg: DataConfig, seed: int) -> FoldSplit:
    """Contiguous-subject-block fold ``cfg.fold`` with a stratified validation split."""
    from ferrocim.snn.data import stratified_val_split, subject_block_folds

    if cfg.fold >= cfg.n_folds:
        raise InputError(
            f"data.fold (--fold) must be < data.n_folds = {cfg.n_folds} "
            f"(--set data.n_folds=N), got {cfg.fold}"
        )
    train_all, test = subject_block_folds(ds.subject, n_folds=cfg.n_folds, fold=cfg.fold)
    tr, va = stratified_val_split(
        ds.y[train_all], frac=cfg.val_fraction, rng=numpy_generator(seed, "val-split", cfg.fold)
    )
    train, val = train_all[tr], train_all[va]
    rng = numpy_generator(seed, "subsample", cfg.fold)
    if cfg.max_train_trials is not None and len(train) > cfg.max_train_trials:
        train = np.sort(rng.choice(train, cfg.max_train_trials, replace=False))
    if cfg.max_eval_trials is not None:
        if len(val) > cfg.max_eval_trials:
            val = np.sort(rng.choice(val, cfg.max_eval_trials, replace=False))
        if len(test) > cfg.max_eval_trials:
            test = np.sort(rng.choice(test, cfg.max_eval_trials, replace=False))
    return FoldSplit(train, val, test, np.unique(ds.subject[test]))


def to_tensors(ds, device: str | torch.device) -> Tensors:
    """The data set as tensors on ``device``."""
    return Tensors(
        x=torch.as_tensor(ds.x, dtype=torch.float32, device=device),
        y=torch.as_tensor(ds.y, dtype=torch.long, device=device),
        subject=torch.as_tensor(ds.subject, dtype=torch.long, device=device),
    )
