"""calibrate on inputs without measurements, plain tables, the report's fit flags, grouped
field sources, d2d shown once, fit_report() and the API's writer lock (issues 27, 28)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from ferrocim.calibration import CalibrationOptions, calibrate
from ferrocim.calibration.card import DeviceCard, KernelParams, preset
from ferrocim.calibration.quality import POOR_R2_DW, fit_flags
from ferrocim.calibration.readers import discover, suggest_columns
from ferrocim.checks import InputError
from ferrocim.cli import main
from ferrocim.locks import LockedError, writer_lock
from ferrocim.reports.calibration import provenance_table

sys.path.insert(0, str(Path(__file__).parent))
from device_generator import TrueDevice, TrueKernel, write_b2912b

CSV_EXAMPLE = Path(__file__).resolve().parents[2] / "measurements" / "csv-example"


def _b2912b(path: Path, device_name: str) -> Path:
    device = TrueDevice(TrueKernel(0.3, 1.5, 2.2), TrueKernel(0.45, 2.0, 1.5), u_start=0.9)
    return write_b2912b(path, device, sweeps=3, device_name=device_name).paths[0]


@pytest.fixture(scope="module")
def two_devices(tmp_path_factory):
    """Two synthetic devices and a plain table in a subfolder, calibrated once (CLI)."""
    root = tmp_path_factory.mktemp("two")
    src = root / "in"
    (src / "notes").mkdir(parents=True)
    _b2912b(src / "a.txt", "DA")
    _b2912b(src / "b.txt", "DB")
    (src / "notes" / "table.csv").write_text("cycle,V,R\n0,0.7,1e8\n0,0.8,1.1e8\n")
    out = root / "out"
    res = CliRunner().invoke(main, ["calibrate", str(src), "--out", str(out), "--no-plots"])
    assert res.exit_code == 0, res.output
    return out, res


# ---- inputs that hold no measurement ---------------------------------------------------
def test_empty_folder_is_an_error_and_writes_nothing(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["calibrate", str(empty), "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert f"{empty}: no measurement file found" in res.output
    assert "nothing was written" in res.output and "Traceback" not in res.output
    assert not out.exists()
    with pytest.raises(InputError, match="no measurement file found"):
        calibrate(empty, out, CalibrationOptions(progress=False))  # the Python API too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_only_skipped_files_is_an_error_with_the_reasons(tmp_path):
    src = tmp_path / "in" / "sub"
    src.mkdir(parents=True)
    (src / "table.csv").write_text("cycle,V,R\n0,0.7,1e8\n0,0.8,1.1e8\n")
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["calibrate", str(tmp_path / "in"), "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert "no pulse-train measurement among the 1 file(s) found" in res.output
    assert "sub/table.csv: skipped" in res.output and "--format csv --columns" in res.output
    assert not out.exists()


# ---- plain tables: the exact flags ------------------------------------------------------
def test_plain_table_is_skipped_with_the_exact_flags(tmp_path):
    (found,) = discover([CSV_EXAMPLE])
    why = found.skip_reason
    assert why.startswith("skipped: not a recognised measurement")
    assert "columns cycle, V, R" in why
    assert (
        f"ferrocim calibrate {found.path} --format csv --columns "
        "'amplitude=V,resistance=R,sweep=cycle' --pulse-width SECONDS --out DIR" in why
    )


def test_suggest_columns_by_header_names():
    assert suggest_columns(["cycle", "V", "R"]) == "amplitude=V,resistance=R,sweep=cycle"
    assert suggest_columns(["V_write (V)", "G (S)", "width"]) == (
        "amplitude=V_write (V),conductance=G (S),width=width"
    )
    assert suggest_columns(["Voltage", "I"]) == "amplitude=Voltage,current=I"
    assert suggest_columns(["device_id", "VStartPos", "VEndPos"]) is None  # no read column


def test_skipped_files_named_relative_to_the_input(two_devices):
    out, _ = two_devices
    html = (out / "calibration.html").read_text()
    assert "notes/table.csv" in html  # the folder, not the bare name


# ---- poor fits --------------------------------------------------------------------------
def _poor_card() -> DeviceCard:
    base = preset("dut2")
    return base.model_copy(
        update={
            "name": "ID161",
            "ltd": KernelParams(a=0.0064, alpha=1.06, beta=0.589),
            "fit": {"r2_dw": {"ltp": 0.96, "ltd": -0.046}, "r2_w": {"ltp": 0.99, "ltd": 0.96}},
        }
    )


def test_poor_fit_flags_name_the_threshold():
    flags = fit_flags(_poor_card())
    assert len(flags) == 2, flags
    assert f"ID161 LTD: poor fit on the step (dW) metric, R² dW -0.046 < {POOR_R2_DW}" in flags[0]
    assert "beta 0.589 < 1" in flags[1] and "W = 1" in flags[1]
    assert fit_flags(preset("dut2")) == []  # no fit record, no flag


def test_poor_fit_flagged_in_the_report_section():
    from ferrocim.reports.calibration import add_calibration_section
    from ferrocim.reports.html import Report

    rep = Report(title="t")
    add_calibration_section(rep, _poor_card())
    html = rep.render()
    assert "POOR FIT: ID161 LTD: poor fit on the step (dW) metric" in html


def test_cli_summary_shows_the_dw_r2(two_devices):
    _, res = two_devices
    line = next(s for s in res.output.splitlines() if s.startswith("DA "))
    assert "(dW " in line


# ---- report layout ----------------------------------------------------------------------
def test_field_sources_grouped_one_row_per_source(two_devices):
    out, _ = two_devices
    card = DeviceCard.load(out / "cards" / "DA.json")
    table = provenance_table(card)
    fields = [f for row in table["fields"] for f in row.split(", ")]
    assert sorted(fields) == sorted(card.provenance.fields)  # every field, once
    assert len(table) < len(fields) / 2  # one file list is not repeated per field
    keys = list(zip(table["origin"], table["from"], table["note"], strict=True))
    assert len(set(keys)) == len(keys)


def test_d2d_values_shown_once(two_devices):
    out, _ = two_devices
    html = (out / "calibration.html").read_text()
    assert "Device-to-device spread" in html
    assert "d2d LTP A" not in html  # not repeated under every device
    text = html.replace("&#39;", "'").replace("&#x27;", "'")
    assert text.count("spreads over DA, DB: see 'Device-to-device spread' in the overview") == 2


# ---- fit_report -------------------------------------------------------------------------
def test_fit_report_lists_parameters_noise_statistics_and_sources(two_devices):
    out, _ = two_devices
    card = DeviceCard.load(out / "cards" / "DA.json")
    text = card.fit_report()
    for part in ("[[Card]]", "[[Fit Statistics]]", "[[Variables]]", "[[Noise]]", "[[Flags]]"):
        assert part in text
    assert "[[Sources]]" in text and "a.txt" in text
    assert f"ltp.a:      {card.ltp.a:.6g} +/- {card.ltp.a_stderr:.3g}" in text
    assert "bounds [0.1, 10]" in text and "R² trajectory" in text and "AIC" in text
    assert "d2d LTP a/alpha/beta" in text and "(over DA, DB)" in text
    assert "bounds" not in preset("dut2").fit_report()  # a preset was not fitted
    res = CliRunner().invoke(main, ["devices", "show", str(out / "cards" / "DA.json")])
    assert res.exit_code == 0 and "[[Variables]]" in res.output


def test_result_fit_report_covers_every_card(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    _b2912b(src / "a.txt", "DA")
    res = calibrate(src, tmp_path / "out", CalibrationOptions(progress=False, plots=False))
    assert res.fit_report().startswith("[[Card]]\n    name:               DA")
    assert res.duts[0].fit_report() == res.duts[0].card.fit_report()


# ---- the Python API takes the writer lock ----------------------------------------------
def test_api_calibrate_and_prepare_take_the_writer_lock(tmp_path):
    from ferrocim.snn.data import prepare_eegmmidb

    out, cache = tmp_path / "out", tmp_path / "c.h5"
    ready = tmp_path / "ready"
    code = textwrap.dedent(
        f"""
        import time, pathlib
        from ferrocim.locks import writer_lock
        with writer_lock({str(out)!r}, "ferrocim calibrate", inside=True), \\
                writer_lock({str(cache)!r}, "ferrocim data prepare"):
            pathlib.Path({str(ready)!r}).write_text("x")
            time.sleep(60)
        """
    )
    src = tmp_path / "in"
    src.mkdir()
    (src / "m.txt").write_text("not a measurement at all\n")
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        for _ in range(600):
            if ready.exists():
                break
            time.sleep(0.05)
        with pytest.raises(LockedError, match=f"pid {child.pid}"):
            calibrate(src, out, CalibrationOptions(progress=False))
        with pytest.raises(LockedError, match=f"pid {child.pid}"):
            prepare_eegmmidb(tmp_path / "nowhere", cache)
    finally:
        child.kill()
        child.wait()


def test_api_calibrate_inside_the_commands_lock(tmp_path):
    """Inside a block that holds the lock (as the CLI does) the API goes on under it."""
    src = tmp_path / "in"
    src.mkdir()
    _b2912b(src / "a.txt", "DA")
    out = tmp_path / "out"
    with writer_lock(out, "ferrocim calibrate", inside=True) as lock:
        res = calibrate(src, out, CalibrationOptions(progress=False, plots=False))
        assert lock.is_file()  # still held after the API's own (reentrant) block
    assert res.ok and not lock.exists()


def test_devices_filter_that_keeps_no_file_is_an_error(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    _b2912b(src / "a.txt", "DA")
    out = tmp_path / "out"
    with pytest.raises(InputError, match=r"no usable pulse files of device 'DX' \(the files hold"):
        calibrate(src, out, CalibrationOptions(progress=False, devices=("DX",)))
    assert not out.exists()
