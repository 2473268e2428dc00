"""The paper's method, unchanged, learns the embedded synthetic data (issue 22).

The published settings (surrogate ``0.3·1[|v−θ|<0.3]``, dropout 0.3, global normalisation,
Adam 1e-4 with cosine annealing, batch 64, 20 epochs) on a quarter-width float network
(16/32/64 channels, 64 hidden; ``network.width = 0.25``) and 20 synthetic subjects, fold 0:
tested on subjects 1-4, which it never saw (cross-subject, 180 trials; chance 50 %, one
s.d. 3.7 points). Measured here (seed 0; ``ferrocim train float --width 0.25 --subjects
20``): validation 67.1 % after epoch 1, 74.8 % best, 69.4 % test (README "Status" has the
other seeds: 65.6 % and 68.9 % test). Training accuracy stays near 50 % because it is
measured under the per-sequence dropout masks.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ferrocim.pipelines.config import load_config
from ferrocim.pipelines.train import train

LEARNING_RUN = {"data.n_subjects": 20, "network.width": 0.25}  # everything else: the paper's


@pytest.mark.slow
def test_quarter_width_network_learns_synthetic_data_with_the_paper_method(
    data_dir: Path, tmp_path: Path
) -> None:
    cfg = load_config(None, {**LEARNING_RUN, "data.cache_dir": str(data_dir)}, kind="float")
    assert (cfg.network.dropout, cfg.network.surrogate_window, cfg.train.lr) == (0.3, 0.3, 1e-4)
    assert (cfg.train.batch_size, cfg.train.lr_schedule, cfg.data.normalization) == (
        64,
        "cosine",
        "global",
    )
    run = train(cfg, run_dir=tmp_path / "learn")
    summary = run.read_summary()
    metrics = pd.read_csv(run.metrics)
    assert summary.test_subjects == [1, 2, 3, 4]
    assert summary.test_acc >= 62.0, summary  # 69.4 % measured (seed 0)
    assert metrics["val_acc"].max() >= 65.0  # 74.8 % measured
