"""Tiny configurations shared by the pipeline tests (one synthetic data set per session)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ferrocim.pipelines.config import RunConfig, load_config


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("eeg-cache")


@pytest.fixture(scope="session")
def tiny(data_dir: Path):
    """``tiny(kind, **overrides)`` → a RunConfig small enough for a seconds-long run."""

    def make(kind: str, **over: Any) -> RunConfig:
        base = {
            "data.n_subjects": 3,
            "data.n_folds": 3,
            "data.cache_dir": str(data_dir),
            "data.max_train_trials": 8,
            "data.max_eval_trials": 6,
            "train.batch_size": 4,
            "train.eval_batch_size": 8,
            "train.epochs": 1,
            "train.lr": 0.01,
            "array.programming.eps": 0.01,
        }
        base.update({k.replace("__", "."): v for k, v in over.items()})
        return load_config(None, base, kind=kind)

    return make
