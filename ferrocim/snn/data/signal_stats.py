"""What a prepared EEG data set holds, in the numbers a stand-in has to match.

:func:`eeg_statistics` summarises the cue windows of a prepared cache (or of any
``(trials, 64, samples)`` array of z-scored windows) in the quantities that decide what a
network trained on them can learn, so that the synthetic generator can be checked against
real recordings (:func:`compare`). All spectra are periodograms of single 1-s windows
(Hann taper, window mean removed, 1 Hz bins at 160 Hz), averaged over trials:

- ``band_share``: the share of the 1-79 Hz power below 4 Hz, in 4-8, 8-13, 13-30 and
  above 30 Hz (mean over channels);
- ``slope``: the least-squares slope of log10 power against log10 frequency over 2-30 Hz
  of the channel-averaged spectrum (a 1/f spectrum has -1);
- ``lag1``: the lag-1 autocorrelation of the windows (window mean removed), mean over
  channels and trials;
- ``mu_peak_db``: at C3 and C4 (mean of the two), the largest excess in dB over 8-13 Hz
  of the channel's spectrum above a straight log-log line fitted to 2-7 and 14-30 Hz;
- ``rms_uv``: per channel, the s.d. in µV the cache was normalised with (``scale_uv``);
  ``None`` when the scale is not known;
- ``d_mean``: per channel, Cohen's d (class 1 minus class 0, pooled s.d.) of the window
  mean; ``d_power``: the same for the log of the 8-30 Hz power;
- ``diff_uv_early``: per channel, the class-mean difference (1 − 0) in µV of the mean
  over 0.2-0.4 s after the cue (needs ``scale_uv``);
- ``acc_low`` / ``acc_high``: within-subject cross-validated accuracy (stratified 5-fold,
  shrinkage LDA, scikit-learn) on the content below 4 Hz (the low-passed window averaged
  in eight 0.125-s segments per channel) and above 4 Hz (log power in 4-8, 8-13, 13-30
  and 30-79 Hz per channel), averaged over subjects; ``low_share`` =
  ``(acc_low − ½) / ((acc_low − ½) + (acc_high − ½))`` with both excesses floored at 0:
  how much of what a linear reader finds lies below 4 Hz (``nan`` when neither is above
  chance).

Per-subject quantities are computed per subject and their median is reported, so that one
data set of many subjects compares with one real subject.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.signal import butter, periodogram, sosfiltfilt

from ferrocim.checks import InputError
from ferrocim.snn.data.grid import EEGMMIDB_CHANNELS

__all__ = [
    "BANDS",
    "EEGStatistics",
    "cache_statistics",
    "compare",
    "eeg_statistics",
    "format_comparison",
]

SFREQ = 160.0
BANDS: dict[str, tuple[float, float]] = {
    "<4": (1.0, 4.0),
    "4-8": (4.0, 8.0),
    "8-13": (8.0, 13.0),
    "13-30": (13.0, 30.0),
    ">30": (30.0, 80.0),
}
"""Frequency bands in Hz, [low, high); the 1-79 Hz bins are shared out among them."""
FRONTAL_TEMPORAL = ("F7", "AF7", "FT7", "T7", "FC5", "F8", "AF8", "FT8", "T8", "FC6")
"""Channels where horizontal eye movements show (reported with their effect sizes)."""


@dataclass(frozen=True)
class EEGStatistics:
    """The summary of one data set (see the module docstring for each field's definition).

    Per-channel arrays are (64,) in :data:`EEGMMIDB_CHANNELS` order; ``None`` where the
    channel scale was not known.
    """

    n_trials: int
    n_subjects: int
    band_share: dict[str, float]
    slope: float
    lag1: float
    mu_peak_db: float
    rms_uv: np.ndarray | None
    d_mean: np.ndarray
    d_power: np.ndarray
    diff_uv_early: np.ndarray | None
    acc_low: float
    acc_high: float
    low_share: float
    per_subject_acc_low: dict[int, float] = field(default_factory=dict)

    def channel(self, name: str, what: str) -> float:
        """One channel's value of a per-channel field, e.g. ``channel("F7", "d_mean")``."""
        arr = getattr(self, what)
        if arr is None:
            return float("nan")
        return float(arr[EEGMMIDB_CHANNELS.index(name)])

    def summary(self) -> dict[str, float]:
        """The scalar numbers compared by :func:`compare` (name → value)."""
        out = {f"share {k} Hz": v for k, v in self.band_share.items()}
        out |= {"slope 2-30 Hz": self.slope, "lag-1 autocorr.": self.lag1,
                "mu peak C3/C4 dB": self.mu_peak_db}  # fmt: skip
        if self.rms_uv is not None:
            out["median rms µV"] = float(np.median(self.rms_uv))
        out["max |d| window mean"] = float(np.max(np.abs(self.d_mean)))
        out["n |d| mean > 0.8"] = float(np.sum(np.abs(self.d_mean) > 0.8))
        out["max |d| 8-30 Hz power"] = float(np.max(np.abs(self.d_power)))
        if self.diff_uv_early is not None:
            for ch in ("F7", "AF7", "F8", "AF8"):
                out[f"diff {ch} 0.2-0.4 s µV"] = self.channel(ch, "diff_uv_early")
        out |= {"acc <4 Hz": self.acc_low, "acc >4 Hz": self.acc_high,
                "share of class info <4 Hz": self.low_share}  # fmt: skip
        return out


def _cohen_d(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cohen's d of ``a`` (trials, ...) between y == 1 and y == 0, pooled s.d."""
    a1, a0 = a[y == 1], a[y == 0]
    n1, n0 = len(a1), len(a0)
    pooled = np.sqrt(((n1 - 1) * a1.var(axis=0, ddof=1) + (n0 - 1) * a0.var(axis=0, ddof=1))
                     / max(n1 + n0 - 2, 1))  # fmt: skip
    return (a1.mean(axis=0) - a0.mean(axis=0)) / np.where(pooled > 0, pooled, np.inf)


def _band_logpower(f: np.ndarray, p: np.ndarray) -> np.ndarray:
    """(trials, channels, 4) log power in 4-8, 8-13, 13-30 and 30-79 Hz."""
    edges = [(4, 8), (8, 13), (13, 30), (30, 80)]
    return np.stack(
        [np.log(p[..., (f >= lo) & (f < hi)].sum(axis=-1) + 1e-12) for lo, hi in edges], -1
    )


def _cv_accuracy(features: np.ndarray, y: np.ndarray, seed: int) -> float:
    """Stratified 5-fold (fewer when a class is small) shrinkage-LDA accuracy."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    k = int(min(5, np.bincount(y, minlength=2).min()))
    if k < 2:
        return float("nan")
    clf = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return float(cross_val_score(clf, features.reshape(len(y), -1), y, cv=cv).mean())


def eeg_statistics(
    eeg: np.ndarray,
    y: np.ndarray,
    subject: np.ndarray | None = None,
    *,
    scale_uv: np.ndarray | None = None,
    ch_names: Sequence[str] = EEGMMIDB_CHANNELS,
    seed: int = 0,
) -> EEGStatistics:
    """Summarise z-scored cue windows ``eeg`` (trials, 64, samples at 160 Hz).

    y: labels (0 = T1 left, 1 = T2 right); subject: subject number per trial (one subject
    when None); scale_uv: the per-channel s.d. in µV the windows were divided by (the
    global normalisation's), which turns them back into µV for ``rms_uv`` and
    ``diff_uv_early``.
    """
    eeg = np.asarray(eeg, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if eeg.ndim != 3 or eeg.shape[0] != len(y):
        raise InputError(
            f"eeg must be (trials, channels, samples) with len(y) trials, got {eeg.shape}"
        )
    if list(ch_names) != list(EEGMMIDB_CHANNELS):
        order = [list(ch_names).index(c) for c in EEGMMIDB_CHANNELS]
        eeg = eeg[:, order]
    subject = np.zeros(len(y), np.int64) if subject is None else np.asarray(subject)
    if eeg.shape[2] < 80:
        raise InputError(f"windows of {eeg.shape[2]} samples are too short (need >= 0.5 s)")

    centred = eeg - eeg.mean(axis=-1, keepdims=True)
    f, p = periodogram(centred, fs=SFREQ, window="hann", detrend=False, axis=-1)
    keep = (f >= 1.0) & (f < 80.0)
    mean_ch = p.mean(axis=0)  # (channels, freqs)
    total = mean_ch[:, keep].sum(axis=-1)
    share = {
        name: float(np.mean(mean_ch[:, (f >= lo) & (f < hi)].sum(axis=-1) / total))
        for name, (lo, hi) in BANDS.items()
    }
    fit = (f >= 2) & (f <= 30)
    spec = mean_ch.mean(axis=0)
    slope = float(np.polyfit(np.log10(f[fit]), np.log10(spec[fit]), 1)[0])
    lag1 = float(
        np.mean((centred[..., 1:] * centred[..., :-1]).sum(-1) / (centred**2).sum(-1).clip(1e-12))
    )
    flank = ((f >= 2) & (f <= 7)) | ((f >= 14) & (f <= 30))
    mu = (f >= 8) & (f <= 13)
    peaks = []
    for ch in ("C3", "C4"):
        s = mean_ch[EEGMMIDB_CHANNELS.index(ch)]
        coef = np.polyfit(np.log10(f[flank]), np.log10(s[flank]), 1)
        peaks.append(10 * np.max(np.log10(s[mu]) - np.polyval(coef, np.log10(f[mu]))))
    mu_peak = float(np.mean(peaks))

    scale = None if scale_uv is None else np.asarray(scale_uv, dtype=np.float64)
    d_mean = np.zeros(eeg.shape[1])
    d_power = np.zeros(eeg.shape[1])
    early = np.zeros(eeg.shape[1])
    i0, i1 = int(0.2 * SFREQ), int(0.4 * SFREQ)
    logpow = np.log(p[..., (f >= 8) & (f <= 30)].sum(-1) + 1e-12)
    sos = butter(4, 4.0, btype="low", fs=SFREQ, output="sos")
    low = sosfiltfilt(sos, eeg, axis=-1)
    seg = low[..., : (eeg.shape[2] // 8) * 8].reshape(*eeg.shape[:2], 8, -1).mean(-1)
    high_feat = _band_logpower(f, periodogram(eeg - low, fs=SFREQ, window="hann", axis=-1)[1])
    accs_low: dict[int, float] = {}
    accs_high = []
    subjects = np.unique(subject)
    d_means, d_pows, earlies = [], [], []
    for s in subjects:
        m = subject == s
        ys = y[m]
        if len(np.unique(ys)) < 2:
            continue
        d_means.append(_cohen_d(eeg[m].mean(-1), ys))
        d_pows.append(_cohen_d(logpow[m], ys))
        e = eeg[m, :, i0:i1].mean(-1)
        earlies.append(e[ys == 1].mean(0) - e[ys == 0].mean(0))
        accs_low[int(s)] = _cv_accuracy(seg[m], ys, seed)
        accs_high.append(_cv_accuracy(high_feat[m], ys, seed))
    if not d_means:
        raise InputError("eeg_statistics: no subject has trials of both classes")
    d_mean = np.median(np.stack(d_means), axis=0)
    d_power = np.median(np.stack(d_pows), axis=0)
    early = np.median(np.stack(earlies), axis=0)
    acc_low = float(np.median(list(accs_low.values())))
    acc_high = float(np.median(accs_high))
    ex_low, ex_high = max(acc_low - 0.5, 0.0), max(acc_high - 0.5, 0.0)
    low_share = ex_low / (ex_low + ex_high) if ex_low + ex_high > 0 else float("nan")
    return EEGStatistics(
        n_trials=len(y),
        n_subjects=len(subjects),
        band_share=share,
        slope=slope,
        lag1=lag1,
        mu_peak_db=mu_peak,
        rms_uv=scale,
        d_mean=d_mean,
        d_power=d_power,
        diff_uv_early=None if scale is None else early * scale,
        acc_low=acc_low,
        acc_high=acc_high,
        low_share=float(low_share),
        per_subject_acc_low=accs_low,
    )


def cache_statistics(
    path: str | Path, *, subjects: Sequence[int] | None = None, seed: int = 0
) -> EEGStatistics:
    """:func:`eeg_statistics` of a prepared cache (``ferrocim data prepare``), with the
    channel scale it records when it was normalised globally (per-run caches: no µV)."""
    import h5py

    from ferrocim.snn.data.cache import read_cache_attrs

    attrs = read_cache_attrs(path)
    with h5py.File(path, "r") as f:
        eeg, y, subject = f["eeg"][()], f["y"][()], f["subject"][()]
        scale = f["channel_std"][()] * 1e6 if "channel_std" in f else None
    if subjects is not None:
        keep = np.isin(subject, list(subjects))
        if not keep.any():
            raise InputError(f"{path}: no trials of subject(s) {list(subjects)}")
        eeg, y, subject = eeg[keep], y[keep], subject[keep]
    return eeg_statistics(eeg, y, subject, scale_uv=scale, ch_names=attrs["ch_names"], seed=seed)


def compare(
    ours: EEGStatistics, reference: EEGStatistics, tolerances: dict[str, tuple[float, float]]
) -> list[str]:
    """The summary numbers of ``ours`` outside ``[ref + low, ref + high]`` (one line each).

    ``tolerances`` maps a :meth:`EEGStatistics.summary` name to the allowed (low, high)
    offset from the reference value.
    """
    a, b = ours.summary(), reference.summary()
    bad = []
    for name, (lo, hi) in tolerances.items():
        if name not in a or name not in b:
            raise InputError(f"compare: no statistic {name!r} (have {sorted(a)})")
        if not b[name] + lo <= a[name] <= b[name] + hi:
            bad.append(f"{name}: {a[name]:.3g}, reference {b[name]:.3g} (allowed {lo:+g}/{hi:+g})")
    return bad


def format_comparison(columns: dict[str, EEGStatistics]) -> str:
    """A plain-text table of the summary numbers, one column per data set."""
    rows = [s.summary() for s in columns.values()]
    names = list(dict.fromkeys(k for r in rows for k in r))
    widths = [max(14, len(c) + 2) for c in columns]
    head = f"{'statistic':<28}" + "".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True))
    lines = [head]
    for n in names:
        cells = (f"{r.get(n, float('nan')):>{w}.3g}" for r, w in zip(rows, widths, strict=True))
        lines.append(f"{n:<28}" + "".join(cells))
    return "\n".join(lines)
