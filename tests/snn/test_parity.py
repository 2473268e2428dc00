"""Parity with the published EEG-Ferro code, pinned without it: layer bounds, analog layers."""

from __future__ import annotations

import math

import pytest

from ferrocim.checks import InputError
from ferrocim.snn import EEGSNN, NetworkConfig
from ferrocim.snn.network import PUBLISHED_W_MAX, paper_w_max

FAN_IN = {"conv1": 9, "conv2": 576, "conv3": 1152, "tc1": 256, "r1": 256, "fc1": 256, "fc2": 256}


def test_paper_w_max_is_the_published_literal_at_width_1() -> None:
    cfg = NetworkConfig()
    assert cfg.w_max_rule == "paper"
    assert {n: cfg.w_max(n, f) for n, f in FAN_IN.items()} == {
        "conv1": 0.3330, "conv2": 0.0417, "conv3": 0.0295,
        "tc1": 0.0625, "r1": 0.0625, "fc1": 0.0625, "fc2": 0.0625,
    }  # fmt: skip
    # the literals are 1/sqrt(fan_in) to 3 significant figures: the rule used at other widths
    assert {n: paper_w_max(f) for n, f in FAN_IN.items()} == PUBLISHED_W_MAX
    quarter = NetworkConfig(width=0.25)
    assert quarter.w_max("conv2", 16 * 9) == 0.0833  # 1/12 = 0.083333
    assert quarter.w_max("conv3", 32 * 9) == 0.0589  # 1/sqrt(288) = 0.058926
    assert quarter.w_max("fc1", 64) == 0.125
    exact = NetworkConfig(w_max_rule="fan_in")
    assert exact.w_max("conv1", 9) == 1 / 3 and exact.w_max("conv3", 1152) == 1 / math.sqrt(1152)
    with pytest.raises(InputError, match="w_max_rule"):
        NetworkConfig(w_max_rule="other")  # type: ignore[arg-type]


def test_analog_layers_take_the_paper_bounds() -> None:
    from ferrocim.crossbar import AnalogConfig

    model = EEGSNN(NetworkConfig(analog=AnalogConfig(d2d=False), width=0.25, n_steps=4))
    got = {
        "conv1": model.conv1.synapse.w_max,
        "conv2": model.conv2.synapse.w_max,
        "conv3": model.conv3.synapse.w_max,
        "tc1": model.tc1.taps[2].w_max,
        "r1": model.r1.recurrent.w_max,
        "fc2": model.fc2.synapse.w_max,
    }
    assert got == {
        "conv1": 0.333, "conv2": 0.0833, "conv3": 0.0589,
        "tc1": 0.125, "r1": 0.125, "fc2": 0.125,
    }  # fmt: skip
    w = model.conv1.synapse.weight
    assert w.abs().max().item() <= 0.333
