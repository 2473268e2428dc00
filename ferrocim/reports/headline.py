"""The headline of a run (the numbers a reader wants first) and its warnings.

Both are computed here once, from what a run directory holds (``summary.json``, the
resolved config, the energy ledger, the endurance table), and shown by the HTML report's
top box and by the terminal after a command.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ferrocim.reports import formatting as fmt
from ferrocim.rundir import config_value

#: Kinds of run that program an array.
ANALOG_KINDS = ("device", "retune", "sstl")


@dataclass(frozen=True)
class Headline:
    """Labelled, formatted numbers of one run, and its warnings (plain sentences)."""

    items: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def card_used(config: dict[str, Any], card_name: str | None = None) -> str | None:
    """``"dut2"`` or ``"ID170ZR5000 (cards/ID170ZR5000.json)"``; None for float runs."""
    if config.get("kind") not in ANALOG_KINDS:
        return None
    ref = str(config_value(config, "array.card") or "dut2")
    if card_name and card_name != ref:
        return f"{card_name} ({ref})"
    return ref


def run_warnings(summary: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """Sentences a reader must see before trusting a run's numbers."""
    out = []
    kind = config.get("kind")
    if kind in ANALOG_KINDS and summary.get("programming_events") == 0:
        eps = config_value(config, "array.programming.eps")
        steps = summary.get("steps")
        where = f" in {fmt.count(steps)} optimiser steps" if steps is not None else ""
        network, advice = {
            "retune": (
                "the transferred network (as programmed, before fine-tuning)",
                "raise --lr or train for more epochs",
            ),
            "sstl": ("the pooled model before SSTL", "raise --sstl-lr or --sstl-epochs"),
        }.get(kind, ("the untrained network", "raise --lr or train for more epochs"))
        out.append(
            f"No programming events{where}: no weight's accumulated update reached the "
            f"pulse threshold (eps = {eps} of the weight range), so the array was never "
            f"programmed and the accuracy is that of {network}. Lower --eps or {advice}."
        )
    return out


def unfinished_warning(
    *,
    resumable: bool,
    epochs_done: int | None = None,
    epochs_total: int | None = None,
    failure: dict[str, Any] | None = None,
) -> str:
    """Why a run without ``summary.json`` must not be read as a result: how far it got and
    whether it failed (``failure.json``); the resume command goes beside it."""
    where = ""
    if epochs_done is not None:
        of = f" of {fmt.count(epochs_total)}" if epochs_total else ""
        where = f" after epoch {fmt.count(epochs_done)}{of}"
    why = (
        f"It failed ({failure.get('error', 'see failure.json')})"
        if failure
        else "It was stopped (or is still running)"
    )
    return (
        f"Unfinished run: no summary.json, so its numbers are those of the last saved epoch, "
        f"not final results. {why}{where}. Continue it with:"
        if resumable
        else f"Unfinished run: no summary.json. {why}{where}."
    )


def lifetime_assumed(endurance: pd.DataFrame) -> bool:
    """True when a layer's projection uses the card's median instead of drawn lifetimes."""
    return bool((endurance["lifetime_source"] != "drawn per device").any())


def lifetime_phrase(endurance: pd.DataFrame | None) -> tuple[str, bool] | None:
    """(projected identical runs until the first device fails, lifetime assumed?)."""
    if endurance is None or not len(endurance):
        return None
    runs = endurance["projected_runs_to_first_failure"].to_numpy(dtype=float)
    assumed = lifetime_assumed(endurance)
    worst = float(np.min(runs))
    text = "no device pulsed" if not np.isfinite(worst) else f"{fmt.large_count(worst)} runs"
    return text, assumed


def headline(
    summary: dict[str, Any],
    config: dict[str, Any],
    *,
    card_name: str | None = None,
    energy: pd.DataFrame | None = None,
    endurance: pd.DataFrame | None = None,
) -> Headline:
    """The headline of one run (see module docstring)."""
    items: list[tuple[str, str]] = []
    kind = config.get("kind")
    items.append(("kind", str(kind)))
    card = card_used(config, card_name)
    if card is not None:
        items.append(("device card", card))
    pct = fmt.percent
    if kind == "retune" and "transfer_test_acc" in summary:
        items.append(
            (
                "test accuracy float → transferred → re-tuned (%)",
                f"{pct(summary.get('float_test_acc'))} → {pct(summary['transfer_test_acc'])} "
                f"→ {pct(summary.get('test_acc'))}",
            )
        )
    elif kind == "sstl":
        items.append(
            (
                "accuracy before → after SSTL (%)",
                f"{pct(summary.get('acc_before'))} → {pct(summary.get('acc_after'))}",
            )
        )
    elif "test_acc" in summary:
        items.append(("test accuracy (%)", pct(summary["test_acc"])))
    if "programming_events" in summary:
        items.append(("programming events", fmt.count(summary["programming_events"])))
        items.append(("pulses", fmt.count(summary.get("pulses"))))
    if energy is not None and len(energy):
        train = energy[energy["phase"] == "train"] if "phase" in energy else energy
        items.append(("training energy (array)", fmt.quantity(train["energy_j"].sum(), "energy")))
    life = lifetime_phrase(endurance)
    if life is not None:
        text, assumed = life
        items.append(
            ("projected lifetime" + (" (assumed device lifetime)" if assumed else ""), text)
        )
    return Headline(items, run_warnings(summary, config))


__all__ = [
    "ANALOG_KINDS",
    "Headline",
    "card_used",
    "headline",
    "lifetime_assumed",
    "lifetime_phrase",
    "run_warnings",
    "unfinished_warning",
]
