"""Synthetic motor-imagery EEG written in the PhysioNet EEGMMIDB file layout.

The embedded default data set: realistic enough that the real loading path
(:func:`ferrocim.snn.data.eegmmidb.prepare_eegmmidb`) is the tested path, and that a
spiking network can learn left vs right imagery from 1-s windows — but not trivially.

Signal model per subject and run (all amplitudes in µV, times in seconds, 160 Hz):

- background: 64 independent 1/f ("pink") noise sources, one under each electrode, mixed
  by volume conduction ``M_ij ∝ exp(-d_ij / λ)`` (``d`` the distance between electrodes of
  the standard 10-10 montage in cm, ``λ`` 2.5-4 cm per subject), plus 1 µV sensor noise and
  a small 60 Hz line component;
- sensorimotor rhythms: narrow-band mu (subject peak 8.5-12.5 Hz) and beta (17-25 Hz)
  sources under C3 (left hemisphere: right-hand area) and C4 (right hemisphere: left-hand
  area), spread over the scalp with a Gaussian of 3 cm, and slowly fluctuating in amplitude
  (±~10 % over ~1 s) so single trials vary;
- an occipital alpha source (Oz, ~10 Hz) that has nothing to do with the task;
- a slow negative shift over the contralateral motor area during imagery (a
  movement-related cortical potential, 18-36 µV — larger than a real one, see
  ``GENERATOR_VERSION``; 0-1.2 µV for weak performers);
- event-related desynchronisation: during a T1 cue (imagined *left* fist) the mu/beta
  amplitude over the *right* hemisphere (C4) falls by the subject's ERD depth, over C3 by a
  quarter of it; T2 (right fist) the other way round. The ERD sets in 0.1 s after the cue
  with a 0.15 s time constant and recovers after the cue ends.
- per-subject variation of all of the above and of channel gains (±5 %); every
  ``weak_every``-th subject is a weak performer (ERD depth 0-0.1: near chance).

Files: ``OUT/S001/S001R04.edf`` etc. (runs 4, 8, 12), 64 channels with the real
dot-padded labels, 160 Hz, annotations T0 (rest, 4.2 s) / T1 / T2 (4.1 s), 15 cues per
run (7 or 8 of each class, shuffled), 130 s per run. ``OUT/SYNTHETIC.json`` lists the
subject profiles. Subject numbers skip the six excluded EEGMMIDB subjects.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

from ferrocim.atomic import atomic_path, write_json
from ferrocim.checks import check_range
from ferrocim.snn.data.grid import EDF_LABELS, EEGMMIDB_CHANNELS

__all__ = [
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
EXCLUDED_SUBJECTS = (88, 89, 92, 100, 104, 106)
N_CUES = 15
CUE_S = 4.1
REST_S = 4.2
RUN_S = 130.0
PHYSICAL_RANGE_UV = 1000.0
AMPLITUDE_FLUCTUATION = 0.1
"""Standard deviation of the log-amplitude of the slow (~1 s) mu/beta fluctuation."""
GENERATOR_VERSION = 2
"""Bumped whenever a change alters the generated signals (caches key on it).

Version 2 made the class signal about as learnable as the real data set: with version 1
(background 12-25 µV, mu 10-18 µV, MRCP 3-6 µV, ±30 % rhythm fluctuation) even an oracle
logistic regression on the two class features (C3-C4 window mean and log-power
difference) reached only 67 % pooled over 8 subjects, and no network learned it from a few
hundred trials. Version 2 (background 10.5-22 µV, mu 25-45 µV, MRCP 18-36 µV, ±10 %)
reaches 82 % pooled over 10 subjects (80-100 % for strong subjects, chance for weak ones),
close to the paper's 80 % float baseline on EEGMMIDB. Its MRCP is several times larger
than a real one (~5-10 µV): a stand-in that puts roughly the real data set's class
information into a 1-s window, not a physiological claim."""


@dataclass(frozen=True)
class SubjectProfile:
    """One synthetic subject (amplitudes in µV rms at the peak electrode, Hz, cm)."""

    subject: int
    weak: bool
    erd_depth: float
    mrcp_uv: float
    mu_freq: float
    beta_freq: float
    mu_uv: float
    beta_uv: float
    alpha_uv: float
    background_uv: float
    conduction_cm: float


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
        rng = np.random.default_rng([seed, subject])
        weak = weak_every > 0 and (k + 1) % weak_every == 0
        out.append(
            SubjectProfile(
                subject=subject,
                weak=weak,
                erd_depth=float(rng.uniform(0.0, 0.1) if weak else rng.uniform(0.45, 0.8)),
                mrcp_uv=float(rng.uniform(0.0, 1.2) if weak else rng.uniform(18.0, 36.0)),
                mu_freq=float(rng.uniform(8.5, 12.5)),
                beta_freq=float(rng.uniform(17.0, 25.0)),
                mu_uv=float(rng.uniform(25.0, 45.0)),
                beta_uv=float(rng.uniform(7.5, 15.0)),
                alpha_uv=float(rng.uniform(12.5, 50.0)),
                background_uv=float(rng.uniform(10.5, 22.0)),
                conduction_cm=float(rng.uniform(2.5, 4.0)),
            )
        )
    return out


def channel_positions() -> np.ndarray:
    """(64, 3) electrode positions in cm from MNE's template 10-05 montage (file order)."""
    import mne

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        try:
            montage = mne.channels.make_standard_montage("colin27_1005")
        except ValueError:  # MNE < 1.13
            montage = mne.channels.make_standard_montage("standard_1005")
    pos = montage.get_positions()["ch_pos"]
    return np.array([pos[name] for name in EEGMMIDB_CHANNELS]) * 100.0


def _pink(rng: np.random.Generator, n_ch: int, n: int) -> np.ndarray:
    """Unit-variance 1/f noise (power ∝ 1/f above 0.5 Hz), shape (n_ch, n)."""
    spec = rng.standard_normal((n_ch, n // 2 + 1)) + 1j * rng.standard_normal((n_ch, n // 2 + 1))
    f = np.fft.rfftfreq(n, 1 / SFREQ)
    spec *= 1.0 / np.sqrt(np.maximum(f, 0.5))
    spec[:, 0] = 0
    x = np.fft.irfft(spec, n)
    return x / x.std(axis=1, keepdims=True)


def _narrowband(rng: np.random.Generator, n_src: int, n: int, freq: float, bw: float) -> np.ndarray:
    """Unit-variance Gaussian-spectrum narrow-band noise around ``freq`` Hz, shape (n_src, n)."""
    spec = rng.standard_normal((n_src, n // 2 + 1)) + 1j * rng.standard_normal((n_src, n // 2 + 1))
    f = np.fft.rfftfreq(n, 1 / SFREQ)
    spec *= np.exp(-0.5 * ((f - freq) / (bw / 2.355)) ** 2)
    x = np.fft.irfft(spec, n)
    return x / x.std(axis=1, keepdims=True)


def _smooth(x: np.ndarray, tau_s: float) -> np.ndarray:
    """One-pole low-pass with time constant ``tau_s`` seconds along the last axis."""
    a = np.exp(-1.0 / (tau_s * SFREQ))
    return lfilter([1 - a], [1, -a], x, axis=-1)


def _cue_schedule(rng: np.random.Generator) -> tuple[list[tuple[float, float, str]], np.ndarray]:
    """Annotations (onset s, duration s, code) and the 15 cue labels (0 = T1, 1 = T2)."""
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
    return ann, labels


def synthesize_run(
    profile: SubjectProfile, run: int, *, seed: int, positions: np.ndarray | None = None
) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """EEG of one run in µV, shape (64, 130 s × 160 Hz), and its annotations."""
    rng = np.random.default_rng([seed, profile.subject, run])
    pos = channel_positions() if positions is None else positions
    n = int(RUN_S * SFREQ)
    n_ch = len(EEGMMIDB_CHANNELS)
    ann, _ = _cue_schedule(rng)
    dist = np.linalg.norm(pos[:, None] - pos[None], axis=-1)

    mix = np.exp(-dist / profile.conduction_cm)
    mix /= np.sqrt((mix**2).sum(axis=1, keepdims=True))
    eeg = profile.background_uv * (mix @ _pink(rng, n_ch, n))

    def pattern(name: str, sigma_cm: float = 3.0) -> np.ndarray:
        d = dist[EEGMMIDB_CHANNELS.index(name)]
        return np.exp(-0.5 * (d / sigma_cm) ** 2)

    # ERD envelopes of the left (C3) and right (C4) sensorimotor sources
    box = np.zeros((2, n))  # row 0: left hemisphere, row 1: right hemisphere
    for onset, dur, code in ann:
        if code == "T0":
            continue
        contra = 1 if code == "T1" else 0  # left-hand imagery -> right hemisphere
        i0, i1 = int((onset + 0.1) * SFREQ), int((onset + dur) * SFREQ)
        box[contra, i0:i1] = 1.0
        box[1 - contra, i0:i1] = 0.25
    erd = 1.0 - profile.erd_depth * _smooth(box, 0.15)
    slow = _smooth(rng.standard_normal((2, n)), 1.0) * np.sqrt(2 * SFREQ)  # unit variance
    fluct = np.exp(AMPLITUDE_FLUCTUATION * slow)

    for freq, amp, bw in (
        (profile.mu_freq, profile.mu_uv, 2.0),
        (profile.beta_freq, profile.beta_uv, 4.0),
    ):
        src = _narrowband(rng, 2, n, freq, bw) * erd * fluct * amp
        eeg += np.outer(pattern("C3"), src[0]) + np.outer(pattern("C4"), src[1])
    # slow contralateral negativity while the movement is imagined (movement-related
    # cortical potential), sets in with a 0.3 s time constant
    mrcp = -profile.mrcp_uv * _smooth(box, 0.3)
    eeg += np.outer(pattern("C3"), mrcp[0]) + np.outer(pattern("C4"), mrcp[1])
    alpha = _narrowband(rng, 1, n, 10.0, 2.0)[0] * profile.alpha_uv
    eeg += np.outer(pattern("Oz", 4.0), alpha)
    t = np.arange(n) / SFREQ
    eeg += 0.5 * np.sin(2 * np.pi * 60.0 * t + rng.uniform(0, 2 * np.pi))
    eeg += rng.standard_normal((n_ch, n))
    eeg *= rng.normal(1.0, 0.05, size=(n_ch, 1))
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
    progress: bool = False,
) -> Path:
    """Write ``n_subjects`` synthetic subjects in the PhysioNet layout under ``out_root``.

    Returns ``out_root``. Same ``seed`` ⇒ identical files; subject ``k`` does not depend on
    how many subjects are written.
    """
    from ferrocim.logs import progress as progress_bar

    root = Path(out_root)
    profiles = subject_profiles(n_subjects, seed=seed, weak_every=weak_every)
    pos = channel_positions()
    jobs = [(p, run) for p in profiles for run in RUNS]
    for p, run in progress_bar(jobs, desc="synthesize", unit="run", disable=not progress):
        eeg, ann = synthesize_run(p, run, seed=seed, positions=pos)
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
            "runs": list(RUNS),
            "subjects": [asdict(p) for p in profiles],
        },
    )
    return root
