"""Analog layers: mapping, conversion, tiles, converters, configuration errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ferrocim.calibration.kernel import beta_step, symmetry_point
from ferrocim.checks import InputError
from ferrocim.crossbar import (
    AnalogConfig,
    AnalogConv2d,
    AnalogLinear,
    ProgrammingConfig,
    PulseOptimizer,
    analog_modules,
    convert,
    energy_ledger,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_weight_equals_programmed_conductance_difference():
    m = AnalogLinear(16, 8, generator=_gen())
    assert m.w_max == pytest.approx(0.25)
    expected = (m.conductance - m.reference) * (2 * m.w_max)
    assert torch.allclose(m.weight, expected, atol=1e-7)
    assert m.conductance.min() >= 0.0 and m.conductance.max() <= 1.0
    assert torch.equal(m.reference, torch.full_like(m.reference, 0.5))


def test_symmetry_reference_is_dut2_symmetry_point():
    m = AnalogLinear(16, 8, config=AnalogConfig(reference="symmetry"), generator=_gen())
    assert m.reference_level == pytest.approx(0.32, abs=0.006)
    ws = symmetry_point((0.2611, 1.6429, 1.9873), (0.5969, 2.4585, 1.6885))
    assert m.reference_level == pytest.approx(ws, abs=1e-9)
    w = torch.full((8, 16), 0.1)
    m.set_weights(w)
    assert torch.allclose(m.conductance, torch.full_like(w, ws + 0.1 / 0.5), atol=1e-6)
    assert torch.allclose(m.get_weights(), w, atol=1e-6)


def test_set_weights_quantised_levels_on_devices():
    m = AnalogLinear(64, 32, config=AnalogConfig(d2d=False), generator=_gen())
    w = (torch.rand(32, 64, generator=_gen(1)) * 2 - 1) * m.w_max * 0.9
    m.set_weights(w, q=4)
    levels = torch.unique(m.get_weights())
    a = m.w_max
    # 5 levels; +-A sit at W = 0 / 1, the full range (published)
    expected = torch.tensor([-a, -a / 2, 0.0, a / 2, a])
    assert torch.allclose(levels, expected, atol=1e-7)
    # ferrocim's state clamp keeps W in [0.01, 0.99]: +-A land at +-0.98 A
    cfg = AnalogConfig(d2d=False, programming=ProgrammingConfig(state_clamp=True))
    m = AnalogLinear(64, 32, config=cfg, generator=_gen())
    m.set_weights(w, q=4)
    expected = torch.tensor([-0.98 * a, -a / 2, 0.0, a / 2, 0.98 * a])
    assert torch.allclose(torch.unique(m.get_weights()), expected, atol=1e-7)


def test_published_clamp_reaches_full_range_and_requantize_keeps_accumulator():
    # hand-computed: A = 0.25 (fan-in 16), mid reference, dut2, eps 0.05 -> thr 0.025
    cfg = AnalogConfig(d2d=False, programming=ProgrammingConfig(eps=0.05))
    m = AnalogLinear(16, 1, bias=False, config=cfg, generator=_gen())
    a = m.w_max
    m.set_weights(torch.tensor([[0.99 * a] * 4 + [-0.99 * a] * 4 + [0.0] * 8]))
    assert m.conductance[0, 0].item() == pytest.approx(0.995)
    delta = torch.zeros(1, 16)
    delta[0, :4] = 0.026  # one LTP crossing: kernel at clamp(0.995) = 0.99, state to 1
    delta[0, 4:8] = -0.026  # one LTD crossing: kernel at 0.01, state to 0
    delta[0, 8] = 0.03  # one LTP crossing from W = 0.5
    m.program_delta(delta)
    w_up = min(1.0, 0.995 + beta_step(0.99, 0.2611, 1.6429, 1.9873))
    w_dn = max(0.0, 0.005 - beta_step(0.01, 0.5969, 2.4585, 1.6885))
    assert m.conductance[0, 0].item() == pytest.approx(w_up, abs=1e-6)
    assert m.conductance[0, 4].item() == pytest.approx(w_dn, abs=1e-6)
    assert m.weight[0, 0].item() == pytest.approx((w_up - 0.5) * 2 * a, abs=1e-6)
    w_mid = 0.5 + beta_step(0.5, 0.2611, 1.6429, 1.9873)
    assert m.weight[0, 8].item() == pytest.approx((w_mid - 0.5) * 2 * a, rel=1e-6)
    acc = m.accumulator.clone()
    assert acc[0, 8].item() == pytest.approx(0.005, abs=1e-7)
    m.requantize(2)  # levels -A, 0, A; accumulators untouched (published per-step rule)
    assert sorted(set(m.weight.flatten().tolist())) == [-a, 0.0, a]
    assert m.weight[0, 8].item() == (a if w_mid - 0.5 >= 0.25 else 0.0)
    assert torch.equal(m.accumulator, acc)


def test_convert_reproduces_float_model_at_zero_noise():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 5))
    with torch.no_grad():  # keep every weight well inside +-0.98 A
        for lin in (model[0], model[2]):
            lin.weight.mul_(0.9)
    x = torch.randn(7, 20)
    ref = model(x)
    model = convert(model, AnalogConfig(), generator=_gen())
    assert set(analog_modules(model)) == {"0", "2"}
    assert isinstance(model[0], AnalogLinear)
    assert torch.allclose(model(x), ref, atol=1e-5)


def test_convert_conv_with_time_folded_into_batch_and_filters():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 8 * 9, 2, bias=False))
    with torch.no_grad():
        model[0].weight.mul_(0.9)
        model[2].weight.mul_(0.9)
    x = torch.randn(3 * 5, 1, 10, 11)  # (B*T, C, H, W)
    ref = model(x)
    model = convert(model, AnalogConfig(), include=["0"], generator=_gen())
    assert isinstance(model[0], AnalogConv2d) and isinstance(model[2], nn.Linear)
    assert torch.allclose(model(x), ref, atol=1e-5)
    with pytest.raises(InputError, match="match no Linear/Conv2d"):
        convert(model, AnalogConfig(), include=["fc9"])


def test_tile_map_of_a_layer_larger_than_a_tile():
    m = AnalogLinear(300, 600, config=AnalogConfig(d2d=False), generator=_gen())
    assert (m.layout.n_row_tiles, m.layout.n_col_tiles, m.layout.n_tiles) == (2, 3, 6)
    tm = m.tile_map()
    assert len(tm) == 600 * 300
    last = tm.iloc[-1]
    assert (last["out"], last["in"], last["tile"], last["row"], last["col"]) == (
        599,
        299,
        5,
        43,
        87,
    )
    counts = m.tile_counters()
    assert counts["devices"].tolist() == [256 * 256, 256 * 256, 256 * 88] + [44 * 256] * 2 + [
        44 * 88
    ]


def test_conv_tile_map_flattens_kernel():
    m = AnalogConv2d(2, 3, 3, config=AnalogConfig(tile_rows=8, tile_cols=2), generator=_gen())
    tm = m.tile_map()
    row = tm[(tm["out"] == 2) & (tm["in"] == 1) & (tm["kh"] == 2) & (tm["kw"] == 0)].iloc[0]
    # fan-in index 1*9 + 2*3 + 0 = 15 -> tile row 1, row 7; out 2 -> tile col 1, col 0
    assert (row["tile"], row["row"], row["col"]) == (1 * 2 + 1, 7, 0)


def test_adc_quantises_each_tile_partial_sum():
    cfg = AnalogConfig(tile_rows=2, adc_bits=3, adc_range=1.0, d2d=False)
    m = AnalogLinear(4, 1, bias=False, config=cfg, generator=_gen())  # w_max 0.5
    m.set_weights(torch.tensor([[0.4, 0.4, 0.1, 0.05]]))
    w = m.get_weights()[0]
    x = torch.tensor([[1.0, 1.0, 1.0, 1.0]])
    step = 0.5 / 3  # full scale adc_range * w_max * dac_range over 2**(3-1)-1 steps
    p1 = min(max(float(w[0] + w[1]), -0.5), 0.5)
    p2 = float(w[2] + w[3])
    expected = round(p1 / step) * step + round(p2 / step) * step
    assert m(x).item() == pytest.approx(expected, abs=1e-6)
    # gradient passes straight through
    x.requires_grad_(True)
    m(x).sum().backward()
    assert torch.allclose(x.grad[0], w, atol=1e-7)


def test_conv_adc_path_matches_ideal_at_high_resolution():
    cfg = AnalogConfig(tile_rows=8, adc_bits=24, adc_range=100.0)
    m = AnalogConv2d(2, 3, 3, stride=2, padding=1, config=cfg, generator=_gen())
    x = torch.randn(4, 2, 7, 6, generator=_gen(1))
    ideal = nn.functional.conv2d(x, m.weight, m.bias, 2, 1)
    assert torch.allclose(m(x), ideal, atol=1e-5)
    coarse = AnalogConv2d(2, 3, 3, padding=1, config=cfg.replace(adc_bits=2), generator=_gen())
    assert not torch.allclose(coarse(x), nn.functional.conv2d(x, coarse.weight, coarse.bias, 1, 1))


def test_dac_rounds_inputs_and_spikes_pass_exactly():
    cfg = AnalogConfig(dac_bits=4, d2d=False)
    m = AnalogLinear(3, 2, config=cfg, generator=_gen())
    spikes = torch.tensor([[1.0, 0.0, 1.0]])
    ref = nn.functional.linear(spikes, m.weight, m.bias)
    assert torch.allclose(m(spikes), ref, atol=1e-7)
    x = torch.tensor([[0.1, 0.55, -2.0]])
    xq = torch.tensor([[1 / 7, 4 / 7, -1.0]])
    assert torch.allclose(m(x), nn.functional.linear(xq, m.weight, m.bias), atol=1e-6)


def test_read_noise_scale_and_determinism():
    cfg = AnalogConfig(read_noise=0.1, d2d=False)
    m = AnalogLinear(256, 256, bias=False, config=cfg, generator=_gen(5))
    eye = torch.eye(256)
    out = m(eye)  # row i = weight column i read once with noise
    diff = out.T - m.weight.detach()
    assert diff.std().item() == pytest.approx(0.1 * m.w_max, rel=0.02)
    m2 = AnalogLinear(256, 256, bias=False, config=cfg, generator=_gen(5))
    assert torch.equal(m2(eye), out)


def test_mac_and_conversion_counts_by_phase():
    m = AnalogLinear(4, 3, config=AnalogConfig(tile_rows=3), generator=_gen())
    m(torch.zeros(2, 5, 4))
    m.eval()
    m(torch.zeros(1, 4))
    led = energy_ledger(m).set_index(["phase", "kind"])
    assert led.loc[("train", "read"), "count"] == 10 * 4 * 3
    assert led.loc[("train", "dac"), "count"] == 10 * 4
    assert led.loc[("train", "adc"), "count"] == 10 * 3 * 2  # two row tiles
    assert led.loc[("inference", "read"), "count"] == 12
    assert led.loc[("inference", "read"), "energy_j"] == pytest.approx(12 * 0.05e-15)
    assert led.loc[("train", "adc"), "energy_j"] == pytest.approx(60 * 1e-12)


def test_conv_counts():
    m = AnalogConv2d(2, 3, 3, padding=1, generator=_gen())
    y = m(torch.zeros(4, 2, 5, 6))
    assert y.shape == (4, 3, 5, 6)
    assert m.event_counts["train"]["read"] == y.numel() * 18
    assert m.event_counts["train"]["dac"] == 4 * 5 * 6 * 18


def test_d2d_draws_follow_card_spread(noisy_card):
    m = AnalogLinear(256, 256, config=AnalogConfig(card=noisy_card), generator=_gen())
    a = m.device_params[0]
    assert a.mean().item() == pytest.approx(0.2611, rel=0.01)
    assert (a.std() / a.mean()).item() == pytest.approx(0.1, rel=0.05)
    off = AnalogLinear(8, 8, config=AnalogConfig(card=noisy_card, d2d=False), generator=_gen())
    assert torch.equal(off.device_params[0], torch.full((8, 8), 0.2611))


def test_config_errors_name_the_field():
    with pytest.raises(InputError, match="Did you mean 'symmetry'"):
        AnalogConfig(reference="symetry")
    with pytest.raises(InputError, match=r"ProgrammingConfig\.eps"):
        ProgrammingConfig(eps=0.0)
    with pytest.raises(InputError, match="max_pulses_per_step"):
        ProgrammingConfig(max_pulses_per_step=0)
    with pytest.raises(InputError, match="tile_rows"):
        AnalogConfig(tile_rows=0)
    with pytest.raises(InputError, match="Invalid value for 'dut'"):
        AnalogLinear(2, 2, config=AnalogConfig(card="dut9"))
    m = AnalogLinear(2, 3, generator=_gen())
    with pytest.raises(InputError, match=r"shape \(3, 2\)"):
        m.set_weights(torch.zeros(2, 3))


def test_pulse_optimizer_requantizes_every_step_when_q_is_set():
    cfg = AnalogConfig(d2d=False, programming=ProgrammingConfig(eps=0.01, q=2))
    m = AnalogLinear(16, 4, config=cfg, generator=_gen())
    opt = PulseOptimizer(torch.optim.Adam(m.parameters(), lr=0.05), m)
    x, y = torch.randn(32, 16, generator=_gen(1)), torch.randint(0, 4, (32,), generator=_gen(2))
    a = m.w_max
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(m(x), y).backward()
        opt.step()
        assert set(m.weight.flatten().tolist()) <= {-a, 0.0, a}
    assert m.accumulator.abs().sum() > 0  # accumulators survive the re-quantisation
    with pytest.raises(InputError, match=r"ProgrammingConfig\.q"):
        ProgrammingConfig(q=3)


def test_card_read_noise_is_the_tile_default():
    """``read_noise=None`` takes the card's read noise (s.d. 0.05 of the window, so 0.1 of
    w_max on the weight ``(W - 0.5) * 2 * w_max``); presets have none."""
    from ferrocim.calibration.card import Variability, preset

    card = preset("dut2").model_copy(update={"variability": Variability(read_noise_rsd=0.05)})
    cfg = AnalogConfig(card=card, d2d=False)
    assert cfg.read_noise is None and cfg.tile_read_noise(card) == pytest.approx(0.1)
    m = AnalogLinear(256, 256, bias=False, config=cfg, generator=_gen(5))
    assert m.read_noise == pytest.approx(0.1)
    diff = m(torch.eye(256)).T - m.weight.detach()
    assert diff.std().item() == pytest.approx(0.1 * m.w_max, rel=0.02)
    assert AnalogLinear(4, 4, generator=_gen()).read_noise == 0.0  # dut2 preset
    sym = AnalogConfig(card=card, reference="symmetry", reference_scale=0.5)
    assert sym.tile_read_noise(card) == pytest.approx(0.05)


def test_write_amplitude_programs_the_amplitude_kernel():
    """At 2.2 V the tiles use a_eff = a (|V| - v_th)^p of the card's amplitude-aware kernels;
    None keeps the fitted identical-pulse kernel; a card without them is refused."""
    from ferrocim.calibration.card import AmplitudeKernel, preset

    ltp = AmplitudeKernel(a=0.1, alpha=1.7, beta=2.0, v_th=1.2, p=2.0)
    ltd = AmplitudeKernel(a=0.2, alpha=2.4, beta=1.7, v_th=1.0, p=1.0)
    card = preset("dut2").model_copy(update={"ltp_amplitude": ltp, "ltd_amplitude": ltd})
    at = AnalogConfig(card=card, d2d=False, programming=ProgrammingConfig(write_amplitude=2.2))
    m = AnalogLinear(4, 3, config=at, generator=_gen())
    p = m.device_params.reshape(8, -1)
    assert torch.allclose(p[0], torch.tensor(0.1))  # a_ltp = 0.1 * (2.2 - 1.2)^2
    assert torch.allclose(p[3], torch.tensor(0.24))  # a_ltd = 0.2 * (2.2 - 1.0)
    assert torch.allclose(p[1], torch.tensor(1.7)) and torch.allclose(p[5], torch.tensor(1.7))
    plain = AnalogLinear(4, 3, config=AnalogConfig(card=card, d2d=False), generator=_gen())
    assert torch.allclose(plain.device_params.reshape(8, -1)[0], torch.tensor(0.2611))
    with pytest.raises(InputError, match="no amplitude-aware kernels"):
        AnalogLinear(4, 3, config=at.replace(card="dut2"), generator=_gen())
    with pytest.raises(InputError, match="write_amplitude"):
        ProgrammingConfig(write_amplitude=-1.0)
