"""Runs as an attacker and a careless user see them (issue 27): hostile names, checks
before the first write, failure.json and retrying, one writer per run, damaged caches,
output errors."""

from __future__ import annotations

import argparse
import errno
import json
import shutil

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ferrocim.checks import InputError
from ferrocim.cli import main
from ferrocim.io_errors import OutputError
from ferrocim.locks import LockedError, writer_lock
from ferrocim.pipelines.checkpoint import load_checkpoint
from ferrocim.pipelines.config import load_config
from ferrocim.pipelines.data import prepared_data_file
from ferrocim.pipelines.runs import FAILURE_RECORD
from ferrocim.pipelines.train import train
from ferrocim.snn.data import load_prepared
from ferrocim.snn.data.cache import CHECKED, checksum


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.mark.parametrize("name", ["../../ESCAPED_RUN", "/abs/path/run", "a/b", "nul\x00x"])
def test_hostile_run_name_is_refused_and_nothing_written(tmp_path, name):
    out = tmp_path / "deep" / "runs"
    res = CliRunner().invoke(main, ["train", "float", "--out-dir", str(out), "--name", name])
    assert res.exit_code == 2
    assert "the run name (--name) cannot be a folder name" in res.output
    assert _files(tmp_path) == []  # not even --out-dir


def test_long_and_non_ascii_names(tmp_path):
    with pytest.raises(InputError, match="bytes long"):
        load_config(None, {"name": "ü" * 61})
    assert load_config(None, {"name": "Läufer-Ω_1"}).name == "Läufer-Ω_1"


def test_lr_must_be_finite():
    for value in ("inf", "nan"):
        with pytest.raises(InputError, match=r"train\.lr: Input should be a finite number"):
            load_config(None, {"train.lr": value})


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"data__n_folds": 5}, "fewer than data.n_folds = 5"),
        ({"data__fold": 7}, r"data.fold \(--fold\) must be < data.n_folds = 3"),
    ],
)
def test_bad_split_is_found_before_the_run_folder_exists(tiny, tmp_path, over, match):
    run = tmp_path / "r"
    with pytest.raises(InputError, match=match):
        train(tiny("float", **over), run_dir=run)
    assert not run.exists()
    train(tiny("float", train__epochs=1), run_dir=run)  # the retry is a fresh start
    assert (run / "summary.json").is_file()


def test_damaged_cache_found_before_the_run_folder_exists(tiny, tmp_path):
    src = prepared_data_file(tiny("float").data)
    bad = tmp_path / "bad.h5"
    shutil.copy(src, bad)
    with h5py.File(bad, "r+") as f:
        f["eeg"][0, 0, 0] = 123.0  # a changed value: the checksum differs
    run = tmp_path / "r"
    with pytest.raises(InputError, match=r"bad.h5: dataset 'eeg' does not match the checksum"):
        train(tiny("float", data__source="prepared", data__path=str(bad)), run_dir=run)
    assert not run.exists()


def _rewrite(path, key, change):
    """Change a dataset and record the new checksum (a cache written wrong, not damaged)."""
    with h5py.File(path, "r+") as f:
        data = f[key][()]
        change(data)
        f[key][...] = data
        sums = json.loads(f.attrs["checksums"])
        sums[key] = checksum(f[key][()])
        f.attrs["checksums"] = json.dumps(sums)


def test_cache_labels_eeg_and_format_checked_on_load(tiny, tmp_path):
    src = prepared_data_file(tiny("float").data)
    with h5py.File(src) as f:
        assert set(json.loads(f.attrs["checksums"])) == set(CHECKED)
    labels = tmp_path / "labels.h5"
    shutil.copy(src, labels)
    _rewrite(labels, "y", lambda y: y.__setitem__(2, 7))
    with pytest.raises(InputError, match=r"labels.h5: dataset 'y' holds 1 label\(s\) other than 0"):
        load_prepared(labels)
    nan = tmp_path / "nan.h5"
    shutil.copy(src, nan)
    _rewrite(nan, "eeg", lambda x: x.__setitem__((4, 3, 10), np.nan))
    with pytest.raises(InputError, match=r"nan.h5: dataset 'eeg' holds non-finite .* trial 4"):
        load_prepared(nan)
    newer = tmp_path / "newer.h5"
    shutil.copy(src, newer)
    with h5py.File(newer, "r+") as f:
        f.attrs["format"] = "ferrocim.eeg-windows/9"
    with pytest.raises(InputError, match="prepared by a newer ferrocim"):
        load_prepared(newer)


def test_failed_run_is_marked_and_resumes(tiny, tmp_path, monkeypatch):
    """A run that fails after training is kept with failure.json (error, how to retry);
    the CLI says how to retry; a resume removes leftover temporaries and the mark."""
    cfg = tiny("float", train__checkpoint_every=1)
    run = tmp_path / "r"

    def broken(*_a, **_k):
        raise InputError("summary could not be made")

    monkeypatch.setattr("ferrocim.pipelines.train.finish_training", broken)
    with pytest.raises(InputError, match="summary could not be made"):
        train(cfg, run_dir=run)
    record = json.loads((run / FAILURE_RECORD).read_text())
    assert record["error"] == "InputError: summary could not be made"
    assert f"--resume --run-dir {run}" in record["retry"]
    with pytest.raises(InputError, match=r"exists already \(it failed: see .*failure.json\)"):
        train(cfg, run_dir=run)
    leftover = run / "checkpoints" / ".last.pt.abc123de.tmp"
    leftover.write_bytes(b"half a checkpoint")
    monkeypatch.undo()
    train(cfg, run_dir=run, resume=True)
    assert (run / "summary.json").is_file()
    assert not (run / FAILURE_RECORD).exists() and not leftover.exists()


def test_cli_failure_message_says_how_to_retry(tiny, tmp_path, monkeypatch):
    def broken(*_a, **_k):
        raise InputError("summary could not be made")

    monkeypatch.setattr("ferrocim.pipelines.train.finish_training", broken)
    cfg = tiny("float")
    sets = [
        f"--set=data.{k}={json.dumps(v)}"
        for k, v in cfg.data.model_dump().items()
        if k in ("n_subjects", "n_folds", "cache_dir", "max_train_trials", "max_eval_trials")
    ]
    run = tmp_path / "r"
    res = CliRunner().invoke(main, ["train", "float", "--run-dir", str(run), "--epochs", "1",
                                    "--batch-size", "4", *sets], prog_name="ferrocim")  # fmt: skip
    assert res.exit_code == 2, res.output
    assert "summary could not be made" in res.output
    assert f"continue it with `ferrocim train float --resume --run-dir {run}`" in res.output
    assert (run / FAILURE_RECORD).is_file()


def test_second_writer_of_a_run_is_refused(tiny, tmp_path):
    cfg = tiny("float")
    run = train(cfg, run_dir=tmp_path / "r", stop_after_steps=1)
    before = _files(run.path)
    with writer_lock(run.path, "ferrocim train"):  # a run still running
        with pytest.raises(LockedError, match=r"r is being written by another ferrocim process"):
            train(cfg, run_dir=run.path, resume=True)
        with pytest.raises(LockedError):
            train(cfg, run_dir=run.path)
    assert _files(run.path) == before and not (run.path / FAILURE_RECORD).exists()


def test_disk_full_while_checkpointing_is_one_sentence(tiny, tmp_path, monkeypatch):
    def full(path, _state):
        raise RuntimeError("[enforce fail at inline_container.cc:672] unexpected pos 4096 vs 0")

    monkeypatch.setattr("ferrocim.pipelines.training.save_checkpoint", full)
    run = tmp_path / "r"
    with pytest.raises(OutputError, match=r"the disk is full \(.* free on .*\), while writing"):
        train(tiny("float", train__checkpoint_every=1), run_dir=run)
    assert not run.exists()  # nothing was saved: no folder blocks a fresh retry


def test_checkpoint_holding_code_is_refused_in_our_words(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": 1, "obj": argparse.Namespace(a=1)}, path)
    with pytest.raises(InputError, match="could run code when loaded; ferrocim will not load it"):
        load_checkpoint(path)


def test_prepare_and_calibrate_check_out_first(tmp_path, monkeypatch):
    """An unwritable --out is a one-line error before any computation."""

    def never(*_a, **_k):
        raise AssertionError("computed before checking --out")

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("ferrocim.snn.data.prepare_eegmmidb", never)
    monkeypatch.setattr("ferrocim.calibration.calibrate", never)
    monkeypatch.setattr("ferrocim.io_errors.tempfile.mkstemp", full)
    (tmp_path / "edf").mkdir()
    res = CliRunner().invoke(
        main, ["data", "prepare", "--root", str(tmp_path / "edf"), "--out", str(tmp_path / "x.h5")]
    )
    assert res.exit_code == 2 and "the disk is full" in res.output and str(tmp_path) in res.output
    res = CliRunner().invoke(
        main, ["calibrate", str(tmp_path / "edf"), "--out", str(tmp_path / "cal")]
    )
    assert res.exit_code == 2 and "the disk is full" in res.output and "--out" in res.output


def _read_only(*args, **kw):
    path = args[0] if args else kw.get("dir")
    raise OSError(errno.EROFS, "Read-only file system", str(path))


def test_read_only_output_for_train_and_report(tiny, tmp_path, monkeypatch):
    """train and report on a read-only folder: one line naming the path and the cause
    (exit status 2, no traceback); train finds it before loading any data."""
    run = train(tiny("float"), run_dir=tmp_path / "done")

    def never(*_a, **_k):
        raise AssertionError("data loaded before the runs folder was checked")

    monkeypatch.setattr("ferrocim.pipelines.train.load_dataset", never)
    monkeypatch.setattr("ferrocim.io_errors.tempfile.mkstemp", _read_only)
    out = tmp_path / "runs"
    res = CliRunner().invoke(main, ["train", "float", "--out-dir", str(out), "--name", "ro"])
    assert res.exit_code == 2, res.output
    assert f"{out}: the file system is read-only, while checking that the runs folder" in res.output
    assert "Traceback" not in res.output and not (out / "ro").exists()
    res = CliRunner().invoke(main, ["report", str(run.path)])  # every write fails
    assert res.exit_code == 2, res.output
    assert f"Error: {run.path}" in res.output
    assert "the file system is read-only, while writing the report" in res.output


def test_changed_byte_in_a_checkpoint_is_found(tmp_path):
    from ferrocim.pipelines.checkpoint import save_checkpoint

    path = save_checkpoint(tmp_path / "c.pt", {"model": {"w": torch.arange(4096.0)}, "epoch": 2})
    assert load_checkpoint(path)["epoch"] == 2 and "digest" not in load_checkpoint(path)
    data = bytearray(path.read_bytes())
    raw = torch.arange(4096.0).numpy().tobytes()
    at = bytes(data).index(raw[4000:4016]) + 8  # a byte inside the tensor's data
    data[at] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="does not match the digest recorded"):
        load_checkpoint(path)
