"""Simulation semantics against aihwkit's: weight window, pulse order, symmetry reference
and dw_min. Expectations are computed here by hand (numpy, independent of the code)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import brentq

from ferrocim.calibration.card import preset
from ferrocim.checks import InputError
from ferrocim.crossbar import AnalogConfig, AnalogLinear, ProgrammingConfig
from ferrocim.crossbar import functional as Fx
from ferrocim.crossbar.layers import AnalogConv2d
from ferrocim.crossbar.rules import (
    PulsedSGD,
    dw_min,
    granularity_eps,
    pulse_train_counts,
    pulse_train_counts_per_sample,
    rule_config,
)

# dut2 (DESIGN.md): LTP (A, alpha, beta), LTD (A, alpha, beta)
LTP = (0.2611, 1.6429, 1.9873)
LTD = (0.5969, 2.4585, 1.6885)


def step(w: float, p: tuple[float, float, float]) -> float:
    """The Beta kernel by hand, at W clamped to [0.01, 0.99]."""
    wc = min(max(w, 0.01), 0.99)
    return p[0] * wc ** (p[1] - 1) * (1 - wc) ** (p[2] - 1)


def replay(w: float, signs, a_scale: float = 1.0) -> float:
    """One device under a sequence of +1 (LTP) / -1 (LTD) pulses, state clipped to [0, 1]."""
    up = (LTP[0] * a_scale, *LTP[1:])
    down = (LTD[0] * a_scale, *LTD[1:])
    for s in signs:
        w = w + step(w, up) if s > 0 else w - step(w, down)
        w = min(max(w, 0.0), 1.0)
    return w


def w_star_by_hand(ltp=LTP, ltd=LTD) -> float:
    def r(w: float) -> float:
        return (
            math.log(ltp[0] / ltd[0])
            + (ltp[1] - ltd[1]) * math.log(w)
            + (ltp[2] - ltd[2]) * math.log(1 - w)
        )

    return brentq(r, 0.05, 0.95)


def one_device(**cfg) -> AnalogLinear:
    prog = cfg.pop("programming", ProgrammingConfig(rsd_c2c=0.0))
    config = AnalogConfig(card="dut2", d2d=False, programming=prog, **cfg)
    gen = torch.Generator().manual_seed(0)
    return AnalogLinear(1, 1, bias=False, config=config, generator=gen, dtype=torch.float64)


# ---- weight window ------------------------------------------------------------------
def test_weight_window_layer_fixed_scaled():
    g = torch.Generator
    layer = AnalogLinear(64, 10, config=AnalogConfig(), generator=g().manual_seed(3))
    assert layer.w_max == 0.125  # 1/sqrt(64), today's default
    own = AnalogLinear(64, 10, config=AnalogConfig(), generator=g().manual_seed(3), w_max=0.3)
    assert own.w_max == 0.3  # "layer": the constructor's bound (the EEG network's constants)
    fixed_cfg = AnalogConfig(weight_window="fixed", weight_bound=1.0)
    fixed = AnalogLinear(64, 10, config=fixed_cfg, generator=g().manual_seed(3), w_max=0.3)
    assert fixed.w_max == 1.0
    # initial weights: torch's U(±1/sqrt(fan_in)) from the same draws, whatever the window
    assert torch.allclose(fixed.weight, layer.weight, atol=1e-6)
    assert 0.12 < fixed.weight.abs().max().item() <= 0.125
    # the state maps the weight onto the ±1 window: W = (w + 1) / 2
    assert torch.allclose(fixed.conductance, (fixed.weight + 1) / 2, atol=1e-6)
    # a device step in weight units is 8x the fan-in window's (2 w_max times the same step)
    assert dw_min(fixed) == pytest.approx(8 * dw_min(layer), rel=1e-12)
    half = AnalogConfig(weight_window="scaled", weight_omega=0.5)
    scaled = AnalogLinear(64, 10, config=half, generator=g().manual_seed(3))
    w0 = layer.weight.abs().max().item()
    assert scaled.w_max == pytest.approx(w0 / 0.5, rel=1e-6)  # max |w_init| at half the window
    with pytest.raises(InputError, match="weight_window"):
        AnalogConfig(weight_window="aihwkit")


def test_scaled_window_travels_with_the_state():
    cfg = AnalogConfig(weight_window="scaled", weight_omega=0.8)
    a = AnalogLinear(16, 4, config=cfg, generator=torch.Generator().manual_seed(1))
    b = AnalogLinear(16, 4, config=cfg, generator=torch.Generator().manual_seed(2))
    assert a.w_max != b.w_max
    b.load_state_dict(a.state_dict())
    assert b.w_max == a.w_max and (b.thr_ltp, b.thr_ltd) == (a.thr_ltp, a.thr_ltd)
    assert torch.equal(b.weight, a.weight) and dw_min(b) == dw_min(a)


def test_weight_window_from_a_run_config():
    from ferrocim.pipelines.config import load_config

    cfg = load_config(overrides={"array.weight_window": "fixed", "array.weight_bound": 1.0})
    assert cfg.array.weight_window == "fixed" and cfg.array.weight_bound == 1.0
    m = AnalogLinear(9, 4, config=cfg.array.replace(card="dut2"), w_max=0.333)
    assert m.w_max == 1.0


# ---- pulse order --------------------------------------------------------------------
def test_three_pulses_by_hand_in_both_orders():
    # samples: +1, -1, +1 on one device from W = 0.5 (weight 0)
    up1 = 0.2611 * 0.5 ** (0.6429 + 0.9873)  # the first LTP step at W = 0.5
    assert up1 == pytest.approx(0.0843466, abs=1e-7)
    per = one_device()
    per.set_weights(torch.zeros(1, 1, dtype=torch.float64))
    n_ltp = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64).view(3, 1, 1)
    n_ltd = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64).view(3, 1, 1)
    stats = per.program_pulses_per_sample(n_ltp, n_ltd)
    assert (stats.ltp_pulses, stats.ltd_pulses) == (2, 1)
    w1 = 0.5 + up1
    w2 = w1 - step(w1, LTD)
    w3 = w2 + step(w2, LTP)
    assert per.conductance.item() == pytest.approx(w3, abs=1e-12)
    assert per.conductance.item() == pytest.approx(replay(0.5, [1, -1, 1]), abs=1e-12)
    grouped = one_device()
    grouped.set_weights(torch.zeros(1, 1, dtype=torch.float64))
    grouped.program_pulses(n_ltp.sum(0), n_ltd.sum(0))  # LTP first: +1, +1, -1
    assert grouped.conductance.item() == pytest.approx(replay(0.5, [1, 1, -1]), abs=1e-12)
    # the orders differ by a hand-computable amount (the kernel is not flat)
    diff = replay(0.5, [1, -1, 1]) - replay(0.5, [1, 1, -1])
    assert abs(diff) > 1e-3
    assert per.conductance.item() - grouped.conductance.item() == pytest.approx(diff, abs=1e-12)
    assert per.ltp_pulses.item() == 2 and per.ltd_pulses.item() == 1
    with pytest.raises(InputError, match="LTP and LTD pulses in one sample"):
        per.program_pulses_per_sample(n_ltp, n_ltp)


@pytest.mark.parametrize("a_scale", [1.0, 0.1])
def test_balanced_stream_trajectory_and_drift_by_order(a_scale):
    # 300 steps, each 4 LTP and 4 LTD pulses in a random order (aihwkit: one pulse per
    # sample here), from W = 0.95; grouped: the 4 of one polarity, then the 4 of the other
    rng = np.random.default_rng(0)
    prog = ProgrammingConfig(rsd_c2c=0.0, a_scale=a_scale)
    per, grouped = one_device(programming=prog), one_device(programming=prog)
    start = torch.full((1, 1), 0.9, dtype=torch.float64)  # weight 0.9 w_max: W = 0.95
    for m in (per, grouped):
        m.set_weights(start * m.w_max)
    w_per = w_grouped = 0.95
    traj_per, traj_grouped = [], []
    for k in range(300):
        signs = rng.permutation([1] * 4 + [-1] * 4)
        n_ltp = torch.tensor(signs > 0, dtype=torch.float64).view(8, 1, 1)
        per.program_pulses_per_sample(n_ltp, 1.0 - n_ltp)
        four = torch.full((1, 1), 4.0, dtype=torch.float64)
        grouped.program_pulses(four, four, ltd_first=k % 2 == 1)
        w_per = replay(w_per, signs, a_scale)
        w_grouped = replay(w_grouped, [-1] * 4 + [1] * 4 if k % 2 else [1] * 4 + [-1] * 4, a_scale)
        traj_per.append(per.conductance.item())
        traj_grouped.append(grouped.conductance.item())
        assert traj_per[-1] == pytest.approx(w_per, abs=1e-9)
        assert traj_grouped[-1] == pytest.approx(w_grouped, abs=1e-9)
    tail_per, tail_grouped = np.array(traj_per[150:]), np.array(traj_grouped[150:])
    w_star = w_star_by_hand()
    assert w_star == pytest.approx(0.3158, abs=1e-4)
    if a_scale == 0.1:
        # small steps: both orders settle at the symmetry point; the order does not matter
        assert abs(tail_per.mean() - w_star) < 0.01
        assert abs(tail_grouped.mean() - w_star) < 0.01
        assert abs(tail_per.mean() - tail_grouped.mean()) < 0.005
    else:
        # dut2's full steps (0.08-0.13 per pulse): the discrete walk settles below W*
        # (0.25 here), and four pulses of one polarity in a row swing the device further
        assert 0.2 < tail_per.mean() < w_star and 0.2 < tail_grouped.mean() < w_star + 0.02
        assert tail_grouped.std() > tail_per.std()


def test_per_sample_counts_sum_to_the_grouped_counts():
    g = torch.Generator().manual_seed(5)
    x = torch.rand(16, 6, generator=g, dtype=torch.float64) - 0.3
    d = torch.randn(16, 4, generator=g, dtype=torch.float64) * 0.2
    kw = {"bl": 31}
    lt, ld = pulse_train_counts(x, d, 0.1, 0.01, generator=torch.Generator().manual_seed(1), **kw)
    pt, pd = pulse_train_counts_per_sample(
        x, d, 0.1, 0.01, generator=torch.Generator().manual_seed(1), **kw
    )
    assert pt.shape == (16, 4, 6)
    assert torch.equal(pt.sum(0), lt) and torch.equal(pd.sum(0), ld)
    assert lt.sum().item() > 50
    # within one sample a device has one polarity: sign(x_si) * sign(d_sj)
    assert not bool(((pt > 0) & (pd > 0)).any())
    pos = (torch.sign(x).unsqueeze(1) * torch.sign(d).unsqueeze(2)) < 0  # update > 0: LTP
    assert not bool((pt > 0)[~pos].any()) and not bool((pd > 0)[pos].any())


def test_pulsed_sgd_per_sample_replays_by_hand():
    torch.manual_seed(0)
    cfg = AnalogConfig(
        card="dut2",
        d2d=False,
        programming=ProgrammingConfig(rsd_c2c=0.0, pulse_order="per_sample"),
    )
    gen = torch.Generator().manual_seed(0)
    layer = AnalogLinear(3, 1, bias=False, config=cfg, generator=gen, dtype=torch.float64)
    model = torch.nn.Sequential(layer)
    w_start = layer.conductance.clone()
    x = torch.tensor([[1.0, -0.5, 0.2], [-0.3, 0.8, 1.0], [0.6, 0.6, -1.0]], dtype=torch.float64)
    opt = PulsedSGD(model, lr=0.5, generator=torch.Generator().manual_seed(7))
    loss = (model(x) ** 2).sum()
    loss.backward()
    d = 2 * model(x).detach()  # dL/dy
    opt.step()
    pt, pd = pulse_train_counts_per_sample(
        x, d, 0.5, dw_min(layer), generator=torch.Generator().manual_seed(7)
    )
    assert pt.sum() + pd.sum() > 0
    for i in range(3):
        w = w_start[0, i].item()
        for s in range(pt.shape[0]):
            signs = [1] * int(pt[s, 0, i]) + [-1] * int(pd[s, 0, i])
            w = replay(w, signs)
        assert layer.conductance[0, i].item() == pytest.approx(w, abs=1e-12)


# ---- symmetry reference -------------------------------------------------------------
def test_symmetry_reference_card_clips_device_keeps_the_full_window():
    w_star = w_star_by_hand()
    card_ref = one_device(reference="symmetry")
    dev_ref = one_device(reference="symmetry", symmetry_reference="device")
    assert card_ref.reference.item() == pytest.approx(w_star, abs=1e-9)
    assert dev_ref.reference.item() == pytest.approx(w_star, abs=1e-9)
    wm = card_ref.w_max
    for m in (card_ref, dev_ref):
        m.set_weights(torch.zeros(1, 1, dtype=torch.float64))
        assert m.conductance.item() == pytest.approx(w_star, abs=1e-12)
        m.program_pulses(torch.full((1, 1), 300.0, dtype=torch.float64), torch.zeros(1, 1))
    # "card": W may not pass W* + 0.5 (the weight +w_max): 1 - 0.816 of the window is lost
    assert card_ref.conductance.item() == pytest.approx(w_star + 0.5, abs=1e-12)
    assert card_ref.weight.item() == pytest.approx(wm, abs=1e-12)
    # "device": the state goes on towards 1 and the weight beyond w_max, unclipped
    w = dev_ref.conductance.item()
    assert w == pytest.approx(replay(w_star, [1] * 300), abs=1e-9) and w > 0.95
    assert dev_ref.weight.item() == pytest.approx((w - w_star) * 2 * wm, abs=1e-12)
    assert dev_ref.weight.item() > 1.2 * wm
    # the negative side: both reach W = 0, weight -2 W* w_max
    for m in (card_ref, dev_ref):
        m.program_pulses(torch.zeros(1, 1), torch.full((1, 1), 300.0, dtype=torch.float64))
        assert m.weight.item() == pytest.approx(-2 * w_star * wm, abs=1e-6)


def test_device_symmetry_points_per_device(noisy_card):
    cfg = AnalogConfig(card=noisy_card, reference="symmetry", symmetry_reference="device")
    m = AnalogLinear(5, 4, bias=False, config=cfg, generator=torch.Generator().manual_seed(2))
    p = m.device_params.flatten(1).double()
    ref = m.reference.flatten().double()
    assert ref.std().item() > 1e-3  # drawn kernels: each its own W*
    for j in range(p.shape[1]):
        q = p[:, j].tolist()
        ws = w_star_by_hand(tuple(q[0:3]), tuple(q[3:6]))
        # the reference device holds the conductance of that state: g_offset + g_gain W*
        assert ref[j].item() == pytest.approx(q[6] + q[7] * ws, abs=1e-6)
    # a card W* shared by all devices with "card"
    card_mode = AnalogLinear(5, 4, bias=False, config=cfg.replace(symmetry_reference="card"))
    assert bool((card_mode.reference == noisy_card.symmetry_point).all())
    lo, hi = Fx.state_bounds(0.7, weight_clip=False)
    assert (lo, hi) == (0.0, 1.0)
    assert Fx.state_bounds(0.7) == (pytest.approx(0.2), 1.0)


def test_rule_config_keeps_the_symmetry_variant():
    base = AnalogConfig(symmetry_reference="device", weight_window="fixed")
    sym = rule_config("symmetry", base)
    assert sym.reference == "symmetry" and sym.symmetry_reference == "device"
    assert sym.weight_window == "fixed" and not sym.clips_weights
    assert rule_config("plain", base).clips_weights


# ---- dw_min -------------------------------------------------------------------------
def test_dw_min_definitions_by_hand():
    up = 0.2611 * 0.5 ** (0.6429 + 0.9873)
    down = 0.5969 * 0.5 ** (1.4585 + 0.6885)
    mean_mid = one_device()
    up_mid = one_device(programming=ProgrammingConfig(dw_min="up_at_mid"))
    assert dw_min(mean_mid) == pytest.approx(2 * 1.0 * 0.5 * (up + down), rel=1e-12)
    assert dw_min(up_mid) == pytest.approx(2 * 1.0 * up, rel=1e-12)  # w_max = 1/sqrt(1)
    w_star = w_star_by_hand()
    sym = one_device(reference="symmetry")
    assert dw_min(sym) == pytest.approx(2 * 0.5 * (step(w_star, LTP) + step(w_star, LTD)))
    sym_up = one_device(reference="symmetry", programming=ProgrammingConfig(dw_min="up_at_mid"))
    assert dw_min(sym_up) == pytest.approx(2 * up, rel=1e-12)
    # the mixed rule's threshold follows the definition: one nominal step
    card = preset("dut2")
    assert granularity_eps(card) == pytest.approx(0.5 * (up + down), rel=1e-12)
    assert granularity_eps(card, "mid", ProgrammingConfig(dw_min="up_at_mid")) == pytest.approx(
        up, rel=1e-12
    )
    # the lr effect: pulses per update are lr |x d| / dw_min; for dut2 the up step at 0.5
    # (0.084) is below the mean (0.110), so "up_at_mid" fires mean/up = 1.30x the pulses
    assert (0.5 * (up + down)) / up == pytest.approx(1.2989, abs=1e-4)
    with pytest.raises(InputError, match="dw_min"):
        ProgrammingConfig(dw_min="mean")


def test_pulse_order_option_is_checked():
    with pytest.raises(InputError, match="pulse_order"):
        ProgrammingConfig(pulse_order="aihwkit")
    assert ProgrammingConfig().pulse_order == "grouped"
    assert AnalogConfig().symmetry_reference == "card"
    assert AnalogConfig().weight_window == "layer"


# ---- aihwkit's output-bound gradient mask -------------------------------------------------
def test_grad_out_bound_masks_the_error_passed_back_by_hand():
    """grad_out_bound = 1: output 0 (|W x| = 1.2 >= 0.999) passes no error back to x; the
    value, the weight gradient and the error PulsedSGD captures are not masked."""
    cfg = AnalogConfig(card="dut2", d2d=False, weight_window="fixed", weight_bound=1.0)
    gen = torch.Generator().manual_seed(0)
    layer = AnalogLinear(2, 2, bias=True, config=cfg, generator=gen, dtype=torch.float64)
    layer.set_weights(torch.tensor([[0.6, 0.6], [0.2, -0.4]], dtype=torch.float64))
    with torch.no_grad():
        layer.bias.copy_(torch.tensor([-0.5, 0.1], dtype=torch.float64))
    w = layer.get_weights().detach().numpy()
    b = layer.bias.detach().numpy()
    xv = np.array([1.0, 1.0])
    g = np.array([0.3, -0.7])  # dL/dy
    y_np = w @ xv + b
    assert abs(w[0] @ xv) >= 0.999 and abs(w[1] @ xv) < 0.999  # output 0 is at the bound
    grads = {}
    for bound in (None, 1.0):
        layer.analog_config = cfg.replace(grad_out_bound=bound)
        layer.weight.grad = None
        x = torch.tensor(xv, dtype=torch.float64, requires_grad=True)
        y = layer(x)
        assert np.allclose(y.detach().numpy(), y_np, rtol=0, atol=1e-15)  # not clipped
        (y * torch.tensor(g, dtype=torch.float64)).sum().backward()
        grads[bound] = (x.grad.numpy(), layer.weight.grad.numpy().copy())
    keep = np.array([0.0, 1.0])
    assert np.allclose(grads[None][0], w.T @ g, atol=1e-15)
    assert np.allclose(grads[1.0][0], w.T @ (keep * g), atol=1e-15)  # = g[1] * w[1]
    for bound in (None, 1.0):  # the layer's own gradient is the full outer product
        assert np.allclose(grads[bound][1], np.outer(g, xv), atol=1e-15)
    # the error PulsedSGD captures at the output is the full one
    layer.analog_config = cfg.replace(grad_out_bound=1.0)
    opt = PulsedSGD(torch.nn.Sequential(layer), lr=0.1)
    x = torch.tensor(np.array([xv]), dtype=torch.float64, requires_grad=True)
    (layer(x) * torch.tensor(np.array([g]), dtype=torch.float64)).sum().backward()
    ((_, d_captured),) = opt._capture.take("0")
    assert np.allclose(d_captured.numpy(), [g], atol=1e-15)
    opt.close()
    with pytest.raises(InputError, match="grad_out_bound"):
        AnalogConfig(grad_out_bound=0.0)
    assert AnalogConfig().grad_out_bound is None


def test_grad_out_bound_on_conv_by_hand():
    """A 1x1 convolution is a matmul per pixel: the pixel whose output reaches the bound
    passes no error back; value and weight gradient unchanged."""
    cfg = AnalogConfig(card="dut2", d2d=False, weight_window="fixed", weight_bound=1.0)
    gen = torch.Generator().manual_seed(0)
    conv = AnalogConv2d(1, 1, 1, bias=False, config=cfg, generator=gen, dtype=torch.float64)
    conv.set_weights(torch.full((1, 1, 1, 1), 0.5, dtype=torch.float64))
    w = float(conv.get_weights().reshape(()))
    xv = np.array([[[[1.0, 3.0]]]])  # outputs 0.5 w-scaled: w and 3 w
    out = {}
    for bound in (None, 1.0):
        conv.analog_config = cfg.replace(grad_out_bound=bound)
        conv.weight.grad = None
        x = torch.tensor(xv, requires_grad=True)
        y = conv(x)
        assert np.allclose(y.detach().numpy(), w * xv, atol=1e-15)
        y.sum().backward()
        out[bound] = (x.grad.numpy(), float(conv.weight.grad.reshape(())))
    assert 3 * w >= 0.999 > w
    assert np.allclose(out[None][0], [[[[w, w]]]], atol=1e-15)
    assert np.allclose(out[1.0][0], [[[[w, 0.0]]]], atol=1e-15)
    assert out[None][1] == pytest.approx(4.0) and out[1.0][1] == pytest.approx(4.0)


def test_per_sample_order_with_no_sample_firing():
    """A step in which no sample fires (all errors zero, e.g. behind the output-bound
    mask) programs nothing in the per-sample order, as in the grouped one."""
    cfg = AnalogConfig(
        card="dut2",
        d2d=False,
        programming=ProgrammingConfig(rsd_c2c=0.0, pulse_order="per_sample"),
    )
    gen = torch.Generator().manual_seed(0)
    layer = AnalogLinear(3, 2, bias=False, config=cfg, generator=gen, dtype=torch.float64)
    g0 = layer.conductance.clone()
    opt = PulsedSGD(torch.nn.Sequential(layer), lr=0.1)
    x = torch.ones(4, 3, dtype=torch.float64)
    (layer(x) * 0.0).sum().backward()
    stats = opt.step()
    assert stats.ltp_pulses["0"] == 0 and stats.ltd_pulses["0"] == 0
    assert torch.equal(layer.conductance, g0)
    opt.close()
