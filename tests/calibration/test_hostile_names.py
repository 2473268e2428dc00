"""Device ids from measurement files never write outside --out (issue 27)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from ferrocim.cli import main

sys.path.insert(0, str(Path(__file__).parent))
from device_generator import TrueDevice, TrueKernel, write_b2912b


def _b2912b(path: Path, device_name: str) -> Path:
    device = TrueDevice(TrueKernel(0.3, 1.5, 2.2), TrueKernel(0.45, 2.0, 1.5), u_start=0.9)
    return write_b2912b(path, device, sweeps=3, device_name=device_name).paths[0]


def _all_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("absolute", [False, True])
def test_hostile_device_header_stays_inside_out(tmp_path, absolute):
    """A ``Device:`` header with ``../`` or an absolute path: the card (and its plots) are
    written inside --out under a safe name; the id is kept in the card; a warning says so."""
    device_id = str(tmp_path / "abs" / "PWN") if absolute else "../../../PWN_b2912"
    stem = "PWN-" if absolute else "PWN_b2912-"
    work = tmp_path / "a" / "b" / "c"
    src = work / "in"
    src.mkdir(parents=True)
    _b2912b(src / "m.txt", device_id)
    out = work / "out"
    args = ["calibrate", str(src), "--out", str(out)]
    if absolute:
        args.append("--no-plots")
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert not Path(device_id).with_suffix(".json").exists()
    assert _all_files(tmp_path) == {f"a/b/c/{f}" for f in _all_files(work)}  # nothing above
    cards = sorted((out / "cards").glob("*.json"))
    assert len(cards) == 1 and stem in cards[0].name and "/" not in cards[0].stem
    card = json.loads(cards[0].read_text())
    assert card["name"] == cards[0].stem
    assert device_id in card["description"]  # the mapping: the id stays in the card
    assert card["provenance"]["source_files"][0]["meta"]["device_id"] == device_id
    assert f"device id {device_id!r} is not a safe file name" in res.stderr
    if not absolute:
        plots = {p.name for p in (out / "plots").iterdir()}
        assert plots and all(p.startswith(cards[0].stem) for p in plots), plots


def test_non_ascii_device_id_is_kept(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    _b2912b(src / "m.txt", "Gerät-Ω7")
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["calibrate", str(src), "--out", str(out), "--no-plots"])
    assert res.exit_code == 0, res.output
    assert (out / "cards" / "Gerät-Ω7.json").is_file()
    assert "not a safe file name" not in res.stderr


def test_calibrate_into_an_earlier_out_merges_by_device_and_says_so(tmp_path):
    first, second = tmp_path / "in1", tmp_path / "in2"
    first.mkdir()
    second.mkdir()
    _b2912b(first / "a.txt", "DA")
    _b2912b(first / "b.txt", "DB")
    _b2912b(second / "b.txt", "DB")
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["calibrate", str(first), "--out", str(out), "--no-plots"])
    assert res.exit_code == 0, res.output
    assert (out / "d2d.csv").is_file()
    res = CliRunner().invoke(main, ["calibrate", str(second), "--out", str(out), "--no-plots"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (out / "cards").iterdir()) == ["DA.json", "DB.json"]
    assert "replaced the card(s) DB of an earlier calibration" in res.stderr
    assert "merged by device: kept the card(s) DA of other devices" in res.stderr
    assert "regenerated from all 2 cards" in res.stderr
    # the tables and the report cover both cards, not only this run's DB
    assert pd.read_csv(out / "d2d.csv")["devices"].tolist() == ["DB, DA"]
    assert set(pd.read_csv(out / "sweeps.csv")["dut"]) == {"DA", "DB"}
    html = (out / "calibration.html").read_text()
    assert "Device DA" in html and "Device DB" in html and "merged by device" in html
    assert not list(out.glob(".*lock"))


def test_hostile_csv_mapping_device_id_stays_inside_out(tmp_path):
    """A CSV mapping's ``device_id`` with ``../`` and a NUL: the card is inside --out."""
    from device_generator import write_csv

    device = TrueDevice(TrueKernel(0.3, 1.5, 2.2), TrueKernel(0.45, 2.0, 1.5), u_start=0.9)
    work = tmp_path / "w"
    work.mkdir()
    write_csv(work / "m.csv", device, sweeps=3)
    mapping = work / "map.toml"
    mapping.write_text(
        '[columns]\namplitude = "V"\nresistance = "R"\nsweep = "cycle"\n'
        '[meta]\ndevice_id = "../../evil\\u0000id"\npulse_width_s = 1e-7\n'
    )
    out = work / "out"
    res = CliRunner().invoke(
        main,
        ["calibrate", str(work / "m.csv"), "--out", str(out), "--no-plots",
         "--format", "csv", "--mapping", str(mapping)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert _all_files(tmp_path) == {f"w/{f}" for f in _all_files(work)}
    (card,) = (out / "cards").glob("*.json")
    assert card.name.startswith("evil_id-") and "not a safe file name" in res.stderr


def test_rerun_removes_temporaries_of_a_stopped_calibration(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    _b2912b(src / "m.txt", "DT")
    out = tmp_path / "out"
    (out / "cards").mkdir(parents=True)
    left = [out / ".sweeps.csv.ab12cd34.tmp", out / "cards" / ".DT.json.x_9y8z7w.tmp"]
    for p in left:
        p.write_text("half")
    mine = out / ".notes.tmp"  # not an atomic-writer temporary: kept
    mine.write_text("user file")
    res = CliRunner().invoke(main, ["calibrate", str(src), "--out", str(out), "--no-plots"])
    assert res.exit_code == 0, res.output
    assert not any(p.exists() for p in left) and mine.read_text() == "user file"
