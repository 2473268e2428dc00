"""Channel statistics in the cache, ``--stats-from``, truncated EDF files, channel exclusion
(on small EDF files the tests write)."""

from __future__ import annotations

import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from eeg_helpers import write_edf, write_subject

from ferrocim.checks import InputError
from ferrocim.cli import main
from ferrocim.pipelines.config import DataConfig, load_config
from ferrocim.pipelines.data import exclude_channels
from ferrocim.snn.data import EEGMMIDB_CHANNELS, load_prepared, prepare_eegmmidb, read_run
from ferrocim.snn.data.cache import read_channel_stats
from ferrocim.snn.data.eegmmidb import FRONTAL_TEMPORAL, channel_stats, edf_record_counts
from ferrocim.snn.data.grid import grid_position

RUNS = (4, 8, 12)


@pytest.fixture(scope="module")
def two_subjects(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """S001 and S002, runs 4, 8, 12; S002's EEG twice as large."""
    root = tmp_path_factory.mktemp("edf")
    write_subject(root, 1)
    return write_subject(root, 2, gain=2.0)


def test_cache_stores_the_statistics_it_was_normalised_with(two_subjects, tmp_path) -> None:
    h5 = prepare_eegmmidb(two_subjects, tmp_path / "a.h5", subjects=[1], stats_runs=RUNS)
    stats = read_channel_stats(h5)
    paths = [two_subjects / "S001" / f"S001R{r:02d}.edf" for r in RUNS]
    mean, sd = channel_stats(paths)
    np.testing.assert_array_equal(stats.mean, mean)
    np.testing.assert_array_equal(stats.std, sd)
    assert stats.ch_names == EEGMMIDB_CHANNELS and (stats.l_freq, stats.h_freq) == (0.1, 79.0)
    assert "runs 4,8,12 of subjects [1]" in stats.origin
    # per-run normalisation: the statistics of every (subject, run), none global
    pr = prepare_eegmmidb(two_subjects, tmp_path / "p.h5", normalization="per_run")
    with h5py.File(pr) as f:
        assert f["run_channel_keys"][()].tolist() == [[s, r] for s in (1, 2) for r in RUNS]
        assert f["run_channel_mean"].shape == (6, 64)
    with pytest.raises(InputError, match=r"p\.h5: z-scored 'per run'"):
        read_channel_stats(pr)


def test_stats_from_a_cache_normalise_a_new_subject(two_subjects, tmp_path) -> None:
    pop = prepare_eegmmidb(two_subjects, tmp_path / "pop.h5", subjects=[1], stats_runs=RUNS)
    runner = CliRunner()
    out = tmp_path / "new.h5"
    args = ["data", "prepare", "--root", str(two_subjects), "--out", str(out), "--subjects", "2"]
    res = runner.invoke(main, [*args, "--stats-from", str(pop)])
    assert res.exit_code == 0, res.output
    assert "45 trials (24 left, 21 right) from 1 subjects" in res.output
    assert f"with the given statistics ({pop}" in res.output
    pop_stats, new_stats = read_channel_stats(pop), read_channel_stats(out)
    np.testing.assert_array_equal(new_stats.mean, pop_stats.mean)  # copied into the cache
    # the windows are S002's filtered EEG z-scored with S001's statistics: twice as large
    eeg, _, _ = read_run(
        two_subjects / "S002" / "S002R04.edf", stats=(pop_stats.mean, pop_stats.std)
    )
    with h5py.File(out) as f:
        np.testing.assert_array_equal(f["eeg"][:15], eeg)
    own = load_prepared(prepare_eegmmidb(two_subjects, tmp_path / "own.h5", subjects=[2],
                                         stats_runs=RUNS))  # fmt: skip
    r, c = grid_position("C3")
    ratio = load_prepared(out).x[:, 0, r, c].std() / own.x[:, 0, r, c].std()
    assert ratio == pytest.approx(2.0, rel=0.05)
    # other band than the population's, per-run normalisation, a missing source: refused
    res = runner.invoke(main, [*args, "--stats-from", str(pop), "--l-freq", "4"])
    assert res.exit_code == 2 and "band-passed 0.1-79 Hz cannot z-score data band" in res.output
    res = runner.invoke(main, [*args, "--stats-from", str(pop), "--normalization", "per_run"])
    assert res.exit_code == 2 and "cannot be combined with --normalization per_run" in res.output
    res = runner.invoke(main, [*args, "--stats-from", str(tmp_path / "none.h5")])
    assert res.exit_code == 2 and "none.h5: no such run directory" in res.output


def test_truncated_edf_warns_with_both_record_counts(tmp_path) -> None:
    path, _ = write_edf(tmp_path / "S001" / "S001R04.edf", 1, 4)
    size = path.stat().st_size
    header = int(path.read_bytes()[184:192])
    rec = (size - header) // 54  # 64 x 160 samples and the EDF+ annotation signal, 2 B each
    assert rec > 2 * 64 * 160 and (size - header) % 54 == 0
    assert edf_record_counts(path) == (54, 54, 1.0, 0)
    with path.open("r+b") as f:
        f.truncate(size - rec - 1000)  # one whole record and part of another
    assert edf_record_counts(path) == (54, 52, 1.0, rec - 1000)
    with pytest.warns(UserWarning) as rec_w:
        eeg, y, _ = read_run(path)
    msgs = [str(w.message) for w in rec_w]
    assert any(
        "S001R04.edf: truncated EDF file: its header announces 54 data records (54 s), the "
        f"file holds 52 (52 s) and {rec - 1000} bytes of an incomplete one (ignored)" in m
        for m in msgs
    ), msgs
    assert eeg.shape[0] == len(y) > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a complete file reads without a word
        read_run(write_edf(tmp_path / "ok.edf", 1, 8)[0])
    with path.open("r+b") as f:
        f.truncate(header + 5 * rec)  # 90 % gone: refused, naming the file and the counts
    with pytest.raises(InputError, match=r"S001R04.edf: .* announces 54 .* holds only 5 \(5 s\)"):
        read_run(path)


def test_exclude_channels_zeroes_their_cells_only(two_subjects, tmp_path) -> None:
    ds = load_prepared(prepare_eegmmidb(two_subjects, tmp_path / "a.h5", stats_runs=RUNS))
    out = exclude_channels(ds, ["F7", "T10"])
    assert out.x.shape == ds.x.shape and out.meta["exclude_channels"] == ["F7", "T10"]
    changed = np.flatnonzero((out.x != ds.x).any(axis=(0, 1, 4)).ravel())
    cells = sorted(r * 11 + c for r, c in (grid_position("F7"), grid_position("T10")))
    assert changed.tolist() == cells
    r, c = grid_position("F7")
    assert not out.x[:, :, r, c].any() and ds.x[:, :, r, c].any()
    assert exclude_channels(ds, []) is ds
    cfg = DataConfig(exclude_channels=["frontal-temporal", "c3"])
    assert cfg.exclude_channels == [c for c in EEGMMIDB_CHANNELS if c in {*FRONTAL_TEMPORAL, "C3"}]
    assert len(cfg.exclude_channels) == 19
    with pytest.raises(InputError, match=r"unknown EEG channel 'F77'; did you mean F7"):
        load_config(None, {"data.exclude_channels": ["F77"]})


def test_format_2_caches_are_refused_by_name(tmp_path) -> None:
    h5 = tmp_path / "v2.h5"
    with h5py.File(h5, "w") as f:
        f.attrs["format"] = "ferrocim.eeg-windows/2"
    with pytest.raises(InputError, match=r"format 'ferrocim.eeg-windows/2'.*does not record"):
        load_prepared(h5)
