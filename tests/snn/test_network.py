"""The EEG network: parameter counts, loop == parallel, forward_until/from, dropout, tc1."""

from __future__ import annotations

import pytest
import torch

from ferrocim.checks import InputError
from ferrocim.snn import EEGSNN, LAYER_ORDER, LAYER_SHAPES, NetworkConfig
from ferrocim.snn.network import make_linear


def _model(mode: str = "parallel", seed: int = 0, **kw) -> EEGSNN:
    return EEGSNN(NetworkConfig(mode=mode, **kw), generator=torch.Generator().manual_seed(seed))


def test_parameter_counts_exact() -> None:
    m = _model()
    counts = m.parameter_counts()
    assert counts == {"total": 721_312, "device_weights": 697_408}
    per_layer = {}
    for name, w in m.device_weights().items():
        per_layer[name.split(".")[0]] = per_layer.get(name.split(".")[0], 0) + w.numel()
    assert per_layer == {
        "conv1": 576,
        "conv2": 73_728,
        "conv3": 294_912,
        "tc1": 196_608,
        "r1": 65_536,
        "fc1": 65_536,
        "fc2": 512,
    }
    assert m.conv1.neuron.beta.shape == (64, 8, 9) and m.conv2.neuron.gamma.shape == (128, 6, 7)
    assert m.fc2.synapse.bias is None
    assert torch.all(m.fc2.ts_weight == 1 / 160)
    # PyTorch's default bound 1/sqrt(fan_in) = the paper's per-layer A
    assert m.conv1.synapse.weight.abs().max() <= 1 / 3
    assert 0.0625 * 0.99 < m.tc1.taps[2].weight.abs().max() <= 0.0625


def test_width_scales_channels_only() -> None:
    m = EEGSNN(NetworkConfig(width=0.25), generator=torch.Generator().manual_seed(0))
    # conv1 16·1·9, conv2 32·16·9, conv3 64·32·9, tc1 3·64·64, r1 and fc1 64·64, fc2 2·64
    assert m.parameter_counts()["device_weights"] == 144 + 4608 + 18_432 + 12_288 + 2 * 4096 + 128
    # + biases 16+32+64+3·64+64+64, beta/gamma 2·(16·72 + 32·42 + 64 + 3·64), ts_weight 160
    assert m.parameter_counts()["total"] == 43_792 + 432 + 5504 + 160
    assert m.layer_shapes["pool"] == (32, 3, 3) and m.layer_shapes["fc1"] == (64,)
    assert NetworkConfig().layer_shapes() == LAYER_SHAPES
    x = torch.randn(2, 1, 10, 11, 12, generator=torch.Generator().manual_seed(1))
    small = EEGSNN(NetworkConfig(width=0.25, n_steps=12), generator=torch.Generator()).eval()
    acts = small.forward_until(x, "r1")
    assert acts.shape == (2, 64, 12)
    torch.testing.assert_close(small.forward_from("r1", acts), small(x))
    with pytest.raises(InputError, match="width"):
        NetworkConfig(width=0.001)
    with pytest.raises(InputError, match="width"):
        NetworkConfig(width=2.0)


def test_same_seed_same_weights() -> None:
    a, b, c = _model(seed=1), _model(seed=1), _model(seed=2)
    assert torch.equal(a.conv2.synapse.weight, b.conv2.synapse.weight)
    assert not torch.equal(a.conv2.synapse.weight, c.conv2.synapse.weight)


def _pair(n_steps: int = 160, dropout: float = 0.3):
    par = _model("parallel", n_steps=n_steps, dropout=dropout).double()
    loop = _model("loop", n_steps=n_steps, dropout=dropout).double()
    loop.load_state_dict(par.state_dict())
    return par, loop


def test_loop_and_parallel_agree_outputs_and_gradients() -> None:
    par, loop = _pair(n_steps=20)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 1, 10, 11, 20, dtype=torch.float64, generator=g)
    y = torch.tensor([0, 1])
    grads = []
    for m in (par, loop):
        m.train()
        out = m(x, dropout_generator=torch.Generator().manual_seed(9))
        loss = torch.nn.functional.cross_entropy(out, y)
        grads.append((out, torch.autograd.grad(loss, list(m.parameters()))))
    (o1, g1), (o2, g2) = grads
    torch.testing.assert_close(o1, o2, rtol=1e-10, atol=1e-12)
    names = [n for n, _ in par.named_parameters()]
    for name, a, b in zip(names, g1, g2, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-12, msg=f"gradient of {name}")
    # the comparison is not vacuous: every parameter tensor gets gradient
    assert all(a.abs().max() > 0 for a in g1)


@pytest.mark.parametrize("mode", ["parallel", "loop"])
def test_forward_until_from_equals_forward(mode: str) -> None:
    m = _model(mode, n_steps=24).eval()
    x = torch.randn(3, 1, 10, 11, 24, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = m(x)
        for layer in LAYER_ORDER:
            acts = m.forward_until(x, layer)
            if layer == "fc2":
                assert acts.shape == (3, 2)
            else:
                assert acts.shape == (3, *LAYER_SHAPES[layer], 24)
                assert acts.dtype == (torch.float32 if layer == "pool" else torch.bool)
            torch.testing.assert_close(m.forward_from(layer, acts), ref, rtol=1e-5, atol=1e-6)


def test_dropout_mask_per_sequence_silences_neurons_and_their_gradient() -> None:
    m = _model(n_steps=32).train()
    x = torch.randn(2, 1, 10, 11, 32, generator=torch.Generator().manual_seed(2))
    fc1 = m.forward_until(x, "fc1", dropout_generator=torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    masks = m._draw_masks(("tc1", "r1", "fc1"), 2, g)
    dropped = masks["fc1"] == 0
    assert 0.15 < dropped.float().mean() < 0.45
    assert not fc1[dropped].any()  # dropped for the whole sequence
    assert fc1[~dropped].any()
    assert masks["fc1"].unique().tolist() == pytest.approx([0.0, 1 / 0.7])
    # no gradient reaches fc1 weights of neurons dropped in every sequence of the batch
    out = m(x, dropout_generator=torch.Generator().manual_seed(5))
    out.sum().backward()
    rows = dropped.all(0)
    assert rows.any()
    assert torch.all(m.fc1.synapse.weight.grad[rows] == 0)
    assert m.fc1.synapse.weight.grad[~rows].abs().sum() > 0
    # eval: no dropout, deterministic
    m.eval()
    with torch.no_grad():
        torch.testing.assert_close(m(x), m(x))


@pytest.mark.parametrize("mode", ["parallel", "loop"])
def test_tc1_uses_only_available_kernels_in_first_steps(mode: str) -> None:
    m = _model(mode, n_steps=6).eval()
    with torch.no_grad():
        for blk in (m.conv1, m.conv2, m.conv3):
            blk.synapse.bias.zero_()  # zero input -> no spikes up to conv3
        for k, b in enumerate((0.05, 0.03, 0.04)):
            m.tc1.taps[k].bias.fill_(b)
        m.tc1.neuron.beta.fill_(1e-7)
        m.tc1.neuron.gamma.fill_(1e-7)
        spikes = m.forward_until(torch.zeros(1, 1, 10, 11, 6), "tc1")
    # currents: t0 .05 (tap 0 only), t1 .08 (taps 0, 1), t>=2 .12 (all three) > 0.1
    assert spikes[0, :, :].float().mean(0).tolist() == [0, 0, 1, 1, 1, 1]


def test_bad_shapes_and_options() -> None:
    m = _model(n_steps=8)
    with pytest.raises(InputError, match=r"input: expected shape \(B, 1, 10, 11, 8\)"):
        m(torch.zeros(1, 1, 10, 11, 9))
    with pytest.raises(InputError, match=r"'layer'.*got 'conv'"):
        m.forward_until(torch.zeros(1, 1, 10, 11, 8), "conv")
    with pytest.raises(InputError, match="acts of r1"):
        m.forward_from("r1", torch.zeros(1, 128, 8))
    with pytest.raises(InputError, match="mode"):
        NetworkConfig(mode="fast")
    with pytest.raises(InputError, match="analog_layers"):
        NetworkConfig(analog_layers=("conv4",))


def test_float_network_never_imports_crossbar() -> None:
    layer = make_linear("fc1", 4, 3, bias=True, config=NetworkConfig(analog_layers=("fc1",)))
    assert type(layer) is torch.nn.Linear


def test_analog_layers_on_tiles() -> None:
    from ferrocim import crossbar

    cfg = NetworkConfig(analog=crossbar.AnalogConfig(), analog_layers=("fc1", "fc2"), n_steps=8)
    m = EEGSNN(cfg, generator=torch.Generator().manual_seed(0))
    assert isinstance(m.fc1.synapse, crossbar.AnalogLinear)
    assert isinstance(m.conv1.synapse, torch.nn.Conv2d)
    assert set(crossbar.analog_modules(m)) == {"fc1.synapse", "fc2.synapse"}
    out = m(torch.randn(2, 1, 10, 11, 8))
    assert out.shape == (2, 2) and torch.isfinite(out).all()
    full = EEGSNN(
        NetworkConfig(analog=crossbar.AnalogConfig()), generator=torch.Generator().manual_seed(0)
    )
    assert full.parameter_counts()["device_weights"] == 697_408
