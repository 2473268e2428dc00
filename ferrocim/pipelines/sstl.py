"""Subject-specific transfer learning (SSTL) on device.

For each test subject of the pooled model's fold: split the subject's trials into
``sstl.folds`` stratified folds; for each fold start again from the pooled model on
tiles, retrain ``sstl.layers`` (fc1 and fc2 by default) online (batch 1) with pulse
updates, and record test accuracy before and after. The frozen prefix of the network
is computed once per subject in eval mode (no dropout in frozen layers) and reused by
every update; ``sstl.frozen_dropout`` keeps dropout in frozen layers as the published
code does, which turns that cache off.
"""

from __future__ import annotations

import copy
import os
import time
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ferrocim.atomic import atomic_path
from ferrocim.checks import InputError
from ferrocim.logs import progress
from ferrocim.pipelines.checkpoint import load_checkpoint
from ferrocim.pipelines.config import RunConfig, load_config
from ferrocim.pipelines.data import fold_split, load_dataset, to_tensors
from ferrocim.pipelines.optim import param_groups
from ferrocim.pipelines.prefix import InputForward, PrefixForward, make_forward, split_layer
from ferrocim.pipelines.retune import load_float_model, set_trainable, transfer_to_tiles
from ferrocim.pipelines.rundir import RunDir
from ferrocim.pipelines.runs import build_model, inherit_network, open_run, resolve_device
from ferrocim.pipelines.seeding import numpy_generator, torch_generator
from ferrocim.pipelines.training import evaluate, step_stats_rows

COUNT_FIELDS = ("ltp_pulses", "ltd_pulses", "ltp_crossings", "ltd_crossings")


def pooled_model(base: RunDir, cfg: RunConfig, device: torch.device) -> torch.nn.Module:
    """The base run's best model on tiles (a float base is transferred with q, x)."""
    base_cfg = load_config(base.config)
    if base_cfg.kind == "float":
        model = build_model(cfg, analog=True)
        transfer_to_tiles(
            load_float_model(base.path, device), model, q=cfg.array.q, x=cfg.array.x, seed=cfg.seed
        )
        return model
    if base_cfg.kind not in ("device", "retune"):
        raise InputError(
            f"sstl.base_run must be a float, device or retune run, got {base_cfg.kind}"
        )
    model = build_model(base_cfg.model_copy(update={"device": str(device)}), analog=True)
    model.load_state_dict(load_checkpoint(base.best_checkpoint, str(device))["model"])
    return model


def accuracy(forward: InputForward | PrefixForward, idx: np.ndarray) -> float:
    """Accuracy (%) of ``forward`` on the subject's trials ``idx``, in eval mode."""
    return float(evaluate(forward, idx, batch_size=max(len(idx), 1))["acc"])


def adapt_fold(
    model: torch.nn.Module,
    forward: InputForward | PrefixForward,
    train_idx: np.ndarray,
    cfg: RunConfig,
    *,
    subject: int,
    fold: int,
) -> list[dict[str, Any]]:
    """Online on-device training of ``sstl.layers`` on one fold; returns event rows."""
    from ferrocim.crossbar import PulseOptimizer

    set_trainable(model, cfg.sstl.layers)
    inner = torch.optim.Adam(param_groups(model, cfg.sstl.lr, scaling=cfg.sstl.lr_scaling))
    opt = PulseOptimizer(inner, model)
    device = forward.y.device
    phase = f"sstl:{subject}:{fold}"
    events: list[dict[str, Any]] = []
    step = 0
    model.train()
    for epoch in range(cfg.sstl.epochs):
        g = torch_generator(cfg.seed, "sstl-shuffle", subject, fold, epoch)
        order = train_idx[torch.randperm(len(train_idx), generator=g).numpy()]
        for s in range(0, len(order), cfg.sstl.batch_size):
            bi = torch.as_tensor(order[s : s + cfg.sstl.batch_size], device=device)
            opt.zero_grad(set_to_none=True)
            gd = torch_generator(cfg.seed, "sstl-dropout", subject, fold, step, device=device)
            F.cross_entropy(forward(bi, gd), forward.y[bi]).backward()
            events += step_stats_rows(opt.step(), step=step, epoch=epoch, phase=phase)
            step += 1
    return events


def sstl(
    cfg: RunConfig, *, run_dir: str | os.PathLike[str] | None = None, resume: bool = False
) -> RunDir:
    """Run SSTL for the configured subjects; writes ``sstl.csv`` and ``summary.json``."""
    from ferrocim.snn.data import sstl_folds

    started = time.perf_counter()
    if cfg.sstl.base_run is None and not resume:
        raise InputError("sstl.base_run (--base-run) must name a finished float/device run")
    if not resume:
        cfg = inherit_network(cfg, cfg.sstl.base_run)
    run, cfg = open_run(cfg, run_dir=run_dir, resume=resume)
    device = resolve_device(cfg.device)
    base = RunDir(cfg.sstl.base_run).require("base run")
    base_cfg = load_config(base.config)
    ds = load_dataset(base_cfg.data)
    split = fold_split(ds, base_cfg.data, base_cfg.seed)
    subjects = cfg.sstl.subjects or [int(s) for s in split.test_subjects]
    unknown = sorted(set(subjects) - {int(s) for s in np.unique(ds.subject)})
    if unknown:
        raise InputError(f"sstl.subjects {unknown} are not in the data set")
    data = to_tensors(ds, device)
    model = pooled_model(base, cfg, device)
    pooled_state = copy.deepcopy(model.state_dict())

    rows: list[dict[str, Any]] = []
    if resume and run.sstl.exists():
        rows = pd.read_csv(run.sstl).to_dict("records")
    finished = {(int(r["subject"]), int(r["fold"])) for r in rows}
    if resume and run.events.exists():  # keep the events of finished folds only
        ev = run.read_events()
        keep = ev["phase"].isin([f"sstl:{s}:{f}" for s, f in finished])
        with atomic_path(run.events) as tmp:
            ev[keep].to_csv(tmp, index=False)
    for subject in progress(subjects, desc="SSTL subjects", unit="subject"):
        sidx = np.nonzero(ds.subject == subject)[0]
        folds = sstl_folds(
            ds.y[sidx], k=cfg.sstl.folds, rng=numpy_generator(cfg.seed, "sstl", subject)
        )
        model.load_state_dict(pooled_state)
        bi = torch.as_tensor(sidx, device=device)
        forward = make_forward(
            model,
            data.x[bi],
            data.y[bi],
            trained=cfg.sstl.layers,
            frozen_dropout=cfg.sstl.frozen_dropout,
            batch=cfg.train.eval_batch_size,
        )
        for f, (tr, te) in enumerate(folds):
            if (subject, f) in finished:
                continue
            model.load_state_dict(pooled_state)
            before = accuracy(forward, te)
            events = adapt_fold(model, forward, tr, cfg, subject=subject, fold=f)
            after = accuracy(forward, te)
            totals = {k: sum(int(e[k]) for e in events) for k in COUNT_FIELDS}
            row = {
                "subject": subject,
                "fold": f,
                "n_train": len(tr),
                "n_test": len(te),
                "acc_before": before,
                "acc_after": after,
                **totals,
            }
            run.append_events(events)
            rows.append(row)
            with atomic_path(run.sstl) as tmp:
                pd.DataFrame(rows).to_csv(tmp, index=False)
    table = pd.DataFrame(rows)
    per_subject = table.groupby("subject")[["acc_before", "acc_after"]].mean()
    summary = {
        "kind": "sstl",
        "base_run": str(base.path),
        "subjects": [int(s) for s in per_subject.index],
        "acc_before": float(per_subject["acc_before"].mean()),
        "acc_after": float(per_subject["acc_after"].mean()),
        "gain": float((per_subject["acc_after"] - per_subject["acc_before"]).mean()),
        "pulses": int(table["ltp_pulses"].sum() + table["ltd_pulses"].sum()),
        "programming_events": int(table["ltp_crossings"].sum() + table["ltd_crossings"].sum()),
        "cached_prefix": None if cfg.sstl.frozen_dropout else split_layer(cfg.sstl.layers),
        "wall_s": time.perf_counter() - started,
    }
    run.write_summary(summary)
    return run
