"""The parallel path folds time in chunks with states carried over: it must equal the
step-by-step oracle (outputs and every gradient) for any chunk length."""

from __future__ import annotations

from functools import cache

import pytest
import torch

from ferrocim.checks import InputError
from ferrocim.snn import EEGSNN, NetworkConfig

T = 9


@cache
def _run(mode: str, chunk: int | None = None, layer: str | None = None):
    cfg = NetworkConfig(mode=mode, time_chunk=chunk, width=0.125, n_steps=T, dropout=0.3)
    model = EEGSNN(cfg, generator=torch.Generator().manual_seed(0)).train()
    x = 3 * torch.randn(3, 1, 10, 11, T, generator=torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(2)
    if layer is not None:
        return model.eval().forward_until(x, layer)
    out = model(x, dropout_generator=g)
    torch.nn.functional.cross_entropy(out, torch.tensor([0, 1, 1])).backward()
    return out.detach(), {k: p.grad for k, p in model.named_parameters()}


@pytest.mark.parametrize("chunk", [1, 4, T])
def test_chunks_equal_loop_outputs_and_gradients(chunk: int) -> None:
    out0, grads0 = _run("loop")
    out, grads = _run("parallel", chunk)
    torch.testing.assert_close(out, out0, rtol=1e-5, atol=1e-6)
    assert grads.keys() == grads0.keys()
    for name, g0 in grads0.items():
        # the taps of tc1 (2 steps of history across chunk edges) must get gradients too
        assert g0.abs().sum() > 0 or name.startswith("fc2"), name
        torch.testing.assert_close(grads[name], g0, rtol=1e-4, atol=1e-6, msg=name)


def test_chunked_spikes_of_every_layer_equal_loop() -> None:
    for layer in ("tc1", "fc1"):
        assert torch.equal(_run("parallel", 2, layer), _run("loop", layer=layer)), layer


def test_time_chunk_checked() -> None:
    with pytest.raises(InputError, match="time_chunk"):
        NetworkConfig(time_chunk=0)


@pytest.mark.parametrize("masked", [False, True])
def test_large_layer_backward_equals_step_loop(masked: bool, monkeypatch) -> None:
    """Layers with many neurons per step take the step-by-step backward of the scan."""
    from ferrocim.snn import functional as fn

    g = torch.Generator().manual_seed(0)
    D, B, N = torch.float64, 3, 40
    beta = (0.2 + 0.7 * torch.rand(N, dtype=D, generator=g)).requires_grad_()
    gamma = (0.2 + 0.7 * torch.rand(N, dtype=D, generator=g)).requires_grad_()
    cur = (0.3 * torch.randn(T, B, N, dtype=D, generator=g)).requires_grad_()
    c0, v0 = (0.1 * torch.randn(2, B, N, dtype=D, generator=g)).unbind(0)
    s0 = (torch.rand(B, N, generator=g) > 0.5).to(D)
    mask = (torch.rand(B, N, generator=g) > 0.3).to(D) / 0.7 if masked else None
    w_out = torch.randn(T, B, N, dtype=D, generator=g)
    results = []
    for large, scan in ((0, fn.cuba_lif_scan), (1 << 30, fn.cuba_lif_scan_reference)):
        monkeypatch.setattr(fn, "_LARGE_STEP", large)
        state = fn.LIFState(c0.clone().requires_grad_(), v0.clone().requires_grad_(), s0)
        s, last = scan(cur, fn.LIFParameters(beta, gamma), state, dropout_mask=mask)
        loss = (s * w_out).sum() + (last.c * 2).sum() + (last.v**2).sum()
        results.append((s, torch.autograd.grad(loss, (cur, beta, gamma, state.c, state.v))))
    (s1, g1), (s2, g2) = results
    assert 0.1 < s1.mean().item() < 0.9
    torch.testing.assert_close(s1, s2, rtol=0, atol=0)
    for a, b in zip(g1, g2, strict=True):
        assert a.abs().max() > 0
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_path_equals_cpu() -> None:
    cfg = NetworkConfig(width=0.125, n_steps=T)
    model = EEGSNN(cfg, generator=torch.Generator().manual_seed(0)).eval()
    x = 3 * torch.randn(3, 1, 10, 11, T, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        cpu = model(x)
        gpu = model.to("cuda")(x.to("cuda")).cpu()
    torch.testing.assert_close(gpu, cpu, rtol=1e-4, atol=1e-5)
