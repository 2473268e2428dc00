"""Readers: real B1500 files (exact metadata), B2912B fixture, generic CSV, format detection."""

import datetime as dt
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from calibration_helpers import BUNDLED_170, FILE_170_0, FILE_170_ALL

from ferrocim.calibration.readers import (
    ColumnMapping,
    NotPulseData,
    detect_format,
    discover,
    read_b1500,
    read_measurement,
)
from ferrocim.calibration.sequence import infer_ltp_polarity, split_half_cycles


def test_b1500_repetition_metadata_exact(bundled_measurements):
    seq = read_b1500(bundled_measurements / BUNDLED_170 / FILE_170_0)
    m = seq.meta
    assert m.parser == "b1500" and m.device_id == "ID170ZR5000" and m.chip is None
    assert m.date == dt.datetime(2024, 10, 24, 13, 18, 15)
    assert m.pulse_width_s == 2e-8
    assert m.step_v == 0.042
    assert (m.amplitude_start_pos_v, m.amplitude_end_pos_v) == (0.7, 5.0)
    assert (m.amplitude_start_neg_v, m.amplitude_end_neg_v) == (-0.6, -3.6)
    assert (m.repetitions, m.count) == (2, 0)
    assert len(seq) == 175
    assert seq.amplitude_v[0] == 0.7 and seq.amplitude_v[102] == 4.984
    assert seq.amplitude_v[103] == -0.6 and seq.amplitude_v[-1] == -3.582
    # first data row: R_low = 113832984.246 ohm, at line 13
    assert seq.conductance_s[0] == pytest.approx(1 / 113832984.246, rel=1e-12)
    assert seq.line[0] == 13
    hi = read_b1500(bundled_measurements / BUNDLED_170 / FILE_170_0, read_column="R_high")
    assert hi.conductance_s[0] == pytest.approx(1 / 130313534.364, rel=1e-12)


def test_b1500_halves_and_polarity(bundled_measurements):
    seq = read_b1500(bundled_measurements / BUNDLED_170 / FILE_170_0)
    halves = split_half_cycles(seq)
    assert [(h.polarity, h.n_pulses, h.sweep) for h in halves] == [(1, 103, 0), (-1, 72, 0)]
    assert halves[0].g_before_s is None and halves[1].g_before_s == seq.conductance_s[102]
    # positive pulses raise the resistance: negative pulses potentiate
    assert infer_ltp_polarity(halves) == -1


def test_b1500_aggregate_uses_sibling_parameters(bundled_measurements):
    seq = read_b1500(bundled_measurements / BUNDLED_170 / FILE_170_ALL)
    assert len(seq) == 350 and seq.meta.count is None
    assert seq.meta.pulse_width_s == 2e-8 and seq.meta.step_v == 0.042
    assert seq.meta.extra["parameters_from"] == FILE_170_0
    halves = split_half_cycles(seq)
    assert [(h.polarity, h.sweep) for h in halves] == [(1, 0), (-1, 0), (1, 1), (-1, 1)]


def test_dc_iv_is_recognised_and_skipped(bundled_measurements):
    iv = next((bundled_measurements / "lbe247-2024-10-24/_ID170ZR5000").glob("DCIV_*/*.csv"))
    with pytest.raises(NotPulseData, match="DC I-V"):
        read_b1500(iv)
    found = {f.path.name: f for f in discover([bundled_measurements])}
    assert found[iv.name].skip_reason == "skipped: DC I-V sweep, not a pulse train"
    assert "aggregate" in found[FILE_170_ALL].skip_reason
    assert found[FILE_170_0].skip_reason is None
    # a plain table (the authors' amplitude cut-offs): skipped, saying how to read a table
    assert found["cutoffs.csv"].skip_reason.startswith("skipped: not a recognised measurement")
    assert "--columns" in found["cutoffs.csv"].skip_reason
    readable = [f for f in found.values() if f.skip_reason is None and f.error is None]
    assert len(readable) == 8  # 4 devices x 2 repetitions


def test_format_detected_from_content_not_name(tmp_path, bundled_measurements):
    odd = tmp_path / "data.txt"
    shutil.copy(bundled_measurements / BUNDLED_170 / FILE_170_0, odd)
    assert detect_format(odd) == "b1500"
    b29 = tmp_path / "export.csv"
    shutil.copy("tests/calibration/data/b2912b_example.txt", b29)
    assert detect_format(b29) == "b2912b"
    # --format overrides: forcing csv on a B1500 file needs a mapping
    with pytest.raises(Exception, match="needs a column mapping"):
        read_measurement(odd, format="csv")


def test_b2912b_fixture():
    """The example holds the paper's layout: running ``cycle`` counter, 46 rows per sweep."""
    seq = read_measurement("tests/calibration/data/b2912b_example.txt")
    m = seq.meta
    assert m.parser == "b2912b" and m.device_id == "D4" and m.chip == "HZO-SL-07"
    assert m.instrument.startswith("Keysight Technologies,B2912B")
    assert (m.pulse_width_s, m.step_v, m.read_voltage_v) == (5e-4, 0.05, 0.1)
    assert (m.amplitude_end_pos_v, m.amplitude_end_neg_v, m.repetitions) == (1.0, -1.25, 2)
    assert m.extra["Read_points"] == "20" and m.extra["read_tail_avg_points"] == "10"
    assert len(seq) == 2 * 46
    assert list(np.bincount(seq.sweep)) == [46, 46]
    assert seq.conductance_s[0] == pytest.approx(1 / 10468571.756798647, rel=1e-12)
    halves = split_half_cycles(seq)
    assert [(h.sweep, h.polarity, h.n_pulses) for h in halves] == [
        (0, 1, 20),
        (0, -1, 25),
        (1, 1, 20),
        (1, -1, 25),
    ]
    assert infer_ltp_polarity(halves) == -1


def test_b2912b_pattern_break_named(tmp_path):
    lines = Path("tests/calibration/data/b2912b_example.txt").read_text().split("\n")
    at = next(i for i, s in enumerate(lines) if s.startswith("cycle\t")) + 30
    cells = lines[at].split("\t")
    cells[1] = "-0.6"  # row 30 of sweep 0 should be -0.45 V
    lines[at] = "\t".join(cells)
    bad = tmp_path / "bad.txt"
    bad.write_text("\n".join(lines))
    with pytest.warns(UserWarning, match=rf"bad\.txt, line {at + 1}: V_write -0\.6 V breaks"):
        seq = read_measurement(bad)
    assert seq.meta.repetitions == 2
    short = tmp_path / "short.txt"
    short.write_text("\n".join(lines[: at + 1]).replace("-0.6", "-0.45") + "\n")
    with pytest.warns(UserWarning, match="Cycles_measured is 92 but the table has 30 rows"):
        read_measurement(short)


def test_csv_with_string_and_toml_mapping(tmp_path):
    p = tmp_path / "pulses.tsv"
    rows = ["# my setup", "cyc\tVp\tRread"]
    for c in range(2):
        for i, v in enumerate([1.0] * 10 + [-1.0] * 10):
            r = 1e6 * (1 + (i if v > 0 else 20 - i) / 10)
            rows.append(f"{c}\t{v}\t{r}")
    p.write_text("\n".join(rows) + "\n")
    m = ColumnMapping.from_string("amplitude=Vp,resistance=Rread,sweep=cyc", pulse_width_s=1e-7)
    seq = read_measurement(p, mapping=m)
    assert len(seq) == 40 and seq.meta.pulse_width_s == 1e-7 and seq.line[0] == 3
    assert seq.conductance_s[0] == pytest.approx(1 / 1e6)
    toml = tmp_path / "map.toml"
    toml.write_text(
        'delimiter = "\\t"\n[columns]\namplitude = "Vp"\nresistance = "Rread"\nsweep = "cyc"\n'
        '[meta]\ndevice_id = "D7"\nread_voltage_v = 0.2\n'
    )
    seq2 = read_measurement(p, mapping=ColumnMapping.from_toml(toml))
    assert seq2.meta.device_id == "D7" and seq2.meta.read_voltage_v == 0.2
    np.testing.assert_array_equal(seq2.conductance_s, seq.conductance_s)


def test_real_shared_files_all_parse_or_fail_cleanly(shared_measurements):
    """Every pulse file of the shared folder reads, or fails naming the file."""
    bad = {}
    n_ok = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for f in discover([shared_measurements]):
            if f.skip_reason:
                continue
            if f.error:
                bad[f.path.name] = f.error
                continue
            try:
                read_measurement(f.path)
                n_ok += 1
            except Exception as exc:
                bad[f.path.name] = str(exc)
    assert n_ok == 74
    assert sorted(bad) == [
        "pulsedAmplitudeSweep_DCIV[_ID185ZR500(0)]20241024144734.csv",
        "pulsedAmplitudeSweep_DCIV[_ID187ZR500(0)]20241024145653.csv",
        "pulsedAmplitudeSweep_DCIV_N[_ID187ZR500(ALL)]20241024145651.csv",
    ]
    assert all(name in msg for name, msg in bad.items())
    # six aborted runs end with a -1 resistance row, dropped with a warning naming the line
    aborted = [w for w in caught if "aborted measurement" in str(w.message)]
    assert len(aborted) == 6


def test_shared_other_pulse_widths_metadata(shared_measurements):
    run = shared_measurements / "_ID161ZR15000" / "pulsedAmplitudeSweep_DCIV_20241024113545"
    seq = read_b1500(next(run.glob("*(0)]*.csv")))
    assert seq.meta.pulse_width_s == 2e-3 and seq.meta.step_v == 0.03
    assert (seq.meta.amplitude_start_pos_v, seq.meta.amplitude_end_pos_v) == (0.1, 2.0)
    assert seq.amplitude_v[63] == 1.99 and seq.amplitude_v[-1] == -1.99
    lbe = next((shared_measurements / "LBE247").rglob("*.csv"))
    with pytest.raises(NotPulseData):
        read_b1500(lbe)
