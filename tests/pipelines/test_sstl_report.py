"""SSTL (per subject, resumable), the run report and the command line."""

from __future__ import annotations

import re

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from ferrocim.checks import InputError
from ferrocim.cli import main
from ferrocim.crossbar import analog_modules
from ferrocim.pipelines.checkpoint import load_checkpoint
from ferrocim.pipelines.config import load_config
from ferrocim.pipelines.prefix import split_layer
from ferrocim.pipelines.runs import inherit_from_base
from ferrocim.pipelines.sstl import pooled_model, sstl
from ferrocim.pipelines.train import train
from ferrocim.reports.run import build_report


@pytest.fixture(scope="module")
def base_run(tiny, tmp_path_factory):
    return train(tiny("device"), run_dir=tmp_path_factory.mktemp("runs") / "base")


def test_split_layer():
    assert split_layer(["fc1", "fc2"]) == "r1"
    assert split_layer(["fc2"]) == "fc1"
    assert split_layer(["conv1", "fc2"]) is None


def test_sstl_rows_and_resume(base_run, tiny, tmp_path):
    cfg = tiny(
        "sstl", sstl__base_run=str(base_run.path), sstl__subjects=[1], sstl__folds=2, sstl__epochs=1
    )
    run = sstl(cfg, run_dir=tmp_path / "sstl")
    table = pd.read_csv(run.sstl)
    assert list(table["fold"]) == [0, 1] and set(table["subject"]) == {1}
    assert (table["n_train"] + table["n_test"] == 45).all()  # 45 trials per subject
    s = run.read_summary()
    assert s.cached_prefix == "r1"
    assert s.acc_before == pytest.approx(table["acc_before"].mean())
    ev = run.read_events()
    assert int(ev["ltp_pulses"].sum() + ev["ltd_pulses"].sum()) == s.pulses
    assert set(ev["layer"]) <= {"fc1.synapse", "fc2.synapse"}
    # simulate a kill after the first fold: drop the second row and its events, resume
    table.iloc[:1].to_csv(run.sstl, index=False)
    ev[ev["phase"] == "sstl:1:0"].to_csv(run.events, index=False)
    resumed = sstl(cfg, run_dir=run.path, resume=True)
    pd.testing.assert_frame_equal(pd.read_csv(resumed.sstl), table)
    pd.testing.assert_frame_equal(resumed.read_events(), ev)


def test_sstl_unknown_subjects_found_before_the_run_folder_exists(base_run, tiny, tmp_path):
    """A failed SSTL start leaves no folder to block the retry (issue 27)."""
    cfg = tiny("sstl", sstl__base_run=str(base_run.path), sstl__subjects=[99])
    with pytest.raises(InputError, match=r"sstl.subjects \[99\] are not in the data set"):
        sstl(cfg, run_dir=tmp_path / "sstl")
    assert not (tmp_path / "sstl").exists()


def test_sstl_inherits_the_tiles_and_applies_its_programming(base_run, tiny, tmp_path):
    base_cfg = load_config(base_run.config)
    over = {"sstl__base_run": str(base_run.path), "sstl__subjects": [1]}
    # the paper's SSTL programs fc1 + fc2 on device: its own eps applies to the model
    cfg = inherit_from_base(tiny("sstl", array__programming__eps=0.5, **over), base_cfg, "SSTL")
    assert cfg.array.programming.eps == 0.5
    assert cfg.array.card == base_cfg.array.card and cfg.data == base_cfg.data
    model = pooled_model(base_run, cfg, base_run.read_card(), torch.device("cpu"))
    m = analog_modules(model)["fc1.synapse"]
    assert m.thr_ltp == pytest.approx(0.5 * 2 * m.w_max)
    base_state = load_checkpoint(base_run.best_checkpoint)["model"]
    assert torch.equal(m.conductance, base_state["fc1.synapse.conductance"])
    # unset programming fields come from the base run, not from the defaults
    plain = inherit_from_base(tiny("sstl", **over), base_cfg, "SSTL")
    assert plain.array.programming.eps == base_cfg.array.programming.eps == 0.01
    # overrides that cannot apply are errors, and nothing is written
    for bad, match in (
        ({"array__card": "dut1"}, "array.card = 'dut1' cannot differ"),
        ({"transfer__q": 2}, "transfer.q = 2 does not apply"),
        ({"data__fold": 1}, "data.fold = 1 cannot differ"),
        ({"array__endurance__enabled": True}, "array.endurance.enabled = True cannot differ"),
    ):
        with pytest.raises(InputError, match=re.escape(match)):
            sstl(tiny("sstl", **bad, **over), run_dir=tmp_path / "bad")
        assert not (tmp_path / "bad").exists()


@pytest.mark.slow  # runs in `make test-slow` (CI)
def test_report_from_run_directories(base_run, tmp_path):
    html_path = build_report([base_run.path], tmp_path / "r.html")
    html = html_path.read_text()
    s = base_run.read_summary()
    for title in (
        "Learning curves",
        "Programming events per epoch",
        "Pulses per device",
        "Endurance margin",
        "Energy by layer, kind and phase",
        "Events by layer",
    ):
        assert title in html, title
    assert html.count("data:image/png;base64,") >= 6
    assert f"{s.programming_events:,}" in html
    pngs = list((tmp_path / "r_figures").glob("*.png"))
    assert len(pngs) == html.count("data:image/png;base64,")


def test_cli_rejects_bad_knob(tmp_path):
    r = CliRunner().invoke(main, ["retune", "--q", "3", "--run-dir", str(tmp_path / "x")])
    assert r.exit_code == 2 and "transfer.q" in r.output and "q must be one of" in r.output
    r = CliRunner().invoke(main, ["train", "float", "--set", "train.lrr=1"])
    assert r.exit_code == 2 and "train.lrr" in r.output
    r = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert r.exit_code == 2 and "no config.toml" in r.output
