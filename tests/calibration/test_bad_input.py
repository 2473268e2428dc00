"""Each bad-input case gets a clear error naming file, line and field (damaged copies)."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from ferrocim.calibration.device import CalibrationOptions, calibrate_device
from ferrocim.calibration.readers import ColumnMapping, read_b1500, read_measurement
from ferrocim.calibration.sequence import MeasurementMeta, PulseSequence
from ferrocim.checks import InputError


def _damage(path, line_no, new):
    lines = path.read_text().splitlines(keepends=True)
    lines[line_no - 1] = new
    path.write_text("".join(lines))


def test_empty_file(tmp_path):
    p = tmp_path / "empty.csv"
    p.write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.csv: the file is empty"):
        read_measurement(p)


def test_truncated_before_data(b1500_copy):
    head = b1500_copy.read_text().splitlines(keepends=True)[:9]
    b1500_copy.write_text("".join(head))
    with pytest.raises(InputError, match=r"b1500\.csv, line 8: file ends inside"):
        read_b1500(b1500_copy)
    b1500_copy.write_text("".join(head[:7]))
    with pytest.raises(InputError, match="no 'Measurement Data' section"):
        read_b1500(b1500_copy)


def test_truncated_mid_row_warns_and_drops(b1500_copy):
    text = b1500_copy.read_text()
    b1500_copy.write_text(text[: text.rindex(",")])  # cut inside the last row
    with pytest.warns(UserWarning, match=r"line 187: incomplete last row"):
        seq = read_b1500(b1500_copy)
    assert len(seq) == 174


def test_non_numeric_cell(b1500_copy):
    _damage(b1500_copy, 20, "    7,  0.994,11540x813.521,132156261.564\n")
    with pytest.raises(InputError, match=r"b1500\.csv, line 20, field 'R_low \(ohm\)'.*11540x813"):
        read_b1500(b1500_copy)


@pytest.mark.parametrize("value", ["0.000", "-5.0", "nan"])
def test_non_positive_or_nan_resistance(b1500_copy, value):
    _damage(b1500_copy, 30, f"   17,  1.414,{value},139881660.116\n")
    with pytest.raises(InputError, match=r"line 30, field 'R_low \(ohm\)': resistance must be"):
        read_b1500(b1500_copy)


def test_minus_one_in_the_middle_is_an_error(b1500_copy):
    _damage(b1500_copy, 30, "   17,  1.414,      -1.000,      -1.000\n")
    with pytest.raises(InputError, match="line 30"):
        read_b1500(b1500_copy)


def test_csv_mapping_names_missing_column(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("V,R\n1,1e6\n-1,2e6\n")
    m = ColumnMapping.from_string("amplitude=V,resistance=Rread")
    with pytest.raises(InputError, match=r"t\.csv, line 1: .*resistance='Rread'.*'V', 'R'"):
        read_measurement(p, mapping=m)
    with pytest.raises(InputError, match="exactly one of"):
        ColumnMapping.from_string("amplitude=V")
    with pytest.raises(InputError, match="unknown key 'volts'"):
        ColumnMapping.from_string("volts=V,resistance=R")


def test_unknown_format_without_mapping(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("V,R\n1,1e6\n")
    with pytest.raises(InputError, match=r"t\.csv: format not recognised.*--columns"):
        read_measurement(p)


def _seq(amp, g, source="synthetic"):
    n = len(amp)
    return PulseSequence(
        amplitude_v=np.asarray(amp, float),
        width_s=np.full(n, 1e-8),
        conductance_s=np.asarray(g, float),
        sweep=np.full(n, -1),
        line=np.arange(n) + 1,
        meta=MeasurementMeta(source=source, parser="test", device_id="X"),
    )


def test_one_polarity_only():
    g = 1e-8 * (1 + np.linspace(0, 1, 30))
    with pytest.raises(InputError, match="one polarity only"):
        calibrate_device(
            [_seq(np.ones(30), g)], "X", CalibrationOptions(), rng=np.random.default_rng(0)
        )


def test_too_few_pulses():
    g = 1e-8 * np.array([1, 2, 3, 4, 3, 2, 1.0])
    amp = [-1, -1, -1, -1, 1, 1, 1]
    with pytest.warns(UserWarning, match="only 3 pulse transitions"):
        with pytest.raises(InputError, match="X: no usable half-cycles"):
            calibrate_device(
                [_seq(amp, g)], "X", CalibrationOptions(), rng=np.random.default_rng(0)
            )


def test_fit_that_does_not_converge(monkeypatch, bundled_measurements):
    from calibration_helpers import BUNDLED_170, FILE_170_0

    from ferrocim.calibration import device

    seq = read_b1500(bundled_measurements / BUNDLED_170 / FILE_170_0)
    real = device.fit_method

    def failing(segments, kind, method, **kw):
        fit = real(segments, kind, method, **kw)
        return dataclasses.replace(fit, success=False, message="too many function evaluations")

    monkeypatch.setattr(device, "fit_method", failing)
    with pytest.raises(InputError, match="ID170: the LTP trajectory fit did not converge"):
        calibrate_device([seq], "ID170", CalibrationOptions(), rng=np.random.default_rng(0))


def test_bad_options_named():
    with pytest.raises(InputError, match=r"'normalise'.*Did you mean 'global'"):
        CalibrationOptions(normalise="globl")


B2912B_EXAMPLE = Path(__file__).parent / "data" / "b2912b_example.txt"


def test_b2912b_truncated_last_row_dropped_short_row_elsewhere_fails(tmp_path):
    lines = B2912B_EXAMPLE.read_text().rstrip("\n").split("\n")
    full = read_measurement(B2912B_EXAMPLE)
    cut = tmp_path / "cut.txt"
    cut.write_text("\n".join([*lines[:-1], lines[-1].rsplit("\t", 3)[0]]) + "\n")
    with pytest.warns(UserWarning, match=rf"cut\.txt, line {len(lines)}: incomplete last row"):
        seq = read_measurement(cut)
    assert len(seq.amplitude_v) == len(full.amplitude_v) - 1
    lines[-3] = lines[-3].rsplit("\t", 3)[0]
    bad = tmp_path / "bad.txt"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=rf"bad\.txt, line {len(lines) - 2}: expected 10 tab"):
        read_measurement(bad)


def test_csv_truncated_last_row(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("V,R,cycle\n-1.0,1e6,0\n-1.1,9e5,0\n1.0,2e6,0\n1.1")
    mapping = ColumnMapping.from_string("amplitude=V,resistance=R,sweep=cycle")
    with pytest.warns(UserWarning, match=r"t\.csv, line 5: incomplete last row"):
        read_measurement(p, format="csv", mapping=mapping)


# ---- bad input as a user sees it on the terminal (issue 23) ---------------------------
def _generated_b2912b(path):
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from device_generator import TrueDevice, TrueKernel, write_b2912b

    device = TrueDevice(TrueKernel(0.3, 1.5, 2.2), TrueKernel(0.45, 2.0, 1.5), u_start=0.9)
    return write_b2912b(path, device, sweeps=3, device_name="CUT1")


def test_cut_mid_row_gives_card_and_a_warning_on_stderr(tmp_path):
    """A file cut inside its last row: its card, and a warning line on stderr naming the file
    and the line (not only in log.txt)."""
    from click.testing import CliRunner

    from ferrocim.cli import main

    src = tmp_path / "in"
    src.mkdir()
    p = _generated_b2912b(src / "cut.txt").paths[0]
    text = p.read_text()
    p.write_text(text[: text.rstrip("\n").rindex("\t")])  # cut inside the last row
    n_lines = len(p.read_text().splitlines())
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["calibrate", str(src), "--out", str(out), "--no-plots"])
    assert res.exit_code == 0, res.output
    assert (out / "cards" / "CUT1.json").is_file()
    assert f"warning: {p}, line {n_lines}: incomplete last row" in res.stderr


def test_one_polarity_file_named_by_file(tmp_path):
    """A file whose pulses all have one polarity fails naming the file, not only the device
    id of its header."""
    from click.testing import CliRunner

    from ferrocim.cli import main

    p = tmp_path / "only_positive.csv"
    rows = ["V,R"] + [f"1.0,{1e7 * (1 + 0.05 * i):.6g}" for i in range(30)]
    p.write_text("\n".join(rows) + "\n")
    res = CliRunner().invoke(
        main,
        ["calibrate", str(p), "--out", str(tmp_path / "out"), "--no-plots", "--format", "csv",
         "--columns", "amplitude=V,resistance=R"],
    )  # fmt: skip
    assert res.exit_code == 1
    assert "only_positive.csv" in res.stderr and "one polarity only" in res.stderr


def test_unparseable_measurement_file_in_a_folder_fails_the_batch(tmp_path):
    """In a folder: a .dat that is no table and a .txt with a damaged header make the exit
    status 1 (each named), a plain table is skipped with a count, and the good file still
    gives its card."""
    from click.testing import CliRunner

    from ferrocim.cli import main

    src = tmp_path / "in"
    src.mkdir()
    good = _generated_b2912b(src / "good.txt").paths[0]
    lines = good.read_text().splitlines()
    # the first header line and the table header lost
    (src / "damaged.txt").write_text("\n".join(["Instrument IDN", *lines[1:13], *lines[15:]]))
    (src / "noise.dat").write_bytes(bytes(range(256)) * 4)
    (src / "notes.csv").write_text("device,comment\nD1,first\nD2,second\n")
    (src / "readme.md").write_text("not a measurement extension\n")
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["calibrate", str(src), "--out", str(out), "--no-plots"])
    assert res.exit_code == 1, res.output
    assert (out / "cards" / "CUT1.json").is_file()
    failed = [line for line in res.stderr.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 2
    assert any("damaged.txt, line 1: table header lacks" in line for line in failed)
    assert any("noise.dat: cannot be parsed" in line for line in failed)
    assert "notes.csv" not in res.stderr and "skipped 1 file(s)" in res.output
