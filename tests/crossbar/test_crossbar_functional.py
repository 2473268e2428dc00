"""Pure functions: kernel steps, threshold rule, quantisation, noise, wear."""

from __future__ import annotations

import math

import pytest
import torch

from ferrocim.calibration.kernel import beta_step
from ferrocim.checks import InputError
from ferrocim.crossbar import functional as Fx
from ferrocim.crossbar import programming_noise, quantize_symmetric
from ferrocim.crossbar.energy import width_factor

DUT2 = ((0.2611, 1.6429, 1.9873), (0.5969, 2.4585, 1.6885))
PARAMS = (*DUT2[0], *DUT2[1])


def test_kernel_step_equals_formula_both_polarities():
    w = torch.tensor([0.05, 0.3, 0.5, 0.9], dtype=torch.float64)
    is_ltp = torch.tensor([True, False, True, False])
    got = Fx.kernel_step(w, is_ltp, PARAMS)
    for i, wi in enumerate(w.tolist()):
        a, al, be = DUT2[0] if is_ltp[i] else DUT2[1]
        ref = a * wi ** (al - 1) * (1 - wi) ** (be - 1)
        assert got[i].item() == pytest.approx(ref if is_ltp[i] else -ref, rel=1e-12)


def test_kernel_step_scale_asym_and_per_device_params():
    w = torch.tensor([0.4, 0.4], dtype=torch.float64)
    is_ltp = torch.tensor([1.0, 0.0], dtype=torch.float64)
    got = Fx.kernel_step(w, is_ltp, Fx.scale_amplitudes(PARAMS, 0.5, 2.0))
    assert got[0].item() == pytest.approx(0.5 * beta_step(0.4, *DUT2[0]), rel=1e-12)
    assert got[1].item() == pytest.approx(-1.0 * beta_step(0.4, *DUT2[1]), rel=1e-12)
    p = torch.tensor(PARAMS, dtype=torch.float64).unsqueeze(1).repeat(1, 2)
    p[0, 0] = 0.1  # device 0: own a_ltp
    got2 = Fx.kernel_step(w, is_ltp, p)
    assert got2[0].item() == pytest.approx(beta_step(0.4, 0.1, *DUT2[0][1:]), rel=1e-12)


def test_pulse_decision_hand_worked():
    # thr_ltp = 0.25, thr_ltd = 0.5 (thr_asym 2)
    acc = torch.tensor([0.0, 0.24, 0.25, 0.625, 1.0, -0.375, -0.5, -1.25], dtype=torch.float64)
    n_ltp, n_ltd, f_ltp, f_ltd, new = Fx.pulse_decision(acc, 0.25, 0.5, max_pulses=1)
    assert n_ltp.tolist() == [0, 0, 1, 2, 4, 0, 0, 0]
    assert n_ltd.tolist() == [0, 0, 0, 0, 0, 0, 1, 2]
    assert f_ltp.tolist() == [0, 0, 1, 1, 1, 0, 0, 0]
    assert f_ltd.tolist() == [0, 0, 0, 0, 0, 0, 1, 1]
    assert new.tolist() == [0.0, 0.24, 0.0, 0.125, 0.0, -0.375, 0.0, -0.25]
    _, _, f_ltp, f_ltd, _ = Fx.pulse_decision(acc, 0.25, 0.5, max_pulses=None)
    assert f_ltp.tolist() == [0, 0, 1, 2, 4, 0, 0, 0]
    assert f_ltd.tolist() == [0, 0, 0, 0, 0, 0, 1, 2]


def test_apply_pulses_multiple_rounds_and_bounds():
    w0 = torch.tensor([0.5, 0.5, 0.98, 0.02], dtype=torch.float64)
    fl = torch.tensor([2.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    fd = torch.tensor([0.0, 1.0, 0.0, 3.0], dtype=torch.float64)
    got = Fx.apply_pulses(w0, fl, fd, PARAMS)
    w1 = 0.5 + beta_step(0.5, *DUT2[0])
    assert got[0].item() == pytest.approx(w1 + beta_step(w1, *DUT2[0]), rel=1e-12)
    assert got[1].item() == pytest.approx(0.5 - beta_step(0.5, *DUT2[1]), rel=1e-12)
    big = Fx.apply_pulses(w0, fl, fd, Fx.scale_amplitudes(PARAMS, 20.0, 1.0))
    assert big[2].item() == 1.0  # clipped at the top of the full range (published)
    assert big[3].item() == 0.0  # and at the bottom
    low = Fx.apply_pulses(w0, fl, fd, Fx.scale_amplitudes(PARAMS, 20.0, 1.0), low=0.2, high=0.7)
    assert low[0].item() == 0.7 and low[3].item() == 0.2
    stuck = torch.tensor([True, False, False, False])
    assert Fx.apply_pulses(w0, fl, fd, PARAMS, stuck=stuck)[0].item() == 0.5


def test_c2c_noise_has_requested_sd():
    n = 40_000
    w = torch.full((n,), 0.5, dtype=torch.float64)
    fl = torch.ones(n, dtype=torch.float64)
    fd = torch.zeros(n, dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    got = Fx.apply_pulses(w, fl, fd, PARAMS, rsd_ltp=0.2, rsd_ltd=0.0, generator=g)
    rel = (got - 0.5) / beta_step(0.5, *DUT2[0])
    assert rel.mean().item() == pytest.approx(1.0, abs=0.006)
    assert rel.std().item() == pytest.approx(0.2, rel=0.02)
    # same seed, same draws
    again = Fx.apply_pulses(
        w, fl, fd, PARAMS, rsd_ltp=0.2, generator=torch.Generator().manual_seed(3)
    )
    assert torch.equal(got, again)


def test_mapping_round_trip_mid_reference():
    w_max = 0.25
    w = torch.tensor([-0.2, 0.0, 0.1, 0.24], dtype=torch.float64)
    g = Fx.weight_to_conductance(w, 0.5, w_max)
    assert g.tolist() == pytest.approx([(x + w_max) / (2 * w_max) for x in w.tolist()])
    back = Fx.conductance_to_weight(g, 0.5, w_max)
    assert torch.allclose(back, w, atol=1e-15)
    # out-of-range weights: clipped to +-A (W 0 and 1: the full range, as published) ...
    wide = torch.tensor([-1.0, 1.0], dtype=torch.float64)
    assert Fx.weight_to_conductance(wide, 0.5, w_max).tolist() == [0.0, 1.0]
    # ... or with ferrocim's state clamp, W to [0.01, 0.99]
    g2 = Fx.weight_to_conductance(wide, 0.5, w_max, state_clamp=True)
    assert g2.tolist() == [0.01, 0.99]


def test_kernel_input_is_clamped_not_the_state():
    # published: dW evaluated at clamp(W, 0.01, 0.99); the state may go to 0 or 1
    w = torch.tensor([0.995, 0.003, 0.5], dtype=torch.float64)
    is_ltp = torch.tensor([True, False, True])
    got = Fx.kernel_step(w, is_ltp, PARAMS)
    want = [beta_step(0.99, *DUT2[0]), -beta_step(0.01, *DUT2[1]), beta_step(0.5, *DUT2[0])]
    assert got.tolist() == pytest.approx(want, rel=1e-12)
    assert Fx.state_bounds(0.5) == (0.0, 1.0)
    assert Fx.state_bounds(0.5, state_clamp=True) == pytest.approx((0.01, 0.99), abs=1e-15)


def test_quantize_levels_and_ties():
    w_max = 1.0
    x = torch.tensor([0.25, -0.25, 0.75, -0.75, 0.74, 0.1, -0.1, 2.0, -3.0, 0.0])
    got = quantize_symmetric(x, w_max, 4)  # step 0.5
    assert got.tolist() == [0.5, -0.5, 1.0, -1.0, 0.5, 0.0, 0.0, 1.0, -1.0, 0.0]
    for q in (2, 4, 8, 16, 32):
        w_max = 0.0625
        dense = torch.linspace(-w_max, w_max, 4001)
        levels = torch.unique(quantize_symmetric(dense, w_max, q))
        assert levels.numel() == q + 1
        expected = torch.arange(-q // 2, q // 2 + 1, dtype=torch.float32) * (w_max / (q // 2))
        assert torch.allclose(levels, expected, atol=1e-9)
    with pytest.raises(InputError, match="positive even integer"):
        quantize_symmetric(x, 1.0, 3)


def test_programming_noise_sd_and_clamp():
    w_max = 0.5
    w = torch.full((200_000,), 0.1)
    w[::2] = 0.0  # zeros do not enter the mean
    out = programming_noise(w, w_max, 4.0, generator=torch.Generator().manual_seed(0))
    assert (out - w).std().item() == pytest.approx(0.1 / 4.0, rel=0.01)
    big = programming_noise(w, w_max, 0.01, generator=torch.Generator().manual_seed(0))
    assert big.abs().max().item() == pytest.approx(w_max)
    assert torch.equal(programming_noise(torch.zeros(5), 1.0, 2.0), torch.zeros(5))
    with pytest.raises(InputError, match="programming-noise"):
        programming_noise(w, w_max, 0.0)


def test_window_factor_and_lifetimes():
    c = torch.tensor([0, 1, 10, 1000, 10**9])
    f = Fx.window_factor(c, 0.02)
    assert f.tolist() == pytest.approx([1.0, 1.0, 0.98, 0.94, 0.82])
    assert Fx.window_factor(c, 0.02, lifetime_scale=0.1)[2].item() == pytest.approx(0.96)
    life = Fx.draw_lifetimes((50_000,), 1e10, 0.3, generator=torch.Generator().manual_seed(1))
    lg = torch.log10(life)
    assert lg.median().item() == pytest.approx(10.0, abs=0.01)
    assert lg.std().item() == pytest.approx(0.3, rel=0.02)


def test_width_factor_published_points_and_interpolation():
    assert width_factor(20e-9) == pytest.approx(1.0)
    assert width_factor(200e-9) == pytest.approx(5.7)
    assert width_factor(2e-6) == pytest.approx(25.0)
    assert width_factor(20e-6) == pytest.approx(690.0)
    assert width_factor(200e-6) == pytest.approx(3800.0)
    mid = math.sqrt(200e-9 * 2e-6)
    assert width_factor(mid) == pytest.approx(math.sqrt(5.7 * 25.0))
    with pytest.warns(UserWarning, match="outside the published"):
        width_factor(2e-3)
