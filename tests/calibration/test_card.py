import json

import pytest

from ferrocim.calibration.card import (
    AmplitudeKernel,
    DeviceCard,
    FieldSource,
    data_fields,
    preset,
    preset_names,
    resolve_card,
)
from ferrocim.checks import InputError


def test_presets_match_design_table():
    assert preset_names() == ["dut1", "dut2", "dut3", "dut4", "dut5"]
    c = preset("dut3")
    assert c.ltp.as_tuple() == (0.24897956, 1.86338502, 2.91746585)
    assert c.ltd.as_tuple() == (0.10299356, 2.05557189, 1.77256752)
    assert preset("dut2").symmetry_point == pytest.approx(0.316, abs=1e-3)


def test_card_round_trip(tmp_path):
    c = preset("dut1")
    p = c.save(tmp_path / "dut1.json")
    assert DeviceCard.load(p) == c
    assert json.loads(p.read_text())["schema_version"] == 2


def test_bad_card_names_file_and_field(tmp_path):
    d = preset("dut2").to_dict()
    d["ltd"]["alpha"] = -2
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(d))
    with pytest.raises(InputError, match=r"bad\.json[\s\S]*ltd\.alpha"):
        DeviceCard.load(p)


def test_bad_card_json_syntax(tmp_path):
    p = tmp_path / "broken.json"
    p.write_text('{"name": "x",\n oops}')
    with pytest.raises(InputError, match=r"broken\.json.*line 2"):
        DeviceCard.load(p)


def test_window_order_and_schema_checked():
    d = preset("dut2").to_dict()
    d["g_max_s"] = d["g_min_s"] / 2
    with pytest.raises(InputError, match="g_max_s"):
        DeviceCard.from_dict(d)
    d = preset("dut2").to_dict()
    d["schema_version"] = 99
    with pytest.raises(InputError, match="schema_version"):
        DeviceCard.from_dict(d)


def test_resolve_card_unknown_name_suggests():
    with pytest.raises(InputError, match="Did you mean 'dut2'"):
        resolve_card("dut22")


def test_every_field_has_a_source():
    """A preset names the paper for its kernels and says every other field is assumed."""
    c = preset("dut2")
    assert set(c.provenance.fields) == set(data_fields())
    assert c.source("ltp").origin == "assumed" and "paper" in c.source("ltp").reference
    assert c.source("endurance.cycles_median").origin == "assumed"
    assert "1e9-1e11" in c.source("endurance.cycles_median").reference
    assert c.source("pulse.width_s").reference.startswith("20 ns")
    assert {s.origin for s in c.provenance.fields.values()} == {"assumed"}
    with pytest.raises(KeyError, match="not a data field"):
        c.source("name")


def test_field_source_must_say_where_from():
    with pytest.raises(ValueError, match="must name the files"):
        FieldSource(origin="measured")
    with pytest.raises(ValueError, match="must name its reference"):
        FieldSource(origin="assumed")
    assert FieldSource(origin="user", note="--g-min").origin == "user"


def test_version_1_card_upgrades_with_warning():
    """A version-1 calibrated card loads: d2d spreads go to both kinds, the kernels are
    measured on its files, and the warning says its c2c includes read noise."""
    d = preset("dut2").to_dict()
    d["schema_version"] = 1
    d["provenance"] = {"source_files": [{"path": "/data/run0.csv", "sha256": None}]}
    var = {"rsd_c2c_ltp": 0.4, "rsd_c2c_ltd": 0.5, "a_dtod": 0.1, "read_noise_rsd": 0.0}
    d["variability"] = var
    with pytest.warns(UserWarning, match="version-1 card: its cycle-to-cycle spread includes"):
        c = DeviceCard.from_dict(d, source="old.json")
    assert c.schema_version == 2
    assert c.variability.a_ltp_dtod == c.variability.a_ltd_dtod == 0.1
    assert c.source("ltp").files == ["run0.csv"]
    assert "read noise included" in c.source("variability.rsd_c2c_ltp").note
    assert c.source("endurance.cycles_median").origin == "assumed"


def test_version_1_card_without_source_files_warns():
    d = preset("dut2").to_dict()
    d["schema_version"] = 1
    d["provenance"] = {}
    with pytest.warns(UserWarning, match=r"old.json is a version-1 card that names no source"):
        c = DeviceCard.from_dict(d, source="old.json")
    assert c.source("ltp").origin == "assumed"


def test_amplitude_kernel_at_a_write_amplitude():
    """a_eff = a (|V| - v_th)^p: at 2.2 V with a = 0.1, v_th = 1.2, p = 2 → 0.1."""
    k = AmplitudeKernel(a=0.1, alpha=2.0, beta=1.5, v_th=1.2, p=2.0)
    assert k.at(2.2).as_tuple() == pytest.approx((0.1, 2.0, 1.5))
    assert k.at(-3.2).a == pytest.approx(0.4)
    with pytest.raises(InputError, match="at or below the switching threshold"):
        k.at(1.0)
    card = preset("dut2").model_copy(update={"ltp_amplitude": k, "ltd_amplitude": k})
    at = card.at_amplitude(2.2)
    assert at.ltp.a == pytest.approx(0.1) and at.ltd.beta == 1.5
    assert at.symmetry_point == pytest.approx(0.5)  # identical kernels: the steps meet at W = 0.5
    assert at.source("ltp").note == "amplitude-aware kernel at 2.2 V"
    with pytest.raises(InputError, match="no amplitude-aware kernels"):
        preset("dut2").at_amplitude(2.2)
