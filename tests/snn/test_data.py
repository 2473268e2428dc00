"""Synthesize → prepare (the real EEGMMIDB loader) → HDF5 cache → EEGDataset; bad input."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import h5py
import mne
import numpy as np
import pytest

from ferrocim.checks import InputError
from ferrocim.snn.data import (
    EEGMMIDB_CHANNELS,
    EEGDataset,
    grid_position,
    load_prepared,
    prepare_eegmmidb,
    read_run,
    synthesize_edf,
)
from ferrocim.snn.data.synthetic import (
    EDF_LABELS,
    RUNS,
    subject_ids,
    subject_profiles,
    synthesize_run,
    write_run_edf,
)


def test_files_have_the_real_layout_and_quirks(synthetic_root: Path) -> None:
    for s in (1, 2, 3):
        for r in range(1, 15):  # all 14 runs, as in EEGMMIDB
            assert (synthetic_root / f"S{s:03d}" / f"S{s:03d}R{r:02d}.edf").is_file()
    raw = mne.io.read_raw_edf(
        synthetic_root / "S002" / "S002R08.edf", preload=True, verbose="error"
    )
    assert raw.info["sfreq"] == 160.0
    assert tuple(raw.ch_names) == EDF_LABELS  # 'Fc5.', 'C3..', 'Iz..' — dot-padded
    desc = list(raw.annotations.description)
    assert desc.count("T1") + desc.count("T2") == 15 and desc.count("T0") == 16
    cues = raw.annotations[[d != "T0" for d in desc]]
    np.testing.assert_allclose(cues.duration, 4.1, atol=0.01)
    assert 115 < raw.times[-1] < 135  # about two minutes
    raw.filter(0.1, 79.0, verbose="error")
    rms = raw.get_data().std(axis=1) * 1e6  # MNE reads volts
    # S001 after the same band-pass: median 54 µV, 24-110 µV, largest at Fp1/AF7
    assert 30 < np.median(rms) < 80 and rms.min() > 8 and rms.max() < 200
    base = mne.io.read_raw_edf(synthetic_root / "S001" / "S001R02.edf", verbose="error")
    assert 60 < base.times[-1] < 62 and list(base.annotations.description) == ["T0"]


def test_generator_version_is_recorded_and_keys_the_cache(synthetic_root: Path) -> None:
    import json

    from ferrocim.pipelines.config import DataConfig
    from ferrocim.pipelines.data import synthetic_cache_path
    from ferrocim.snn.data.synthetic import GENERATOR_VERSION

    meta = json.loads((synthetic_root / "SYNTHETIC.json").read_text())
    assert meta["generator_version"] == GENERATOR_VERSION == 3
    assert meta["runs"] == list(range(1, 15))
    path = synthetic_cache_path(DataConfig(n_subjects=7, synth_seed=3, cache_dir="c"))
    assert path == Path("c") / "synthetic-v3-n7-seed3"
    # version 3 ranges: weak performers have little ocular signal, slow potential and ERD
    profiles = subject_profiles(8, seed=0)
    assert all(38.0 <= p.background_uv <= 66.0 for p in profiles)
    assert [p.weak for p in profiles] == [k % 4 == 3 for k in range(8)]
    assert all(p.heog_uv <= 8.0 and p.gaze_prob <= 0.6 and p.erd_depth <= 0.1
               for p in profiles if p.weak)  # fmt: skip
    assert all(p.heog_uv >= 25.0 and p.gaze_prob >= 0.85 for p in profiles if not p.weak)


def test_eye_field_has_the_measured_shape() -> None:
    """A rightward gaze: left frontal-temporal channels negative, right ones positive,
    occipital channels negative through the right-ear reference (S001's class difference
    0.2-0.4 s after the cue: F7 −95, AF7 −94, FT7 −80, F8 +42, Oz −30 µV)."""
    from ferrocim.snn.data.grid import EEGMMIDB_CHANNELS as CH
    from ferrocim.snn.data.synthetic import _geometry

    field = _geometry().eye_field(0)
    at = {c: field[CH.index(c)] for c in ("F7", "AF7", "FT7", "F8", "AF8", "Oz", "T10")}
    assert at["F8"] - at["F7"] == pytest.approx(4.0)
    assert at["F7"] < at["FT7"] < 0 < at["AF8"] and at["F8"] > 0
    assert -0.5 < at["Oz"] / at["F7"] < 0 or at["Oz"] < 0
    assert abs(at["T10"]) < abs(at["F7"]) / 4  # next to the reference: small
    s001 = {"F7": -95, "AF7": -94, "FT7": -80, "F8": 42, "AF8": 27, "Oz": -30}
    r = np.corrcoef([at[c] for c in s001], list(s001.values()))[0, 1]
    assert r > 0.95


def test_generator_is_seeded_and_subject_stable() -> None:
    p3 = subject_profiles(3, seed=7)
    p5 = subject_profiles(5, seed=7)
    assert p3 == p5[:3]  # subject k does not depend on how many are written
    assert subject_profiles(3, seed=8) != p3
    a, ann_a = synthesize_run(p3[0], 4, seed=7)
    b, ann_b = synthesize_run(p3[0], 4, seed=7)
    np.testing.assert_array_equal(a, b)
    assert ann_a == ann_b
    assert [p.weak for p in p5] == [False, False, False, True, False]
    base, ann = synthesize_run(p3[0], 2, seed=7)  # eyes-closed baseline: 61 s, one T0
    assert base.shape == (64, 61 * 160) and ann == [(0.0, 61.0, "T0")]
    with pytest.raises(InputError, match="1-14"):
        synthesize_run(p3[0], 15, seed=7)
    ids = subject_ids(90)
    assert ids[86:] == [87, 90, 91, 93]  # 88, 89, 92 skipped
    assert len(subject_ids(103)) == 103 and not set(subject_ids(103)) & {88, 89, 92, 100, 104, 106}


def test_prepared_dataset_shapes_labels_and_meta(prepared_h5: Path) -> None:
    ds = load_prepared(prepared_h5)
    assert isinstance(ds, EEGDataset)
    assert ds.x.shape == (135, 1, 10, 11, 160) and ds.x.dtype == np.float32
    assert ds.y.dtype == np.int64 and ds.subject.dtype == np.int64
    assert ds.subjects.tolist() == [1, 2, 3]
    for s in (1, 2, 3):
        y = ds.y[ds.subject == s]
        assert len(y) == 45
        assert 21 <= int((y == 0).sum()) <= 24  # 7 or 8 left cues per run
    # unused grid cells are zero, used ones are z-scored EEG
    used = np.zeros((10, 11), bool)
    for name in EEGMMIDB_CHANNELS:
        used[grid_position(name)] = True
    assert not ds.x[:, 0][:, ~used].any()
    sd = ds.x[:, 0][:, used].std()
    assert 0.6 < sd < 1.5
    assert ds.meta["params"]["l_freq"] == 0.1 and ds.meta["params"]["h_freq"] == 79.0
    assert ds.meta["params"]["subjects"] == [1, 2, 3]
    sub = ds.of_subjects([2])
    assert len(sub) == 45 and set(sub.subject.tolist()) == {2}


def test_labels_follow_annotations(synthetic_root: Path) -> None:
    path = synthetic_root / "S001" / "S001R04.edf"
    eeg, y, onset = read_run(path)
    raw = mne.io.read_raw_edf(path, verbose="error")
    cues = [(a["onset"], a["description"]) for a in raw.annotations if a["description"] != "T0"]
    assert y.tolist() == [0 if d == "T1" else 1 for _, d in cues]
    assert onset.tolist() == [round(o * 160) for o, _ in cues]
    assert eeg.shape == (15, 64, 160)


def test_mne_download_layout_gives_the_same_data(
    synthetic_root: Path, prepared_h5: Path, tmp_path: Path
) -> None:
    mne_root = tmp_path / "mne_data"
    dest = mne_root / "MNE-eegbci-data" / "files" / "eegmmidb" / "1.0.0"
    shutil.copytree(synthetic_root, dest)
    h5 = prepare_eegmmidb(mne_root, tmp_path / "mne.h5")
    np.testing.assert_array_equal(load_prepared(h5).x, load_prepared(prepared_h5).x)


def test_cache_reused_and_invalidated(synthetic_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(synthetic_root, root)
    h5 = tmp_path / "c.h5"
    prepare_eegmmidb(root, h5, subjects=[1], stats_runs=RUNS)
    stamp = h5.stat().st_mtime_ns
    prepare_eegmmidb(root, h5, subjects=[1], stats_runs=RUNS)
    assert h5.stat().st_mtime_ns == stamp  # reused
    prepare_eegmmidb(root, h5, subjects=[1], h_freq=40.0, stats_runs=RUNS)  # parameter changed
    with h5py.File(h5) as f:
        assert json.loads(f.attrs["params"])["h_freq"] == 40.0
    stamp = h5.stat().st_mtime_ns
    edf = root / "S001" / "S001R08.edf"
    os.utime(edf, ns=(edf.stat().st_atime_ns, edf.stat().st_mtime_ns + 10**9))
    prepare_eegmmidb(root, h5, subjects=[1], h_freq=40.0, stats_runs=RUNS)  # a source file changed
    assert h5.stat().st_mtime_ns != stamp
    stamp = h5.stat().st_mtime_ns
    prepare_eegmmidb(
        root, h5, subjects=[1, 2], h_freq=40.0, stats_runs=RUNS
    )  # subject list changed
    assert h5.stat().st_mtime_ns != stamp
    assert len(load_prepared(h5)) == 90
    assert not list(tmp_path.glob(".c.h5.*"))  # no temporary left behind


def _copy(synthetic_root: Path, tmp_path: Path) -> Path:
    root = tmp_path / "bad"
    shutil.copytree(synthetic_root / "S001", root / "S001")
    return root


def test_missing_run(synthetic_root: Path, tmp_path: Path) -> None:
    root = _copy(synthetic_root, tmp_path)
    (root / "S001" / "S001R08.edf").unlink()
    with pytest.raises(InputError, match=r"subject 1: run 8 not found \(expected .*S001R08\.edf"):
        prepare_eegmmidb(root, tmp_path / "x.h5", stats_runs=RUNS)


def test_wrong_sampling_rate(synthetic_root: Path, tmp_path: Path) -> None:
    root = _copy(synthetic_root, tmp_path)
    eeg = np.random.default_rng(0).normal(0, 20, (64, 128 * 130))
    ann = [(4.2 + 8.3 * k, 4.1, "T1") for k in range(15)]
    write_run_edf(root / "S001" / "S001R12.edf", eeg, ann, sfreq=128.0)
    with pytest.raises(InputError, match=r"S001R12\.edf: sampling rate 128 Hz, expected 160 Hz"):
        prepare_eegmmidb(root, tmp_path / "x.h5", stats_runs=RUNS)


def test_missing_channels(synthetic_root: Path, tmp_path: Path) -> None:
    root = _copy(synthetic_root, tmp_path)
    eeg, ann = synthesize_run(subject_profiles(1, seed=0)[0], 4, seed=0)
    keep = [i for i, lab in enumerate(EDF_LABELS) if lab not in ("Cz..", "Iz..")]
    labels = tuple(EDF_LABELS[i] for i in keep)
    write_run_edf(root / "S001" / "S001R04.edf", eeg[keep], ann, labels=labels)
    with pytest.raises(InputError, match=r"S001R04\.edf: missing EEG channel\(s\) Cz, Iz"):
        prepare_eegmmidb(root, tmp_path / "x.h5", stats_runs=RUNS)


def test_corrupt_edf(synthetic_root: Path, tmp_path: Path) -> None:
    root = _copy(synthetic_root, tmp_path)
    path = root / "S001" / "S001R08.edf"
    data = bytearray(path.read_bytes())
    data[184:192] = b"garbage!"  # header length field
    data[236:244] = b"??######"  # number of data records
    path.write_bytes(bytes(data[:5000]))
    with pytest.raises(InputError, match=r"S001R08\.edf: cannot read as EDF"):
        prepare_eegmmidb(root, tmp_path / "x.h5", stats_runs=RUNS)


def test_missing_cues_and_other_bad_roots(synthetic_root: Path, tmp_path: Path) -> None:
    root = _copy(synthetic_root, tmp_path)
    eeg, _ = synthesize_run(subject_profiles(1, seed=0)[0], 4, seed=0)
    write_run_edf(root / "S001" / "S001R04.edf", eeg, [(0.0, 4.2, "T0")])
    with pytest.raises(InputError, match=r"S001R04\.edf: no T1/T2 cue annotations"):
        prepare_eegmmidb(root, tmp_path / "x.h5", stats_runs=RUNS)
    with pytest.raises(InputError, match="no EEGMMIDB subject folders"):
        prepare_eegmmidb(tmp_path / "bad" / "S001", tmp_path / "x.h5", stats_runs=RUNS)
    with pytest.raises(InputError, match="not found"):
        prepare_eegmmidb(tmp_path / "nowhere", tmp_path / "x.h5", stats_runs=RUNS)
    with pytest.raises(InputError, match=r"subject\(s\) \[88\] are excluded"):
        prepare_eegmmidb(root, tmp_path / "x.h5", subjects=[88], stats_runs=RUNS)
    with pytest.raises(InputError, match=r"no folder for subject\(s\) \[5\]"):
        prepare_eegmmidb(root, tmp_path / "x.h5", subjects=[5], stats_runs=RUNS)


def test_load_prepared_rejects_other_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="prepared data file not found"):
        load_prepared(tmp_path / "none.h5")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(InputError, match=r"text\.h5: not a readable HDF5 file"):
        load_prepared(tmp_path / "text.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(InputError, match=r"other\.h5: not a ferrocim EEG cache"):
        load_prepared(tmp_path / "other.h5")


def test_synthesize_refuses_bad_counts(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="n_subjects"):
        synthesize_edf(tmp_path, 0, seed=0)
    with pytest.raises(InputError, match="n_subjects"):
        synthesize_edf(tmp_path, 104, seed=0)


def test_global_normalisation_uses_one_mean_and_sd_over_all_runs(
    synthetic_root: Path, prepared_h5: Path, tmp_path: Path
) -> None:
    from ferrocim.snn.data.eegmmidb import channel_stats

    paths = [synthetic_root / f"S00{s}" / f"S00{s}R{r:02d}.edf" for s in (1, 2, 3) for r in RUNS]
    mean, sd = channel_stats(paths)
    # equal to the statistics of the concatenated filtered runs (computed directly)
    data = []
    for p in paths:
        raw = mne.io.read_raw_edf(p, preload=True, verbose="error")
        mne.datasets.eegbci.standardize(raw)
        raw.filter(0.1, 79.0, picks="all", verbose="error")
        data.append(raw.get_data())
    cat = np.concatenate(data, axis=1)
    np.testing.assert_allclose(mean, cat.mean(axis=1), rtol=1e-10, atol=1e-18)
    np.testing.assert_allclose(sd, cat.std(axis=1), rtol=1e-10)
    eeg, _, onset = read_run(paths[0], stats=(mean, sd))
    np.testing.assert_allclose(
        eeg[0], ((data[0] - mean[:, None]) / sd[:, None])[:, onset[0] : onset[0] + 160], rtol=1e-5
    )
    ds = load_prepared(prepared_h5)
    assert ds.meta["params"]["normalization"] == "global"
    per_run = prepare_eegmmidb(
        synthetic_root, tmp_path / "run.h5", normalization="per_run", stats_runs=RUNS
    )
    assert not np.array_equal(load_prepared(per_run).x, ds.x)
    imagery_only = synthesize_edf(tmp_path / "imagery", 1, seed=0, runs=RUNS)
    with pytest.raises(InputError, match="--stats-runs"):
        prepare_eegmmidb(imagery_only, tmp_path / "x.h5")  # runs 1-3, 5-7, ... absent
    prepare_eegmmidb(imagery_only, tmp_path / "x.h5", stats_runs=RUNS)  # stated: accepted


def test_old_cache_format_is_rejected_with_a_clear_message(tmp_path: Path) -> None:
    h5 = tmp_path / "old.h5"
    with h5py.File(h5, "w") as f:
        f.attrs["format"] = "ferrocim.eeg-windows/1"
    with pytest.raises(InputError, match=r"older ferrocim.*data prepare"):
        load_prepared(h5)
