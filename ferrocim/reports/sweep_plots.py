"""Paper-style sweep figures: results tables in, matplotlib figures out (no file access).

Each figure shows every point faintly and the mean ± s.d. over the points that share
the plotted setting (folds, seeds) in bold, as the paper reports five-fold means.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure


def _mean_sd(df: pd.DataFrame, by: str, value: str) -> pd.DataFrame:
    g = df.groupby(by)[value]
    return pd.DataFrame({"mean": g.mean(), "sd": g.std(ddof=0), "n": g.size()})


def accuracy_vs_events(df: pd.DataFrame, *, eps: str, group: str | None = None) -> Figure:
    """Test accuracy (%) against programming events (crossings), one colour per eps.

    ``df`` has the columns ``eps``, ``programming_events``, ``test_acc`` (and ``group``,
    e.g. thr_asym, drawn as separate series when given).
    """
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    keys = [eps] if group is None else [eps, group]
    for i, (key, sub) in enumerate(df.groupby(keys, sort=True)):
        key = key if isinstance(key, tuple) else (key,)
        label = ", ".join(f"{k.split('.')[-1]}={v:g}" for k, v in zip(keys, key, strict=True))
        color = plt.cm.viridis(i / max(1, df.groupby(keys).ngroups - 1))
        ax.scatter(sub["programming_events"], sub["test_acc"], color=color, alpha=0.35, s=18)
        ax.errorbar(
            sub["programming_events"].mean(),
            sub["test_acc"].mean(),
            xerr=sub["programming_events"].std(ddof=0),
            yerr=sub["test_acc"].std(ddof=0),
            fmt="o",
            color=color,
            ms=7,
            capsize=3,
            label=f"{label} (n={len(sub)})",
        )
    ax.set_xscale("log")
    ax.set(
        xlabel="programming events (threshold crossings)",
        ylabel="test accuracy (%)",
        title="Accuracy vs programming events",
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _acc_line(ax, df: pd.DataFrame, by: str, value: str, label: str, style: str) -> None:
    sub = df.dropna(subset=[value])
    if sub.empty:
        return
    ax.scatter(sub[by], sub[value], alpha=0.3, s=14, color="0.5")
    stats = _mean_sd(sub, by, value)
    ax.errorbar(stats.index, stats["mean"], yerr=stats["sd"], fmt=style, capsize=3, label=label)


def accuracy_vs_q_x(df: pd.DataFrame, *, q: str, x: str) -> Figure:
    """Accuracy against quantisation levels (q+1, no noise) and programming noise x.

    Left: points without x, by levels; right: points with x, one line per q. Each panel
    shows the accuracy right after transfer (``transfer_test_acc``, when recorded) and
    the final test accuracy (``test_acc``: after re-tuning).
    """
    fig, (ax_q, ax_x) = plt.subplots(1, 2, figsize=(11, 4))
    no_noise = df[df[x].isna() & df[q].notna()].assign(levels=lambda d: d[q] + 1)
    _acc_line(ax_q, no_noise, "levels", "transfer_test_acc", "after transfer", "-o")
    _acc_line(ax_q, no_noise, "levels", "test_acc", "after re-tuning", "--s")
    ax_q.set_xscale("log", base=2)
    ax_q.set(xlabel="levels (q + 1)", ylabel="test accuracy (%)", title="Quantisation (no noise)")
    noisy = df[df[x].notna()]
    for qv, sub in noisy.groupby(noisy[q].fillna(-1), sort=True):
        tag = "no quantisation" if qv == -1 else f"{int(qv) + 1} levels"
        _acc_line(ax_x, sub, x, "transfer_test_acc", f"{tag}, after transfer", "-o")
        _acc_line(ax_x, sub, x, "test_acc", f"{tag}, after re-tuning", "--s")
    ax_x.set_xscale("log")
    ax_x.set(xlabel="x (noise s.d. = mean|w| / x)", title="Programming noise")
    for ax in (ax_q, ax_x):
        ax.axhline(50, color="0.6", lw=0.8, ls=":")
        ax.grid(alpha=0.3, which="both")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
