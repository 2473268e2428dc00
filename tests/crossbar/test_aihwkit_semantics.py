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
