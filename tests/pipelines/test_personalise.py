"""Personalisation from the command line on a one-subject file the test writes: import a
published checkpoint with --data, evaluate it, SSTL on the subject's own 4 folds, and the
data a run records (`RUN/data.json`) and refuses to swap silently."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "snn"))
from eeg_helpers import write_subject

from ferrocim.cli import main
from ferrocim.pipelines.train import train
from ferrocim.snn import EEGSNN, NetworkConfig
from ferrocim.snn.data import prepare_eegmmidb
from ferrocim.snn.data.cache import read_channel_stats


@pytest.fixture(scope="module")
def one_subject(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(EDF root with S001 runs 4, 8, 12; its prepared one-subject file)."""
    root = write_subject(tmp_path_factory.mktemp("s001"), 1)
    h5 = prepare_eegmmidb(root, root.parent / "s001.h5", stats_runs=(4, 8, 12))
    return root, h5


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, eeg_ferro_state) -> Path:
    model = EEGSNN(NetworkConfig(width=0.25), generator=torch.Generator().manual_seed(4))
    path = tmp_path_factory.mktemp("eeg-ferro") / "model.pth"
    torch.save(eeg_ferro_state(model), path)
    return path


def _ok(args: list[str]) -> str:
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    return res.output


def _fails(args: list[str], *needles: str) -> str:
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    for n in needles:
        assert n in text, text
    return text


def test_import_evaluate_and_sstl_on_one_subject(one_subject, published, tmp_path) -> None:
    _, h5 = one_subject
    run = tmp_path / "imported"
    out = _ok(["import", "eeg-ferro", str(published), "--out", str(run), "--kind", "device",
               "--data", str(h5)])  # fmt: skip
    assert f"as a device run on {h5}" in out
    rec = json.loads((run / "data.json").read_text())
    assert rec["trained_on"] is False and "not published" in rec["note"]
    assert (
        rec["subjects"] == [1] and rec["n_trials"] == 45 and len(rec["stats"]["channel_mean"]) == 64
    )
    # every trial of the file: the checkpoint was trained elsewhere, no fold applies
    out = _ok(["evaluate", str(run)])
    assert "test accuracy " in out and f"over 45 trials of prepared file {h5} (subjects 1;" in out
    ev = json.loads((run / "evaluation.json").read_text())
    assert ev["n"] == 45 and ev["own_data"] is False and ev["subjects"] == [1]
    out = _ok(["evaluate", str(run), "--subjects", "1", "--exclude-channels", "frontal-temporal"])
    assert "over 45 trials" in out and "18 channels excluded" in out
    _fails(["evaluate", str(run), "--subjects", "2"], "--subjects [2]: not among the subjects")
    _fails(["evaluate", str(run), "--split", "val"], "no train/val split there")
    _fails(["evaluate", str(run), "--exclude-channels", "F77"], "unknown EEG channel 'F77'")
    # SSTL: the subject's own stratified 4-fold split (12/11/11/11 test trials)
    sstl_dir = tmp_path / "sstl"
    out = _ok(["sstl", "--base-run", str(run), "--data", str(h5), "--sstl-subjects", "1",
               "--sstl-epochs", "1", "--run-dir", str(sstl_dir), "--threads", "1"])  # fmt: skip
    assert "acc_before=" in out and "programming_events=" in out
    table = pd.read_csv(sstl_dir / "sstl.csv")
    assert table["fold"].tolist() == [0, 1, 2, 3] and table["subject"].eq(1).all()
    assert sorted(table["n_test"]) == [11, 11, 11, 12]
    assert (table["n_train"] + table["n_test"]).eq(45).all()
    srec = json.loads((sstl_dir / "data.json").read_text())
    assert srec["other_than_base"] is True and srec["base_run"] == str(run)
    # a failed SSTL leaves no folder behind, and the rerun is not told to --resume
    bad = tmp_path / "bad"
    _fails(["sstl", "--base-run", str(run), "--sstl-subjects", "7", "--run-dir", str(bad)],
           "sstl.subjects [7] are not in the data set")  # fmt: skip
    assert not bad.exists()
    # an imported checkpoint has no population statistics to give
    prep = ["data", "prepare", "--root", str(one_subject[0]), "--out", str(tmp_path / "x.h5")]
    _fails(
        [*prep, "--stats-from", str(run)], "channel statistics of the population", "not published"
    )


def test_no_silent_swap_of_data(one_subject, published, tmp_path) -> None:
    _, h5 = one_subject
    bare = tmp_path / "bare"
    _ok(["import", "eeg-ferro", str(published), "--out", str(bare)])
    _fails(["evaluate", str(bare)], "no data were given at import", "--data FILE.h5")
    _fails(["sstl", "--base-run", str(bare), "--run-dir", str(tmp_path / "s")],
           "no data were given at import")  # fmt: skip
    assert not (tmp_path / "s").exists()
    copy = tmp_path / "copy.h5"
    shutil.copy(h5, copy)
    run = tmp_path / "on-copy"
    _ok(["import", "eeg-ferro", str(published), "--out", str(run), "--data", str(copy)])
    copy.unlink()
    _fails(
        ["evaluate", str(run)], f"its data file {copy} (data.path in its config.toml) is missing"
    )


def test_stats_from_a_trained_run_and_evaluation_on_other_data(one_subject, tiny, tmp_path) -> None:
    root, _ = one_subject
    run = train(tiny("float", network__width=0.25), run_dir=tmp_path / "float").path
    rec = json.loads((run / "data.json").read_text())
    assert rec["trained_on"] is True and rec["source"] == "synthetic"
    new = tmp_path / "new.h5"
    _ok(["data", "prepare", "--root", str(root), "--out", str(new), "--stats-from", str(run)])
    stats = read_channel_stats(new)
    assert stats.mean.tolist() == rec["stats"]["channel_mean"]
    assert stats.std.tolist() == rec["stats"]["channel_std"]
    assert stats.origin.startswith(f"run {run} (global over runs 1-14 of subjects [1, 2, 3]")
    own = _evaluate(run)
    assert own["own_data"] is True and own["n"] == 6  # the fold's test trials (subsampled)
    res = CliRunner().invoke(main, ["evaluate", str(run), "--data", str(new)])
    assert res.exit_code == 0, res.output
    assert "not on the data it was trained on" in res.output
    other = json.loads((run / "evaluation.json").read_text())
    assert other["own_data"] is False and other["n"] == 45 and np.isfinite(other["loss"])


def _evaluate(run: Path, *args: str) -> dict:
    _ok(["evaluate", str(run), *args])
    return json.loads((run / "evaluation.json").read_text())
