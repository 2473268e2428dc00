"""The training loop shared by the float, on-device and re-tuning pipelines.

``fit`` trains for the configured epochs with per-epoch validation, keeps the best
model by validation accuracy, checkpoints (per epoch and optionally every N steps) and
resumes from the last checkpoint to exactly the state an uninterrupted run reaches:
shuffling and dropout masks are drawn from streams derived from (seed, epoch/step)
(:mod:`ferrocim.pipelines.seeding`), and the analog layers' noise generators travel in
the model's ``state_dict``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ferrocim.checks import InputError
from ferrocim.logs import progress
from ferrocim.pipelines.checkpoint import load_checkpoint, save_checkpoint
from ferrocim.pipelines.prefix import InputForward, PrefixForward
from ferrocim.pipelines.rundir import EventRow, RunDir
from ferrocim.pipelines.seeding import torch_generator

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tensors:
    """A data set held as tensors on the compute device: x (N,1,10,11,T), y (N,)."""

    x: torch.Tensor
    y: torch.Tensor
    subject: torch.Tensor


def minibatches(
    indices: np.ndarray, batch_size: int, generator: torch.Generator | None
) -> Iterator[np.ndarray]:
    """Yield index batches in a random order (``generator``) or in order (None)."""
    idx = np.asarray(indices)
    if generator is not None:
        idx = idx[torch.randperm(len(idx), generator=generator).numpy()]
    for s in range(0, len(idx), batch_size):
        yield idx[s : s + batch_size]


@torch.no_grad()
def evaluate(
    forward: InputForward | PrefixForward,
    indices: np.ndarray,
    *,
    batch_size: int = 128,
) -> dict[str, float]:
    """Mean cross-entropy and accuracy (%) of ``forward.model`` in eval mode on ``indices``."""
    model = forward.model
    was_training = model.training
    model.eval()
    loss_sum, correct, n = 0.0, 0, 0
    for b in minibatches(indices, batch_size, None):
        bi = torch.as_tensor(b, device=forward.y.device)
        logits = forward(bi)
        yb = forward.y[bi]
        loss_sum += float(F.cross_entropy(logits, yb, reduction="sum"))
        correct += int((logits.argmax(1) == yb).sum())
        n += len(b)
    model.train(was_training)
    if n == 0:
        return {"loss": float("nan"), "acc": float("nan"), "n": 0}
    return {"loss": loss_sum / n, "acc": 100.0 * correct / n, "n": n}


def step_stats_rows(stats: Any, *, step: int, epoch: int, phase: str) -> list[EventRow]:
    """Event-log rows (one per layer) from a PulseOptimizer's StepStats; [] for None."""
    if stats is None:
        return []
    return [
        EventRow(
            step=step,
            epoch=epoch,
            phase=phase,
            layer=layer,
            ltp_pulses=int(stats.ltp_pulses[layer]),
            ltd_pulses=int(stats.ltd_pulses[layer]),
            ltp_crossings=int(stats.ltp_crossings[layer]),
            ltd_crossings=int(stats.ltd_crossings[layer]),
        )
        for layer in stats.ltp_pulses
    ]


def epoch_line(row: dict[str, Any], epochs: int, *, pulses: int | None = None) -> str:
    """The line logged after each epoch: losses, accuracies (%), pulses, seconds."""
    text = (
        f"{row['phase']} epoch {row['epoch']}/{epochs}: loss {row['train_loss']:.4f}, "
        f"acc {row['train_acc']:.2f} %, val acc {row['val_acc']:.2f} %"
    )
    if pulses is not None:
        text += f", pulses {pulses:,}"
    return text + f" ({row['wall_s']:.1f} s)"


def checkpoint_position(ck: dict[str, Any], epochs: int) -> str:
    """Where a checkpoint of :func:`fit` continues: ``epoch 3/20, after batch 12 (step
    52)``, ``the start of epoch 4/20 (step 60)`` or the end of training."""
    epoch, batch, step = int(ck["epoch"]), int(ck["batch"]), int(ck["step"])
    if epoch >= epochs:
        return f"the end of training (epoch {epoch}/{epochs} done, step {step}): the test"
    if batch == 0:
        return f"the start of epoch {epoch + 1}/{epochs} (step {step})"
    return f"epoch {epoch + 1}/{epochs}, after batch {batch} (step {step})"


@dataclass
class FitResult:
    """What :func:`fit` returns: per-epoch metrics rows and the best epoch."""

    metrics: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = -1
    best_val_acc: float = float("-inf")
    steps: int = 0


def cosine_lr(t_max: int, eta_min: float) -> Callable[[float, int], float]:
    """The published schedule (``torch.optim.lr_scheduler.CosineAnnealingLR`` stepped once
    per epoch, closed form): ``eta_min + (base - eta_min) (1 + cos(pi epoch / t_max)) / 2``."""

    def lr(base: float, epoch: int) -> float:
        return eta_min + (base - eta_min) * (1.0 + math.cos(math.pi * epoch / t_max)) / 2.0

    return lr


def fit(
    optimizer: Any,
    forward: InputForward | PrefixForward,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    *,
    run: RunDir,
    phase: str,
    epochs: int,
    batch_size: int,
    seed: int,
    eval_batch_size: int = 128,
    checkpoint_every: int = 0,
    resume: bool = False,
    on_epoch_end: Callable[[int], dict[str, Any]] | None = None,
    stop_after_steps: int | None = None,
    lr_at_epoch: Callable[[float, int], float] | None = None,
) -> FitResult:
    """Train ``forward.model`` with ``optimizer`` (a torch optimiser or a PulseOptimizer).

    ``forward`` runs the network on trial indices (from the input, or from a cached
    frozen prefix: :mod:`ferrocim.pipelines.prefix`). ``optimizer.step()`` may return
    programming statistics (PulseOptimizer); they go
    to the run's event log. ``stop_after_steps`` ends the call early (as a kill would),
    for resume tests. Checkpoints: ``checkpoints/last.pt`` at every epoch end and every
    ``checkpoint_every`` steps, ``checkpoints/best.pt`` at each new best validation
    accuracy. ``lr_at_epoch(base_lr, epoch)`` (optional) sets every parameter group's
    learning rate at the start of each epoch from its initial one (a function of the epoch
    only, so resuming reaches the same rates).
    """
    model, device = forward.model, forward.y.device
    result = FitResult()
    start_epoch, start_batch = 0, 0
    partial = {"loss_sum": 0.0, "correct": 0, "n": 0}
    step = 0
    if resume and run.last_checkpoint.exists():
        ck = load_checkpoint(run.last_checkpoint, map_location=str(device))
        if ck.get("phase") == phase:
            model.load_state_dict(ck["model"])
            optimizer.load_state_dict(ck["optimizer"])
            start_epoch, start_batch, step = ck["epoch"], ck["batch"], ck["step"]
            partial = dict(ck["partial"])
            result.metrics = list(ck["metrics"])
            result.best_epoch, result.best_val_acc = ck["best_epoch"], ck["best_val_acc"]
            log.info("resuming %s in %s from %s", phase, run.path, checkpoint_position(ck, epochs))
        else:
            log.info("resuming %s in %s: no checkpoint of it yet, from epoch 1", phase, run.path)
    elif resume:
        log.info("resuming %s in %s: no checkpoint yet, from epoch 1", phase, run.path)
    if resume:  # drop the events a killed run logged after its checkpoint (steps ≥ step)
        run.truncate_events(step - 1, phase=phase)

    def checkpoint(epoch: int, batch: int) -> None:
        save_checkpoint(
            run.last_checkpoint,
            {
                "phase": phase,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "epoch": epoch,
                "batch": batch,
                "step": step,
                "partial": partial,
                "metrics": result.metrics,
                "best_epoch": result.best_epoch,
                "best_val_acc": result.best_val_acc,
            },
        )

    pulsed = False  # does the optimiser program an array (returns statistics)?
    base_lrs = [g.setdefault("initial_lr", g["lr"]) for g in optimizer.param_groups]
    for epoch in range(start_epoch, epochs):
        t0 = time.perf_counter()
        if lr_at_epoch is not None:
            for g, base in zip(optimizer.param_groups, base_lrs, strict=True):
                g["lr"] = lr_at_epoch(base, epoch)
        model.train()
        order = list(minibatches(train_idx, batch_size, torch_generator(seed, "shuffle", epoch)))
        bar = progress(
            total=len(order),
            initial=start_batch,
            desc=f"{phase} epoch {epoch + 1}/{epochs}",
            leave=False,
            unit="batch",
        )
        for bnum in range(start_batch, len(order)):
            bi = torch.as_tensor(order[bnum], device=device)
            yb = forward.y[bi]
            optimizer.zero_grad(set_to_none=True)
            logits = forward(bi, torch_generator(seed, "dropout", step, device=device))
            loss = F.cross_entropy(logits, yb)
            loss_value = float(loss.detach())
            if not math.isfinite(loss_value):  # stop before the step spoils the weights
                raise InputError(
                    f"{phase} training diverged at epoch {epoch + 1}, step {step}: the loss is "
                    f"{loss_value}; lower the learning rate (train.lr) and start afresh"
                )
            loss.backward()
            stats = optimizer.step()
            pulsed = pulsed or stats is not None
            rows = step_stats_rows(stats, step=step, epoch=epoch, phase=phase)
            if rows:
                run.append_events(rows)
                partial["pulses"] = partial.get("pulses", 0) + sum(
                    r.ltp_pulses + r.ltd_pulses for r in rows
                )
            partial["loss_sum"] += loss_value * len(yb)
            partial["correct"] += int((logits.detach().argmax(1) == yb).sum())
            partial["n"] += len(yb)
            step += 1
            bar.update(1)
            if checkpoint_every and step % checkpoint_every == 0:
                checkpoint(epoch, bnum + 1)
            if stop_after_steps is not None and step >= stop_after_steps:
                bar.close()
                checkpoint(epoch, bnum + 1)
                result.steps = step
                return result
        bar.close()
        start_batch = 0
        val = evaluate(forward, val_idx, batch_size=eval_batch_size)
        row = {
            "phase": phase,
            "epoch": epoch + 1,
            "step": step,
            "train_loss": partial["loss_sum"] / max(partial["n"], 1),
            "train_acc": 100.0 * partial["correct"] / max(partial["n"], 1),
            "val_loss": val["loss"],
            "val_acc": val["acc"],
            "wall_s": time.perf_counter() - t0,
        }
        if on_epoch_end is not None:
            row.update(on_epoch_end(epoch))
        result.metrics.append(row)
        log.info(epoch_line(row, epochs, pulses=partial.get("pulses", 0) if pulsed else None))
        partial = {"loss_sum": 0.0, "correct": 0, "n": 0}
        if val["acc"] > result.best_val_acc:
            result.best_val_acc, result.best_epoch = val["acc"], epoch + 1
            save_checkpoint(
                run.best_checkpoint,
                {
                    "phase": phase,
                    "model": model.state_dict(),
                    "epoch": epoch + 1,
                    "val_acc": val["acc"],
                },
            )
        run.write_metrics(result.metrics)
        checkpoint(epoch + 1, 0)
    result.steps = step
    return result
