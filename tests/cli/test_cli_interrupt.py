"""Ctrl-C prints the exact command that continues; resumes say where; wall_s spans sessions."""

from __future__ import annotations

import json
import logging
import os
import time

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ferrocim.cli import main
from ferrocim.pipelines.checkpoint import save_checkpoint
from ferrocim.pipelines.prefix import InputForward
from ferrocim.pipelines.rundir import RunDir
from ferrocim.pipelines.runs import (
    SESSIONS,
    begin_session,
    end_session,
    one_writer,
    open_run,
    session_wall_s,
)
from ferrocim.pipelines.training import fit


def _fake_train(stop_after_open: bool):
    @one_writer("train")
    def fake(cfg, *, run_dir=None, resume=False, **_kw):
        if not stop_after_open:
            raise KeyboardInterrupt
        run, cfg = open_run(cfg, run_dir=run_dir, resume=resume, data={"source": "test"})
        position = {"phase": cfg.kind, "epoch": 2, "batch": 3, "step": 11}
        save_checkpoint(run.last_checkpoint, position)
        raise KeyboardInterrupt

    return fake


def test_ctrl_c_prints_the_resume_command(tmp_path, monkeypatch):
    monkeypatch.setattr("ferrocim.pipelines.train.train", _fake_train(True))
    run = tmp_path / "runs" / "r1"
    args = ["train", "float", "--out-dir", str(tmp_path / "runs"), "--name", "r1", "--threads", "1"]
    res = CliRunner().invoke(main, args, prog_name="ferrocim")
    assert res.exit_code == 130, res.output
    assert "Aborted!" not in res.output
    text = " ".join(res.output.split())
    assert f"interrupted (Ctrl-C). The run is kept in {run}" in text
    assert "continues from epoch 3/20, after batch 3 (step 11)" in text
    assert f"ferrocim train float --resume --run-dir {run}" in res.output
    failure = json.loads((run / "failure.json").read_text(encoding="utf-8"))
    assert "interrupted (Ctrl-C)" in failure["error"]
    assert f"`ferrocim train device --resume --run-dir {run}`" not in failure["retry"]
    assert f"`ferrocim train float --resume --run-dir {run}`" in failure["retry"]
    (session,) = json.loads((run / SESSIONS).read_text(encoding="utf-8"))
    assert session["outcome"] == "interrupted" and session["wall_s"] >= 0


def test_ctrl_c_before_anything_was_saved(tmp_path, monkeypatch):
    monkeypatch.setattr("ferrocim.pipelines.train.train", _fake_train(False))
    args = ["train", "float", "--out-dir", str(tmp_path), "--name", "r", "--threads", "1"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 130 and "Aborted!" not in res.output
    assert "before the run had saved anything" in res.output
    assert not (tmp_path / "r").exists()


def test_ctrl_c_in_a_sweep_prints_the_same_command(tmp_path, monkeypatch):
    def interrupted(*_a, **_kw):
        raise KeyboardInterrupt

    monkeypatch.setattr("ferrocim.pipelines.sweep_spec.read_sweep", lambda _f: object())
    monkeypatch.setattr("ferrocim.pipelines.sweep.run_sweep", interrupted)
    out = tmp_path / "my sweep"
    args = ["sweep", "s.toml", "--out", str(out), "--retries", "1", "--threads", "1"]
    res = CliRunner().invoke(main, args, prog_name="ferrocim")
    assert res.exit_code == 130 and "Aborted!" not in res.output
    assert f"ferrocim sweep s.toml --out '{out}' --threads 1 --retries 1" in res.output


def test_wall_s_counts_every_session(tmp_path):
    run = RunDir(tmp_path / "r")
    run.path.mkdir()
    begin_session(run)
    end_session(run.path, 5.0, "interrupted")
    begin_session(run)  # a session that is then killed: no end recorded
    sessions = json.loads((run.path / SESSIONS).read_text(encoding="utf-8"))
    (run.path / "metrics.csv").write_text("x\n", encoding="utf-8")
    os.utime(run.path / "metrics.csv", (sessions[1]["started_unix"] + 3,) * 2)
    begin_session(run)  # the third session closes the killed one, estimated
    sessions = json.loads((run.path / SESSIONS).read_text(encoding="utf-8"))
    assert [s["outcome"] for s in sessions] == ["interrupted", "killed", None]
    assert sessions[1]["estimated"] is True and sessions[1]["wall_s"] == pytest.approx(3, abs=0.01)
    started = time.perf_counter() - 2.0
    assert session_wall_s(run, started) == pytest.approx(10.0, abs=0.5)


class _Toy(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)

    def forward(self, x, dropout_generator=None):
        return self.lin(x)


def test_a_resume_says_from_which_epoch_and_step(tmp_path, caplog):
    torch.manual_seed(0)
    x, y = torch.randn(12, 3), torch.randint(0, 2, (12,))
    run = RunDir(tmp_path / "r")
    run.path.mkdir()

    def go(**kw):
        model = _Toy()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        forward = InputForward(model, x, y)
        return fit(opt, forward, np.arange(8), np.arange(8, 12), run=run, phase="float",
                   epochs=3, batch_size=4, seed=0, checkpoint_every=1, **kw)  # fmt: skip

    go(stop_after_steps=3)
    with caplog.at_level(logging.INFO, logger="ferrocim"):
        result = go(resume=True)
    assert f"resuming float in {run.path} from epoch 2/3, after batch 1 (step 3)" in caplog.text
    assert result.steps == 6
