"""`ferrocim data synth` and `ferrocim data prepare`."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from ferrocim.cli import main
from ferrocim.snn.data import load_prepared


def test_synth_then_prepare(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(
        main, ["data", "synth", "--out", str(tmp_path / "syn"), "--subjects", "2", "--seed", "3"]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "syn" / "S002" / "S002R12.edf").is_file()
    h5 = tmp_path / "syn.h5"
    args = ["data", "prepare", "--root", str(tmp_path / "syn"), "--out", str(h5)]
    args += ["--stats-runs", "4,8,12"]
    res = runner.invoke(main, [*args, "--subjects", "2"])
    assert res.exit_code == 0, res.output
    assert "45 trials" in res.output and "from 1 subjects" in res.output
    assert load_prepared(h5).subjects.tolist() == [2]


def test_prepare_bad_input_exits_2(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["data", "prepare", "--root", str(tmp_path), "--out", "x.h5"])
    assert res.exit_code == 2
    assert "no EEGMMIDB subject folders" in res.output
    res = runner.invoke(
        main, ["data", "prepare", "--root", str(tmp_path), "--out", "x.h5", "--subjects", "a"]
    )
    assert res.exit_code == 2 and "--subjects: expected numbers" in res.output
