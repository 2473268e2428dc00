"""Shared fixtures. ``shared_measurements`` skips cleanly where the extra data set is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FERROCIM_SHARED", ROOT.parent / "shared"))
SHARED_MEASUREMENTS = SHARED / "measurements" / "lbe247-2024-10-24"
BUNDLED_MEASUREMENTS = ROOT / "measurements"

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


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
