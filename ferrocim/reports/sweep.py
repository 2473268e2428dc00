"""The sweep report: paper-style figures from ``DIR/results.parquet`` and the points' files.

Reads only files (the results table and each point's ``sstl.csv``); config fields are
found by their last dotted name (``eps``, ``q``, ``x``, ``thr_asym``), whatever section
holds them.
"""

from __future__ import annotations

import os
import shlex
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


def best_points(table: pd.DataFrame) -> pd.DataFrame:
    """The finished points with the best test accuracy, best first.

    Ties (equal test accuracy) are ordered by fewest programming events (a point that
    never programmed counts 0), then sweep order (``index``): the first row is the point
    the report calls best, the others tie with it.
    """
    done = table[(table["status"] == "done") & table["test_acc"].notna()]
    if done.empty:
        return done
    best = done[done["test_acc"] == done["test_acc"].max()]
    events = pd.to_numeric(best["programming_events"], errors="coerce").fillna(0)
    return best.assign(_events=events).sort_values(["_events", "index"]).drop(columns="_events")


TIE_RULE = "ties broken by fewest programming events, then sweep order"


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
    best = best_points(table)
    if len(best):
        first = best.iloc[0]
        report.add_headline("best test accuracy (%)", f"{fmt.percent(first['test_acc'])}")
        tied = f" (+{len(best) - 1} tied)" if len(best) > 1 else ""
        report.add_headline("best point", f"{first['point']}{tied}")
    if table["programming_events"].notna().any():
        report.add_headline(
            "programming events (all points)", fmt.count(table["programming_events"].sum())
        )
    if n_done < len(table):
        spec = sweep_dir / "sweep.toml"
        report.add_warning(
            f"{len(table) - n_done} point(s) not done (see 'Points not done'). Running the "
            "sweep again continues them (finished points are skipped, unfinished ones "
            "resume from their checkpoints):",
            command=f"ferrocim sweep {shlex.quote(str(spec.absolute()))} --out "
            f"{shlex.quote(str(sweep_dir.absolute()))}",
        )
    varying = varying_columns(table)
    if len(best):
        settings = ", ".join(f"{c.rsplit('.', 1)[-1]} = {first[c]}" for c in varying)
        text = (
            f"Best test accuracy {fmt.percent(first['test_acc'])} % at point {first['point']}"
            + (f" ({settings})" if settings else "")
            + f"; {TIE_RULE}."
        )
        if len(best) > 1:
            text += (
                f" {len(best)} points share this accuracy: "
                + ", ".join(
                    f"{r['point']} ({fmt.count(r['programming_events'])} events)"
                    for _, r in best.iterrows()
                )
                + "."
            )
        report.add_text("Best point", text, section="Sweep")
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
    fired = events[events["programming_events"] > 0]
    if eps is not None and len(events) and fired.empty:
        report.add_text(
            "Accuracy vs programming events per eps",
            f"Not drawn: none of the {len(events)} finished points fired a pulse (0 "
            "programming events each), and a log axis has no zero. Lower eps, raise the "
            "learning rate or train longer for the array to be programmed.",
            section="Figures",
        )
    elif eps is not None and len(fired):
        thr = field_column(table, "thr_asym")
        group = thr if thr is not None and fired[thr].nunique() > 1 else None
        silent = len(events) - len(fired)
        report.add_figure(
            "Accuracy vs programming events per eps",
            sweep_plots.accuracy_vs_events(fired, eps=eps, group=group),
            section="Figures",
            caption="Faint: single points; bold: mean ± s.d. over the points of one setting "
            "(folds, seeds). Programming events are threshold crossings (the paper's count)."
            + (
                f" {silent} point(s) with no programming event are not drawn (a log axis "
                "has no zero): see the table."
                if silent
                else ""
            ),
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


__all__ = ["TIE_RULE", "best_points", "build_sweep_report", "is_sweep_dir"]
