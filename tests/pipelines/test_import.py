"""`ferrocim import eeg-ferro`: published checkpoints become runs that other commands accept."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from ferrocim.cli import main
from ferrocim.pipelines.checkpoint import load_checkpoint
from ferrocim.pipelines.config import load_config
from ferrocim.pipelines.data import load_dataset, to_tensors
from ferrocim.pipelines.evaluate import evaluate_run
from ferrocim.pipelines.prefix import InputForward
from ferrocim.pipelines.retune import retune
from ferrocim.pipelines.rundir import RunDir
from ferrocim.pipelines.sstl import sstl
from ferrocim.pipelines.training import evaluate
from ferrocim.snn import EEGSNN, NetworkConfig, load_eeg_ferro


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, eeg_ferro_state):
    model = EEGSNN(NetworkConfig(width=0.25), generator=torch.Generator().manual_seed(4))
    path = tmp_path_factory.mktemp("eeg-ferro") / "model.pth"
    torch.save(eeg_ferro_state(model), path)
    return path


def _sets(data_dir) -> list[str]:
    over = {
        "data.n_subjects": 3,
        "data.n_folds": 3,
        "data.cache_dir": f'"{data_dir}"',
        "data.max_train_trials": 8,
        "data.max_eval_trials": 6,
        "train.batch_size": 4,
        "train.eval_batch_size": 8,
        "train.epochs": 1,
    }
    return [x for k, v in over.items() for x in ("--set", f"{k}={v}")]


def _import_float(published, data_dir, out) -> RunDir:
    res = CliRunner().invoke(
        main, ["import", "eeg-ferro", str(published), "--out", str(out), *_sets(data_dir)]
    )
    assert res.exit_code == 0, res.output
    return RunDir(out).require()


@pytest.mark.slow
def test_imported_float_run_is_a_retune_and_sstl_base(published, data_dir, tiny, tmp_path):
    out = _import_float(published, data_dir, tmp_path / "imported").path
    rt = retune(tiny("retune", retune__float_run=str(out), transfer__q=2), run_dir=tmp_path / "rt")
    assert rt.read_summary().q == 2
    s = sstl(
        tiny("sstl", sstl__base_run=str(out), sstl__subjects=[1], sstl__folds=2, sstl__epochs=1),
        run_dir=tmp_path / "sstl",
    )
    assert len(pd.read_csv(s.sstl)) == 2


def test_import_float_then_evaluate(published, data_dir, tmp_path) -> None:
    out = tmp_path / "imported"
    run = _import_float(published, data_dir, out)
    cfg = load_config(run.config)
    assert cfg.kind == "float" and cfg.network.width == 0.25
    state = load_checkpoint(run.best_checkpoint)["model"]
    sd = torch.load(published, weights_only=True)
    assert torch.equal(state["tc1.taps.0.weight"], sd["snn.temp_conv1.psp_func_list.2.weight"])
    # the imported run scores exactly what the published checkpoint scores when loaded
    # directly, on every trial of the data given at import (it was trained elsewhere: no
    # fold of those data applies to it)
    res = evaluate_run(out)
    ds = load_dataset(cfg.data)
    data = to_tensors(ds, torch.device("cpu"))
    direct = evaluate(
        InputForward(load_eeg_ferro(published), data.x, data.y),
        np.arange(len(ds)),
        batch_size=cfg.train.eval_batch_size,
    )
    assert res["n"] == direct["n"] == 135 and res["own_data"] is False
    assert res["acc"] == direct["acc"]
    assert res["loss"] == pytest.approx(direct["loss"], rel=1e-6)
    # a second import into the same folder is refused; a missing file is named
    res = CliRunner().invoke(main, ["import", "eeg-ferro", str(published), "--out", str(out)])
    assert res.exit_code == 2 and "exists already" in res.output
    res = CliRunner().invoke(
        main, ["import", "eeg-ferro", "nope.pth", "--out", str(tmp_path / "n")]
    )
    assert res.exit_code == 2 and "nope.pth" in res.output


def test_import_device_run_holds_the_stored_weights(published, data_dir, tmp_path) -> None:
    out = tmp_path / "dev"
    args = ["import", "eeg-ferro", str(published), "--out", str(out), "--kind", "device"]
    res = CliRunner().invoke(main, [*args, *_sets(data_dir), "--set", "array.d2d=false"])
    assert res.exit_code == 0, res.output
    state = load_checkpoint(RunDir(out).best_checkpoint)["model"]
    sd = torch.load(published, weights_only=True)
    a = 0.125  # fc1's bound at width 0.25 (1/sqrt(64)); its init weights lie inside it
    w = sd["snn.fc1.psp_func.weight"]
    assert w.abs().max() <= a
    torch.testing.assert_close(state["fc1.synapse.weight"], w, rtol=0, atol=1e-7)
    torch.testing.assert_close(
        (state["fc1.synapse.conductance"] - 0.5) * 2 * a, w, rtol=0, atol=1e-7
    )
    res = evaluate_run(out)  # runs on the device model and records what it printed
    assert res["n"] > 0 and math.isfinite(res["loss"])
    assert json.loads((out / "evaluation.json").read_text())["acc"] == res["acc"]
