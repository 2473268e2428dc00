"""Synthetic EEGMMIDB: every run of every subject, modelled on what the real recordings hold.

The embedded default data set. It is written in the PhysioNet EEGMMIDB file layout and read
back by the real loader (:func:`ferrocim.snn.data.eegmmidb.prepare_eegmmidb`), so the real
path is the tested path; and it is built so that the EEG network reads it as it reads the
real data set. Each component below names the measured property of EEGMMIDB it reproduces
(subject S001, all 14 runs, after the published 0.1-79 Hz band-pass;
:mod:`ferrocim.snn.data.signal_stats` computes these numbers for any prepared cache and
``tests/snn/test_realism.py`` holds the generator to them).

Geometry (cm, MNE's template 10-05 montage): the 64 electrodes, both eyes (4 cm either
side of the midline, 2 cm behind and 3 cm below the nasion) and the recording reference on
the right earlobe (``A2``). Every channel is recorded against that reference: the signal of
a channel is the potential at its electrode minus the potential at ``A2``. Measured in
S001: the electrodes next to the right ear have the smallest rms (T10 23 µV against a
median of 54 µV), channels correlate strongly (mean inter-channel correlation 0.64 in run 4)
and a rightward gaze shifts every channel negative (about −35 µV at the occipital
electrodes, which no eye field reaches).

Signal model per subject and run (µV, seconds, 160 Hz):

- **background**: one source under each electrode and one under the reference, each with
  the spectrum ``P(f) ∝ 1 / (1 + (f / f_knee)^a)`` (``f_knee`` 0.4-0.9 Hz, ``a`` 1.5-1.8
  per subject), mixed by volume conduction ``M_ij ∝ exp(-d_ij / λ)`` (``λ`` 3-5 cm) and
  scaled to 38-66 µV rms. Reproduces the real spectrum (S001: flat near 1,900 µV²/Hz below
  0.5 Hz, 216 at 2 Hz, 42 at 8 Hz, 9.5 at 20 Hz; slope about −1.6 over 2-30 Hz; 60 % of the
  1-79 Hz power of a 1-s window below 4 Hz) and its lag-1 autocorrelation (0.88 in 1-s
  windows);
- **eyes** (corneo-retinal dipoles at both eyes, potential ``p·(r − e) / |r − e|³``):
  horizontal gaze shifts move a dipole along the left-right axis, blinks and vertical gaze
  one along the vertical axis. In the left/right runs the subject looks at the cued side:
  0.18-0.28 s after a T1 (left) or T2 (right) cue (subject mean latency, ±0.04 s per trial)
  the gaze steps to that side with the subject's probability (0.85-0.99; 0.3-0.6 for weak
  subjects), drifts back to 30-70 % of the target and returns to the centre when the cue
  ends; in the fists/feet runs the gaze goes up (T1) or down (T2). The subject's ocular
  amplitude (the potential at F8 minus F7 for a full gaze shift is four times ``heog_uv``,
  25-55 µV; 3-8 µV for weak subjects) reproduces S001's class difference 0.2-0.4 s after
  the cue (F7 −95 µV, AF7 −94 µV, F8 +42 µV, AF8 +27 µV, occipital −30 µV through the
  reference; |d| > 0.8 on about 20 channels, the largest at F7, FT7, FC5, T7, FC3).
  Spontaneous saccades (0.1-0.4 per second, fixation offsets of s.d. 0.1) and blinks
  (0.1-0.4 per second, 60-180 µV at Fp1/Fp2, about 0.3 s long) reproduce the large frontal
  rms (S001: Fp1 102 µV, AF7 91 µV); none with the eyes closed (run 2);
- **slow lateralised cortical potential**: during a left/right cue a negativity over the
  contralateral motor area (2-8 µV, a Gaussian of 5-7 cm around C3/C4: volume conducted
  over a broad area, 0.3 s time constant, from 0.15 s after the cue), a third of it
  ipsilateral; over Cz for feet; 1.5× in the executed-movement runs;
- **sensorimotor rhythms**: mu (8.5-12.5 Hz) and beta (17-25 Hz) sources under C3 and C4
  (Gaussian of 3 cm), slowly fluctuating in amplitude, peaking 1-5 dB above the background
  (S001: about 3 dB), with event-related desynchronisation of 15-45 % over the contralateral
  hemisphere (a quarter of it ipsilateral; both for fists, none for feet) from 0.1 s after
  the cue (0.15 s time constant): a weak contrast, as measured (S001: 8-30 Hz log-power
  effect size at most 0.5 on any channel);
- **occipital alpha** (Oz, 9-11 Hz): small with eyes open, five times larger with the eyes
  closed (S001: +17 dB at Oz in run 2);
- 60 Hz line pick-up (0.5-2 µV), 0.7 µV sensor noise, channel gains ±5 %.

Per-subject variation: every parameter above is drawn per subject from its range; every
``weak_every``-th subject (default 4) is a weak performer (little ocular signal, gaze
probability 0.3-0.6, slow potential below 1 µV and ERD below 10 %), as EEGMMIDB has
subjects near chance.

Runs as in EEGMMIDB: 1 baseline with eyes open and 2 with eyes closed (61 s, one T0
annotation), 3/7/11 executed and 4/8/12 imagined left/right fist (T1 left, T2 right), 5/9/13
executed and 6/10/14 imagined both fists (T1) / both feet (T2); task runs 130 s with 15 cues
of 4.1 s (7 or 8 of each class, shuffled) between 4.2-s rests. Files:
``OUT/S001/S001R01.edf`` … ``S001R14.edf``, 64 channels with the real dot-padded labels,
160 Hz; ``OUT/SYNTHETIC.json`` lists the subject profiles. Subject numbers skip the six
excluded EEGMMIDB subjects.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

from ferrocim.atomic import atomic_path, write_json
from ferrocim.checks import InputError, check_range
from ferrocim.snn.data.grid import EDF_LABELS, EEGMMIDB_CHANNELS

__all__ = [
    "ALL_RUNS",
    "GENERATOR_VERSION",
    "RUNS",
    "SubjectProfile",
    "channel_positions",
    "subject_ids",
    "subject_profiles",
    "synthesize_edf",
    "synthesize_run",
    "write_run_edf",
]

SFREQ = 160.0
RUNS = (4, 8, 12)
"""The imagined left/right fist runs (the paper's classification task)."""
ALL_RUNS = tuple(range(1, 15))
"""Every EEGMMIDB run: what :func:`synthesize_edf` writes by default."""
EXCLUDED_SUBJECTS = (88, 89, 92, 100, 104, 106)
N_CUES = 15
CUE_S = 4.1
REST_S = 4.2
RUN_S = 130.0
BASELINE_S = 61.0
PHYSICAL_RANGE_UV = 1000.0
AMPLITUDE_FLUCTUATION = 0.1
"""Standard deviation of the log-amplitude of the slow (~1 s) mu/beta fluctuation."""
GENERATOR_VERSION = 3
"""Bumped whenever a change alters the generated signals (caches key on it; older caches are
refused by name).

Version 3 models what EEGMMIDB holds (see the module docstring): steep background, a
reference on the right ear, eye movements toward the cued side, broad slow potentials and
weak ERD. Version 2 put the class information into mu/beta power (|t| up to 13 on 18
channels) and a slow shift confined to C3/C4; its background was too white (30-42 % of the
power below 4 Hz against 61-67 % in S001, lag-1 autocorrelation 0.76 against 0.94) and
too small (11-21 µV rms against 52 µV), and the paper's settings stayed at chance on it."""

#: which kind of run each EEGMMIDB run number is
_TASKS: dict[int, str] = {
    1: "eyes-open", 2: "eyes-closed",
    3: "lr-executed", 7: "lr-executed", 11: "lr-executed",
    4: "lr-imagined", 8: "lr-imagined", 12: "lr-imagined",
    5: "ff-executed", 9: "ff-executed", 13: "ff-executed",
    6: "ff-imagined", 10: "ff-imagined", 14: "ff-imagined",
}  # fmt: skip
_EYE_OFFSET_CM = (4.0, -2.0, -3.0)
"""Eye centres relative to the nasion: ±x (lateral), y (behind), z (below), cm."""
_REFERENCE = "A2"


@dataclass(frozen=True)
class SubjectProfile:
    """One synthetic subject (µV at the stated place, Hz, s, cm; probabilities in [0, 1])."""

    subject: int
    weak: bool
    background_uv: float
    """median channel rms of the background after referencing"""
    knee_hz: float
    exponent: float
    conduction_cm: float
    heog_uv: float
    """a quarter of the F8 − F7 potential of a full gaze shift to one side"""
    gaze_prob: float
    gaze_latency_s: float
    gaze_hold: float
    """share of the target eccentricity the gaze keeps after the first saccade"""
    saccade_rate_hz: float
    blink_uv: float
    """blink amplitude at Fp1/Fp2"""
    blink_rate_hz: float
    slow_uv: float
    slow_spread_cm: float
    erd_depth: float
    mu_freq: float
    mu_uv: float
    beta_freq: float
    beta_uv: float
    alpha_uv: float
    line_uv: float


def subject_ids(n_subjects: int) -> list[int]:
    """The first ``n_subjects`` EEGMMIDB subject numbers that are not excluded."""
    ids = [s for s in range(1, 110) if s not in EXCLUDED_SUBJECTS]
    if not 1 <= n_subjects <= len(ids):
        check_range("n_subjects", n_subjects, 1, len(ids))
    return ids[:n_subjects]


def subject_profiles(n_subjects: int, *, seed: int, weak_every: int = 4) -> list[SubjectProfile]:
    """Profiles of the first ``n_subjects`` subjects; subject ``i`` depends only on (seed, i)."""
    out = []
    for k, subject in enumerate(subject_ids(n_subjects)):
        rng = np.random.default_rng([seed, subject, GENERATOR_VERSION])
        weak = weak_every > 0 and (k + 1) % weak_every == 0
        u = rng.uniform
        out.append(
            SubjectProfile(
                subject=subject,
                weak=weak,
                background_uv=float(u(38.0, 66.0)),
                knee_hz=float(u(0.4, 0.9)),
                exponent=float(u(1.5, 1.8)),
                conduction_cm=float(u(3.0, 5.0)),
                heog_uv=float(u(3.0, 8.0) if weak else u(25.0, 55.0)),
                gaze_prob=float(u(0.3, 0.6) if weak else u(0.85, 0.99)),
                gaze_latency_s=float(u(0.18, 0.28)),
                gaze_hold=float(u(0.3, 0.7)),
                saccade_rate_hz=float(u(0.1, 0.4)),
                blink_uv=float(u(60.0, 180.0)),
                blink_rate_hz=float(u(0.1, 0.4)),
                slow_uv=float(u(0.0, 1.0) if weak else u(2.0, 8.0)),
                slow_spread_cm=float(u(5.0, 7.0)),
                erd_depth=float(u(0.0, 0.1) if weak else u(0.15, 0.45)),
                mu_freq=float(u(8.5, 12.5)),
                mu_uv=float(u(4.0, 11.0)),
                beta_freq=float(u(17.0, 25.0)),
                beta_uv=float(u(2.0, 5.0)),
                alpha_uv=float(u(3.0, 8.0)),
                line_uv=float(u(0.5, 2.0)),
            )
        )
    return out


def _montage_positions() -> dict[str, np.ndarray]:
    """Electrode and fiducial positions in cm from MNE's template 10-05 montage."""
    import mne

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        try:
            montage = mne.channels.make_standard_montage("colin27_1005")
        except ValueError:  # MNE < 1.13
            montage = mne.channels.make_standard_montage("standard_1005")
    pos = montage.get_positions()
    out = {name: np.asarray(p) * 100.0 for name, p in pos["ch_pos"].items()}
    out["nasion"] = np.asarray(pos["nasion"]) * 100.0
    return out


def channel_positions() -> np.ndarray:
    """(64, 3) electrode positions in cm from MNE's template 10-05 montage (file order)."""
    pos = _montage_positions()
    return np.array([pos[name] for name in EEGMMIDB_CHANNELS])


@dataclass(frozen=True)
class _Geometry:
    """Where electrodes, reference and eyes are, and the fields that follow (cm, unitless)."""

    electrodes: np.ndarray  # (64, 3)
    reference: np.ndarray  # (3,)
    eyes: np.ndarray  # (2, 3)

    @functools.cached_property
    def sites(self) -> np.ndarray:
        """(65, 3): the electrodes, then the reference."""
        return np.vstack([self.electrodes, self.reference])

    @functools.cached_property
    def dist(self) -> np.ndarray:
        """(65, 65) distances between the sites, cm."""
        return np.linalg.norm(self.sites[:, None] - self.sites[None], axis=-1)

    def referenced(self, potential: np.ndarray) -> np.ndarray:
        """Potentials at the 65 sites (65, ...) → the 64 recorded channels (64, ...)."""
        return potential[:64] - potential[64]

    def pattern(self, name: str, sigma_cm: float) -> np.ndarray:
        """(65,) Gaussian spread around electrode ``name`` (1 there), before referencing."""
        return np.exp(-0.5 * (self.dist[EEGMMIDB_CHANNELS.index(name)] / sigma_cm) ** 2)

    def eye_field(self, axis: int) -> np.ndarray:
        """(64,) recorded potential of unit dipoles at both eyes along ``axis`` (0: to the
        right, 2: up), scaled so that the eye channel pair differs by 4 (F8 − F7 for the
        horizontal field, Fp1/Fp2 mean 1 for the vertical one)."""
        r = self.sites[:, None, :] - self.eyes[None]  # (65, 2, 3)
        v = (r[..., axis] / np.linalg.norm(r, axis=-1) ** 3).sum(axis=1)
        rec = self.referenced(v)
        if axis == 0:
            ch = EEGMMIDB_CHANNELS
            return 4.0 * rec / (rec[ch.index("F8")] - rec[ch.index("F7")])
        fp = rec[[EEGMMIDB_CHANNELS.index("Fp1"), EEGMMIDB_CHANNELS.index("Fp2")]].mean()
        return rec / fp


@functools.cache
def _geometry() -> _Geometry:
    pos = _montage_positions()
    dx, dy, dz = _EYE_OFFSET_CM
    nasion = pos["nasion"]
    eyes = nasion + np.array([(-dx, dy, dz), (dx, dy, dz)])
    return _Geometry(channel_positions(), pos[_REFERENCE], eyes)


def _coloured(rng: np.random.Generator, n_src: int, n: int, amplitude) -> np.ndarray:
    """Unit-variance Gaussian noise with amplitude spectrum ``amplitude(f)``, (n_src, n)."""
    spec = rng.standard_normal((n_src, n // 2 + 1)) + 1j * rng.standard_normal((n_src, n // 2 + 1))
    f = np.fft.rfftfreq(n, 1 / SFREQ)
    spec *= amplitude(f)
    spec[:, 0] = 0
    x = np.fft.irfft(spec, n)
    return x / x.std(axis=1, keepdims=True)


def _narrowband(rng: np.random.Generator, n_src: int, n: int, freq: float, bw: float) -> np.ndarray:
    """Unit-variance Gaussian-spectrum narrow-band noise around ``freq`` Hz, shape (n_src, n)."""
    return _coloured(rng, n_src, n, lambda f: np.exp(-0.5 * ((f - freq) / (bw / 2.355)) ** 2))


def _smooth(x: np.ndarray, tau_s: float) -> np.ndarray:
    """One-pole low-pass with time constant ``tau_s`` seconds along the last axis."""
    a = np.exp(-1.0 / (tau_s * SFREQ))
    return lfilter([1 - a], [1, -a], x, axis=-1)


def _cue_schedule(
    rng: np.random.Generator, task: str
) -> tuple[list[tuple[float, float, str]], float]:
    """Annotations (onset s, duration s, code) and the run's length in s."""
    if task.startswith("eyes"):
        return [(0.0, BASELINE_S, "T0")], BASELINE_S
    n_left = int(rng.integers(7, 9))
    labels = np.array([0] * n_left + [1] * (N_CUES - n_left))
    rng.shuffle(labels)
    ann = []
    t = 0.0
    for y in labels:
        ann.append((t, REST_S, "T0"))
        t += REST_S
        ann.append((t, CUE_S, "T2" if y else "T1"))
        t += CUE_S
    ann.append((t, REST_S, "T0"))
    return ann, RUN_S


def _gaze(
    rng: np.random.Generator,
    profile: SubjectProfile,
    ann: list[tuple[float, float, str]],
    n: int,
    task: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal and vertical gaze (full target eccentricity = 1), shape (n,) each.

    Between cues the subject fixates the centre; with the subject's probability a cue draws
    a saccade to the cued side after ``gaze_latency_s`` (±0.04 s per trial; S001: the class
    difference at F7 sets in 0.19 s after the cue and peaks at 0.25-0.3 s), after which the
    gaze drifts back to ``gaze_hold`` of the target (0.3 s time constant; S001: F7 difference
    −109 µV at 0.28 s, −40 to −70 µV at 0.6-1 s) until the cue ends. Spontaneous saccades
    (Poisson, ``saccade_rate_hz``) move the fixation by ±0.15; everything is smoothed with a
    15 ms time constant (a saccade takes tens of ms)."""
    pos = np.zeros((2, n))
    if task == "eyes-closed":
        return pos[0], pos[1]
    axis = 0 if task.startswith("lr") else 1
    for onset, dur, code in ann:
        if code == "T0" or rng.uniform() > profile.gaze_prob:
            continue
        lat = max(0.12, rng.normal(profile.gaze_latency_s, 0.04))
        i0 = int((onset + lat) * SFREQ)
        i1 = min(n, int((onset + dur + lat) * SFREQ))
        # T1: left fist (look left) or both fists (look up); T2: right fist / feet (down)
        side = (-1.0 if code == "T1" else 1.0) * (1.0 if axis == 0 else -1.0)
        amp = side * float(np.clip(rng.normal(1.0, 0.15), 0.5, 1.5))
        t = np.arange(i1 - i0) / SFREQ
        hold = profile.gaze_hold
        pos[axis, i0:i1] = amp * (hold + (1.0 - hold) * np.exp(-t / 0.3))
    t_end = n / SFREQ
    events = np.sort(rng.integers(0, n, rng.poisson(profile.saccade_rate_hz * t_end)))
    bounds = np.r_[0, events, n]
    offsets = rng.normal(0.0, 0.1, (len(bounds) - 1, 2))
    for k in range(len(bounds) - 1):
        pos[:, bounds[k] : bounds[k + 1]] += offsets[k][:, None]
    pos = _smooth(pos, 0.015)
    return pos[0], pos[1]


def _blinks(rng: np.random.Generator, rate_hz: float, n: int) -> np.ndarray:
    """Blink time course (peak 1, about 0.3 s long), Poisson times, shape (n,)."""
    impulses = np.zeros(n)
    times = rng.uniform(0, n / SFREQ, rng.poisson(rate_hz * n / SFREQ))
    impulses[(times * SFREQ).astype(int)] = rng.uniform(0.7, 1.3, len(times))
    t = np.arange(int(0.5 * SFREQ)) / SFREQ
    kernel = (t / 0.08) ** 2 * np.exp(2.0 - 2.0 * t / 0.08)  # peak 1 at 80 ms
    return np.convolve(impulses, kernel)[:n]


def synthesize_run(
    profile: SubjectProfile, run: int, *, seed: int, positions: np.ndarray | None = None
) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """EEG of one run in µV, shape (64, samples), and its annotations.

    ``positions`` is accepted for compatibility and ignored (the geometry is the template
    montage's)."""
    if run not in _TASKS:
        raise InputError(f"run must be one of 1-14 (EEGMMIDB runs), got {run}")
    task = _TASKS[run]
    geo = _geometry()
    rng = np.random.default_rng([seed, profile.subject, run, GENERATOR_VERSION])
    ann, length_s = _cue_schedule(rng, task)
    n = int(length_s * SFREQ)
    n_sites = geo.sites.shape[0]

    knee, a = profile.knee_hz, profile.exponent
    src = _coloured(rng, n_sites, n, lambda f: 1.0 / np.sqrt(1.0 + (f / knee) ** a))
    mix = np.exp(-geo.dist / profile.conduction_cm)
    mix /= np.sqrt((mix**2).sum(axis=1, keepdims=True))
    background = geo.referenced(mix @ src)
    background *= profile.background_uv / np.median(background.std(axis=1))
    eeg = background

    # cue envelopes of the left (C3) and right (C4) hemisphere and of the midline (Cz)
    box = np.zeros((3, n))
    for onset, dur, code in ann:
        if code == "T0":
            continue
        i0, i1 = int((onset + 0.1) * SFREQ), int((onset + dur) * SFREQ)
        if task.startswith("lr"):
            contra = 1 if code == "T1" else 0  # left-hand imagery -> right hemisphere
            box[contra, i0:i1] = 1.0
            box[1 - contra, i0:i1] = 0.25
        elif code == "T1":  # both fists
            box[0:2, i0:i1] = 1.0
        else:  # both feet
            box[2, i0:i1] = 1.0
    executed = task.endswith("executed")
    c3, c4 = geo.pattern("C3", 3.0), geo.pattern("C4", 3.0)

    # sensorimotor rhythms with ERD (hand areas only)
    erd = 1.0 - profile.erd_depth * (1.5 if executed else 1.0) * _smooth(box[:2], 0.15)
    fluct = np.exp(AMPLITUDE_FLUCTUATION * _smooth(rng.standard_normal((2, n)), 1.0)
                   * np.sqrt(2 * SFREQ))  # fmt: skip
    for freq, amp, bw in (
        (profile.mu_freq, profile.mu_uv, 2.0),
        (profile.beta_freq, profile.beta_uv, 4.0),
    ):
        s = _narrowband(rng, 2, n, freq, bw) * erd.clip(0.0) * fluct * amp
        eeg += geo.referenced(np.outer(c3, s[0]) + np.outer(c4, s[1]))

    # slow lateralised cortical potential (negative, broad), from 0.15 s after the cue
    spread = profile.slow_spread_cm
    shifted = np.roll(box, int(0.05 * SFREQ), axis=1)
    shifted[:, : int(0.05 * SFREQ)] = 0.0
    slow = -profile.slow_uv * (1.5 if executed else 1.0) * _smooth(shifted, 0.3)
    slow_l, slow_r = slow[0] + slow[1] / 3.0, slow[1] + slow[0] / 3.0  # ipsilateral third
    eeg += geo.referenced(
        np.outer(geo.pattern("C3", spread), slow_l)
        + np.outer(geo.pattern("C4", spread), slow_r)
        + np.outer(geo.pattern("Cz", spread), slow[2])
    )

    # eyes: gaze and blinks
    horizontal, vertical = _gaze(rng, profile, ann, n, task)
    eeg += np.outer(geo.eye_field(0), profile.heog_uv * horizontal)
    eeg += np.outer(geo.eye_field(2), profile.heog_uv * vertical)
    if task != "eyes-closed":
        eeg += np.outer(geo.eye_field(2), profile.blink_uv * _blinks(rng, profile.blink_rate_hz, n))

    alpha_gain = 5.0 if task == "eyes-closed" else 1.0
    alpha = _narrowband(rng, 1, n, float(rng.uniform(9.0, 11.0)), 2.0)[0]
    eeg += geo.referenced(np.outer(geo.pattern("Oz", 4.0), profile.alpha_uv * alpha_gain * alpha))
    t = np.arange(n) / SFREQ
    line = profile.line_uv * np.sin(2 * np.pi * 60.0 * t + rng.uniform(0, 2 * np.pi))
    eeg += np.outer(rng.uniform(0.5, 1.5, 64), line)
    eeg += 0.7 * rng.standard_normal((64, n))
    eeg *= rng.normal(1.0, 0.05, size=(64, 1))
    return eeg, ann


def write_run_edf(
    path: str | Path,
    eeg_uv: np.ndarray,
    annotations: list[tuple[float, float, str]],
    *,
    sfreq: float = SFREQ,
    labels: tuple[str, ...] = EDF_LABELS,
) -> Path:
    """Write one run as EDF+: ``eeg_uv`` (n_channels, n) in µV, labels as in EEGMMIDB files
    by default, annotations ``(onset s, duration s, code)``. Written atomically."""
    from edfio import Edf, EdfAnnotation, EdfSignal

    lim = PHYSICAL_RANGE_UV
    signals = [
        EdfSignal(
            np.clip(x, -lim, lim),
            sfreq,
            label=label,
            physical_dimension="uV",
            physical_range=(-lim, lim),
        )
        for label, x in zip(labels, eeg_uv, strict=True)
    ]
    edf = Edf(
        signals,
        data_record_duration=1.0,
        annotations=[EdfAnnotation(on, dur, code) for on, dur, code in annotations],
    )
    path = Path(path)
    with atomic_path(path) as tmp:
        edf.write(tmp)
    return path


def synthesize_edf(
    out_root: str | Path,
    n_subjects: int,
    *,
    seed: int,
    weak_every: int = 4,
    runs: Sequence[int] = ALL_RUNS,
    progress: bool = False,
) -> Path:
    """Write ``n_subjects`` synthetic subjects in the PhysioNet layout under ``out_root``.

    runs: which EEGMMIDB runs to write (default all 14, so that the published global
    normalisation over all runs works; :data:`RUNS` writes only the imagery runs). Returns
    ``out_root``. Same ``seed`` ⇒ identical files; subject ``k`` does not depend on how
    many subjects are written.
    """
    from ferrocim.logs import progress as progress_bar

    bad = [r for r in runs if r not in _TASKS]
    if bad or not runs:
        raise InputError(f"runs must be EEGMMIDB run numbers 1-14, got {list(runs)}")
    root = Path(out_root)
    profiles = subject_profiles(n_subjects, seed=seed, weak_every=weak_every)
    jobs = [(p, run) for p in profiles for run in runs]
    for p, run in progress_bar(jobs, desc="synthesize", unit="run", disable=not progress):
        eeg, ann = synthesize_run(p, run, seed=seed)
        sub = f"S{p.subject:03d}"
        write_run_edf(root / sub / f"{sub}R{run:02d}.edf", eeg, ann)
    write_json(
        root / "SYNTHETIC.json",
        {
            "generator": "ferrocim.snn.data.synthetic",
            "generator_version": GENERATOR_VERSION,
            "seed": seed,
            "weak_every": weak_every,
            "sfreq": SFREQ,
            "runs": [int(r) for r in runs],
            "subjects": [asdict(p) for p in profiles],
        },
    )
    return root
