"""The real EEGMMIDB subject S001 (skipped where ``$FERROCIM_SHARED/eegmmidb`` is absent):
preparation, the truncated baseline runs, normalisation with given statistics."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from eeg_helpers import SHARED_EEGMMIDB

from ferrocim.snn.data import load_prepared, prepare_eegmmidb
from ferrocim.snn.data.cache import read_channel_stats
from ferrocim.snn.data.eegmmidb import edf_record_counts


@pytest.fixture(scope="module")
def s001(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """S001 prepared as published (global statistics over its 14 runs), and the warnings."""
    if not (SHARED_EEGMMIDB / "S001" / "S001R04.edf").is_file():
        pytest.skip(f"real EEGMMIDB subject S001 not found under {SHARED_EEGMMIDB}")
    h5 = tmp_path_factory.mktemp("s001") / "s001.h5"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prepare_eegmmidb(SHARED_EEGMMIDB, h5, subjects=[1])
    return h5, [str(w.message) for w in caught]


def test_s001_prepares_to_45_trials_23_left_22_right(s001) -> None:
    h5, _ = s001
    ds = load_prepared(h5)
    assert ds.x.shape == (45, 1, 10, 11, 160)
    assert int((ds.y == 0).sum()) == 23 and int((ds.y == 1).sum()) == 22
    stats = read_channel_stats(h5)
    assert stats.origin.startswith("global over runs 1-14 of subjects [1]")
    # the median channel's s.d. after the 0.1-79 Hz band-pass: about 52 µV (README there)
    assert 40e-6 < float(np.median(stats.std)) < 65e-6


def test_r01_r02_are_reported_truncated(s001) -> None:
    _, msgs = s001
    for run in ("R01", "R02"):
        path = SHARED_EEGMMIDB / "S001" / f"S001{run}.edf"
        announced, found, record_s, extra = edf_record_counts(path)
        assert (announced, found, record_s) == (61, 60, 1.0) and extra > 0
        text = (
            f"{path}: truncated EDF file: its header announces 61 data records (61 s), the "
            f"file holds 60 (60 s) and {extra} bytes of an incomplete one (ignored)"
        )
        assert any(m.startswith(text) for m in msgs), msgs
    assert not any("R04" in m or "R03" in m for m in msgs)  # the complete runs read silently
    assert edf_record_counts(SHARED_EEGMMIDB / "S001" / "S001R04.edf")[3] == 0


def test_given_statistics_equal_to_its_own_give_the_same_windows(s001, tmp_path) -> None:
    h5, _ = s001
    again = prepare_eegmmidb(SHARED_EEGMMIDB, tmp_path / "g.h5", subjects=[1],
                             stats=read_channel_stats(h5))  # fmt: skip
    np.testing.assert_array_equal(load_prepared(again).x, load_prepared(h5).x)
