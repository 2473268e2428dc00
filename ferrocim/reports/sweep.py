"""The sweep report: paper-style figures from ``DIR/results.parquet`` and the points' files.

Reads only files (the results table and each point's ``sstl.csv``); config fields are
found by their last dotted name (``eps``, ``q``, ``x``, ``thr_asym``), whatever section
holds them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ferrocim.checks import InputError
from ferrocim.reports import formatting as fmt
from ferrocim.reports import plots, sweep_plots
from ferrocim.reports.html import Report

RESULTS = "results.parquet"
SHOWN_METRICS = (
    "test_acc",
    "transfer_test_acc",
    "acc_before",
    "acc_after",
    "programming_events",
    "pulses",
    "energy_j",
    "wall_s",
)


def is_sweep_dir(path: str | os.PathLike[str]) -> bool:
    """True for a folder with a sweep's ``results.parquet``."""
    return (Path(path) / RESULTS).is_file()


def field_column(table: pd.DataFrame, name: str) -> str | None:
    """The config column whose last dotted part is ``name`` (``array.eps`` for eps)."""
    found = [c for c in table.columns if "." in c and c.rsplit(".", 1)[1] == name]
    return found[0] if len(found) == 1 else None


def varying_columns(table: pd.DataFrame) -> list[str]:
    """Config columns (dotted, plus kind and seed) whose value differs between points."""
    out = []
    for c in table.columns:
        if "." not in c and c not in ("kind", "seed"):
            continue
        values = table[c].map(repr)
        if values.nunique() > 1:
            out.append(c)
    return out


def read_results(sweep_dir: str | os.PathLike[str]) -> pd.DataFrame:
    path = Path(sweep_dir) / RESULTS
    if not path.is_file():
        raise InputError(f"{sweep_dir} is not a ferrocim sweep directory (no {RESULTS} inside)")
    return pd.read_parquet(path)


def sstl_table(sweep_dir: Path, table: pd.DataFrame) -> pd.DataFrame:
    """The ``sstl.csv`` rows of every finished SSTL point, with its point id."""
    parts = []
    for _, r in table[(table["kind"] == "sstl") & (table["status"] == "done")].iterrows():
        path = sweep_dir / r["run_dir"] / "sstl.csv"
        if path.is_file():
            parts.append(pd.read_csv(path).assign(point=r["point"]))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def build_sweep_report(
    sweep_dir: str | os.PathLike[str], out: str | os.PathLike[str] | None = None
) -> Path:
    """Write ``DIR/report.html`` (and PNGs) for the sweep in ``sweep_dir``; return its path."""
    sweep_dir = Path(sweep_dir)
    table = read_results(sweep_dir)
    out = Path(out) if out is not None else sweep_dir / "report.html"
    n_done = int((table["status"] == "done").sum())
    report = Report(
        "ferrocim sweep report", subtitle=f"{sweep_dir}: {n_done}/{len(table)} points done"
    )
    report.add_headline("points done", f"{fmt.count(n_done)} / {fmt.count(len(table))}")
    accs = table[table["status"] == "done"].dropna(subset=["test_acc"])
    if len(accs):
        best = accs.loc[accs["test_acc"].idxmax()]
        report.add_headline("best test accuracy (%)", f"{fmt.percent(best['test_acc'])}")
        report.add_headline("best point", str(best["point"]))
    if table["programming_events"].notna().any():
        report.add_headline(
            "programming events (all points)", fmt.count(table["programming_events"].sum())
        )
    if n_done < len(table):
        report.add_warning(f"{len(table) - n_done} point(s) not done; see 'Points not done'.")
    varying = varying_columns(table)
    shown = [
        "index",
        "point",
        "status",
        *varying,
        *[m for m in SHOWN_METRICS if table[m].notna().any()],
    ]
    report.add_table("Points", table[shown], section="Sweep")
    failed = table[table["status"] != "done"]
    if len(failed):
        report.add_table(
            "Points not done",
            failed[["index", "point", "status", *varying, "error"]],
            section="Sweep",
        )
    done = table[table["status"] == "done"]
    eps = field_column(table, "eps")
    events = done.dropna(subset=["programming_events", "test_acc"])
    if eps is not None and len(events):
        thr = field_column(table, "thr_asym")
        group = thr if thr is not None and events[thr].nunique() > 1 else None
        report.add_figure(
            "Accuracy vs programming events per eps",
            sweep_plots.accuracy_vs_events(events, eps=eps, group=group),
            section="Figures",
            caption="Faint: single points; bold: mean ± s.d. over the points of one setting "
            "(folds, seeds). Programming events are threshold crossings (the paper's count).",
        )
    q, x = field_column(table, "q"), field_column(table, "x")
    if q is not None and x is not None:
        transfer = done[done[q].notna() | done[x].notna()]
        if len(transfer):
            report.add_figure(
                "Accuracy vs quantisation q and programming noise x",
                sweep_plots.accuracy_vs_q_x(transfer, q=q, x=x),
                section="Figures",
            )
    sstl = sstl_table(sweep_dir, table)
    if len(sstl):
        report.add_figure("SSTL per subject", plots.sstl_before_after(sstl), section="Figures")
        per = sstl.groupby("subject")[["acc_before", "acc_after"]].agg(["mean", "std", "count"])
        per.columns = [f"{a}_{b}" for a, b in per.columns]
        report.add_table(
            "SSTL by subject (over points and folds)", per.reset_index(), section="Figures"
        )
    return report.save(out, png_dir=out.parent / f"{out.stem}_figures")


__all__ = ["build_sweep_report", "is_sweep_dir"]
