"""Fixtures of the calibration tests (helpers live in calibration_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from calibration_helpers import BUNDLED_170, FILE_170_0


@pytest.fixture()
def b1500_copy(tmp_path: Path, bundled_measurements: Path) -> Path:
    """A writable copy of a real B1500 repetition file."""
    src = bundled_measurements / BUNDLED_170 / FILE_170_0
    dst = tmp_path / "b1500.csv"
    dst.write_bytes(src.read_bytes())
    return dst
