"""Shared fixtures. ``shared_measurements`` skips cleanly where the extra data set is absent."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from ferrocim.snn import EEGSNN

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FERROCIM_SHARED", ROOT.parent / "shared"))
SHARED_MEASUREMENTS = SHARED / "measurements" / "lbe247-2024-10-24"
BUNDLED_MEASUREMENTS = ROOT / "measurements"

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
# the default thread count follows the machine's load (ferrocim.threads), and the count
# moves rounding: runs compared within a test get the same count (subprocesses too)
os.environ.setdefault("OMP_NUM_THREADS", str(torch.get_num_threads()))


@pytest.fixture(scope="session")
def shared_measurements() -> Path:
    """Extra real B1500 files outside the repository (``$FERROCIM_SHARED``; skips when absent)."""
    if not SHARED_MEASUREMENTS.is_dir():
        pytest.skip(f"shared measurements not found at {SHARED_MEASUREMENTS}")
    return SHARED_MEASUREMENTS


@pytest.fixture(scope="session")
def bundled_measurements() -> Path:
    """The measurements shipped inside the project."""
    return BUNDLED_MEASUREMENTS


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


def published_state(model: EEGSNN) -> dict[str, torch.Tensor]:
    """``model`` in the published WrapCUBASpikingCNN state_dict layout (written here, from
    the published ``snn.py``, independently of ``ferrocim.snn.interop``)."""
    sd: dict[str, torch.Tensor] = {}
    syn = {
        "conv1.psp_func": model.conv1.synapse, "conv2.psp_func": model.conv2.synapse,
        "conv3.psp_func": model.conv3.synapse, "rec1.rec_func": model.r1.recurrent,
        "fc1.psp_func": model.fc1.synapse,
        # published psp_func_list[j] acts on step t - 2 + j: list entry 2 is the current step
        "temp_conv1.psp_func_list.0": model.tc1.taps[2],
        "temp_conv1.psp_func_list.1": model.tc1.taps[1],
        "temp_conv1.psp_func_list.2": model.tc1.taps[0],
    }  # fmt: skip
    for key, layer in syn.items():
        sd[f"snn.{key}.weight"] = layer.weight.detach().clone()
        sd[f"snn.{key}.bias"] = layer.bias.detach().clone()
    sd["snn.fc2.weight"] = model.fc2.synapse.weight.detach().clone()
    sd["snn.ts_weights"] = model.fc2.ts_weight.detach().clone()
    for short, sub, layer in (
        ("c1", "conv1", "conv1"), ("c2", "conv2", "conv2"), ("c3", "conv3", "conv3"),
        ("tc1", "temp_conv1", "tc1"), ("r1", "rec1", "r1"), ("f1", "fc1", "fc1"),
    ):  # fmt: skip
        neuron = getattr(model, layer).neuron
        for kind, p in (("cdecay", neuron.beta), ("vdecay", neuron.gamma)):
            sd[f"snn.{short}_{kind}"] = p.detach()[None].clone()  # stored twice, as published
            sd[f"snn.{sub}.{kind}"] = sd[f"snn.{short}_{kind}"]
    return sd


@pytest.fixture(scope="session")
def eeg_ferro_state() -> Callable[[EEGSNN], dict[str, torch.Tensor]]:
    """``eeg_ferro_state(model)``: the model's parameters in the published key layout."""
    return published_state
