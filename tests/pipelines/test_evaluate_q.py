"""`ferrocim evaluate --q`: the device-mapped weights rounded to q + 1 levels first."""

from __future__ import annotations

import math

import pytest
import torch
from click.testing import CliRunner

from ferrocim.cli import main
from ferrocim.pipelines.evaluate import evaluate_run, quantize_weights
from ferrocim.snn import EEGSNN, NetworkConfig


def test_quantize_weights_uses_each_layers_bound() -> None:
    model = EEGSNN(NetworkConfig(width=0.25), generator=torch.Generator().manual_seed(0))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    w = model.conv2.synapse.weight  # fan-in 16·3·3 = 144 → A = 1/12 = 0.0833 (3 s.f.)
    with torch.no_grad():
        w.view(-1)[:5] = torch.tensor([0.0833 * 0.49, 0.0833 * 0.51, -0.0833 * 0.51, 0.5, -0.02])
    quantize_weights(model, 2)
    a = float(f"{1 / math.sqrt(144):.3g}")
    assert a == 0.0833
    # step A: |w| < A/2 → 0, otherwise ±A (clipped first)
    assert w.view(-1)[:5].tolist() == pytest.approx([0.0, a, -a, a, 0.0])
    for name, weight in model.device_weights().items():
        layer = name.split(".")[0]
        bound = torch.tensor(model.config.w_max(layer, weight[0].numel()))  # float32
        levels = torch.unique(weight.detach())
        assert set(levels.tolist()) <= {-bound.item(), 0.0, bound.item()}, name
    # only device-mapped weights change: biases, neuron decays and readout weights do not
    for k, v in model.state_dict().items():
        if k not in model.device_weights():
            assert torch.equal(v, before[k]), k
    # 33 levels: every weight within half a step (A/16) of its float value
    fine = EEGSNN(NetworkConfig(width=0.25), generator=torch.Generator().manual_seed(0))
    ref = fine.fc1.synapse.weight.detach().clone()
    quantize_weights(fine, 32)
    assert (fine.fc1.synapse.weight - ref).abs().max() <= 0.125 / 32 + 1e-7


def test_evaluate_rejects_an_odd_q_before_reading_anything(tmp_path) -> None:
    with pytest.raises(Exception, match=r"--q 3: expected a positive even"):
        evaluate_run(tmp_path / "no-such-run", q=3)
    res = CliRunner().invoke(main, ["evaluate", str(tmp_path), "--q", "3"])
    assert res.exit_code == 2 and "--q 3: expected a positive even" in res.output
    assert list(tmp_path.iterdir()) == []


def test_quantize_weights_requantizes_tile_layers() -> None:
    from ferrocim.crossbar import AnalogConfig

    cfg = NetworkConfig(width=0.25, analog=AnalogConfig(card="dut2"))
    model = EEGSNN(cfg, generator=torch.Generator().manual_seed(0))
    quantize_weights(model, 2)
    fc1 = model.fc1.synapse  # on tiles: fan-in 64 → A = 0.125
    assert fc1.w_max == 0.125
    assert set(torch.unique(fc1.weight.detach()).tolist()) == {-0.125, 0.0, 0.125}
