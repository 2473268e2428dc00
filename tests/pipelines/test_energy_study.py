"""Energy-convergence study: per-width cards, IDX reader, runs, table, resume, report."""

from __future__ import annotations

import gzip
import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ferrocim.calibration.card import preset
from ferrocim.checks import InputError
from ferrocim.cli import main
from ferrocim.pipelines import energy_study
from ferrocim.pipelines.energy_study import StudyConfig, read_idx, run_study
from ferrocim.pipelines.width_cards import (
    assumed_energy,
    load_width_cards,
    preset_width_cards,
    read_energy_table,
    with_energy,
)


def _write_idx(path: Path, arr: np.ndarray, code: int = 0x08) -> Path:
    head = struct.pack(">BBBB", 0, 0, code, arr.ndim) + struct.pack(f">{arr.ndim}i", *arr.shape)
    raw = head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


WIDTHS = (2e-8, 2e-6)


def test_published_width_factors():
    for w, factor in ((2e-8, 1), (2e-7, 5.7), (2e-6, 25), (2e-5, 690), (2e-4, 3800)):
        e, src = assumed_energy(w)
        assert e == pytest.approx(3e-12 * factor, rel=1e-12)
        assert src.startswith("assumed:") and "3 pJ" in src
    e, src = assumed_energy(2e-3)  # beyond 200 us: the last segment's slope
    assert e == pytest.approx(3e-12 * 3800 * 3800 / 690, rel=1e-9)
    assert "extrapolated" in src


def test_energy_table_marks_measured(tmp_path):
    p = tmp_path / "e.csv"
    p.write_text("width_s,energy_j\n2e-8,1.5e-12\n")
    card = with_energy(preset("dut2"), 2e-8, read_energy_table(p), str(p))
    assert card.pulse.energy_j == 1.5e-12 and card.pulse.energy_source == f"measured: {p}"
    e = with_energy(preset("dut2"), 2e-6, read_energy_table(p)).pulse.energy_j
    assert e == pytest.approx(7.5e-11, rel=1e-12)
    p.write_text("width,energy_j\n2e-8,1\n")
    with pytest.raises(InputError, match="missing column"):
        read_energy_table(p)
    p.write_text("width_s,energy_j\n2e-8,-1\n")
    with pytest.raises(InputError, match="line 2"):
        read_energy_table(p)


def test_idx_reader(tmp_path):
    imgs = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(read_idx(_write_idx(tmp_path / "a-idx3-ubyte", imgs)), imgs)
    f32 = np.array([1.5, -2.0], dtype=np.float32)
    assert np.array_equal(read_idx(_write_idx(tmp_path / "b.gz", f32, 0x0D)), f32)
    bad = tmp_path / "c"
    bad.write_bytes((tmp_path / "a-idx3-ubyte").read_bytes()[:-1])
    with pytest.raises(InputError, match="need 40 bytes, the file has 39"):
        read_idx(bad)
    bad.write_bytes(b"\x01\x02\x03")
    with pytest.raises(InputError, match="not an IDX file"):
        read_idx(bad)


def test_duplicate_widths_need_a_device(tmp_path):
    for name in ("a", "b"):
        preset("dut2").model_copy(update={"name": name}).save(tmp_path / "cards" / f"{name}.json")
    with pytest.raises(InputError, match="several cards at 20ns"):
        load_width_cards(tmp_path)
    assert [c.path.name for c in load_width_cards(tmp_path, "a")] == ["a.json"]


def _cfg(**kw) -> StudyConfig:
    base = {"widths": (2e-8, 2e-6), "epochs": 1, "samples": 60, "batch_size": 30, "target": 0.2}
    return StudyConfig(**{**base, **kw})


def test_study_two_widths_three_rules(tmp_path):
    cards = preset_width_cards(tmp_path / "cards", WIDTHS)
    out = tmp_path / "study"
    res = run_study(_cfg(), cards, out, report=False, progress=False)
    df = pd.read_parquet(out / "results.parquet")
    assert len(df) == 6 and set(df["rule"]) == {"plain", "symmetry", "mixed"}
    assert sorted(df["width_s"].unique()) == [2e-8, 2e-6]
    # energy totals are pulses x energy per pulse (write) plus the read ledger
    assert np.allclose(df["write_energy_j"], df["pulses"] * df["energy_per_pulse_j"], rtol=1e-12)
    assert np.allclose(df["total_energy_j"], df["write_energy_j"] + df["read_energy_j"])
    assert np.allclose(df["energy_per_pulse_j"], np.repeat([3e-12, 7.5e-11], 3), rtol=1e-12)
    # the same seed and rule at two widths differ only in the card's energy per pulse here
    # (both cards are dut2), so pulses agree and energies scale by x25
    a = df.set_index(["rule", "width_s"])
    for rule in ("plain", "symmetry", "mixed"):
        assert a.loc[(rule, 2e-8), "pulses"] == a.loc[(rule, 2e-6), "pulses"]
        assert a.loc[(rule, 2e-6), "write_energy_j"] == pytest.approx(
            25 * a.loc[(rule, 2e-8), "write_energy_j"], rel=1e-9
        )
    assert a.loc[("plain", 2e-8), "pulses"] > 0 and a.loc[("symmetry", 2e-8), "pulses"] > 0
    run = Path(df["run_dir"].iloc[0])
    for f in ("config.toml", "env.json", "metrics.csv", "events.csv", "energy.csv", "card.json"):
        assert (run / f).is_file(), f
    events = pd.read_csv(run / "events.csv")
    assert events["ltp_pulses"].sum() + events["ltd_pulses"].sum() == df["pulses"].iloc[0]
    assert set(events["layer"]) == {"fc1", "fc2", "fc3"}
    assert json.loads((run / "card.json").read_text())["pulse"]["energy_j"] == 3e-12
    # a finished study is read back, not retrained
    again = run_study(_cfg(), cards, out, report=False, progress=False)
    pd.testing.assert_frame_equal(again.results, res.results)
    with pytest.raises(InputError, match="other settings \\(epochs\\)"):
        run_study(_cfg(epochs=2), cards, out, progress=False)


def test_interrupted_run_resumes_to_the_same_result(tmp_path, monkeypatch):
    cards = preset_width_cards(tmp_path / "cards", (2e-8,))
    cfg = _cfg(widths=(2e-8,), rules=("plain",), epochs=3, samples=60)
    whole = run_study(cfg, cards, tmp_path / "a", report=False, progress=False).results
    calls = {"n": 0}
    real = energy_study._accuracy

    def dies_in_epoch_two(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(energy_study, "_accuracy", dies_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        run_study(cfg, cards, tmp_path / "b", report=False, progress=False)
    monkeypatch.setattr(energy_study, "_accuracy", real)
    resumed = run_study(cfg, cards, tmp_path / "b", report=False, progress=False).results
    cols = ["final_acc", "pulses", "ltp_pulses", "write_energy_j", "read_energy_j"]
    pd.testing.assert_frame_equal(resumed[cols], whole[cols])
    assert list(resumed["acc_per_epoch"].iloc[0]) == list(whole["acc_per_epoch"].iloc[0])
    ev = pd.read_csv(Path(resumed["run_dir"].iloc[0]) / "events.csv")
    assert ev["epoch"].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_mnist_idx_through_the_cli(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "mnist"
    root.mkdir()
    for stem, n in (("train", 60), ("t10k", 20)):
        _write_idx(
            root / f"{stem}-images-idx3-ubyte", rng.integers(0, 256, (n, 4, 4), dtype=np.uint8)
        )
        _write_idx(root / f"{stem}-labels-idx1-ubyte.gz", rng.integers(0, 10, n, dtype=np.uint8))
    cards = preset_width_cards(tmp_path / "cards", (2e-8,))
    out = tmp_path / "out"
    r = CliRunner().invoke(
        main,
        [
            "study",
            "energy-convergence",
            "--cards",
            str(cards),
            "--out",
            str(out),
            "--rules",
            "mixed",
            "--widths",
            "2e-8",
            "--epochs",
            "1",
            "--data",
            "mnist",
            "--root",
            str(root),
            "--no-report",
        ],
    )
    assert r.exit_code == 0, r.output
    df = pd.read_parquet(out / "results.parquet")
    assert len(df) == 1 and df["rule"].iloc[0] == "mixed"
    assert "results:" in r.output and not (out / "report.html").exists()
    r = CliRunner().invoke(
        main,
        [
            "study",
            "energy-convergence",
            "--cards",
            str(cards),
            "--out",
            str(tmp_path / "o2"),
            "--widths",
            "2e-7",
        ],
    )
    assert r.exit_code == 2 and "no card at 2e-07 s" in r.output


@pytest.mark.slow
def test_study_few_hundred_samples_with_report(tmp_path):
    cards = preset_width_cards(tmp_path / "cards", WIDTHS)
    res = run_study(_cfg(samples=300, epochs=3), cards, tmp_path / "s", progress=False)
    assert len(res.results) == 6
    html = res.report_path.read_text()
    for title in ("Energy to target accuracy", "Accuracy per epoch", "Energy vs final accuracy"):
        assert title in html
    # no "energy to target" figure (a sentence instead) when no run reached the target
    reached = bool(res.results["energy_to_target_j"].notna().any())
    assert len(list((tmp_path / "s" / "plots").glob("*.png"))) == 2 + reached


@pytest.mark.slow
def test_cards_by_width_from_real_files(shared_measurements, tmp_path):
    dev = shared_measurements / "_ID170ZR5000"
    picked = tmp_path / "files"
    for run in (
        "pulsedAmplitudeSweep_DCIV_20241024131813",
        "pulsedAmplitudeSweep_DCIV_20241024135654",
    ):
        shutil.copytree(dev / run, picked / run)
    out = tmp_path / "cards"
    r = CliRunner().invoke(main, ["study", "cards", str(picked), "--out", str(out)])
    assert r.exit_code == 0, r.output
    cards = load_width_cards(out)
    assert [c.width_s for c in cards] == [2e-8, 2e-3]
    assert cards[0].energy_j == 3e-12 and cards[0].energy_source.startswith("assumed")
    assert cards[1].card.pulse.width_s == 2e-3
    res = run_study(
        _cfg(widths=(2e-8, 2e-3), samples=300, epochs=2), out, tmp_path / "s", progress=False
    )
    assert len(res.results) == 6


def test_unknown_device_is_named(bundled_measurements, tmp_path):
    r = CliRunner().invoke(
        main,
        ["study", "cards", str(bundled_measurements), "--dut", "ID999", "--out", str(tmp_path)],
    )
    assert r.exit_code == 2
    assert "device 'ID999'" in r.output and "no usable pulse files" in r.output


CONFIG_002 = Path(__file__).resolve().parents[2] / "configs" / "study_seed002.toml"


def test_published_study_configuration_file():
    data = energy_study.study_config_data(CONFIG_002)
    cfg = StudyConfig(**data)
    assert cfg.widths == (2e-8, 2e-6, 2e-4, 2e-3)
    assert cfg.rules == ("mixed", "plain", "symmetry") and cfg.seeds == (0, 1, 2)
    assert (cfg.epochs, cfg.lr, cfg.batch_size, cfg.bl, cfg.hidden) == (10, 0.1, 16, 31, (256, 128))
    assert cfg.data == "digits"
    a = cfg.array
    assert (a.weight_window, a.weight_bound, a.symmetry_reference) == ("fixed", 1.0, "device")
    assert (a.programming.pulse_order, a.programming.dw_min) == ("per_sample", "up_at_mid")
    assert a.programming.transfer == "pulse_train"  # aihwkit's mixed-precision transfer
    assert a.grad_out_bound == 12.0  # aihwkit's output-bound gradient mask
    assert cfg.to_dict()["array"]["weight_window"] == "fixed"


def test_study_config_errors_name_the_field(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text("epoch = 3\n")
    with pytest.raises(InputError, match="unknown study field 'epoch'; did you mean 'epochs'"):
        energy_study.study_config_data(p)
    p.write_text('[array]\ncard = "dut1"\n')
    with pytest.raises(InputError, match=r"array\.card is set per width"):
        energy_study.study_config_data(p)
    p.write_text('[array]\nweight_window = "fan_in"\n')
    with pytest.raises(InputError, match="weight_window"):
        energy_study.study_config_data(p)


def test_config_and_flags_reach_every_run(tmp_path):
    cards = preset_width_cards(tmp_path / "cards", (2e-8,))
    out = tmp_path / "out"
    args = ["study", "energy-convergence", "--config", str(CONFIG_002), "--cards", str(cards)]
    args += ["--out", str(out), "--widths", "2e-8", "--seeds", "0", "--epochs", "1"]
    args += ["--samples", "60", "--rules", "plain,symmetry", "--no-report"]
    args += ["--set", "array.weight_bound=0.5"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    df = pd.read_parquet(out / "results.parquet")
    assert sorted(df["rule"]) == ["plain", "symmetry"] and set(df["seed"]) == {0}
    stored = json.loads((out / "study.json").read_text())
    assert stored["epochs"] == 1 and stored["lr"] == 0.1 and stored["widths"] == [2e-8]
    assert stored["array"]["weight_bound"] == 0.5
    assert stored["array"]["programming"]["pulse_order"] == "per_sample"
    import tomllib

    run = tomllib.loads((out / "runs" / "20ns-symmetry-seed0" / "config.toml").read_text())
    assert run["array"]["reference"] == "symmetry"
    assert run["array"]["symmetry_reference"] == "device"
    assert run["array"]["weight_window"] == "fixed" and run["array"]["weight_bound"] == 0.5
    r = CliRunner().invoke(main, [*args[:-2], "--set", "lr=0.2"])
    assert r.exit_code != 0 and "array.FIELD=VALUE" in r.output


def test_set_periphery_preset_reaches_the_runs(tmp_path):
    cards = preset_width_cards(tmp_path / "cards", (2e-8,))
    out = tmp_path / "out"
    args = ["study", "energy-convergence", "--config", str(CONFIG_002), "--cards", str(cards)]
    args += ["--out", str(out), "--widths", "2e-8", "--seeds", "0", "--epochs", "1"]
    args += ["--samples", "20", "--rules", "mixed", "--no-report"]
    args += ["--set", "array.periphery=aihwkit", "--set", "array.out_noise=0.03"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    arr = json.loads((out / "study.json").read_text())["array"]
    assert (arr["periphery"], arr["dac_bits"], arr["adc_bits"]) == ("aihwkit", 7, 9)
    assert arr["adc_full_scale"] == 12.0 and arr["out_noise"] == 0.03  # --set wins
    assert arr["weight_window"] == "fixed"  # the file's own fields stay


@pytest.mark.parametrize("env", [None, "1"])
def test_study_bar_is_not_drawn_off_a_terminal(tmp_path, capfd, monkeypatch, env):
    """The study's bar follows ferrocim.logs.progress: off with TQDM_DISABLE=1 (and -q) and
    never drawn into a file or pipe (it used to draw with tqdm directly, flags or not)."""
    if env is None:
        monkeypatch.delenv("TQDM_DISABLE", raising=False)
    else:
        monkeypatch.setenv("TQDM_DISABLE", env)
    cards = preset_width_cards(tmp_path / "cards", WIDTHS[:1])
    res = run_study(_cfg(widths=WIDTHS[:1], rules=("plain",)), cards, tmp_path / "s", report=False)
    assert len(res.results) == 1
    err = capfd.readouterr().err
    assert "study:" not in err and "run/s" not in err and "it/s" not in err
