"""The configuration spine: every crossbar knob reaches the tile, bad keys name the right one,
and a rejected configuration writes nothing."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner

from ferrocim.calibration.card import resolve_card
from ferrocim.checks import InputError
from ferrocim.cli import main
from ferrocim.crossbar import analog_modules
from ferrocim.pipelines.config import field_names, load_config, parse_set_options
from ferrocim.pipelines.runs import build_model

#: A non-default value for every crossbar knob (a new knob must be added here).
KNOBS: dict[str, Any] = {
    "array.card": "dut1",
    "array.tile_rows": 16,
    "array.tile_cols": 8,
    "array.reference": "symmetry",
    "array.reference_scale": 0.5,
    "array.symmetry_reference": "device",
    "array.weight_window": "fixed",
    "array.weight_bound": 0.75,
    "array.weight_omega": 0.5,
    "array.d2d": False,
    "array.read_noise": 0.02,
    "array.dac_bits": 6,
    "array.dac_range": 2.0,
    "array.adc_bits": 7,
    "array.adc_range": 10.0,
    "array.grad_out_bound": 12.0,
    "array.periphery": "aihwkit",
    "array.noise_management": "abs_max",
    "array.out_noise": 0.05,
    "array.adc_full_scale": 6.0,
    "array.backward_io": True,
    "array.programming.eps": 0.2,
    "array.programming.thr_asym": 2.0,
    "array.programming.max_pulses_per_step": 3,
    "array.programming.a_scale": 0.5,
    "array.programming.a_asym": 1.5,
    "array.programming.rsd_c2c": 0.07,
    "array.programming.state_clamp": True,
    "array.programming.q": 4,
    "array.programming.pulse_order": "per_sample",
    "array.programming.dw_min": "up_at_mid",
    "array.programming.transfer": "pulse_train",
    "array.programming.transfer_bl": 8,
    "array.endurance.enabled": True,
    "array.endurance.lifetime_scale": 1e-6,
    "array.endurance.window_loss": False,
    "array.energy.write_j_at_20ns": 1e-12,
    "array.energy.pulse_width_s": 2e-6,
    "array.energy.reference_amplitude_v": 3.0,
    "array.energy.read_j_per_mac": 1e-16,
    "array.energy.dac_j_per_conversion": 2e-13,
    "array.energy.adc_j_per_conversion": 3e-12,
}


#: Knobs that need a special card, tested where that card is built (not in KNOBS).
ELSEWHERE = {
    # needs a card with amplitude-aware kernels: tests/crossbar/test_layers.py
    "array.programming.write_amplitude",
    # needs an ADC (adc_bits) beside it: tests/crossbar/test_aihwkit_semantics.py
    "array.bound_management",
}


def test_every_crossbar_knob_is_listed():
    listed = sorted([*KNOBS, *ELSEWHERE])
    assert listed == sorted(f for f in field_names() if f.startswith("array."))


def _toml_value(v: Any) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else repr(v).replace("'", '"')


def _config(key: str, value: Any, how: str, tmp_path: Path):
    base = {"network.width": 0.25}
    if how == "set":
        return load_config(
            None, {**base, **parse_set_options([f"{key}={_toml_value(value)}"])}, kind="device"
        )
    *section, field = key.split(".")
    path = tmp_path / "c.toml"
    path.write_text(f"[{'.'.join(section)}]\n{field} = {_toml_value(value)}\n")
    return load_config(path, base, kind="device")


def _tile_effect(key: str, value: Any, m: Any) -> None:
    """What the tile itself does with the knob (beyond holding it in its config)."""
    prog = m.analog_config.programming
    if key == "array.card":
        assert m.card.name == value
    elif key == "array.tile_rows":
        assert m.layout.tile_rows == value
    elif key == "array.tile_cols":
        assert m.layout.tile_cols == value
    elif key == "array.reference":
        assert m.reference_level == pytest.approx(m.card.symmetry_point)
    elif key == "array.symmetry_reference":
        assert m.analog_config.reference == "mid" and m.analog_config.clips_weights
    elif key == "array.weight_window":
        assert m.w_max == m.analog_config.weight_bound == 1.0  # not the layer's own 0.125
    elif key == "array.weight_bound":
        assert m.w_max == pytest.approx(0.125)  # "layer" (default) ignores the bound
    elif key == "array.programming.dw_min":
        from ferrocim.crossbar.rules import dw_min, up_step

        assert dw_min(m) == pytest.approx(2 * m.w_max * up_step(m.card, 0.5, prog))
    elif key == "array.d2d":
        assert bool((m.device_params[0] == m.device_params[0].flatten()[0]).all())
    elif key == "array.read_noise":
        assert m.read_noise == value
    elif key in ("array.programming.eps", "array.programming.thr_asym"):
        assert m.thr_ltp == pytest.approx(prog.eps * 2 * m.w_max)
        assert m.thr_ltd == pytest.approx(prog.eps * prog.thr_asym * 2 * m.w_max)
    elif key == "array.programming.rsd_c2c":
        assert m.rsd_ltp == m.rsd_ltd == value
    elif key in ("array.programming.a_scale", "array.programming.a_asym"):
        k = m._constants(m.conductance)
        assert float(k.params[0]) == pytest.approx(m.card.ltp.a * prog.a_scale)
        assert float(k.params[3]) == pytest.approx(m.card.ltd.a * prog.a_scale * prog.a_asym)
    elif key == "array.programming.state_clamp":
        k = m._constants(m.conductance)
        assert (float(k.low), float(k.high)) == pytest.approx((0.01, 0.99))
    elif key == "array.endurance.enabled":
        assert bool(torch.isfinite(m.lifetime).all())
    elif key == "array.grad_out_bound":  # the error passed back is zeroed at |W x| >= 0.999 b
        x = torch.full((1, m.in_features), 1.0, requires_grad=True)
        with torch.no_grad():
            m.weight.fill_(0.0)
            m.weight[0].fill_(2 * value / m.in_features)  # output 0 at 2 b, the rest at 0
        m(x).sum().backward()
        assert torch.count_nonzero(x.grad) == 0  # unmasked: 2 b / fan_in on every input
    elif key == "array.periphery":  # the preset filled aihwkit's periphery
        assert (m.analog_config.dac_bits, m.analog_config.adc_bits) == (7, 9)
        assert m.layout.tile_rows == 512 and m.analog_config.managed_io
    elif key == "array.out_noise":  # two forwards of the same input differ
        x = torch.ones(2, m.in_features)
        assert not torch.equal(m(x), m(x))
    elif key == "array.energy.read_j_per_mac":
        assert m.energy_per_event()["read"] == value


@pytest.mark.parametrize("how", ["set", "toml"])
@pytest.mark.parametrize("key", sorted(KNOBS))
def test_knob_reaches_the_tile(key, how, tmp_path):
    value = KNOBS[key]
    cfg = _config(key, value, how, tmp_path)
    model = build_model(cfg, analog=True, card=resolve_card(cfg.array.card), analog_layers=("fc2",))
    (m,) = analog_modules(model).values()
    node: Any = m.analog_config
    for part in key.split(".")[1:]:
        node = getattr(node, part)
    assert (node.name if key == "array.card" else node) == value
    _tile_effect(key, value, m)


def test_old_and_unknown_names_are_errors_naming_the_new_one(tmp_path):
    with pytest.raises(InputError, match=r"'array\.eps' is now 'array\.programming\.eps'"):
        load_config(None, parse_set_options(["array.eps=0.5"]))
    with pytest.raises(InputError, match=r"'array\.q' is now 'transfer\.q'"):
        load_config(None, {"array.q": 2})
    old = tmp_path / "old.toml"
    old.write_text("[array]\nlifetime_scale = 1e-6\n")
    with pytest.raises(InputError, match=r"old\.toml.*'array\.endurance\.lifetime_scale'"):
        load_config(old)
    with pytest.raises(InputError, match=r"did you mean 'array\.programming\.eps'"):
        load_config(None, {"array.programming.epss": 0.5})
    with pytest.raises(InputError, match=r"did you mean 'array\.dac_bits'"):
        load_config(None, {"array.dacbits": 4})


def test_bad_values_name_the_dotted_field():
    with pytest.raises(InputError, match=r"array\.dac_bits: Input should be greater than"):
        load_config(None, {"array.dac_bits": 1})
    with pytest.raises(InputError, match=r"array\.tile_rows: Input should be a valid integer"):
        load_config(None, {"array.tile_rows": 2.5})
    with pytest.raises(InputError, match="Did you mean 'symmetry'"):
        load_config(None, {"array.reference": "symetry"})


@pytest.mark.parametrize(
    "args",
    [
        ["--set", "array.dac_bits=1"],
        ["--card", "dut9"],
        ["--set", "array.eps=0.5"],
        ["--set", "array.programming.eps=0"],
    ],
)
def test_rejected_config_writes_nothing(args, tmp_path):
    r = CliRunner().invoke(main, ["train", "device", "--out-dir", str(tmp_path), *args])
    assert r.exit_code == 2, r.output
    assert list(tmp_path.iterdir()) == []


def test_paper_config_file_loads():
    cfg = load_config(Path(__file__).parents[2] / "configs" / "paper_device.toml")
    assert cfg.array.programming.eps == 0.025 and cfg.network.dropout == 0.3
    assert math.isclose(cfg.train.lr, 1e-4)


def test_data_synthetic_flag_overrides_a_config_files_prepared_source():
    """``--data synthetic`` given explicitly wins over ``data.source = "prepared"`` in the
    file (the paper's configs run on the synthetic set with one flag)."""
    from ferrocim.cli import _load_run_config

    path = Path(__file__).parents[2] / "configs" / "paper_float.toml"
    assert load_config(path).data.source == "prepared"
    cfg = _load_run_config("float", {"config_path": str(path), "data_source": "synthetic"})
    assert cfg.data.source == "synthetic"  # data.path is then unused
    assert cfg.network.dropout == 0.3  # the rest of the file stands
