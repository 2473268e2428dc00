"""Spikes saved as bool for backward: same gradients as float storage, and fewer bytes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ferrocim.snn import EEGSNN, NetworkConfig, compact
from ferrocim.snn.compact import SpikePacker, saved_as_bool


def _grads(compact: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model = EEGSNN(
        NetworkConfig(n_steps=12, compact_spikes=compact),
        generator=torch.Generator().manual_seed(3),
    )
    g = torch.Generator().manual_seed(4)
    x = torch.randn(3, 1, 10, 11, 12, generator=g) * 2
    y = torch.tensor([0, 1, 1])
    out = model(x, dropout_generator=torch.Generator().manual_seed(5))
    F.cross_entropy(out, y).backward()
    return out.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def test_compact_spikes_give_identical_gradients(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(compact, "MIN_VALUES", 0)  # this small network's spikes are packed
    out_a, ga = _grads(True)
    out_b, gb = _grads(False)
    assert torch.equal(out_a, out_b)
    assert ga.keys() == gb.keys()
    for name in ga:
        torch.testing.assert_close(ga[name], gb[name], rtol=0, atol=0, msg=name)
    assert any(g.abs().sum() > 0 for g in ga.values())


def test_packer_stores_views_of_the_spikes_as_bool_only():
    spikes = (torch.rand(5, 7, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    packer = SpikePacker(spikes)
    packed = packer.pack(spikes.view(35))
    assert isinstance(packed, tuple) and packed[0].dtype == torch.bool
    assert packed[0].element_size() * packed[0].numel() == 35  # 1 byte per spike, not 4
    assert torch.equal(packer.unpack(packed), spikes.view(35))
    other = torch.randn(5, 7)
    assert packer.pack(other) is other and packer.unpack(other) is other


def test_saved_as_bool_gradient_of_a_matmul(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(compact, "MIN_VALUES", 0)
    spikes = (torch.rand(5, 7, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    w = torch.randn(7, 3, requires_grad=True)
    with saved_as_bool(spikes):
        out = spikes.reshape(5, 7) @ w
    out.sum().backward()
    torch.testing.assert_close(w.grad, spikes.sum(0)[:, None].expand(7, 3))


ROWS = compact.MIN_VALUES // 8  # rows of 8 values: MIN_VALUES in all


@pytest.mark.parametrize(("rows", "packed"), [(ROWS - 1, 0), (ROWS, 1)])
def test_spike_tensors_below_min_values_are_saved_unchanged(
    monkeypatch: pytest.MonkeyPatch, rows: int, packed: int
):
    """fewer than MIN_VALUES values (rows × 8): not packed; MIN_VALUES: packed, once (the
    matmul saves its spike input, not the weight)."""
    calls: list[torch.dtype] = []

    class Spy(SpikePacker):
        def pack(self, t: torch.Tensor) -> compact.Packed:
            p = super().pack(t)
            if isinstance(p, tuple):
                calls.append(p[0].dtype)
            return p

    monkeypatch.setattr(compact, "SpikePacker", Spy)
    spikes = torch.ones(rows, 8)
    w = torch.ones(8, 2, requires_grad=True)
    with saved_as_bool(spikes):
        out = spikes @ w
    out.sum().backward()
    assert calls == [torch.bool] * packed
    assert torch.equal(w.grad, torch.full((8, 2), float(rows)))
