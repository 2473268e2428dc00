"""aihwkit 1.1 semantics that are named options of the array configuration: the mixed
rule's pulse-train transfer (``programming.transfer``) and the noisy periphery preset
(``periphery = "aihwkit"``). Expectations are computed here by hand."""

from __future__ import annotations

import math

import pytest
import torch

from ferrocim.checks import InputError
from ferrocim.crossbar import AnalogConfig, AnalogLinear, ProgrammingConfig


def transfer_layer(transfer: str, transfer_bl: int = 31, seed: int = 0) -> AnalogLinear:
    """A 2x3 layer, window ±1, threshold 0.02 (eps 0.01), every crossing fired, no noise."""
    prog = ProgrammingConfig(
        eps=0.01,
        max_pulses_per_step=None,
        rsd_c2c=0.0,
        transfer=transfer,
        transfer_bl=transfer_bl,
    )
    cfg = AnalogConfig(
        card="dut2", d2d=False, weight_window="fixed", weight_bound=1.0, programming=prog
    )
    gen = torch.Generator().manual_seed(seed)
    return AnalogLinear(3, 2, bias=False, config=cfg, generator=gen, dtype=torch.float64)


THR = 0.02
# accumulated updates in thresholds: row 0 crosses 4, 2, 0 times (LTP); row 1 once (LTD)
DELTA = torch.tensor([[4.5, 2.2, 0.3], [-1.2, 0.0, 0.5]], dtype=torch.float64) * THR


def fired(layer: AnalogLinear, delta: torch.Tensor, n: int) -> torch.Tensor:
    """Signed pulses per device of ``n`` transfers of ``delta`` from an empty accumulator,
    (n, 2, 3)."""
    out = []
    for _ in range(n):
        layer.accumulator.zero_()
        before = layer.pulse_counts.clone()
        layer.program_delta(delta)
        d = layer.pulse_counts - before
        out.append((d[0] - d[1]).to(torch.float64))
    return torch.stack(out)


def test_exact_transfer_fires_every_crossing():
    layer = transfer_layer("exact")
    got = fired(layer, DELTA, 3)
    want = torch.tensor([[4.0, 2.0, 0.0], [-1.0, 0.0, 0.0]], dtype=torch.float64)
    assert torch.equal(got, want.expand(3, 2, 3))


def test_pulse_train_transfer_is_binomial_per_row():
    layer = transfer_layer("pulse_train")
    got = fired(layer, DELTA, 400)
    # the accumulator keeps the truncated remainder, as for the exact transfer
    want_acc = DELTA - torch.tensor([[4.0, 2.0, 0.0], [-1.0, 0.0, 0.0]]) * THR
    assert torch.allclose(layer.accumulator, want_acc.to(layer.accumulator.dtype))
    # row 0: N = 4, BL = 4, p = (4/4, 2/4, 0): 4 pulses always, Binomial(4, 1/2), none
    assert bool((got[:, 0, 0] == 4).all())
    assert bool((got[:, 0, 2] == 0).all())
    b = got[:, 0, 1]
    assert bool(((b >= 0) & (b <= 4)).all())
    assert b.mean().item() == pytest.approx(2.0, abs=0.2)  # s.e. 0.05
    assert b.var().item() == pytest.approx(1.0, abs=0.3)  # 4 * 1/2 * 1/2
    # row 1: N = 1: exactly the one LTD pulse, as aihwkit's BL = 1 train with p = 1
    assert bool((got[:, 1, 0] == -1).all())
    assert bool((got[:, 1, 1:] == 0).all())


def test_pulse_train_transfer_caps_the_train_at_transfer_bl():
    # row 0 crosses (4, 1, 0) times; BL = min(2, 4) = 2, p = min(1, n / sqrt(2 * 4))
    delta = torch.tensor([[4.2, 1.1, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64) * THR
    layer = transfer_layer("pulse_train", transfer_bl=2)
    got = fired(layer, delta, 400)
    assert bool((got[:, 0, 0] == 2).all())  # p = 4/sqrt(8) > 1: both slots
    p = 1 / math.sqrt(8)
    assert got[:, 0, 1].mean().item() == pytest.approx(2 * p, abs=0.12)  # s.e. 0.03
    assert bool((got[:, 0, 1] <= 2).all())


def test_pulse_train_transfer_is_seeded_by_the_layer_generator():
    a = fired(transfer_layer("pulse_train", seed=5), DELTA, 20)
    b = fired(transfer_layer("pulse_train", seed=5), DELTA, 20)
    assert torch.equal(a, b)


def test_transfer_bad_value_names_the_field():
    with pytest.raises(InputError, match="transfer"):
        ProgrammingConfig(transfer="stochastic")
    with pytest.raises(InputError, match="transfer_bl"):
        ProgrammingConfig(transfer_bl=0)


# ---- periphery ------------------------------------------------------------------------
def mm(x, w, **kw):
    from ferrocim.crossbar.mac import managed_matmul

    args = {
        "tile_rows": 256,
        "dac_bits": None,
        "dac_range": 1.0,
        "adc_bits": None,
        "full_scale": 12.0,
        "out_noise": 0.0,
        "noise_management": "none",
        "bound_management": "none",
        "generator": None,
    }
    args.update(kw)
    t = torch.as_tensor
    return managed_matmul(t(x, dtype=torch.float64), t(w, dtype=torch.float64), **args)


def test_preset_fills_aihwkit_defaults_and_yields_to_given_fields():
    a = AnalogConfig(periphery="aihwkit")
    assert (a.dac_bits, a.dac_range, a.adc_bits, a.adc_full_scale) == (7, 1.0, 9, 12.0)
    assert (a.out_noise, a.noise_management, a.bound_management) == (0.06, "abs_max", "iterative")
    assert a.backward_io and a.grad_out_bound == 12.0 and (a.tile_rows, a.tile_cols) == (512, 512)
    assert AnalogConfig(periphery="aihwkit", out_noise=0.0, dac_bits=8).out_noise == 0.0
    assert a.replace(card="dut1").dac_bits == 7  # a copy keeps the filled values
    ideal = AnalogConfig()
    assert ideal.periphery == "ideal" and not ideal.managed_io
    assert (ideal.dac_bits, ideal.adc_bits, ideal.out_noise) == (None, None, 0.0)
    with pytest.raises(InputError, match=r"AnalogConfig\.periphery"):
        AnalogConfig(periphery="noisy")
    with pytest.raises(InputError, match=r"AnalogConfig\.bound_management: 'iterative' needs"):
        AnalogConfig(bound_management="iterative")
    with pytest.raises(InputError, match=r"AnalogConfig\.noise_management"):
        AnalogConfig(noise_management="max")
    with pytest.raises(InputError, match="out_noise"):
        AnalogConfig(out_noise=-0.1)


def test_input_quantisation_with_abs_max_noise_management():
    # x / max|x| = (1, -0.3, 0.2) -> 7-bit DAC, 63 steps per side: (63, -19, 13) / 63;
    # identity weights, 9-bit ADC on ±12 (step 12/255), times max|x| = 0.5
    x = [[0.5, -0.15, 0.1]]
    got = mm(x, torch.eye(3), dac_bits=7, adc_bits=9, noise_management="abs_max")
    dac = [63 / 63, -19 / 63, 13 / 63]
    adc = [round(v * 255 / 12) * 12 / 255 for v in dac]  # 21, -4, 3 steps
    assert got[0].tolist() == pytest.approx([0.5 * v for v in adc], abs=1e-12)
    # without noise management the DAC sees x itself: 0.5*63 = 31.5 is no tie for -0.15
    got = mm([[0.3, -0.15]], torch.eye(2), dac_bits=7)
    assert got[0].tolist() == pytest.approx([19 / 63, -9 / 63], abs=1e-12)
    # noise management per tile: tiles of 2 rows scale (0.5, -0.15) by 0.5, (0.1, 0.02) by 0.1
    got = mm(
        [[0.5, -0.15, 0.1, 0.02]], torch.eye(4), tile_rows=2, dac_bits=7, noise_management="abs_max"
    )
    want = [0.5, -0.5 * 19 / 63, 0.1, 0.1 * 13 / 63]
    assert got[0].tolist() == pytest.approx(want, abs=1e-12)
    # an all-zero input gives exactly zero, even with output noise
    g = torch.Generator().manual_seed(0)
    z = mm([[0.0, 0.0]], torch.eye(2), noise_management="abs_max", out_noise=0.5, generator=g)
    assert z.abs().max().item() == 0.0


def test_output_bound_clipping_and_iterative_bound_management():
    # 30 > 12: clipped without bound management
    assert mm([[1.0]], [[30.0]], adc_bits=9)[0, 0].item() == pytest.approx(12.0)
    assert mm([[1.0]], [[-30.0]], adc_bits=9)[0, 0].item() == pytest.approx(-12.0)
    # iterative: input / 1, 2 (30, 15 > 12), / 4: DAC 0.25 * 63 = 15.75 -> 16/63,
    # 30 * 16/63 = 7.619 -> ADC round(7.619 * 255/12) = 162 steps, times 4
    got = mm([[1.0]], [[30.0]], dac_bits=7, adc_bits=9, bound_management="iterative")
    assert got[0, 0].item() == pytest.approx(4 * round(30 * 16 / 63 * 255 / 12) * 12 / 255)
    # at most a divisor of 16 (> 0.25 * 63): 1000 * 4/63 still > 12, clipped, times 16
    got = mm([[1.0]], [[1000.0]], dac_bits=7, adc_bits=9, bound_management="iterative")
    assert got[0, 0].item() == pytest.approx(16 * 12.0)
    # per sample: a sample within the bound is not rescaled
    got = mm([[1.0], [0.1]], [[30.0]], adc_bits=9, bound_management="iterative")
    assert got[1, 0].item() == pytest.approx(round(3.0 * 255 / 12) * 12 / 255)


def test_output_noise_statistics_and_seed():
    x = torch.zeros(4000, 2, dtype=torch.float64)
    x[:, 0] = 2.0  # max|x| = 2 multiplies the noise back
    w = torch.zeros(3, 2, dtype=torch.float64)
    kw = {"out_noise": 0.06, "noise_management": "abs_max"}
    a = mm(x, w, generator=torch.Generator().manual_seed(7), **kw)
    b = mm(x, w, generator=torch.Generator().manual_seed(7), **kw)
    assert torch.equal(a, b)
    assert a.mean().item() == pytest.approx(0.0, abs=0.005)  # s.e. 0.12 / sqrt(12000)
    assert a.std().item() == pytest.approx(0.12, rel=0.04)  # 2 * 0.06
    c = mm(x, w, generator=torch.Generator().manual_seed(8), **kw)
    assert not torch.equal(a, c)


def test_aihwkit_layer_forward_and_gradients():
    cfg = AnalogConfig(
        card="dut2", d2d=False, weight_window="fixed", weight_bound=1.0, periphery="aihwkit"
    )
    gen = torch.Generator().manual_seed(0)
    layer = AnalogLinear(4, 3, config=cfg, generator=gen, dtype=torch.float64)
    x = torch.tensor([[0.4, -0.2, 0.1, 0.0]], dtype=torch.float64, requires_grad=True)
    y = layer(x)
    exact = x.detach() @ layer.weight.detach().T + layer.bias.detach()
    # 7-bit inputs, 9-bit outputs (step 12/255 * 0.4), noise 0.06 * 0.4: close to exact
    assert torch.allclose(y.detach(), exact, atol=0.15)
    g = torch.tensor([[1.0, -0.5, 0.25]], dtype=torch.float64)
    y.backward(g)
    assert torch.allclose(layer.weight.grad, g.T @ x.detach())  # the update's gradient: exact
    # the error sent back goes through the noisy backward periphery, near g @ W
    assert torch.allclose(x.grad, g @ layer.weight.detach(), atol=0.15)
    assert not torch.allclose(x.grad, g @ layer.weight.detach(), atol=1e-9)
    exact_back = AnalogLinear(
        4,
        3,
        config=cfg.replace(backward_io=False),
        generator=torch.Generator().manual_seed(0),
        dtype=torch.float64,
    )
    x2 = x.detach().clone().requires_grad_(True)
    exact_back(x2).backward(g)
    assert torch.allclose(x2.grad, g @ exact_back.weight.detach())


def test_managed_periphery_is_refused_on_convolutions():
    from ferrocim.crossbar.layers import AnalogConv2d

    with pytest.raises(InputError, match="AnalogLinear only"):
        AnalogConv2d(1, 2, 3, config=AnalogConfig(periphery="aihwkit"))
