"""Plotting functions for run reports: data frames in, matplotlib figures out.

No file access here; :mod:`ferrocim.reports.run` reads the run directory and hands the
tables in. Every function returns a finished ``Figure``; :func:`ferrocim.reports.html.figure_to_png`
renders and closes it.
"""

from __future__ import annotations

from collections.abc import Iterable

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, StrMethodFormatter


def subject_label(subject: object) -> str:
    """``3`` → ``"S003"``: how plots and tables name an EEG subject."""
    return f"S{int(subject):03d}"


def _integer_axis(axis) -> None:  # axis: matplotlib Axis
    axis.set_major_locator(MaxNLocator(integer=True))


def crossings_equal_pulses(events: pd.DataFrame) -> bool:
    """True when every crossing fired exactly one pulse (the two counts are identical)."""
    return bool(
        (events["ltp_crossings"] == events["ltp_pulses"]).all()
        and (events["ltd_crossings"] == events["ltd_pulses"]).all()
    )


def learning_curves(metrics: pd.DataFrame) -> Figure:
    """Train/validation accuracy (%) and loss per epoch, one line per phase."""
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(10, 3.6))
    for phase, df in metrics.groupby("phase", sort=False):
        ax_acc.plot(df["epoch"], df["train_acc"], "-o", ms=3, label=f"{phase} train")
        ax_acc.plot(df["epoch"], df["val_acc"], "--s", ms=3, label=f"{phase} validation")
        ax_loss.plot(df["epoch"], df["train_loss"], "-o", ms=3, label=f"{phase} train")
        ax_loss.plot(df["epoch"], df["val_loss"], "--s", ms=3, label=f"{phase} validation")
    ax_acc.axhline(50, color="0.6", lw=0.8, ls=":")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="Loss")
    for ax in (ax_acc, ax_loss):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        _integer_axis(ax.xaxis)
    fig.tight_layout()
    return fig


def validation_overlay(curves: dict[str, pd.DataFrame]) -> Figure:
    """Validation accuracy (%) and loss per epoch of several runs on shared axes.

    ``curves`` maps a run's name to its ``metrics.csv`` table; a run with several phases
    gets one line per phase (``run (phase)``).
    """
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(10, 3.8))
    i = 0
    for name, metrics in curves.items():
        groups = list(metrics.groupby("phase", sort=False)) if "phase" in metrics else []
        groups = groups or [("", metrics)]
        for phase, df in groups:
            label = name if len(groups) == 1 else f"{name} ({phase})"
            color = plt.cm.tab10(i % 10)
            i += 1
            ax_acc.plot(df["epoch"], df["val_acc"], "-o", ms=3, color=color, label=label)
            if "val_loss" in df:
                ax_loss.plot(df["epoch"], df["val_loss"], "-o", ms=3, color=color, label=label)
    ax_acc.axhline(50, color="0.6", lw=0.8, ls=":")
    ax_acc.set(xlabel="epoch", ylabel="validation accuracy (%)", title="Validation accuracy")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="Validation loss")
    for ax in (ax_acc, ax_loss):
        ax.grid(alpha=0.3)
        _integer_axis(ax.xaxis)
    ax_loss.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig


def events_over_training(events: pd.DataFrame) -> Figure:
    """Cumulative LTP/LTD crossings and pulses per layer over optimiser steps.

    When every crossing fired exactly one pulse the two panels would be identical, so
    one panel is drawn and its title says so.
    """
    layers = list(dict.fromkeys(events["layer"]))
    kinds = ("crossings",) if crossings_equal_pulses(events) else ("crossings", "pulses")
    fig, axes = plt.subplots(
        1, len(kinds), figsize=(5.5 * len(kinds) + 1, 3.8), sharex=True, squeeze=False
    )
    for ax, kind in zip(axes.flat, kinds, strict=True):
        for i, layer in enumerate(layers):
            df = events[events["layer"] == layer].sort_values("step")
            color = plt.cm.tab10(i % 10)
            ax.plot(df["step"], df[f"ltp_{kind}"].cumsum(), color=color, label=layer)
            ax.plot(df["step"], df[f"ltd_{kind}"].cumsum(), color=color, ls="--")
        what = "crossings = pulses" if len(kinds) == 1 else kind
        ax.set(xlabel="optimiser step", ylabel=f"cumulative {kind}", title=f"Programming {what}")
        ax.set_yscale("symlog", linthresh=10)
        _integer_axis(ax.xaxis)
        ax.grid(alpha=0.3)
    style = [
        Line2D([], [], color="0.3", label="LTP (solid)"),
        Line2D([], [], color="0.3", ls="--", label="LTD (dashed)"),
    ]
    handles, _ = axes.flat[-1].get_legend_handles_labels()
    axes.flat[-1].legend(
        handles=handles + style, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1)
    )
    fig.tight_layout()
    return fig


def events_per_epoch(events: pd.DataFrame) -> Figure:
    """LTP vs LTD programming events (crossings) per epoch, stacked by layer."""
    per = events.groupby(["epoch", "layer"], sort=False)[["ltp_crossings", "ltd_crossings"]].sum()
    per = per.reset_index()
    epochs = sorted(per["epoch"].unique())
    layers = list(dict.fromkeys(per["layer"]))
    x = np.arange(len(epochs))
    width = 0.4
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(epochs) + 3), 3.8))
    bottom_p = np.zeros(len(epochs))
    bottom_d = np.zeros(len(epochs))
    for i, layer in enumerate(layers):
        df = per[per["layer"] == layer].set_index("epoch").reindex(epochs, fill_value=0)
        color = plt.cm.tab10(i % 10)
        ax.bar(x - width / 2, df["ltp_crossings"], width, bottom=bottom_p, color=color, label=layer)
        ax.bar(
            x + width / 2,
            df["ltd_crossings"],
            width,
            bottom=bottom_d,
            color=color,
            hatch="//",
            edgecolor="white",
        )
        bottom_p += df["ltp_crossings"].to_numpy()
        bottom_d += df["ltd_crossings"].to_numpy()
    ax.set_xticks(x, [str(e + 1) for e in epochs])
    ax.set(
        xlabel="epoch",
        ylabel="programming events (crossings)",
        title="Events per epoch: left bar LTP, right bar (hatched) LTD",
    )
    ax.legend(fontsize=8, ncol=2)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def pulse_histograms(pulses_by_layer: dict[str, np.ndarray]) -> Figure:
    """Histogram of total pulses per device, one panel per layer (log count axis)."""
    n = len(pulses_by_layer)
    cols = min(4, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, (layer, counts) in zip(axes.flat, pulses_by_layer.items(), strict=False):
        counts = np.asarray(counts).ravel()
        bins = np.arange(0, max(int(counts.max()), 1) + 2) - 0.5 if counts.max() < 60 else 40
        ax.hist(counts, bins=bins, color="#4c72b0")
        ax.set_yscale("log")
        ax.set(
            title=f"{layer} (mean {counts.mean():.2f})",
            xlabel="pulses per device",
            ylabel="devices (log scale)",
        )
        _integer_axis(ax.xaxis)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def tile_heatmaps(layer: str, tiles: list[tuple[str, np.ndarray]], *, label: str) -> Figure:
    """One heatmap per tile of a layer (e.g. pulses per device), shared colour scale."""
    n = len(tiles)
    cols = min(4, n)
    rows = int(np.ceil(n / cols))
    vmax = max(float(np.max(t)) for _, t in tiles) or 1.0
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(3.0 * cols + 1, 2.8 * rows + 0.4),
        squeeze=False,
        constrained_layout=True,
    )
    im = None
    for ax, (name, arr) in zip(axes.flat, tiles, strict=False):
        im = ax.imshow(arr, aspect="auto", cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
        ax.set(title=name, xlabel="column", ylabel="row")
        _integer_axis(ax.xaxis)
        _integer_axis(ax.yaxis)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if im is not None:
        cbar = fig.colorbar(im, ax=axes.ravel().tolist(), label=label, shrink=0.8)
        _integer_axis(cbar.ax.yaxis)
    fig.suptitle(f"{layer}: {label} per tile")
    return fig


def endurance_margin(table: pd.DataFrame) -> Figure:
    """Per layer: worst-case used fraction of lifetime and projected runs to failure.

    Layers without any pulse get no bar but a "no pulses" label (a log axis has no zero).
    """
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    used = table["max_used_fraction"].to_numpy(dtype=float)
    runs = table["projected_runs_to_first_failure"].to_numpy(dtype=float)
    x = np.arange(len(table))
    pulsed = used > 0
    ax1.bar(x[pulsed], used[pulsed], color="#dd8452")
    ax1.axhline(1.0, color="k", lw=0.8, ls=":", label="lifetime used up (1.0)")
    ax1.set(ylabel="max pulses / lifetime", title="Worst device: fraction of lifetime used")
    ax1.legend(fontsize=8, loc="center right")
    ok = np.isfinite(runs)
    ax2.bar(x[ok], runs[ok], color="#55a868")
    ax2.set(ylabel="identical runs", title="Projected identical runs until a device fails")
    for ax, shown in ((ax1, pulsed), (ax2, ok)):
        ax.set_yscale("log")
        ax.set_xticks(x, table["layer"], rotation=30, ha="right")
        ax.grid(alpha=0.3, axis="y")
        lo = ax.get_ylim()[0]
        for i in x[~shown]:
            ax.text(i, lo, "no pulses", rotation=90, ha="center", va="bottom", fontsize=8)
    fig.tight_layout()
    return fig


def energy_breakdown(energy: pd.DataFrame) -> Figure:
    """Energy by layer and kind, one panel per phase (unit chosen from the largest bar)."""
    from ferrocim.reports.formatting import si_prefix

    phases = list(dict.fromkeys(energy["phase"]))
    fig, axes = plt.subplots(1, len(phases), figsize=(5.5 * len(phases), 3.8), squeeze=False)
    for ax, phase in zip(axes.flat, phases, strict=True):
        piv = energy[energy["phase"] == phase].pivot_table(
            index="layer",
            columns="kind",
            values="energy_j",
            aggfunc="sum",
            fill_value=0.0,
            sort=False,
        )
        unit, factor = si_prefix("energy", piv.sum(axis=1))
        (piv / factor).plot(kind="bar", stacked=True, ax=ax, logy=False, colormap="tab10")
        total = piv.to_numpy().sum() / factor
        ax.set(ylabel=f"energy ({unit})", title=f"{phase}: total {total:.3g} {unit}")
        ax.tick_params(axis="x", rotation=30)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def sstl_before_after(table: pd.DataFrame) -> Figure:
    """Per-subject accuracy before vs after SSTL (mean over the subject's folds)."""
    per = table.groupby("subject")[["acc_before", "acc_after"]].mean().sort_values("acc_before")
    x = np.arange(len(per))
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(per) + 2), 3.8))
    ax.vlines(x, per["acc_before"], per["acc_after"], color="0.6")
    ax.scatter(x, per["acc_before"], color="#8c8c8c", label="before (pooled)", zorder=3)
    ax.scatter(x, per["acc_after"], color="#2ca02c", label="after SSTL", zorder=3)
    ax.axhline(50, color="0.6", lw=0.8, ls=":")
    ax.set_xticks(x, [subject_label(s) for s in per.index], rotation=60, fontsize=8)
    gain = (per["acc_after"] - per["acc_before"]).mean()
    ax.set(
        ylabel="test accuracy (%)",
        title=f"SSTL per subject: {per['acc_before'].mean():.1f} → "
        f"{per['acc_after'].mean():.1f} % (mean gain {gain:+.2f})",
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def label_points(ax: Axes, xs: Iterable[float], ys: Iterable[float], labels: Iterable) -> None:
    """Write ``labels`` in small type just above-right of the points ``(xs, ys)``."""
    for x, y, label in zip(xs, ys, labels, strict=True):
        ax.annotate(str(label), (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")


def accuracy_vs_events(summary: pd.DataFrame) -> Figure:
    """Test accuracy against programming events, one point per run (paper's sweeps)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(summary["programming_events"], summary["test_acc"], color="#4c72b0")
    label_points(ax, summary["programming_events"], summary["test_acc"], summary["run"])
    ax.set(
        xlabel="programming events (crossings)",
        ylabel="test accuracy (%)",
        title="Accuracy vs programming events",
    )
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
