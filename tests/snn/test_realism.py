"""The synthetic generator against the real EEGMMIDB subject S001.

Both go through the published preprocessing (``prepare_eegmmidb``: 0.1-79 Hz, global
channel statistics over all 14 runs) and :func:`ferrocim.snn.data.signal_stats.eeg_statistics`.
S001's numbers are computed from ``$FERROCIM_SHARED/eegmmidb`` when it is there; elsewhere
the constants below stand in for them (measured on those files with this code, ferrocim
0.1.0: ``cache_statistics`` of ``ferrocim data prepare --root …/eegmmidb --subjects 1``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from eeg_helpers import SHARED_EEGMMIDB

from ferrocim.snn.data import prepare_eegmmidb, synthesize_edf
from ferrocim.snn.data.signal_stats import (
    EEGStatistics,
    cache_statistics,
    eeg_statistics,
    format_comparison,
)

#: S001 as measured (see the module docstring), for machines without the real files
S001 = {
    "share <4 Hz": 0.601,
    "share 4-8 Hz": 0.156,
    "share 8-13 Hz": 0.0846,
    "share 13-30 Hz": 0.106,
    "share >30 Hz": 0.0524,
    "slope 2-30 Hz": -1.59,
    "lag-1 autocorr.": 0.883,
    "mu peak C3/C4 dB": 2.49,
    "median rms µV": 53.8,
    "max |d| window mean": 1.44,
    "n |d| mean > 0.8": 23.0,
    "max |d| 8-30 Hz power": 0.532,
    "diff F7 0.2-0.4 s µV": -94.7,
    "diff F8 0.2-0.4 s µV": 41.7,
    "acc <4 Hz": 0.844,
    "acc >4 Hz": 0.422,
}

#: background: the synthetic median over subjects within (low, high) of S001's value
BACKGROUND_TOLERANCE = {
    "share <4 Hz": (-0.08, 0.08),
    "share 8-13 Hz": (-0.04, 0.04),
    "share 13-30 Hz": (-0.05, 0.05),
    "share >30 Hz": (-0.03, 0.03),
    "slope 2-30 Hz": (-0.25, 0.25),
    "lag-1 autocorr.": (-0.04, 0.04),
    "mu peak C3/C4 dB": (-2.0, 2.5),
    "median rms µV": (-15.0, 15.0),
}


def _reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, float]:
    if not (SHARED_EEGMMIDB / "S001" / "S001R04.edf").is_file():
        return dict(S001)
    h5 = prepare_eegmmidb(
        SHARED_EEGMMIDB, tmp_path_factory.mktemp("s001") / "s001.h5", subjects=[1]
    )
    return cache_statistics(h5).summary()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, float]:
    """S001's summary numbers (real files when present, else the constants)."""
    return _reference(tmp_path_factory)


def _per_subject(h5: Path) -> list[EEGStatistics]:
    from ferrocim.snn.data import load_prepared

    subjects = np.unique(load_prepared(h5).subject)
    return [cache_statistics(h5, subjects=[int(s)]) for s in subjects]


def test_s001_constants_are_what_the_code_measures(reference: dict[str, float]) -> None:
    """The stand-in constants equal the statistics of the real files (where present)."""
    if not (SHARED_EEGMMIDB / "S001" / "S001R04.edf").is_file():
        pytest.skip(f"real EEGMMIDB subject S001 not found under {SHARED_EEGMMIDB}")
    for name, value in S001.items():
        assert reference[name] == pytest.approx(value, rel=0.01, abs=0.01), name


def test_background_matches_s001(
    synthetic_root: Path, prepared_h5: Path, reference: dict[str, float]
) -> None:
    """Spectrum, autocorrelation, mu peak and scalp amplitude of three synthetic subjects
    (all 14 runs, published preprocessing) fall within the stated tolerances of S001's."""
    per = _per_subject(prepared_h5)
    ours = {k: float(np.median([s.summary()[k] for s in per])) for k in BACKGROUND_TOLERANCE}
    print("\n" + "\n".join(f"{k:<24}{ours[k]:>10.3g}{reference[k]:>10.3g}" for k in ours))
    for name, (lo, hi) in BACKGROUND_TOLERANCE.items():
        assert reference[name] + lo <= ours[name] <= reference[name] + hi, (
            f"{name}: synthetic {ours[name]:.3g}, S001 {reference[name]:.3g}"
        )


def test_statistics_of_hand_made_windows() -> None:
    """Known signals give known numbers: a pure 10 Hz sine has all power in 8-13 Hz and
    lag-1 autocorrelation cos(2π·10/160); a class step of 2 s.d. gives d = 2 at one channel."""
    rng = np.random.default_rng(0)
    t = np.arange(160) / 160.0
    n = 40
    eeg = np.zeros((n, 64, 160))
    eeg[:] = np.sin(2 * np.pi * 10 * t)
    y = np.array([0, 1] * (n // 2))
    noise = rng.standard_normal(n)
    noise = (noise - noise.mean()) / noise.std(ddof=1)
    eeg[:, 8, :] += (y * 2.0 + noise)[:, None] * 1e-3  # C3: class shift of 2 noise s.d.
    st = eeg_statistics(eeg, y)
    assert st.band_share["8-13"] == pytest.approx(1.0, abs=1e-3)
    assert st.lag1 == pytest.approx(np.cos(2 * np.pi * 10 / 160), abs=0.01)
    d = st.d_mean[8]
    pooled = np.sqrt((noise[y == 1].var(ddof=1) + noise[y == 0].var(ddof=1)) / 2)
    expected = (2.0 + noise[y == 1].mean() - noise[y == 0].mean()) / pooled
    assert d == pytest.approx(expected, rel=1e-6)
    assert st.rms_uv is None and st.diff_uv_early is None


@pytest.mark.slow
def test_class_information_is_slow_and_frontal_temporal_as_in_s001(
    tmp_path: Path, reference: dict[str, float]
) -> None:
    """Eight synthetic subjects: the strongest ones carry S001's ocular class effect (F7
    negative, F8 positive for right vs left within a factor ~2 of S001, d > 1 on frontal-
    temporal channels), the class information lies below 4 Hz (linear reader above chance
    there, at chance above 4 Hz) and mu/beta power is a weak contrast; weak performers exist."""
    root = synthesize_edf(tmp_path / "edf", 8, seed=0)
    per = _per_subject(prepare_eegmmidb(root, tmp_path / "syn.h5"))
    print("\n" + format_comparison({f"S{k + 1:03d}": s for k, s in enumerate(per)}))
    rows = [s.summary() for s in per]
    f7 = np.array([r["diff F7 0.2-0.4 s µV"] for r in rows])
    f8 = np.array([r["diff F8 0.2-0.4 s µV"] for r in rows])
    strong = np.argsort(f7)[:3]  # the three most ocular subjects
    assert np.all(f7[strong] < 0.4 * reference["diff F7 0.2-0.4 s µV"])
    assert np.all(f7[strong] > 2.5 * reference["diff F7 0.2-0.4 s µV"])
    assert np.all(f8[strong] > 0)
    assert min(rows[i]["max |d| window mean"] for i in strong) > 0.9
    acc_low = np.array([r["acc <4 Hz"] for r in rows])
    acc_high = np.array([r["acc >4 Hz"] for r in rows])
    assert np.median(acc_low) > 0.6 and np.median(acc_high) < 0.6
    assert max(r["max |d| 8-30 Hz power"] for r in rows) < 1.2
    assert acc_low.min() < 0.65  # weak performers


def test_data_stats_command_prints_the_cache_statistics(prepared_h5: Path) -> None:
    """``ferrocim data stats`` prints :func:`cache_statistics` of each cache, one column each;
    a missing file is a usage error naming it."""
    from click.testing import CliRunner

    from ferrocim.cli import main

    res = CliRunner().invoke(main, ["data", "stats", str(prepared_h5)])
    assert res.exit_code == 0, res.output
    expected = cache_statistics(prepared_h5).summary()
    row = next(line for line in res.output.splitlines() if line.startswith("lag-1 autocorr."))
    assert float(row.split()[-1]) == pytest.approx(expected["lag-1 autocorr."], rel=1e-2)
    assert str(prepared_h5) in res.output.splitlines()[0]
    bad = CliRunner().invoke(main, ["data", "stats", str(prepared_h5.parent / "nope.h5")])
    assert bad.exit_code == 2 and "nope.h5" in bad.output
