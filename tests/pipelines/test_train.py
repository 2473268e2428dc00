"""Float / on-device / re-tune pipelines on tiny configurations: counts, resume, transfer."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from ferrocim.checks import InputError
from ferrocim.pipelines.checkpoint import load_checkpoint
from ferrocim.pipelines.config import load_config
from ferrocim.pipelines.data import fold_split, load_dataset, to_tensors
from ferrocim.pipelines.evaluate import evaluate_run
from ferrocim.pipelines.prefix import InputForward
from ferrocim.pipelines.retune import load_float_model, retune, transfer_to_tiles
from ferrocim.pipelines.runs import build_model
from ferrocim.pipelines.train import train
from ferrocim.pipelines.training import evaluate


def _transfer_acc(float_run, retune_run, *, q: int, x: float) -> float:
    """Test accuracy of the float model written onto fresh tiles of the re-tuning run."""
    cfg = load_config(retune_run.config)
    ds = load_dataset(cfg.data)
    data = to_tensors(ds, torch.device("cpu"))
    model = build_model(cfg, analog=True, card=retune_run.read_card())
    float_model = load_float_model(float_run.path, torch.device("cpu"))
    transfer_to_tiles(float_model, model, q=q, x=x, seed=cfg.seed)
    test = fold_split(ds, cfg.data, cfg.seed).test
    return evaluate(InputForward(model, data.x, data.y), test, batch_size=8)["acc"]


@pytest.fixture(scope="module")
def float_run(tiny, tmp_path_factory):
    return train(tiny("float"), run_dir=tmp_path_factory.mktemp("runs") / "float")


@pytest.fixture(scope="module")
def device_run(tiny, tmp_path_factory):
    return train(tiny("device", train__epochs=2), run_dir=tmp_path_factory.mktemp("runs") / "dev")


def test_float_run_files(float_run):
    s = float_run.read_summary()
    assert s.kind == "float" and s.n_test == 6 and s.test_subjects == [1]
    # the summary's accuracy is the best checkpoint's on the test trials, recomputed here
    again = evaluate_run(float_run.path)
    assert again["n"] == 6 and again["acc"] == s.test_acc and again["loss"] == s.test_loss
    m = float_run.read_metrics()
    assert list(m["epoch"]) == [1] and {"train_loss", "val_acc", "wall_s"} <= set(m.columns)
    ck = load_checkpoint(float_run.best_checkpoint)  # weights_only=True inside
    assert ck["phase"] == "float" and "conv1.synapse.weight" in ck["model"]
    assert not float_run.tiles.exists()  # nothing analog in a float run


def test_evaluate_with_bf16_products(float_run):
    """``evaluate --precision bf16`` on an fp32 run: recorded, close to its fp32 loss."""
    from click.testing import CliRunner

    from ferrocim.cli import main

    s = float_run.read_summary()
    out = evaluate_run(float_run.path, precision="bf16")
    assert out["precision"] == "bf16" and out["n"] == 6
    assert out["loss"] == pytest.approx(s.test_loss, abs=0.05)
    assert evaluate_run(float_run.path)["precision"] == "fp32"
    res = CliRunner().invoke(main, ["evaluate", str(float_run.path), "--precision", "bf16"])
    assert res.exit_code == 0 and "bf16 products" in res.output, res.output
    with pytest.raises(InputError, match="--precision"):
        evaluate_run(float_run.path, precision="fp16")


def test_device_events_equal_tile_counters(device_run):
    s = device_run.read_summary()
    ev = device_run.read_events()
    assert s.pulses > 0
    assert int(ev["ltp_pulses"].sum()) == s.ltp_pulses
    assert int(ev["ltd_pulses"].sum()) == s.ltd_pulses
    with h5py.File(device_run.tiles) as f:
        counts = sum(np.asarray(g["pulse_counts"]).reshape(2, -1).sum(1) for g in f.values())
        crossings = sum(np.asarray(g["crossings"]) for g in f.values())
    assert counts.tolist() == [s.ltp_pulses, s.ltd_pulses]
    assert crossings.tolist() == [s.ltp_crossings, s.ltd_crossings]
    # at most one pulse per weight and step: crossings >= pulses
    assert s.programming_events >= s.pulses
    assert s.devices == 697_408


def test_device_energy_is_counts_times_per_event(device_run):
    from ferrocim.calibration.card import DeviceCard
    from ferrocim.crossbar.config import EnergyConfig
    from ferrocim.crossbar.energy import per_event_energy

    e = pd.read_csv(device_run.energy)
    per = per_event_energy(EnergyConfig(), DeviceCard.load(device_run.card))
    writes = e[e["kind"] == "write_ltp"]
    assert int(writes["count"].sum()) == device_run.read_summary().ltp_pulses
    np.testing.assert_allclose(writes["energy_j"], writes["count"] * per["write_ltp"], rtol=1e-12)
    assert set(e["phase"]) == {"train", "inference"}


def test_resume_after_kill_equals_uninterrupted(tiny, tmp_path):
    cfg = tiny("device", train__epochs=2, train__checkpoint_every=1)
    full = train(cfg, run_dir=tmp_path / "full")
    part = train(cfg, run_dir=tmp_path / "part", stop_after_steps=3)  # killed mid-epoch 2
    assert not part.summary.exists()
    with pytest.raises(InputError, match="exists already"):
        train(cfg, run_dir=tmp_path / "part")
    resumed = train(cfg, run_dir=tmp_path / "part", resume=True)
    a = load_checkpoint(full.last_checkpoint)["model"]
    b = load_checkpoint(resumed.last_checkpoint)["model"]
    assert a.keys() == b.keys()
    for k, v in a.items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, b[k]), k
    drop = ["wall_s"]
    pd.testing.assert_frame_equal(
        full.read_metrics().drop(columns=drop), resumed.read_metrics().drop(columns=drop)
    )
    pd.testing.assert_frame_equal(full.read_events(), resumed.read_events())
    sa, sb = full.read_summary(), resumed.read_summary()
    for key in ("test_acc", "pulses", "programming_events", "best_epoch"):
        assert getattr(sa, key) == getattr(sb, key), key


def test_retune_transfers_and_trains_only_unfrozen(float_run, tiny, tmp_path):
    cfg = tiny(
        "retune",
        retune__float_run=str(float_run.path),
        transfer__q=2,
        transfer__x=4.0,
        retune__unfreeze=["fc1", "fc2"],
    )
    run = retune(cfg, run_dir=tmp_path / "retune")
    s = run.read_summary()
    assert s.q == 2 and s.x == 4.0 and s.unfreeze == ["fc1", "fc2"]
    assert s.float_test_acc == float_run.read_summary().test_acc
    assert s.transfer_test_acc == _transfer_acc(float_run, run, q=2, x=4.0)
    layers = set(run.read_events()["layer"])
    assert layers == {"fc1.synapse", "fc2.synapse"}
    with h5py.File(run.tiles) as f:
        assert int(np.asarray(f["conv2.synapse"]["pulse_counts"]).sum()) == 0


def test_retune_needs_float_run(tiny, tmp_path, device_run):
    with pytest.raises(InputError, match="float_run"):
        retune(tiny("retune"), run_dir=tmp_path / "r")
    cfg = tiny("retune", retune__float_run=str(device_run.path))
    with pytest.raises(InputError, match="re-tuning starts from a float run"):
        retune(cfg, run_dir=tmp_path / "r2")


def test_network_section_reaches_the_model_and_retune_inherits_width(tiny, tmp_path):
    small = train(
        tiny("float", network__width=0.25, network__dropout=0.3), run_dir=tmp_path / "small"
    )
    state = load_checkpoint(small.best_checkpoint)["model"]
    assert state["conv1.synapse.weight"].shape == (16, 1, 3, 3)
    assert state["fc2.synapse.weight"].shape == (2, 64)
    # the retune config says width 1.0 (default); the float run's 0.25 wins
    cfg = tiny("retune", retune__float_run=str(small.path), retune__unfreeze=["fc2"])
    assert cfg.network.width == 1.0
    run = retune(cfg, run_dir=tmp_path / "retune")
    assert "width = 0.25" in run.config.read_text()
    assert set(run.read_events()["layer"]) == {"fc2.synapse"}
