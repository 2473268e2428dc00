"""PhysioNet EEG Motor Movement/Imagery (EEGMMIDB) loader: EDF files → HDF5 cache.

Reads runs 4, 8, 12 (imagined left vs right fist) of each subject with MNE
(``mne.io.read_raw_edf``, ``mne.datasets.eegbci.standardize``,
``mne.events_from_annotations``), from either layout:

- PhysioNet: ``ROOT/S001/S001R04.edf`` (also ``ROOT/files/eegmmidb/1.0.0/S001/...``);
- MNE's download: ``ROOT/MNE-eegbci-data/files/eegmmidb/1.0.0/S001/S001R04.edf``.

Per run: check 160 Hz and the 64 channels, band-pass ``l_freq``–``h_freq`` Hz (MNE's
default zero-phase FIR) on the continuous run, z-score every channel, then cut one
``window``-sample window from each T1 (left, label 0) / T2 (right, label 1) cue onset.
Normalisation ``"global"`` (default, the published ``compute_mean_std_for_all_data``):
one mean and s.d. per channel over the filtered samples of ``stats_runs`` (all 14 runs
by default) of every subject prepared; ``"per_run"`` (ferrocim's option): each run
z-scored with its own statistics. 15 cues per run ⇒ 45 trials per subject. Subjects 88,
89, 92, 100, 104, 106 (recorded at 128 Hz or with irregular runs) are excluded.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ferrocim.checks import InputError, check_option, check_range
from ferrocim.snn.data.cache import cache_is_current, write_cache
from ferrocim.snn.data.grid import EEGMMIDB_CHANNELS

__all__ = [
    "EXCLUDED_SUBJECTS",
    "PREP_VERSION",
    "RUNS",
    "STATS_RUNS",
    "channel_stats",
    "find_data_dir",
    "prepare_eegmmidb",
    "read_run",
    "run_path",
]

RUNS = (4, 8, 12)
EXCLUDED_SUBJECTS = (88, 89, 92, 100, 104, 106)
SFREQ = 160.0
TRIALS_PER_RUN = 15
EVENT_ID = {"T1": 0, "T2": 1}
PREP_VERSION = 2
STATS_RUNS = tuple(range(1, 15))
"""Runs whose samples give the global channel statistics (all 14, as published)."""
Normalization = Literal["global", "per_run"]
_LAYOUTS = ("", "MNE-eegbci-data/files/eegmmidb/1.0.0", "files/eegmmidb/1.0.0", "eegmmidb/1.0.0")
_SUBJECT_DIR = re.compile(r"^S(\d{3})$")


def find_data_dir(root: str | Path) -> Path:
    """The folder holding the ``S###`` subject folders under ``root`` (either layout)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: EEGMMIDB root folder not found")
    for rel in _LAYOUTS:
        base = root / rel if rel else root
        if base.is_dir() and any(_SUBJECT_DIR.match(p.name) for p in base.iterdir()):
            return base
    looked = ", ".join(str(root / r) if r else str(root) for r in _LAYOUTS)
    raise InputError(f"{root}: no EEGMMIDB subject folders (S001, S002, ...) in {looked}")


def run_path(data_dir: Path, subject: int, run: int) -> Path:
    """``data_dir/S###/S###R##.edf``."""
    sub = f"S{subject:03d}"
    return data_dir / sub / f"{sub}R{run:02d}.edf"


def available_subjects(data_dir: Path) -> list[int]:
    """Subject numbers with a folder in ``data_dir``."""
    return sorted(int(m.group(1)) for p in data_dir.iterdir() if (m := _SUBJECT_DIR.match(p.name)))


def _read_raw(path: Path):  # -> mne.io.Raw
    """The checked EDF run with the 64 channels picked in file order (not filtered)."""
    import mne
    from mne.datasets import eegbci

    path = Path(path)
    try:
        raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    except Exception as exc:
        raise InputError(f"{path}: cannot read as EDF ({type(exc).__name__}: {exc})") from None
    sfreq = float(raw.info["sfreq"])
    if sfreq != SFREQ:
        raise InputError(
            f"{path}: sampling rate {sfreq:g} Hz, expected {SFREQ:g} Hz "
            "(EEGMMIDB subjects recorded at 128 Hz are excluded)"
        )
    eegbci.standardize(raw)
    missing = [c for c in EEGMMIDB_CHANNELS if c not in raw.ch_names]
    if missing:
        raise InputError(
            f"{path}: missing EEG channel(s) {', '.join(missing)} (after standardising the "
            f"labels; found {len(raw.ch_names)} channels)"
        )
    raw.pick(list(EEGMMIDB_CHANNELS))
    return raw


def _flat_to_unit(path: Path | str, std: np.ndarray) -> np.ndarray:
    """``std`` with zero entries set to 1 (and a warning naming the flat channels)."""
    flat = np.flatnonzero(std == 0)
    if flat.size:
        names = ", ".join(EEGMMIDB_CHANNELS[i] for i in flat)
        warnings.warn(f"{path}: flat channel(s) {names}; set to zero", stacklevel=3)
        std = std.copy()
        std[flat] = 1.0
    return std


def channel_stats(
    paths: Sequence[str | Path], *, l_freq: float = 0.1, h_freq: float = 79.0
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and s.d. (population) over all filtered samples of ``paths`` (64,).

    Runs are combined exactly (Chan et al.'s pairwise update of count, mean and sum of
    squared deviations), so the result equals the statistics of the concatenation.
    """
    n = 0
    mean = np.zeros(len(EEGMMIDB_CHANNELS))
    m2 = np.zeros(len(EEGMMIDB_CHANNELS))
    for p in paths:
        raw = _read_raw(Path(p))
        raw.filter(l_freq, h_freq, picks="all", verbose="error")
        data = raw.get_data()
        k = data.shape[1]
        mu = data.mean(axis=1)
        delta = mu - mean
        m2 += ((data - mu[:, None]) ** 2).sum(axis=1) + delta**2 * n * k / (n + k)
        mean += delta * k / (n + k)
        n += k
    if n == 0:
        raise InputError("channel_stats: no runs given")
    return mean, np.sqrt(m2 / n)


def read_run(
    path: str | Path,
    *,
    l_freq: float = 0.1,
    h_freq: float = 79.0,
    window: int = 160,
    stats: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One run → ``(eeg (n, 64, window) float32, y (n,) int64, onset (n,) int64)``.

    ``eeg`` is band-passed and z-scored per channel (dimensionless) with ``stats`` (mean,
    s.d. per channel, e.g. from :func:`channel_stats`) or, when None, with the run's own
    statistics; channels in :data:`EEGMMIDB_CHANNELS` order; ``onset`` is the cue's sample
    index in the run.
    """
    import mne

    path = Path(path)
    raw = _read_raw(path)
    codes = {d for d in raw.annotations.description}
    if not codes & set(EVENT_ID):
        raise InputError(f"{path}: no T1/T2 cue annotations (found {sorted(codes) or 'none'})")
    events, _ = mne.events_from_annotations(
        raw, event_id={k: v + 1 for k, v in EVENT_ID.items()}, verbose="error"
    )
    raw.filter(l_freq, h_freq, picks="all", verbose="error")
    data = raw.get_data()
    mean, std = (data.mean(axis=1), data.std(axis=1)) if stats is None else stats
    data = (data - mean[:, None]) / _flat_to_unit(path, np.asarray(std))[:, None]
    onsets = events[:, 0] - raw.first_samp
    labels = events[:, 2] - 1
    fits = onsets + window <= data.shape[1]
    if not fits.all():
        warnings.warn(
            f"{path}: {int((~fits).sum())} cue(s) too close to the end for a {window}-sample "
            "window; dropped",
            stacklevel=2,
        )
        onsets, labels = onsets[fits], labels[fits]
    if len(onsets) != TRIALS_PER_RUN:
        warnings.warn(
            f"{path}: {len(onsets)} T1/T2 cues, expected {TRIALS_PER_RUN}; keeping {len(onsets)}",
            stacklevel=2,
        )
    idx = onsets[:, None] + np.arange(window)[None, :]
    eeg = data[:, idx].transpose(1, 0, 2).astype(np.float32)
    return eeg, labels.astype(np.int64), onsets.astype(np.int64)


def prepare_eegmmidb(
    root: str | Path,
    cache_path: str | Path,
    *,
    subjects: Sequence[int] | None = None,
    l_freq: float = 0.1,
    h_freq: float = 79.0,
    window: int = 160,
    runs: Sequence[int] = RUNS,
    progress: bool = False,
    force: bool = False,
    normalization: Normalization = "global",
    stats_runs: Sequence[int] = STATS_RUNS,
) -> Path:
    """Preprocess EEGMMIDB under ``root`` into the HDF5 cache ``cache_path``; return its path.

    subjects: subject numbers (default: every ``S###`` folder found, minus the excluded
    six). normalization: "global" (published; statistics over ``stats_runs`` of every
    chosen subject, all 14 runs by default: a data set with only the imagery runs, such as
    the synthetic one, needs ``stats_runs=(4, 8, 12)``) or "per_run". The cache is rebuilt
    when any parameter, the subject list, or a source file's size or modification time
    differs from what it records (or when ``force``).
    """
    from ferrocim.logs import progress as progress_bar

    check_range("l_freq", l_freq, 0.0, low_inclusive=False)
    check_range("h_freq", h_freq, l_freq, SFREQ / 2, low_inclusive=False, high_inclusive=False)
    check_range("window", window, 1)
    check_option("normalization", normalization, ("global", "per_run"))
    data_dir = find_data_dir(root)
    found = available_subjects(data_dir)
    if subjects is None:
        chosen = [s for s in found if s not in EXCLUDED_SUBJECTS]
    else:
        chosen = sorted({int(s) for s in subjects})
        bad = [s for s in chosen if s in EXCLUDED_SUBJECTS]
        if bad:
            raise InputError(
                f"subject(s) {bad} are excluded from EEGMMIDB studies (128 Hz or irregular "
                f"runs): {list(EXCLUDED_SUBJECTS)}"
            )
        absent = [s for s in chosen if s not in found]
        if absent:
            raise InputError(f"{data_dir}: no folder for subject(s) {absent}")
    if not chosen:
        raise InputError(f"{data_dir}: no subjects to prepare")
    files = []
    for s in chosen:
        for r in runs:
            p = run_path(data_dir, s, r)
            if not p.is_file():
                raise InputError(f"subject {s}: run {r} not found (expected {p})")
            files.append((s, r, p))
    stats_files: list[Path] = []
    if normalization == "global":
        for s in chosen:
            for r in stats_runs:
                p = run_path(data_dir, s, r)
                if not p.is_file():
                    raise InputError(
                        f"subject {s}: run {r} not found (expected {p}); global normalisation "
                        f"takes its channel statistics from runs {list(stats_runs)} (published: "
                        "all 14). Pass stats_runs (CLI --stats-runs 4,8,12) or "
                        "normalization='per_run' (--normalization per_run)"
                    )
                stats_files.append(p)
    params: dict[str, Any] = {
        "dataset": "eegmmidb",
        "prep_version": PREP_VERSION,
        "runs": [int(r) for r in runs],
        "subjects": chosen,
        "l_freq": float(l_freq),
        "h_freq": float(h_freq),
        "filter": "mne default zero-phase FIR (firwin), continuous run",
        "normalization": normalization,
        "zscore": (
            f"per channel, one mean and s.d. over the filtered runs {list(stats_runs)} of "
            "all subjects"
            if normalization == "global"
            else "per channel over the whole filtered run"
        ),
        "window": int(window),
        "sfreq": SFREQ,
        "labels": {"T1": 0, "T2": 1},
    }
    source = {
        "root": str(Path(root).resolve()),
        "files": [
            [str(p.relative_to(data_dir)), p.stat().st_size, p.stat().st_mtime_ns]
            for p in sorted({p for _, _, p in files} | set(stats_files))
        ],
    }
    cache_path = Path(cache_path)
    if not force and cache_is_current(cache_path, params, source):
        return cache_path
    stats = None
    if normalization == "global":
        it = progress_bar(stats_files, desc="channel statistics", unit="run", disable=not progress)
        stats = channel_stats(list(it), l_freq=l_freq, h_freq=h_freq)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("eeg", "y", "subject", "run", "onset")}
    for s, r, p in progress_bar(files, desc="prepare", unit="run", disable=not progress):
        eeg, y, onset = read_run(p, l_freq=l_freq, h_freq=h_freq, window=window, stats=stats)
        parts["eeg"].append(eeg)
        parts["y"].append(y)
        parts["onset"].append(onset)
        parts["subject"].append(np.full(len(y), s, dtype=np.int64))
        parts["run"].append(np.full(len(y), r, dtype=np.int64))
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    return write_cache(
        cache_path, arrays, params=params, source=source, ch_names=list(EEGMMIDB_CHANNELS)
    )
