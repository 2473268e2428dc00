"""Data for the pipelines: the configured EEG source, its fold split, tensors on a device.

The synthetic default is generated once into ``data.cache_dir`` as PhysioNet-layout EDF
files and prepared by the real EEGMMIDB loader, so the real path is the tested path.

``data.exclude_channels`` zeroes the named channels on the grid after normalisation, in
every trial (the input keeps its shape; zero is the channel's mean, the value the unused
grid cells hold): a measure of how much of a result rests on those channels. Which data
a run was trained on, and on which it is evaluated or personalised, is compared with
:func:`data_identity`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def is_edf_folder(path: str | Path) -> bool:
    """Whether ``path`` is an EEGMMIDB-layout EDF folder (``ferrocim data synth`` output
    or a download): ``S###`` subject folders in it or in one of the known sub-paths."""
    from ferrocim.snn.data.eegmmidb import find_data_dir

    try:
        find_data_dir(path)
    except InputError:
        return False
    return True


def folder_cache_path(folder: str | Path) -> Path:
    """Where :func:`prepare_folder` puts the prepared file of an EDF folder: beside it,
    ``FOLDER.h5`` (``data/synth`` → ``data/synth.h5``)."""
    p = Path(folder)
    if not p.name:  # "." or "/"
        p = p.resolve()
    return p.with_name(p.name + ".h5")


def prepare_folder(folder: str | Path) -> Path:
    """Prepare the EDF folder ``folder`` into :func:`folder_cache_path` with the published
    preprocessing (the defaults of ``ferrocim data prepare``; what the built-in synthetic
    data get), once: the file is reused while it is current. Returns its path."""
    from ferrocim.atomic import remove_temporaries
    from ferrocim.io_errors import check_writable, output_errors
    from ferrocim.locks import writer_lock
    from ferrocim.snn.data import prepare_eegmmidb

    out = folder_cache_path(folder)
    check_writable(out.parent, f"the folder of {out} (where --data {folder} is prepared)")
    log.info("--data %s: an EDF folder, prepared once into %s (reused while current)", folder, out)
    # a shared cache: a run started beside another waits for its prepare, then reuses it
    with (
        writer_lock(out, "ferrocim data prepare", wait=True),
        output_errors(out, f"preparing {out}"),
    ):
        remove_temporaries(out.parent, out.name)  # of a prepare that was stopped
        return prepare_eegmmidb(folder, out, progress=True)


def load_dataset(cfg: DataConfig):  # -> EEGDataset
    """The configured data set (synthesised and prepared on first use), with
    ``cfg.exclude_channels`` zeroed."""
    return exclude_channels(_load_source(cfg), cfg.exclude_channels)


def exclude_channels(ds, names: list[str]):  # EEGDataset -> EEGDataset
    """``ds`` with the channels ``names`` set to zero on the grid (a copy; ``ds`` if none).

    Applied after normalisation, so zero is the channel's (training) mean; the names are
    recorded in ``meta["exclude_channels"]``.
    """
    from ferrocim.snn.data import EEGDataset
    from ferrocim.snn.data.grid import grid_position

    if not names:
        return ds
    x = ds.x.copy()
    for name in names:
        r, c = grid_position(name)
        x[:, :, r, c, :] = 0.0
    meta = {**ds.meta, "exclude_channels": list(names)}
    log.info("excluded %d channel(s) (zero after normalisation): %s", len(names), ", ".join(names))
    return EEGDataset(x=x, y=ds.y, subject=ds.subject, meta=meta)


def _load_source(cfg: DataConfig):  # -> EEGDataset
    """The configured data set as prepared (synthesised and prepared on first use)."""
    from ferrocim.snn.data import load_prepared

    if cfg.source == "prepared":
        return load_prepared(check_prepared_path(cfg.path))
    h5 = _synthetic_prepared(cfg)
    log.info("synthetic EEG (%d subjects) from %s", cfg.n_subjects, h5.parent)
    return load_prepared(h5)


def _synthetic_prepared(cfg: DataConfig) -> Path:
    """The prepared file of ``cfg``'s synthetic set, generated and prepared on first use
    (and prepared again when its version or preprocessing is not current).

    Holds the cache folder's writer lock with ``wait=True``: runs started together on one
    cache take turns, the first generates and prepares it, the others find it current."""
    from ferrocim.locks import writer_lock

    root = synthetic_cache_path(cfg)
    h5 = root / "prepared.h5"
    edf_root = root / "edf"
    with writer_lock(root, "ferrocim synthetic data", wait=True):
        return _synthesize_and_prepare(cfg, root, edf_root, h5)


def _synthesize_and_prepare(cfg: DataConfig, root: Path, edf_root: Path, h5: Path) -> Path:
    from ferrocim.snn.data import prepare_eegmmidb, synthesize_edf

    if not (edf_root / "SYNTHETIC.json").is_file():  # written last by synthesize_edf
        log.info(
            "generating synthetic EEG (%d subjects, seed %d) in %s",
            cfg.n_subjects,
            cfg.synth_seed,
            root,
        )
        synthesize_edf(edf_root, cfg.n_subjects, seed=cfg.synth_seed)
    # all 14 runs are written: the published global statistics over every run apply as is
    prepare_eegmmidb(edf_root, h5, normalization=cfg.normalization)
    return h5


def fold_split(ds, cfg: DataConfig, seed: int) -> FoldSplit:
    """Contiguous-subject-block fold ``cfg.fold`` with a stratified validation split."""
    from ferrocim.snn.data import stratified_val_split, subject_block_folds

    n_subjects = len(np.unique(ds.subject))
    if cfg.n_folds > n_subjects:
        where = ds.meta.get("path", "the data set")
        raise InputError(
            f"{where} holds {n_subjects} subject(s), fewer than data.n_folds = {cfg.n_folds} "
            "cross-validation folds; training needs a file of several subjects. To evaluate "
            "or personalise a finished run on subjects it never saw, pass the file to "
            "`ferrocim evaluate RUN --data FILE.h5` or `ferrocim sstl --base-run RUN --data "
            "FILE.h5` (they use all its trials and the subject's own folds)"
        )
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


def data_identity(cfg: DataConfig) -> str:
    """What names the trials of ``cfg`` (not how they are split): the resolved prepared
    file, or the synthetic set's size, seed, cache folder and normalisation."""
    if cfg.source == "prepared":
        return f"prepared:{Path(cfg.path).resolve() if cfg.path else None}"
    return (
        f"synthetic:n{cfg.n_subjects}:seed{cfg.synth_seed}:"
        f"{Path(cfg.cache_dir).resolve()}:{cfg.normalization}"
    )


def describe_data(cfg: DataConfig) -> str:
    """``cfg``'s data in words (for logs and errors)."""
    if cfg.source == "prepared":
        return f"prepared file {cfg.path}"
    return f"synthetic EEG ({cfg.n_subjects} subjects, seed {cfg.synth_seed})"


def prepared_data_file(cfg: DataConfig) -> Path:
    """The prepared HDF5 file ``cfg`` reads (the synthetic one is made on first use)."""
    if cfg.source == "prepared":
        return check_prepared_path(cfg.path)
    return _synthetic_prepared(cfg)


def data_summary(cfg: DataConfig) -> dict[str, Any]:
    """What ``RUN/data.json`` records about ``cfg``'s data: source, file, preprocessing,
    subjects and the per-channel statistics it was z-scored with (global normalisation;
    ``stats`` is None for per-run normalisation, whose statistics stay in the file)."""
    import h5py

    from ferrocim.snn.data.cache import read_cache_attrs, read_channel_stats

    path = prepared_data_file(cfg)
    attrs = read_cache_attrs(path)
    with h5py.File(path, "r") as f:
        subjects = sorted(int(s) for s in np.unique(f["subject"][()]))
        n_trials = int(f["y"].shape[0])
    try:
        stats: dict[str, Any] | None = read_channel_stats(path).to_json()
    except InputError:
        stats = None
    return {
        "source": cfg.source,
        "path": str(path.resolve()),
        "identity": data_identity(cfg),
        "params": attrs["params"],
        "created": str(attrs.get("created", "")),
        "subjects": subjects,
        "n_trials": n_trials,
        "exclude_channels": list(cfg.exclude_channels),
        "stats": stats,
    }
