"""Synthetic EEGMMIDB files shared by the data tests (written once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferrocim.snn.data import prepare_eegmmidb, synthesize_edf


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three synthetic subjects (S001-S003), all 14 runs, PhysioNet layout, seed 0. Do not
    modify."""
    return synthesize_edf(tmp_path_factory.mktemp("eegmmidb") / "physionet", 3, seed=0)


@pytest.fixture(scope="session")
def prepared_h5(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The prepared cache of :func:`synthetic_root` (published global statistics over all
    14 runs). Do not modify."""
    h5 = tmp_path_factory.mktemp("cache") / "syn.h5"
    return prepare_eegmmidb(synthetic_root, h5)
