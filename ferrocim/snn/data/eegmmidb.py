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

``stats`` (:class:`~ferrocim.snn.data.cache.ChannelStats`, CLI ``--stats-from``) z-scores
the chosen subjects with a training population's statistics instead of their own: how a
new person's recordings are normalised for a network trained on others. The statistics
must come from data band-passed with the same ``l_freq``/``h_freq``.

Low-frequency content (issue: how much of a result rests on slow, ocular signal):
``l_freq`` is the high-pass edge of the band-pass, applied to the continuous run before
the statistics and the z-score (``data prepare --l-freq 4`` removes everything below
4 Hz); ``h_freq`` likewise low-passes (``--h-freq 4``).

EDF files whose header announces more data records than the file holds (S001R01/R02 of
the real data set lack about their last second) are read as far as they go, with a
warning naming the file and both record counts.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ferrocim.checks import InputError, check_option, check_range
from ferrocim.locks import locked
from ferrocim.snn.data.cache import ChannelStats, cache_is_current, write_cache
from ferrocim.snn.data.grid import EEGMMIDB_CHANNELS

__all__ = [
    "CHANNEL_GROUPS",
    "EXCLUDED_SUBJECTS",
    "FRONTAL_TEMPORAL",
    "PREP_VERSION",
    "RUNS",
    "STATS_RUNS",
    "channel_stats",
    "edf_record_counts",
    "expand_channels",
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
PREP_VERSION = 3
STATS_RUNS = tuple(range(1, 15))
"""Runs whose samples give the global channel statistics (all 14, as published)."""
Normalization = Literal["global", "per_run"]
FRONTAL_TEMPORAL = (
    "Fp1", "Fpz", "Fp2", "AF7", "AF3", "AFz", "AF4", "AF8", "F7", "F5", "F6", "F8",
    "FT7", "FT8", "T7", "T8", "T9", "T10",
)  # fmt: skip
"""The 18 prefrontal, anterior-lateral and temporal channels that pick up horizontal eye
movements and blinks (on S001 the class means differ by about -95 uV at F7/AF7 and
+40 uV at F8/AF8 0.2-0.4 s after the cue)."""
CHANNEL_GROUPS: dict[str, tuple[str, ...]] = {"frontal-temporal": FRONTAL_TEMPORAL}
"""Names that stand for several channels in ``data.exclude_channels``."""
_LAYOUTS = ("", "MNE-eegbci-data/files/eegmmidb/1.0.0", "files/eegmmidb/1.0.0", "eegmmidb/1.0.0")
_SUBJECT_DIR = re.compile(r"^S(\d{3})$")


def expand_channels(names: Sequence[str]) -> list[str]:
    """Channel names (and :data:`CHANNEL_GROUPS`) → sorted unique names in file order.

    Matching ignores case (``fp1`` is ``Fp1``); an unknown name is an InputError listing
    the closest channel names.
    """
    import difflib

    by_lower = {c.lower(): c for c in EEGMMIDB_CHANNELS}
    out: set[str] = set()
    for name in names:
        key = str(name).strip()
        if key.lower() in CHANNEL_GROUPS:
            out.update(CHANNEL_GROUPS[key.lower()])
        elif key.lower() in by_lower:
            out.add(by_lower[key.lower()])
        else:
            close = difflib.get_close_matches(key, EEGMMIDB_CHANNELS, n=3, cutoff=0.5)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            raise InputError(f"unknown EEG channel {key!r}{hint}")
    return [c for c in EEGMMIDB_CHANNELS if c in out]


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


def edf_record_counts(path: str | Path) -> tuple[int, int, float, int] | None:
    """``(announced, found, record_s, extra_bytes)``: data records the EDF header
    announces, whole records the file holds, the record duration (s) and the bytes of an
    incomplete last record; None when the header cannot be read (the EDF reader then
    reports the problem)."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            head = f.read(256)
            header_bytes = int(head[184:192].decode("ascii").strip())
            announced = int(head[236:244].decode("ascii").strip())
            record_s = float(head[244:252].decode("ascii").strip())
            ns = int(head[252:256].decode("ascii").strip())
            f.seek(256 + ns * 216)
            samples = [int(f.read(8).decode("ascii").strip()) for _ in range(ns)]
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    record_bytes = 2 * sum(samples)
    if record_bytes <= 0:
        return None
    found, extra = divmod(path.stat().st_size - header_bytes, record_bytes)
    return announced, int(found), record_s, int(extra)


#: Least share of its announced records a truncated EDF file must hold to be read.
MIN_RECORD_SHARE = 0.5


def _check_records(path: Path) -> None:
    """Warn (file, announced vs found records) when an EDF file is truncated; refuse it
    when it holds less than :data:`MIN_RECORD_SHARE` of them."""
    counts = edf_record_counts(path)
    if counts is None:
        return
    announced, found, record_s, extra = counts
    if announced > 0 and found < announced * MIN_RECORD_SHARE:
        raise InputError(
            f"{path}: truncated EDF file: its header announces {announced} data records "
            f"({announced * record_s:g} s), the file holds only {found} "
            f"({found * record_s:g} s), less than {MIN_RECORD_SHARE:.0%}; copy or download "
            "it again (its cues and trials would be mostly missing)"
        )
    if announced > 0 and found < announced:
        part = f" and {extra} bytes of an incomplete one (ignored)" if extra else ""
        warnings.warn(
            f"{path}: truncated EDF file: its header announces {announced} data records "
            f"({announced * record_s:g} s), the file holds {found} "
            f"({found * record_s:g} s){part}; reading the {found} whole records",
            stacklevel=3,
        )


def _read_raw(path: Path):  # -> mne.io.Raw
    """The checked EDF run with the 64 channels picked in file order (not filtered).

    A truncated file is read as far as it goes, with a warning of ours (MNE's own, which
    does not name the file, is silenced with its other messages)."""
    import mne
    from mne.datasets import eegbci

    path = Path(path)
    _check_records(path)
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
    eeg, y, onset, _ = _read_run(path, l_freq=l_freq, h_freq=h_freq, window=window, stats=stats)
    return eeg, y, onset


def _read_run(
    path: str | Path,
    *,
    l_freq: float,
    h_freq: float,
    window: int,
    stats: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """:func:`read_run` plus the (mean, s.d.) per channel (V) it z-scored with."""
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
    std = _flat_to_unit(path, np.asarray(std))
    data = (data - mean[:, None]) / std[:, None]
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
    return eeg, labels.astype(np.int64), onsets.astype(np.int64), (np.asarray(mean), std)


@locked("cache_path", "ferrocim data prepare")
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
    stats: ChannelStats | None = None,
) -> Path:
    """Preprocess EEGMMIDB under ``root`` into the HDF5 cache ``cache_path``; return its path.

    subjects: subject numbers (default: every ``S###`` folder found, minus the excluded
    six). normalization: "global" (published; statistics over ``stats_runs`` of every
    chosen subject, all 14 runs by default: a data set with only the imagery runs, such as
    the synthetic one, needs ``stats_runs=(4, 8, 12)``) or "per_run". The cache is rebuilt
    when any parameter, the subject list, or a source file's size or modification time
    differs from what it records (or when ``force``).

    stats: z-score with these statistics (a training population's, ``--stats-from``)
    instead of the chosen subjects' own; needs global normalisation and the same band.
    The statistics used are stored in the cache either way. Runs holding the writer lock
    of ``cache_path`` (:mod:`ferrocim.locks`), as ``ferrocim data prepare`` does.
    """
    from ferrocim.logs import progress as progress_bar

    check_range("l_freq", l_freq, 0.0, low_inclusive=False)
    check_range("h_freq", h_freq, l_freq, SFREQ / 2, low_inclusive=False, high_inclusive=False)
    check_range("window", window, 1)
    check_option("normalization", normalization, ("global", "per_run"))
    if stats is not None:
        if normalization != "global":
            raise InputError(
                "--stats-from gives one mean/s.d. per channel (global normalisation); it "
                "cannot be combined with --normalization per_run"
            )
        if list(stats.ch_names) != list(EEGMMIDB_CHANNELS):
            raise InputError(
                f"--stats-from {stats.origin}: its channels {list(stats.ch_names)[:3]}… are "
                "not the 64 EEGMMIDB channels in file order"
            )
        if (stats.l_freq, stats.h_freq) != (float(l_freq), float(h_freq)):
            raise InputError(
                f"--stats-from {stats.origin}: statistics of data band-passed "
                f"{stats.l_freq:g}-{stats.h_freq:g} Hz cannot z-score data band-passed "
                f"{l_freq:g}-{h_freq:g} Hz (--l-freq/--h-freq); prepare the population with "
                "the same band, or normalise with the subjects' own statistics"
            )
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
    if normalization == "global" and stats is None:
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
            f"per channel, with the given statistics ({stats.origin})"
            if stats is not None
            else f"per channel, one mean and s.d. over the filtered runs "
            f"{_runs_text(stats_runs)} of all subjects prepared"
            if normalization == "global"
            else "per channel over the whole filtered run"
        ),
        "window": int(window),
        "sfreq": SFREQ,
        "labels": {"T1": 0, "T2": 1},
    }
    if stats is not None:
        params["stats_from"] = {"origin": stats.origin, "digest": stats.digest()}
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
    if normalization == "global" and stats is None:
        it = progress_bar(stats_files, desc="channel statistics", unit="run", disable=not progress)
        mean, std = channel_stats(list(it), l_freq=l_freq, h_freq=h_freq)
        stats = ChannelStats(
            mean=mean,
            std=std,
            ch_names=tuple(EEGMMIDB_CHANNELS),
            l_freq=float(l_freq),
            h_freq=float(h_freq),
            origin=f"global over runs {_runs_text(stats_runs)} of subjects {chosen} "
            f"under {Path(root).resolve()}",
        )
    given = None if stats is None else (stats.mean, stats.std)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("eeg", "y", "subject", "run", "onset")}
    run_keys, run_mean, run_std = [], [], []
    for s, r, p in progress_bar(files, desc="prepare", unit="run", disable=not progress):
        eeg, y, onset, used = _read_run(p, l_freq=l_freq, h_freq=h_freq, window=window, stats=given)
        if stats is None:
            run_keys.append((s, r))
            run_mean.append(used[0])
            run_std.append(used[1])
        parts["eeg"].append(eeg)
        parts["y"].append(y)
        parts["onset"].append(onset)
        parts["subject"].append(np.full(len(y), s, dtype=np.int64))
        parts["run"].append(np.full(len(y), r, dtype=np.int64))
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    per_run = None
    if stats is None:
        per_run = (np.asarray(run_keys), np.stack(run_mean), np.stack(run_std))
    return write_cache(
        cache_path,
        arrays,
        params=params,
        source=source,
        ch_names=list(EEGMMIDB_CHANNELS),
        stats=stats,
        run_stats=per_run,
    )


def _runs_text(runs: Sequence[int]) -> str:
    """``1-14`` for all runs, else ``4,8,12``."""
    runs = [int(r) for r in runs]
    return "1-14" if runs == list(range(1, 15)) else ",".join(str(r) for r in runs)
