"""The network learns the embedded synthetic data (issue 5: "well above chance").

A quarter-width float network (16/32/64 channels, 64 hidden; ``network.width = 0.25``)
trained by the real pipeline on 10 synthetic subjects (fold 0: tested on subjects 1 and 2,
which it never saw: cross-subject). Chance is 50 %; on 90 test trials 65 % is 2.8 standard
deviations above it. Measured here (unit-area surrogate ±0.5 / height 1, per-run
normalisation, 30 epochs): 80.0 % test accuracy, last-three-epoch train loss 0.495 (about
1 min on 2 cores; 77.8 % and 0.507 before conv1 ran channels-last). The network first
sits at chance (loss log 2) for 10-20 epochs; the narrower ±0.15 / 1/0.3 surrogate left
that plateau after 10 or 25 epochs depending on float rounding of the convolutions (0.662
at 30 epochs), the wider one after 16-18. An
oracle logistic regression on the two class features reaches 82 % pooled.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ferrocim.pipelines.config import load_config
from ferrocim.pipelines.train import train

LEARNING_RUN = {
    "data.n_subjects": 10,
    "network.width": 0.25,
    "network.dropout": 0.0,
    "train.lr": 3e-4,
    "train.batch_size": 32,
    "train.lr_schedule": "constant",  # the demo's settings (the paper anneals: cosine)
    "train.epochs": 30,
    # ferrocim's options the demo uses: with the published surrogate and global
    # normalisation this network stays at chance on the synthetic data (measured)
    "network.surrogate_window": 0.5,
    "network.surrogate_height": 1.0,
    "data.normalization": "per_run",
}


@pytest.mark.slow
def test_small_float_network_learns_synthetic_data(data_dir: Path, tmp_path: Path) -> None:
    cfg = load_config(None, {**LEARNING_RUN, "data.cache_dir": str(data_dir)}, kind="float")
    run = train(cfg, run_dir=tmp_path / "learn")
    summary = run.read_summary()
    metrics = pd.read_csv(run.metrics)
    assert summary.test_subjects == [1, 2]
    assert summary.test_acc >= 65.0, summary
    # the training loss falls well below log(2) = 0.693 (it starts there)
    assert metrics["train_loss"].iloc[0] > 0.68
    assert metrics["train_loss"].iloc[-3:].mean() < 0.60  # 0.495 measured (30 epochs)
    assert metrics["val_acc"].max() >= 62.0
