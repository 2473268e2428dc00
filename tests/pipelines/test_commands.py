"""Commands for people: messages, progress, file modes, run folders, devices."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ferrocim import logs
from ferrocim.atomic import write_text
from ferrocim.checks import InputError
from ferrocim.cli import main
from ferrocim.pipelines.config import load_config
from ferrocim.pipelines.data import check_prepared_path
from ferrocim.pipelines.runs import open_run
from ferrocim.pipelines.training import epoch_line
from ferrocim.rundir import EventRow

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_files_keep_the_umask(tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        path = write_text(tmp_path / "x.json", "{}")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == mode


def test_python_dash_m_ferrocim():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-m", "ferrocim", "--version"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert out.stdout.strip() == "ferrocim, version 0.1.0"


def test_validation_names_field_and_flag_once_and_suggests():
    with pytest.raises(InputError, match=r"'data\.n_fold'; did you mean 'data\.n_folds'"):
        load_config(None, {"data.n_fold": 3}, kind="float")
    with pytest.raises(InputError) as exc:
        load_config(None, {"transfer.q": 5, "data.n_folds": 1}, kind="float")
    msg = str(exc.value)
    assert "  transfer.q: q must be one of (2, 4, 8, 16, 32)" in msg
    assert msg.count("got 5") == 1 and "[--set transfer.q=…]" in msg
    assert "  data.n_folds: Input should be greater than or equal to 2 (got 1) " in msg
    assert "[--set data.n_folds=…]" in msg and msg.count("(got 1)") == 1


def test_data_folder_names_the_prepare_command(tmp_path):
    (tmp_path / "synth").mkdir()
    with pytest.raises(InputError, match=r"ferrocim data prepare --root .*synth --out .*synth\.h5"):
        check_prepared_path(str(tmp_path / "synth"))
    with pytest.raises(InputError, match=r"does not exist"):
        check_prepared_path(str(tmp_path / "missing.h5"))


def test_failed_run_leaves_no_folder_and_help_shows_defaults(tmp_path, monkeypatch):
    def fail(_cfg):
        raise InputError("data.fold (--fold) must be < data.n_folds = 5")

    monkeypatch.setattr("ferrocim.pipelines.train.load_dataset", fail)  # after open_run
    runner = CliRunner()
    out = tmp_path / "runs"
    res = runner.invoke(main, ["train", "float", "--out-dir", str(out), "--name", "bad"])
    assert res.exit_code == 2
    assert "data.fold (--fold) must be < data.n_folds = 5" in res.output
    assert not (out / "bad").exists() and out.is_dir()
    res = runner.invoke(main, ["train", "device", "--card", "dut9"])
    assert res.exit_code == 2 and "array.card (--card)" in res.output
    help_float = runner.invoke(main, ["train", "float", "--help"]).output
    assert "--epochs INTEGER" in help_float and "[default: 20]" in help_float
    assert "--eps FLOAT" not in help_float and "--card TEXT" not in help_float
    help_device = runner.invoke(main, ["train", "device", "--help"]).output
    eps_line = " ".join(help_device.split("--eps FLOAT", 1)[1].split("--", 1)[0].split())
    assert eps_line.endswith("[default: 0.025]"), eps_line  # --eps, from the config


def test_resume_by_name_and_one_line_ending(tiny, tmp_path):
    cfg = tiny("device", name="r", out_dir=str(tmp_path))
    run, _ = open_run(cfg)
    row = EventRow(step=0, epoch=0, phase="device", layer="fc2", ltp_pulses=1,
                   ltd_pulses=0, ltp_crossings=1, ltd_crossings=0)  # fmt: skip
    later = dataclasses.replace(row, step=1)
    run.append_events([row, later])
    reopened, _ = open_run(cfg, resume=True)  # found by name under out_dir
    assert reopened.path == tmp_path / "r"
    reopened.truncate_events(0, phase="device")  # what a resume does (pandas rewrite)
    reopened.append_events([later])
    data = run.events.read_bytes()
    assert b"\r" not in data and data.count(b"\n") == 3


def test_unfinished_event_line_is_left_out_with_a_warning(tiny, tmp_path):
    cfg = tiny("device", name="r", out_dir=str(tmp_path))
    run, _ = open_run(cfg)
    row = EventRow(step=0, epoch=0, phase="device", layer="fc2", ltp_pulses=1,
                   ltd_pulses=0, ltp_crossings=1, ltd_crossings=0)  # fmt: skip
    run.append_events([row, dataclasses.replace(row, step=1)])
    with open(run.events, "a", encoding="utf-8") as fh:  # a run stopped mid-write
        fh.write("2,0,device,fc")
    with pytest.warns(UserWarning, match=r"events.csv: unfinished last line '2,0,device,fc'"):
        events = run.read_events()
    assert events["step"].tolist() == [0, 1]
    run.truncate_events(1)  # a resume rewrites the complete rows only
    assert run.events.read_text(encoding="utf-8").endswith("\n")
    assert run.read_events()["step"].tolist() == [0, 1]


def test_progress_and_epoch_line(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert logs.progress_disabled() is True
    monkeypatch.delenv("TQDM_DISABLE")
    assert logs.progress_disabled() is None  # tqdm then draws on a terminal only
    row = {
        "phase": "device",
        "epoch": 3,
        "train_loss": 0.69314,
        "train_acc": 51.25,
        "val_acc": 48.0,
        "wall_s": 12.34,
    }
    assert epoch_line(row, 20, pulses=12345) == (
        "device epoch 3/20: loss 0.6931, acc 51.25 %, val acc 48.00 %, pulses 12,345 (12.3 s)"
    )


def test_devices_list_finds_cards_and_show_summarises(tmp_path):
    from ferrocim.calibration.card import preset

    preset("dut3").save(tmp_path / "cal" / "cards" / "mine.json")
    runner = CliRunner()
    res = runner.invoke(main, ["devices", "list", str(tmp_path)])
    assert res.exit_code == 0
    assert res.output.splitlines()[-1].startswith("dut3 ")
    assert str(tmp_path / "cal" / "cards" / "mine.json") in res.output
    res = runner.invoke(main, ["devices", "show", "dut2"])
    assert "conductance window       1 µS – 10 µS" in res.output
    assert res.output.count("\n") < 15
    res = runner.invoke(main, ["devices", "show", "dut2", "--json"])
    assert res.output.lstrip().startswith("{") and '"ltp"' in res.output
