"""The defaults and the shipped configs are the published hyper-parameters."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from ferrocim.pipelines.config import RunConfig, load_config
from ferrocim.pipelines.training import cosine_lr

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_defaults_are_the_published_settings() -> None:
    cfg = RunConfig()
    assert cfg.network.dropout == 0.3 and cfg.network.w_max_rule == "paper"
    assert cfg.train.lr == 1e-4 and cfg.train.batch_size == 64 and cfg.train.epochs == 20
    assert cfg.train.lr_schedule == "cosine"
    assert (cfg.train.cosine_t_max, cfg.train.cosine_eta_min) == (20, 1e-5)
    prog = cfg.array.programming
    assert prog.eps == 0.025 and not prog.state_clamp and prog.q is None
    assert cfg.data.normalization == "global" and cfg.data.val_fraction == 0.2
    assert (cfg.sstl.lr, cfg.sstl.batch_size, cfg.sstl.epochs) == (6e-4, 1, 5)
    assert cfg.sstl.layers == ["fc1", "fc2"]


@pytest.mark.parametrize("kind", ["float", "device", "retune", "sstl"])
def test_shipped_paper_configs_load(kind: str) -> None:
    cfg = load_config(CONFIGS / f"paper_{kind}.toml")
    assert cfg.kind == kind
    if kind != "sstl":
        assert cfg.network.dropout == 0.3 and cfg.train.lr == 1e-4
        assert cfg.train.batch_size == 64
    if kind == "retune":
        assert (cfg.train.epochs, cfg.transfer.q, cfg.array.programming.q) == (4, 2, None)


def test_cosine_schedule_is_torch_cosine_annealing() -> None:
    lr = cosine_lr(20, 1e-5)
    # hand-computed: start, half-way (1e-5 + 9e-5 / 2), end of the half-period
    assert lr(1e-4, 0) == 1e-4
    assert lr(1e-4, 10) == pytest.approx(5.5e-5, rel=1e-12)
    assert lr(1e-4, 20) == pytest.approx(1e-5, rel=1e-12)
    opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=20, eta_min=1e-5)
    for epoch in range(25):
        assert math.isclose(opt.param_groups[0]["lr"], lr(1e-4, epoch), rel_tol=1e-9)
        opt.step()
        sched.step()
