"""Small EEGMMIDB-layout EDF files written by the tests themselves, and where the real
subject S001 lives (``$FERROCIM_SHARED/eegmmidb``, as ``tests/conftest.py`` locates shared
data; tests that need it skip without it)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ferrocim.snn.data.grid import EDF_LABELS

ROOT = Path(__file__).resolve().parents[2]
SHARED_EEGMMIDB = Path(os.environ.get("FERROCIM_SHARED", ROOT.parent / "shared")) / "eegmmidb"

SFREQ = 160.0
CUE_S, REST_S = 2.0, 1.5


def write_edf(
    path: Path, subject: int, run: int, *, seed: int = 0, gain: float = 1.0
) -> tuple[Path, np.ndarray]:
    """One run of 15 cues (T0 rest 1.5 s, T1/T2 cue 2 s; 54 s at 160 Hz, 64 channels):
    Gaussian noise of 20 µV times ``gain`` plus a per-channel offset, and on F7 a -50 µV
    step during T1 cues. Returns the path and the 15 labels (0 = T1)."""
    from edfio import Edf, EdfAnnotation, EdfSignal

    rng = np.random.default_rng([seed, subject, run])
    labels = np.array([0] * 8 + [1] * 7)
    rng.shuffle(labels)
    n = int((15 * (CUE_S + REST_S) + REST_S) * SFREQ)
    eeg = gain * rng.normal(0.0, 20.0, (64, n)) + rng.normal(0, 5, (64, 1))
    ann, t = [], 0.0
    f7 = EDF_LABELS.index("F7..")
    for y in labels:
        ann.append((t, REST_S, "T0"))
        t += REST_S
        ann.append((t, CUE_S, "T2" if y else "T1"))
        if y == 0:
            a = int(t * SFREQ)
            eeg[f7, a : a + int(CUE_S * SFREQ)] -= 50.0
        t += CUE_S
    ann.append((t, REST_S, "T0"))
    signals = [
        EdfSignal(x, SFREQ, label=lab, physical_dimension="uV", physical_range=(-1000, 1000))
        for lab, x in zip(EDF_LABELS, eeg, strict=True)
    ]
    edf = Edf(
        signals,
        data_record_duration=1.0,
        annotations=[EdfAnnotation(o, d, c) for o, d, c in ann],
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    edf.write(path)
    return path, labels


def write_subject(root: Path, subject: int, runs=(4, 8, 12), **kw) -> Path:
    """``root/S###/S###R##.edf`` for ``runs``; returns ``root``."""
    sub = f"S{subject:03d}"
    for r in runs:
        write_edf(root / sub / f"{sub}R{r:02d}.edf", subject, r, **kw)
    return root
