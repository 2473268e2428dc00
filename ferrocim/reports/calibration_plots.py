"""Matplotlib figures of a calibration (plotting only; rendering lives in reports.calibration)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ferrocim.calibration.kernel import W_HIGH, W_LOW, beta_step

_COLORS = {"ltp": "tab:blue", "ltd": "tab:red"}


def _figure(nrows: int, ncols: int, size: tuple[float, float]) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt.subplots(nrows, ncols, figsize=size, constrained_layout=True)


def plot_device(dut: Any) -> Any:
    """Four panels for one calibrated device (a ``DutCalibration``).

    (a) normalised conductance vs pulse number, measured and the card method's trajectory
    integrated from each half-cycle's best-fitting start state; (b) step dW vs state W with
    the difference- and trajectory-fitted kernels; (c) trajectory residuals; (d) Gmin/Gmax
    (S) per sweep.
    """
    from matplotlib.lines import Line2D

    from ferrocim.calibration.fitting import best_starts, integrate

    fig, ax = _figure(2, 2, (11, 7.5))
    method = dut.card.fit["method"]
    x0 = 0
    for seg in dut.segments:
        fit = dut.pooled[method][seg.kind]
        p = integrate(
            [seg], fit.params, fit.model, starts=best_starts([seg], fit.params, fit.model)
        )[0]
        n = np.arange(x0, x0 + len(seg.w))
        ax[0, 0].plot(n, seg.w, ".", ms=3, color=_COLORS[seg.kind])
        ax[0, 0].plot(n, p, "-", lw=1.2, color="k")
        ax[1, 0].plot(n[1:], seg.w[1:] - p[1:], ".", ms=3, color=_COLORS[seg.kind])
        x0 += len(seg.w)
    ax[0, 0].legend(
        handles=[
            Line2D([], [], ls="", marker=".", color=_COLORS["ltp"], label="LTP measured"),
            Line2D([], [], ls="", marker=".", color=_COLORS["ltd"], label="LTD measured"),
            Line2D([], [], color="k", label=f"{method} fit"),
        ],
        fontsize=7,
    )
    ax[0, 0].set(
        xlabel="pulse number",
        ylabel="W (normalised G)",
        title=f"{dut.name}: measured (dots) and {method} fit (line)",
    )
    ax[1, 0].axhline(0, color="k", lw=0.8)
    ax[1, 0].set(xlabel="pulse number", ylabel="W measured - W fitted", title="residuals")

    wg = np.linspace(W_LOW, W_HIGH, 200)
    for kind in ("ltp", "ltd"):
        segs = [s for s in dut.segments if s.kind == kind]
        w = np.concatenate([s.steps()[0] for s in segs])
        dw = np.concatenate([s.steps()[1] for s in segs])
        ax[0, 1].plot(
            w, dw, ".", ms=3, alpha=0.5, color=_COLORS[kind], label=f"{kind.upper()} data"
        )
        for m, ls in (("difference", "--"), ("trajectory", "-")):
            f = dut.pooled[m][kind]
            ax[0, 1].plot(
                wg,
                beta_step(wg, *f.kernel()),
                ls,
                color=_COLORS[kind],
                label=f"{kind.upper()} {m} (R²dW {f.r2_dw:.2f})",
            )
    ax[0, 1].axhline(0, color="0.5", lw=0.6)
    ax[0, 1].set(
        xlabel="W before the pulse",
        ylabel="dW per pulse, signed by kind\n(LTP: +dW, LTD: −dW)",
        title="step kernel (negative: step against the pulse's direction)",
    )
    ax[0, 1].legend(fontsize=7)

    wt = dut.windows
    ax[1, 1].semilogy(wt["sweep"], wt["g_max_s"], "o-", label="Gmax")
    ax[1, 1].semilogy(wt["sweep"], wt["g_min_s"], "s-", label="Gmin")
    ax[1, 1].set(xlabel="sweep", ylabel="conductance (S)", title="window per sweep")
    _integer_ticks(ax[1, 1].xaxis)
    ax[1, 1].legend(fontsize=8)
    return fig


def _integer_ticks(axis: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def plot_conductance_vs_pulse(dut: Any) -> Any:
    """Measured conductance vs pulse number, write amplitude (V) on a second axis.

    The raw sequence of every file of the device, one after the other, as measured
    (before normalisation): the figure a device paper shows first.
    """
    from ferrocim.reports.formatting import si_prefix

    fig, ax = _figure(1, 1, (11, 3.8))
    amp_ax = ax.twinx()
    unit, factor = si_prefix("conductance", np.concatenate([s.conductance_s for s in dut.files]))
    x0 = 0
    for i, seq in enumerate(dut.files):
        n = np.arange(x0, x0 + len(seq.amplitude_v))
        ax.plot(n, seq.conductance_s / factor, ".", ms=2.5, color="tab:green")
        amp_ax.plot(n, seq.amplitude_v, "-", lw=0.8, color="0.45")
        if i:
            ax.axvline(x0 - 0.5, color="0.8", lw=0.8)
        x0 += len(seq.amplitude_v)
    ax.set(
        xlabel="pulse number (files one after the other)",
        ylabel=f"conductance after the pulse ({unit})",
        title=f"{dut.name}: conductance (dots) and write amplitude (grey line)",
    )
    ax.yaxis.label.set_color("tab:green")
    amp_ax.set_ylabel("write amplitude (V)", color="0.35")
    amp_ax.axhline(0, color="0.8", lw=0.6, ls=":")
    _integer_ticks(ax.xaxis)
    return fig


def plot_conductance_vs_voltage(dut: Any) -> Any:
    """Conductance after each pulse vs its write amplitude (V), one colour per sweep."""
    import matplotlib.pyplot as plt

    from ferrocim.reports.formatting import si_prefix

    fig, ax = _figure(1, 1, (7, 4.2))
    seqs = list(dut.files)
    unit, factor = si_prefix("conductance", np.concatenate([s.conductance_s for s in seqs]))
    sweeps = sorted({(i, int(s)) for i, seq in enumerate(seqs) for s in np.unique(seq.sweep)})
    cmap = plt.get_cmap("viridis", max(len(sweeps), 2))
    for k, (i, s) in enumerate(sweeps):
        seq = seqs[i]
        m = seq.sweep == s
        label = f"file {i + 1}, sweep {s}" if len(seqs) > 1 else f"sweep {s}"
        ax.plot(
            seq.amplitude_v[m],
            seq.conductance_s[m] / factor,
            ".-",
            ms=3,
            lw=0.6,
            color=cmap(k),
            label=label,
        )
    ax.axvline(0, color="0.7", lw=0.6)
    ax.set(
        xlabel="write amplitude V_write (V)",
        ylabel=f"conductance after the pulse ({unit})",
        title=f"{dut.name}: G vs V_write per sweep",
    )
    if len(sweeps) <= 12:
        ax.legend(fontsize=7)
    return fig


def plot_r2_overview(rows: list[dict[str, Any]]) -> Any:
    """Median R² on the dW metric per method and kind, over all devices."""
    fig, ax = _figure(1, 1, (7, 3.5))
    methods = [r["method"] for r in rows]
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["ltp"] or 0 for r in rows], 0.4, label="LTP", color=_COLORS["ltp"])
    ax.bar(x + 0.2, [r["ltd"] or 0 for r in rows], 0.4, label="LTD", color=_COLORS["ltd"])
    ax.set_xticks(x, methods, rotation=15)
    ax.set(ylabel="median R² (dW metric)", ylim=(min(0, ax.get_ylim()[0]), 1))
    ax.legend()
    return fig
