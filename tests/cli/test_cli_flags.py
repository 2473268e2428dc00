"""Run commands list and accept only the flags that apply to them; errors name the flag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ferrocim.cli import main
from ferrocim.pipelines.config import load_config
from ferrocim.reports.headline import run_warnings


def _help(*cmd: str) -> str:
    res = CliRunner().invoke(main, [*cmd, "--help"])
    assert res.exit_code == 0, res.output
    return res.output


@pytest.mark.parametrize(
    ("cmd", "absent", "present"),
    [
        (("train", "float"), ["--card", "--eps", "--q", "--x"], ["--lr", "--subjects", "--data"]),
        (("train", "device"), ["--q", "--x"], ["--card", "--eps", "--epochs", "--width"]),
        (("retune",), ["--width", "--fold", "--subjects", "--data"], ["--q", "--x", "--lr"]),
        (
            ("sstl",),
            ["--lr", "--epochs", "--batch-size", "--width", "--fold", "--subjects"],
            ["--sstl-lr", "--sstl-epochs", "--data", "--eps", "--dropout"],
        ),
    ],
)
def test_run_commands_list_only_their_flags(cmd, absent, present):
    text = _help(*cmd)
    flags = {ln.split()[0] for ln in text.splitlines() if ln.startswith("  --")}
    assert not flags & set(absent), flags & set(absent)
    assert set(present) <= flags, set(present) - flags


def test_sstl_help_says_which_defaults_come_from_the_base_run():
    text = " ".join(_help("sstl").split())
    assert "--card TEXT" in text and "dut2, for a float base run" in text
    assert "--eps FLOAT pulse threshold as a fraction of 2·w_max [default: the base run's; " \
        "from a float run: 0.025]" in text  # fmt: skip
    assert "--dropout FLOAT per-sequence dropout of tc1, r1, fc1 (paper 0.3) [default: the " \
        "base run's]" in text  # fmt: skip
    retune = " ".join(_help("retune").split())
    assert "[default: the float run's]" in retune and "[default: 0.025]" in retune


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["train", "float", "--card", "dut3"], "a float run has no array"),
        (["train", "float", "--card"], "a float run has no array"),
        (["train", "device", "--q", "2"], "transfers no float weights"),
        (["retune", "--width", "0.5"], "--float-run"),
        (["sstl", "--epochs", "1"], "--sstl-epochs"),
        (["sstl", "--lr", "1e-3"], "--sstl-lr"),
        (["sstl", "--batch-size", "2"], "sstl.batch_size"),
    ],
)
def test_a_flag_of_another_command_is_rejected_with_the_reason(args, words):
    res = CliRunner().invoke(main, args, prog_name="ferrocim")
    assert res.exit_code == 2, res.output
    flag = next(a for a in reversed(args) if a.startswith("--"))
    assert f"{flag} does not apply to `ferrocim {args[0]}" in res.output
    assert words in res.output
    assert "Did you mean" not in res.output


def test_subjects_with_a_prepared_file_is_an_error(tmp_path):
    h5 = tmp_path / "x.h5"
    h5.write_bytes(b"")
    res = CliRunner().invoke(main, ["train", "float", "--data", str(h5), "--subjects", "4"])
    assert res.exit_code == 2
    assert "--subjects 4 sets how many synthetic subjects are generated" in res.output


def test_validation_errors_name_where_the_value_came_from(tmp_path):
    runner = CliRunner()
    res = runner.invoke(main, ["train", "device", "--eps", "-0.05"])
    assert res.exit_code == 2
    assert "array.programming.eps: Input should be greater than 0 (got -0.05) [--eps]" in res.output
    assert "--set" not in res.output
    bad = tmp_path / "bad.toml"
    bad.write_text('[array.programming]\neps = "abc"\n', encoding="utf-8")
    res = runner.invoke(main, ["train", "device", "--config", str(bad)])
    assert res.exit_code == 2 and f"[in {bad}: [array.programming] eps = …]" in res.output
    assert "--set" not in res.output
    res = runner.invoke(main, ["train", "device", "--set", "array.programming.eps=-1"])
    assert "[--set array.programming.eps=…]" in res.output
    with pytest.raises(Exception, match=r"\[--set transfer\.q=…\]"):
        load_config(None, {"transfer.q": 5})  # the API: no flag to name


def test_missing_base_runs_are_named_as_missing(tmp_path):
    runner = CliRunner()
    out = ["--out-dir", str(tmp_path)]
    res = runner.invoke(main, ["retune", "--float-run", str(tmp_path / "nope"), *out])
    assert res.exit_code == 2
    assert f"{tmp_path / 'nope'} does not exist; expected a ferrocim float run" in res.output
    assert "--float-run" in res.output
    res = runner.invoke(main, ["sstl", "--base-run", str(tmp_path / "nope"), *out])
    assert res.exit_code == 2 and "does not exist" in res.output and "--base-run" in res.output
    (tmp_path / "empty").mkdir()
    res = runner.invoke(main, ["retune", "--float-run", str(tmp_path / "empty"), *out])
    assert "is not a ferrocim float run directory (--float-run, retune.float_run): no " \
        "config.toml inside" in res.output  # fmt: skip


def test_zero_pulse_warning_names_the_network_of_the_run_kind():
    cfg = {"array": {"programming": {"eps": 0.025}}}
    summary = {"programming_events": 0, "steps": 5}
    (device,) = run_warnings(summary, {**cfg, "kind": "device"})
    (retune,) = run_warnings(summary, {**cfg, "kind": "retune"})
    (sstl,) = run_warnings(summary, {**cfg, "kind": "sstl"})
    assert "untrained network" in device
    assert "transferred network" in retune and "untrained" not in retune
    assert "pooled model" in sstl and "--sstl-lr" in sstl and "untrained" not in sstl


def test_resume_with_other_settings_is_an_error_and_leaves_the_run(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    load_config(None, {"array.programming.eps": 0.01}, kind="device").save(run / "config.toml")
    runner = CliRunner()
    args = ["train", "device", "--resume", "--run-dir", str(run)]
    res = runner.invoke(main, [*args, "--eps", "0.05"])
    assert res.exit_code == 2, res.output
    assert "array.programming.eps = 0.05 differs from the run's 0.01" in res.output
    assert sorted(p.name for p in run.iterdir()) == ["config.toml"]  # not marked failed
    res = runner.invoke(main, [*args, "--set", "train.epochs=3"])
    assert "train.epochs = 3 differs from the run's 20" in res.output
    assert not (run / "failure.json").exists()


def test_python_dash_m_help_lists_every_command():
    text = _help()
    for cmd in ("calibrate", "data", "devices", "train", "retune", "sstl", "evaluate", "sweep"):
        assert cmd in text
    assert Path(__file__).name.startswith("test_")


def test_study_flags_that_would_be_ignored_are_errors(tmp_path):
    from ferrocim.checks import InputError
    from ferrocim.pipelines.energy_study import StudyConfig
    from ferrocim.pipelines.width_cards import resolve_width_cards

    with pytest.raises(InputError, match=r"--root .* applies to --data mnist only"):
        StudyConfig(root=str(tmp_path))
    (tmp_path / "cards").mkdir()
    (tmp_path / "cards" / "widths.json").write_text("{}", encoding="utf-8")
    with pytest.raises(InputError, match=r"--pooled apply when --cards names measurements"):
        resolve_width_cards(tmp_path / "cards", tmp_path / "work", pooled=True)


def test_study_reuses_its_cards_only_for_the_same_calibration(tmp_path, monkeypatch):
    """A second study into the same folder with another --dut/--pooled/--cards is refused
    (it used to reuse the first study's cards silently); the same request reuses them."""
    import ferrocim.pipelines.width_cards as wc
    from ferrocim.checks import InputError

    calls = []

    def fake_calibrate(src, work_dir, *, device, pooled, energy_table):
        calls.append((device, pooled))
        wc.preset_width_cards(work_dir, (2e-8,))
        return wc.load_width_cards(work_dir)

    monkeypatch.setattr(wc, "calibrate_by_width", fake_calibrate)
    meas = tmp_path / "meas"
    meas.mkdir()
    work = tmp_path / "work"
    first = wc.resolve_width_cards(meas, work, device="A")
    index = json.loads((work / wc.INDEX).read_text())
    assert index["calibrated_with"] == {
        "source": str(meas.resolve()),
        "dut": "A",
        "pooled": False,
        "pulse_energy": None,
    }
    again = wc.resolve_width_cards(meas, work, device="A")
    assert [c.width_s for c in again] == [c.width_s for c in first] == [2e-8]
    assert calls == [("A", False)]
    with pytest.raises(InputError, match=r"--dut 'B' \(the cards there: 'A'\)"):
        wc.resolve_width_cards(meas, work, device="B")
    with pytest.raises(InputError, match=r"--pooled True \(the cards there: False\)"):
        wc.resolve_width_cards(meas, work, device="A", pooled=True)
    other = tmp_path / "meas2"
    other.mkdir()
    with pytest.raises(InputError, match=r"--cards .*meas2.* \(the cards there: .*meas'\)"):
        wc.resolve_width_cards(other, work, device="A")
    assert calls == [("A", False)]


def test_sweep_threads_are_the_points_threads(tmp_path, monkeypatch):
    """``sweep --threads N`` sets each point's torch threads (``--threads-per-worker`` is
    the same flag), not the idle coordinator's."""
    import ferrocim.pipelines.sweep as sweep_mod

    seen = {}

    def fake_run_sweep(sweep, out, **kw):
        seen.update(kw)
        raise SystemExit(0)

    monkeypatch.setattr(sweep_mod, "run_sweep", fake_run_sweep)
    spec = Path(__file__).parents[2] / "configs" / "sweep_eps.toml"
    for flag in ("--threads", "--threads-per-worker"):
        seen.clear()
        CliRunner().invoke(main, ["sweep", str(spec), "--out", str(tmp_path / "s"), flag, "3"])
        assert seen["threads_per_worker"] == 3
