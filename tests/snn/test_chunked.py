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
