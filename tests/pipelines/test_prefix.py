"""The frozen-prefix cache gives the same logits, gradients and pulses as the full network."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ferrocim.crossbar import AnalogConfig, PulseOptimizer
from ferrocim.pipelines.prefix import InputForward, PrefixForward, make_forward, split_layer
from ferrocim.pipelines.retune import set_trainable
from ferrocim.snn import EEGSNN, NetworkConfig


def _model() -> EEGSNN:
    cfg = NetworkConfig(n_steps=24, analog=AnalogConfig(card="dut2"))
    return EEGSNN(cfg, generator=torch.Generator().manual_seed(0))


def _data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(6, 1, 10, 11, 24, generator=g) * 3, torch.tensor([0, 1, 0, 1, 1, 0])


@pytest.mark.parametrize("trained", [["fc1", "fc2"], ["fc2"], ["r1", "fc1", "fc2"]])
def test_cached_equals_uncached_step(trained):
    x, y = _data()
    results = []
    for cached in (True, False):
        model = _model()
        set_trainable(model, trained)
        fwd = make_forward(model, x, y, trained=trained, use_cache=cached)
        assert isinstance(fwd, PrefixForward if cached else InputForward)
        if cached:
            assert fwd.split == split_layer(trained) and fwd.cache.dtype == torch.bool
        opt = PulseOptimizer(
            torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.05), model
        )
        model.train()
        idx = torch.tensor([0, 3, 4])
        logits = fwd(idx, torch.Generator().manual_seed(7))
        F.cross_entropy(logits, y[idx]).backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        stats = opt.step()
        results.append((logits.detach(), grads, stats.total(), model.state_dict()))
    (la, ga, sa, da), (lb, gb, sb, db) = results
    torch.testing.assert_close(la, lb, rtol=1e-6, atol=1e-7)
    assert ga.keys() == gb.keys() and ga
    assert {n.split(".")[0] for n in ga} == set(trained)
    for n in ga:
        torch.testing.assert_close(ga[n], gb[n], rtol=1e-5, atol=1e-7)
    assert sa == sb and sa["pulses"] > 0
    for k, v in da.items():
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            torch.testing.assert_close(v, db[k], rtol=1e-5, atol=1e-6, msg=k)


def test_frozen_dropout_turns_the_cache_off():
    x, y = _data()
    model = _model()
    assert isinstance(make_forward(model, x, y, trained=["fc1", "fc2"]), PrefixForward)
    fwd = make_forward(model, x, y, trained=["fc1", "fc2"], frozen_dropout=True)
    assert isinstance(fwd, InputForward) and fwd.dropout_layers is None
    assert isinstance(make_forward(model, x, y, trained=None), InputForward)
    assert isinstance(make_forward(model, x, y, trained=["conv1", "fc2"]), InputForward)
