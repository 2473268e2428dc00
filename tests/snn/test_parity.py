"""Parity with the published EEG-Ferro code, pinned without it: layer bounds, analog layers."""

from __future__ import annotations

import math

import pytest
import torch

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


def _random_model(seed: int = 0) -> EEGSNN:
    cfg = NetworkConfig(width=0.25, n_steps=12)
    model = EEGSNN(cfg, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():  # decays away from their init so a swap would show
        g = torch.Generator().manual_seed(seed + 1)
        for name, p in model.named_parameters():
            if name.endswith(("beta", "gamma")):
                p.copy_(torch.rand(p.shape, generator=g) * 0.9 + 0.05)
    return model.eval()


def test_published_checkpoint_loads_with_the_same_outputs(tmp_path, eeg_ferro_state) -> None:
    from ferrocim.snn import load_eeg_ferro

    model = _random_model()
    sd = eeg_ferro_state(model)
    path = tmp_path / "published.pth"
    torch.save(sd, path)
    loaded = load_eeg_ferro(path)
    assert loaded.config.width == 0.25 and loaded.config.n_steps == 12 and not loaded.training
    # the current-step tap is the published list entry 2; decays as (1, *neurons) -> neurons
    assert torch.equal(loaded.tc1.taps[0].weight, sd["snn.temp_conv1.psp_func_list.2.weight"])
    assert torch.equal(loaded.conv1.neuron.beta, sd["snn.c1_cdecay"][0])
    assert torch.equal(loaded.fc1.neuron.gamma, sd["snn.f1_vdecay"][0])
    x = torch.randn(2, 1, 10, 11, 12, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        want = model(x)
        torch.testing.assert_close(loaded(x), want, rtol=0, atol=0)
    # the two copies of a decay must agree; keys are named in errors
    bad = dict(sd)
    bad["snn.conv1.cdecay"] = bad["snn.conv1.cdecay"] + 1
    torch.save(bad, path)
    with pytest.raises(InputError, match=r"c1_cdecay and snn\.conv1\.cdecay differ"):
        load_eeg_ferro(path)
    del bad["snn.fc2.weight"]
    torch.save(bad, path)
    with pytest.raises(InputError, match=r"snn\.fc2\.weight missing"):
        load_eeg_ferro(path)


def test_on_device_checkpoint_lands_on_tiles_without_loss(tmp_path, eeg_ferro_state) -> None:
    from ferrocim.crossbar import AnalogConfig
    from ferrocim.snn import load_eeg_ferro

    model = _random_model(1)
    sd = eeg_ferro_state(model)
    for key, a in (("snn.conv1.psp_func.weight", 0.333), ("snn.fc1.psp_func.weight", 0.125)):
        sd[key] = sd[key].clamp(-a, a)  # as the published on-device training keeps them
        sd[key][0, 0] = a  # the full range, +-A, is reachable
    torch.save(sd, tmp_path / "dev.pth")
    loaded = load_eeg_ferro(tmp_path / "dev.pth", analog=AnalogConfig(d2d=False))
    for key, layer in (("snn.conv1.psp_func.weight", "conv1"), ("snn.fc1.psp_func.weight", "fc1")):
        got = getattr(loaded, layer).synapse.weight
        # the float32 round trip w -> W -> w: a few ulps of A, and +-A exactly
        torch.testing.assert_close(got, sd[key], rtol=0, atol=1e-7)
        assert got.flatten()[0] == sd[key].flatten()[0]
