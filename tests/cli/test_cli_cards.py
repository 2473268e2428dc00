"""Every card `devices list` shows is usable by its name (`--card NAME`, `devices show`)."""

from __future__ import annotations

from click.testing import CliRunner

from ferrocim.calibration.card import preset
from ferrocim.cli import _load_run_config, main


def _cards(tmp_path):
    card = preset("dut3").model_copy(update={"name": "ID170ZR5000"})
    for folder in ("out/cal", "out/cal-csv", "reports/demo/calibration"):
        card.save(tmp_path / folder / "cards" / "ID170ZR5000.json")
    other = preset("dut4").model_copy(update={"name": "SHARED"})
    other.save(tmp_path / "out/a/cards/SHARED.json")
    preset("dut5").model_copy(update={"name": "SHARED"}).save(tmp_path / "out/b/cards/SHARED.json")


def test_a_card_in_several_folders_is_listed_once(tmp_path, monkeypatch):
    _cards(tmp_path)
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["devices", "list"])
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("ID170ZR5000")]
    assert len(lines) == 1, res.output
    listed = "out/cal/cards/ID170ZR5000.json (same card also in out/cal-csv, reports/demo/"
    assert listed in lines[0]
    shared = [ln for ln in res.output.splitlines() if ln.startswith("SHARED")]
    assert len(shared) == 2 and all("use the path" in ln for ln in shared)


def test_a_listed_name_works_as_card(tmp_path, monkeypatch):
    _cards(tmp_path)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    res = runner.invoke(main, ["devices", "show", "ID170ZR5000"])
    assert res.exit_code == 0, res.output
    assert "card                     ID170ZR5000" in res.output
    cfg = _load_run_config("device", {"card": "ID170ZR5000"})
    assert cfg.array.card == "out/cal/cards/ID170ZR5000.json"
    cfg = _load_run_config("device", {"sets": ("array.card=ID170ZR5000",)})  # --set, TOML
    assert cfg.array.card == "out/cal/cards/ID170ZR5000.json"
    assert _load_run_config("device", {"card": "dut3"}).array.card == "dut3"
    res = runner.invoke(main, ["devices", "show", "SHARED"])
    assert res.exit_code == 2 and "2 different calibrated cards are named 'SHARED'" in res.output
    assert "out/a/cards/SHARED.json" in res.output and "give the path" in res.output


def test_an_unknown_name_says_what_exists(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["train", "device", "--card", "ID170ZR5000"])
    assert res.exit_code == 2
    assert "Invalid value for 'dut'" not in res.output
    text = " ".join(res.output.split())
    assert "array.card (--card): no card named 'ID170ZR5000'" in text
    assert "Presets are dut1, dut2, dut3, dut4, dut5" in text
    assert "a device of the bundled measurements: calibrate it first" in text
    res = CliRunner().invoke(main, ["devices", "show", "dut9"])
    assert res.exit_code == 2 and "Did you mean 'dut5'?" in res.output
