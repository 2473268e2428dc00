"""Report of an energy-convergence study: ``OUT/results.parquet`` → ``OUT/report.html``.

Plotting functions take the results table and return figures; :func:`write_study_report`
reads the table and renders the page with :class:`~ferrocim.reports.html.Report`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from ferrocim.reports import formatting as fmt
from ferrocim.reports.html import Report
from ferrocim.reports.plots import label_points


def width_label(width_s: float) -> str:
    """A pulse width as people read it: ``2e-6`` → ``"2 µs"`` (never ``us``)."""
    return fmt.quantity(width_s, "time")


def micro(text: str) -> str:
    """``"2 us"``/``"200us"`` in a recorded text → ``"2 µs"``/``"200 µs"`` (display only)."""
    return re.sub(r"(\d)\s?us\b", "\\1 µs", text)


def _width_axis(ax: Axes) -> None:
    """A log pulse-width axis labelled in ns/µs/ms at its decades."""
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda w, _pos: width_label(w)))
    ax.xaxis.set_minor_formatter(NullFormatter())


RULE_STYLE = {"plain": ("#d62728", "o"), "symmetry": ("#ff7f0e", "s"), "mixed": ("#2ca02c", "^")}


def _style(rule: str) -> tuple[str, str]:
    return RULE_STYLE.get(rule, ("#7f7f7f", "d"))


def accuracy_vs_epoch(results: pd.DataFrame) -> Figure:
    """Test accuracy per epoch, one panel per pulse width, one line per rule and seed
    (epochs on whole-number ticks)."""
    widths = sorted(results["width_s"].unique())
    n = len(widths)
    cols = min(3, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False, layout="constrained"
    )
    for ax, w in zip(axes.flat, widths, strict=False):
        for r in results[results["width_s"] == w].itertuples():
            color, marker = _style(r.rule)
            acc = 100 * np.asarray(r.acc_per_epoch, dtype=float)
            ax.plot(
                np.arange(1, len(acc) + 1),
                acc,
                color=color,
                marker=marker,
                ms=3,
                label=f"{r.rule} s{r.seed}",
            )
        ax.axhline(100 * results["target"].iloc[0], color="0.5", lw=0.8, ls=":")
        ax.set(title=width_label(w), xlabel="epoch", ylabel="test accuracy (%)", ylim=(0, 100))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    return fig


def reached_target(results: pd.DataFrame) -> bool:
    """True when at least one run reached the target accuracy (so energy to it exists)."""
    return bool(results["energy_to_target_j"].notna().any())


def energy_to_target(results: pd.DataFrame) -> Figure:
    """Median training energy (write + read/ADC) to the target accuracy vs pulse width, one
    line per rule, in the unit that reads best over the plotted values (e.g. µJ); the
    legend names the widths at which a rule never reached it. Only for results where
    :func:`reached_target` (else the page says so instead of drawing an empty panel)."""
    unit, factor = fmt.column_prefix("energy", results["energy_to_target_j"], floor=1.0)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    for rule, df in results.groupby("rule", sort=False):
        color, marker = _style(str(rule))
        med = df.groupby("width_s")["energy_to_target_j"].median()
        missing = [width_label(w) for w in med.index[med.isna()]]
        label = str(rule) + (f" (not reached: {', '.join(missing)})" if missing else "")
        ax.plot(med.index, med.values / factor, color=color, marker=marker, label=label)
    widths = results["width_s"]
    ax.set_yscale("log")
    _width_axis(ax)
    ax.set_xlim(widths.min() / 2, widths.max() * 2)
    ax.set(
        xlabel="pulse width",
        ylabel=f"energy to target ({unit})",
        title=f"Energy to {100 * results['target'].iloc[0]:.0f} % test accuracy",
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def pareto(results: pd.DataFrame) -> Figure:
    """Total training energy (unit chosen for the plotted values) vs final accuracy of every
    run (marker: rule; label: pulse width)."""
    unit, factor = fmt.column_prefix("energy", results["total_energy_j"], floor=1.0)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    for rule, df in results.groupby("rule", sort=False):
        color, marker = _style(str(rule))
        energy = df["total_energy_j"] / factor
        ax.scatter(energy, 100 * df["final_acc"], color=color, marker=marker, label=str(rule))
        label_points(ax, energy, 100 * df["final_acc"], map(width_label, df["width_s"]))
    ax.set(
        xscale="log",
        xlabel=f"total training energy ({unit})",
        ylabel="final test accuracy (%)",
        title="Energy vs accuracy",
    )
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def summary_table(results: pd.DataFrame) -> pd.DataFrame:
    """Median over seeds per width × rule: accuracy, pulses, energies, time."""
    g = results.groupby(["width_s", "rule"], sort=False)
    t = g.agg(
        seeds=("seed", "count"),
        final_acc=("final_acc", "median"),
        pulses=("pulses", "median"),
        energy_per_pulse_j=("energy_per_pulse_j", "first"),
        write_energy_j=("write_energy_j", "median"),
        read_energy_j=("read_energy_j", "median"),
        energy_to_target_j=("energy_to_target_j", "median"),
        wall_s=("wall_s", "median"),
    ).reset_index()
    t.insert(0, "pulse width", [width_label(w) for w in t.pop("width_s")])
    t["final_acc"] = 100 * t["final_acc"]
    return t


def write_study_report(out_dir: str | os.PathLike[str]) -> Path:
    """``out_dir/report.html`` (and PNGs in ``out_dir/plots``) from ``results.parquet``."""
    out = Path(out_dir)
    res = pd.read_parquet(out / "results.parquet")
    rep = Report("Energy-convergence study", subtitle=str(out))
    sources = sorted(micro(str(x)) for x in set(res["energy_source"]))
    widths = ", ".join(width_label(w) for w in sorted(res["width_s"].unique()))
    rep.add_text(
        "Setup",
        f"{len(res)} runs: widths {widths}"
        f"; rules {', '.join(dict.fromkeys(res['rule']))}; seeds "
        f"{', '.join(str(s) for s in sorted(res['seed'].unique()))}. Energy to target is the "
        "training energy (write pulses plus read MACs, DAC and ADC conversions of the training "
        "forwards) spent until the first epoch whose test accuracy reaches "
        f"{100 * res['target'].iloc[0]:.0f} %.\n\nWrite energy per pulse: " + "; ".join(sources),
    )
    target = f"{100 * res['target'].iloc[0]:.0f} %"
    if reached_target(res):
        rep.add_figure("Energy to target accuracy", energy_to_target(res), section="Headline")
    else:
        best = 100 * res["best_acc"].max() if "best_acc" in res else float("nan")
        rep.add_text(
            "Energy to target accuracy",
            f"Not drawn: no run reached the target of {target} test accuracy in "
            f"{fmt.count(res['acc_per_epoch'].map(len).max())} epochs (best epoch of any run: "
            f"{fmt.percent(best)} %), so there is no energy to target. Train longer (more "
            "epochs or samples) or lower the target.",
            section="Headline",
        )
    rep.add_figure("Accuracy per epoch", accuracy_vs_epoch(res), section="Figures")
    rep.add_figure("Energy vs final accuracy", pareto(res), section="Figures")
    rep.add_table("Results (median over seeds)", summary_table(res), section="Table")
    return rep.save(out / "report.html", png_dir=out / "plots")
