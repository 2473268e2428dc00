"""Subject-specific transfer learning (SSTL) on device.

For each test subject of the pooled model's fold: split the subject's trials into
``sstl.folds`` stratified folds; for each fold start again from the pooled model on
tiles, retrain ``sstl.layers`` (fc1 and fc2 by default) online (batch 1) with pulse
updates, and record test accuracy before and after. The frozen prefix of the network
is computed once per subject in eval mode (no dropout in frozen layers) and reused by
every update; ``sstl.frozen_dropout`` keeps dropout in frozen layers as the published
code does, which turns that cache off.

Taken from the base run (:mod:`ferrocim.pipelines.runs`): the network width and the data
section; from a device or re-tuned base also its card, tile geometry, reference, device
spread and endurance (the devices are loaded from its tiles, with their own card.json).
The SSTL config may override the rest of ``network`` and ``array`` (the programming rule
above all: the paper's SSTL programs fc1 + fc2 on device, so ``array.programming.eps``
applies); ``transfer`` applies only to a float base run.

Data: by default the base run's; its fold's test subjects are personalised. Other data
(``--data FILE.h5``, e.g. a new subject normalised with ``data prepare``), or the data an
imported checkpoint was given, are explicit: the swap is logged and recorded in
``RUN/data.json``, there is no base fold on them, and the subjects are ``sstl.subjects``
(default: every subject in the file), each split into its own stratified
``sstl.folds``-fold cross-validation as published.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import os
import time
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ferrocim.calibration.card import DeviceCard
from ferrocim.checks import InputError
from ferrocim.logs import progress
from ferrocim.pipelines.checkpoint import load_checkpoint
from ferrocim.pipelines.config import DataConfig, RunConfig, load_config
from ferrocim.pipelines.data import data_identity, fold_split, load_dataset, to_tensors
from ferrocim.pipelines.optim import param_groups
from ferrocim.pipelines.prefix import InputForward, PrefixForward, make_forward, split_layer
from ferrocim.pipelines.retune import load_float_model, set_trainable, transfer_to_tiles
from ferrocim.pipelines.rundir import EventRow, RunDir, RunSummary, SSTLRow, programming_totals
from ferrocim.pipelines.runs import (
    build_model,
    data_record,
    explicit_fields,
    inherit_from_base,
    one_writer,
    open_run,
    resolve_device,
    run_data,
    session_wall_s,
    trained_on_own_data,
)
from ferrocim.pipelines.seeding import numpy_generator, torch_generator
from ferrocim.pipelines.training import evaluate, step_stats_rows
from ferrocim.threads import single_thread

log = logging.getLogger(__name__)


def _given_data(cfg: RunConfig, base_cfg: RunConfig) -> DataConfig | None:
    """The base run's data with the fields the SSTL config sets explicitly (``--data``,
    ``--set data.…``) on top, or None when it sets none."""
    explicit = {k[5:]: v for k, v in explicit_fields(cfg).items() if k.startswith("data.")}
    if not explicit:
        return None
    return DataConfig.model_validate({**base_cfg.data.model_dump(), **explicit})


def base_config(base: RunDir) -> RunConfig:
    """The config of an SSTL base run (float, device or retune)."""
    base_cfg = load_config(base.require("base run directory (--base-run, sstl.base_run)").config)
    if base_cfg.kind not in ("float", "device", "retune"):
        raise InputError(
            f"sstl.base_run must be a float, device or retune run, got {base_cfg.kind}"
        )
    return base_cfg


def pooled_model(
    base: RunDir, cfg: RunConfig, card: DeviceCard, device: torch.device
) -> torch.nn.Module:
    """The base run's best model on tiles of ``card`` with ``cfg.array`` (a float base is
    transferred with ``cfg.transfer``; a device base's tile state is loaded)."""
    model = build_model(cfg, analog=True, card=card)
    if base_config(base).kind == "float":
        float_model = load_float_model(base.path, device)
        transfer_to_tiles(float_model, model, q=cfg.transfer.q, x=cfg.transfer.x, seed=cfg.seed)
        return model
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
) -> list[EventRow]:
    """Online on-device training of ``sstl.layers`` on one fold; returns event rows."""
    from ferrocim.crossbar import PulseOptimizer

    set_trainable(model, cfg.sstl.layers)
    inner = torch.optim.Adam(param_groups(model, cfg.sstl.lr, scaling=cfg.sstl.lr_scaling))
    opt = PulseOptimizer(inner, model)
    device = forward.y.device
    phase = f"sstl:{subject}:{fold}"
    events: list[EventRow] = []
    step = 0
    model.train()
    # online (batch 1) updates are too small to split among threads: one is faster
    with single_thread() if cfg.sstl.batch_size == 1 else contextlib.nullcontext():
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


@one_writer("sstl")
def sstl(
    cfg: RunConfig, *, run_dir: str | os.PathLike[str] | None = None, resume: bool = False
) -> RunDir:
    """Run SSTL for the configured subjects; writes ``sstl.csv`` and ``summary.json``."""
    from ferrocim.snn.data import sstl_folds

    started = time.perf_counter()
    card = None
    record = None
    if not resume:
        if cfg.sstl.base_run is None:
            raise InputError("sstl.base_run (--base-run) must name a finished float/device run")
        base = RunDir(cfg.sstl.base_run)
        base_cfg = base_config(base)
        given = _given_data(cfg, base_cfg)
        data, other = run_data(base, base_cfg, given, what="personalising")
        if not other:  # the base fold's test subjects: only the channel exclusion may change
            for key, value in explicit_fields(cfg).items():
                name = key.removeprefix("data.")
                if key.startswith("data.") and name != "exclude_channels":
                    if value != getattr(base_cfg.data, name):
                        raise InputError(
                            f"{key} = {value!r} cannot differ from the base run's "
                            f"{getattr(base_cfg.data, name)!r}: SSTL on the base run's data "
                            "personalises its fold's test subjects; other data are given "
                            "with --data FILE.h5"
                        )
            data = base_cfg.data.model_copy(
                update={"exclude_channels": list(data.exclude_channels)}
            )
        cfg = inherit_from_base(cfg.model_copy(update={"data": base_cfg.data}), base_cfg, "SSTL")
        cfg = cfg.model_copy(update={"data": data})
        card = None if base_cfg.kind == "float" else base.read_card()
        record = data_record(
            cfg,
            trained_on=True,
            base_run=str(base.path),
            base_run_data=data_identity(base_cfg.data),
            other_than_base=other,
        )
    plan: dict[str, Any] = {}

    def check(cfg: RunConfig) -> None:  # data and subjects known valid before any write
        base = RunDir(cfg.sstl.base_run)
        base_cfg = base_config(base)
        other = data_identity(cfg.data) != data_identity(base_cfg.data) or not trained_on_own_data(
            base
        )
        ds = load_dataset(cfg.data)
        if other:  # no base fold on these data: every subject in them, or the chosen ones
            subjects = cfg.sstl.subjects or [int(s) for s in np.unique(ds.subject)]
        else:
            split = fold_split(ds, cfg.data, base_cfg.seed)  # the base run's test subjects
            subjects = cfg.sstl.subjects or [int(s) for s in split.test_subjects]
        unknown = sorted(set(subjects) - {int(s) for s in np.unique(ds.subject)})
        if unknown:
            raise InputError(f"sstl.subjects {unknown} are not in the data set")
        plan.update(base=base, ds=ds, subjects=subjects)

    run, cfg = open_run(cfg, run_dir=run_dir, resume=resume, card=card, data=record, check=check)
    device = resolve_device(cfg.device)
    base, ds, subjects = plan["base"], plan["ds"], plan["subjects"]
    data = to_tensors(ds, device)
    model = pooled_model(base, cfg, run.read_card(), device)
    pooled_state = copy.deepcopy(model.state_dict())

    rows: list[SSTLRow] = run.read_sstl() if resume else []
    finished = {(int(r.subject), int(r.fold)) for r in rows}
    if resume:
        log.info(
            "resuming SSTL in %s: %d (subject, fold) pair(s) of %d subject(s) done; a fold "
            "that was under way starts over",
            run.path,
            len(finished),
            len(subjects),
        )
    if resume and run.events.exists():  # keep the events of finished folds only
        run.keep_events(run.read_events()["phase"].isin([f"sstl:{s}:{f}" for s, f in finished]))
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
            totals = programming_totals(events)
            row = SSTLRow(
                subject=subject,
                fold=f,
                n_train=len(tr),
                n_test=len(te),
                acc_before=before,
                acc_after=after,
                ltp_pulses=totals.ltp_pulses,
                ltd_pulses=totals.ltd_pulses,
                ltp_crossings=totals.ltp_crossings,
                ltd_crossings=totals.ltd_crossings,
            )
            run.append_events(events)
            rows.append(row)
            run.write_sstl(rows)
    table = pd.DataFrame([dataclasses.asdict(r) for r in rows])
    per_subject = table.groupby("subject")[["acc_before", "acc_after"]].mean()
    summary = RunSummary(
        kind="sstl",
        base_run=str(base.path),
        subjects=[int(s) for s in per_subject.index],
        acc_before=float(per_subject["acc_before"].mean()),
        acc_after=float(per_subject["acc_after"].mean()),
        gain=float((per_subject["acc_after"] - per_subject["acc_before"]).mean()),
        cached_prefix=None if cfg.sstl.frozen_dropout else split_layer(cfg.sstl.layers),
        wall_s=session_wall_s(run, started),
        **programming_totals(table).as_dict(),
    )
    run.write_summary(summary)
    return run
