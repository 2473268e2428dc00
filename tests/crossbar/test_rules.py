"""Training rules: pulse-train counts, pulsed SGD, symmetry reference, mixed precision."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ferrocim.calibration.card import preset
from ferrocim.calibration.kernel import beta_step, trajectory
from ferrocim.checks import InputError
from ferrocim.crossbar import AnalogConfig, AnalogLinear, ProgrammingConfig, energy_ledger
from ferrocim.crossbar.rules import (
    PulsedSGD,
    dw_min,
    expected_pulses,
    granularity_eps,
    make_rule,
    pulse_train_counts,
    rule_config,
)


def _layer(rule: str, n_in: int = 2, n_out: int = 1, card="dut2") -> nn.Sequential:
    cfg = rule_config(rule, AnalogConfig(card=card))
    return nn.Sequential(
        AnalogLinear(
            n_in, n_out, bias=False, config=cfg, generator=torch.Generator().manual_seed(0)
        )
    )


def test_saturated_trains_coincide_in_every_slot():
    # lr / (dw * bl) >= 1: every probability clips at 1, so each device sees bl pulses
    x = torch.tensor([[1.0, 0.0, -1.0]])
    d = torch.tensor([[-1.0, 1.0]])
    n_ltp, n_ltd = pulse_train_counts(x, d, lr=10.0, dw=1.0, bl=3, bl_management=False)
    # update -lr*d*x: positive (LTP) where sign(x)*sign(d) < 0
    assert n_ltp.tolist() == [[3.0, 0.0, 0.0], [0.0, 0.0, 3.0]]
    assert n_ltd.tolist() == [[0.0, 0.0, 3.0], [3.0, 0.0, 0.0]]


def test_zero_error_fires_nothing():
    n_ltp, n_ltd = pulse_train_counts(torch.ones(4, 3), torch.zeros(4, 2), 0.1, 0.01)
    assert n_ltp.sum().item() == 0 and n_ltd.sum().item() == 0


def test_expected_coincidences_match_the_update():
    # E[pulses] = sum |lr d^T x| / dw when no probability clips (bl management keeps p <= 1)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(400, 5, generator=g, dtype=torch.float64)
    d = torch.randn(400, 3, generator=g, dtype=torch.float64) * 0.1
    lr, dw = 0.5, 0.01
    n_ltp, n_ltd = pulse_train_counts(
        x, d, lr, dw, bl=31, generator=torch.Generator().manual_seed(2)
    )
    want = expected_pulses(lr, x, d, dw)
    assert (n_ltp + n_ltd).sum().item() == pytest.approx(want, rel=0.02)
    # the net count follows the signed update: sum(n_ltp - n_ltd) * dw ~ -lr * d^T x
    net = ((n_ltp - n_ltd) * dw).sum().item()
    assert net == pytest.approx(-(lr * d.T @ x).sum().item(), rel=0.05)


def test_dw_min_is_the_mean_kernel_step_at_zero_weight():
    card = preset("dut2")
    model = _layer("plain", n_in=4)
    w_max = 0.5  # 1/sqrt(4)
    s = beta_step(0.5, card.ltp.a, card.ltp.alpha, card.ltp.beta) + beta_step(
        0.5, card.ltd.a, card.ltd.alpha, card.ltd.beta
    )
    assert dw_min(model[0]) == pytest.approx(w_max * s, rel=1e-12)
    assert granularity_eps(card) == pytest.approx(s / 2, rel=1e-12)


def test_plain_rule_fires_bl_pulses_and_books_them():
    model = _layer("plain")
    layer = model[0]
    layer.set_weights(torch.zeros(1, 2))
    opt = PulsedSGD(model, lr=10.0 * dw_min(layer) * 3, bl=3, bl_management=False)
    opt.generator.manual_seed(0)
    y = model(torch.tensor([[1.0, 0.0]]))
    y.sum().backward()  # delta = +1: update -lr * x * delta < 0 on weight 0 -> LTD
    stats = opt.step()
    assert layer.ltd_pulses.tolist() == [[3, 0]]
    assert layer.ltp_pulses.tolist() == [[0, 0]]
    assert stats.ltd_pulses == {"0": 3} and stats.ltp_pulses == {"0": 0}
    assert layer.event_counts["train"]["write_ltd"] == 3
    card = preset("dut2")
    w = trajectory(0.5, 3, *card.ltd.as_tuple(), direction=-1, low=0.01, high=0.99)[-1]
    assert layer.weight[0, 0].item() == pytest.approx((w - 0.5) * 2 * layer.w_max, abs=1e-6)
    assert layer.weight[0, 1].item() == 0.0
    opt.close()


def test_mixed_rule_fires_every_crossing():
    model = _layer("mixed")
    layer = model[0]
    layer.set_weights(torch.zeros(1, 2))
    assert layer.thr_ltp == pytest.approx(dw_min(layer), rel=1e-12)
    opt = make_rule("mixed", model, lr=1.0)
    y = model(torch.tensor([[1.0, 0.0]]))
    (-2.5 * layer.thr_ltp * y.sum()).backward()  # SGD step +2.5 thresholds on weight 0
    stats = opt.step()
    assert stats.ltp_crossings == {"0": 2} and stats.ltp_pulses == {"0": 2}
    assert layer.ltp_pulses.tolist() == [[2, 0]]
    assert layer.accumulator[0, 0].item() == pytest.approx(0.5 * layer.thr_ltp, rel=1e-5)


def test_symmetry_reference_puts_zero_weight_at_w_star():
    card = preset("dut2")
    small = ProgrammingConfig(a_scale=0.05)  # small steps: the drift settles close to W*

    def layer(reference: str) -> AnalogLinear:
        cfg = AnalogConfig(card=card, reference=reference, programming=small)
        return AnalogLinear(8, 8, bias=False, config=cfg, generator=torch.Generator())

    sym, mid = layer("symmetry"), layer("mid")
    for m in (sym, mid):
        m.set_weights(torch.zeros(8, 8))
    w_star = card.symmetry_point
    assert sym.reference_level == w_star
    assert torch.allclose(sym.conductance, torch.full((8, 8), w_star))
    assert torch.allclose(mid.conductance, torch.full((8, 8), 0.5))
    assert sym.weight.abs().max().item() == 0.0
    # balanced up/down pulses drift every device to W*: zero weight with the symmetry
    # reference, (W* - 0.5) * 2 w_max with the mid reference
    one = torch.ones(8, 8)
    for k in range(600):
        for m in (sym, mid):
            m.program_pulses(one, one, ltd_first=k % 2 == 1)
    assert (sym.conductance - w_star).abs().max().item() < 0.01
    assert (mid.conductance - w_star).abs().max().item() < 0.01
    assert sym.weight.abs().max().item() < 0.01 * 2 * sym.w_max
    expected = (w_star - 0.5) * 2 * mid.w_max
    assert mid.weight.mean().item() == pytest.approx(expected, abs=0.01 * 2 * mid.w_max)
    assert sym.ltp_pulses.sum().item() == sym.ltd_pulses.sum().item() == 600 * 64


def test_energy_equals_pulses_times_energy_per_pulse():
    card = preset("dut2").model_copy(
        update={"pulse": preset("dut2").pulse.model_copy(update={"energy_j": 7e-12})}
    )
    model = _layer("plain", 4, 3, card=card)
    opt = make_rule("plain", model, lr=0.5, generator=torch.Generator().manual_seed(3))
    for _ in range(3):
        model(torch.rand(5, 4, generator=torch.Generator().manual_seed(4))).pow(2).sum().backward()
        opt.step()
        opt.zero_grad()
    led = energy_ledger(model).set_index(["phase", "kind"])
    layer = model[0]
    n_ltp, n_ltd = int(layer.ltp_pulses.sum()), int(layer.ltd_pulses.sum())
    assert n_ltp + n_ltd > 0
    assert led.loc[("train", "write_ltp"), "count"] == n_ltp
    assert led.loc[("train", "write_ltp"), "energy_j"] == pytest.approx(n_ltp * 7e-12, rel=1e-12)
    assert led.loc[("train", "write_ltd"), "energy_j"] == pytest.approx(n_ltd * 7e-12, rel=1e-12)


def test_rule_needs_the_matching_reference():
    with pytest.raises(InputError, match="reference='symmetry'"):
        make_rule("symmetry", _layer("plain"), 0.1)
    with pytest.raises(InputError, match="allowed values"):
        rule_config("adam", AnalogConfig())


def test_same_seed_same_pulses():
    out = []
    for _ in range(2):
        model = _layer("plain", 6, 4)
        opt = make_rule("plain", model, lr=0.3, generator=torch.Generator().manual_seed(9))
        model(torch.linspace(-1, 1, 12).view(2, 6)).pow(2).sum().backward()
        opt.step()
        out.append(model[0].pulse_counts.clone())
    assert torch.equal(out[0], out[1])
    assert out[0].sum().item() > 0
