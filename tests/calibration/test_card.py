import json

import pytest

from ferrocim.calibration.card import DeviceCard, preset, preset_names, resolve_card
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
    assert json.loads(p.read_text())["schema_version"] == 1


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
