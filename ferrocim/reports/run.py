"""The run report: one self-contained HTML page (plus PNGs) built from run directories.

Everything shown is read from the run directory's files (config, metrics, events, tile
state, energy, SSTL table, card), so a report can be rebuilt later from the folder alone.
Several run directories give one page with a comparison table and each run's sections.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd

from ferrocim.checks import InputError
from ferrocim.reports import plots
from ferrocim.reports.array_state import endurance_table, read_tile_state, tile_arrays
from ferrocim.reports.headline import Headline, card_used, headline, lifetime_assumed
from ferrocim.reports.html import Report

SUMMARY_COLUMNS = (
    "run",
    "kind",
    "card",
    "eps",
    "thr_asym",
    "q",
    "x",
    "test_acc",
    "transfer_test_acc",
    "acc_before",
    "acc_after",
    "programming_events",
    "pulses",
    "failed_devices",
    "wall_s",
)


def _read_run(path: Path) -> dict[str, Any]:
    cfg_path = path / "config.toml"
    if not cfg_path.is_file():
        raise InputError(f"{path} is not a ferrocim run directory (no config.toml inside)")
    cfg = tomllib.loads(cfg_path.read_text())
    summary_path = path / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}

    def csv(name: str) -> pd.DataFrame | None:
        p = path / name
        return pd.read_csv(p) if p.is_file() else None

    return {
        "path": path,
        "name": path.name,
        "config": cfg,
        "summary": summary,
        "metrics": csv("metrics.csv"),
        "events": csv("events.csv"),
        "energy": csv("energy.csv"),
        "sstl": csv("sstl.csv"),
    }


def summary_row(run: dict[str, Any]) -> dict[str, Any]:
    """One comparison-table row of a run (missing numbers left empty)."""
    s, cfg = run["summary"], run["config"]
    arr = cfg.get("array", {})
    row = {
        "run": run["name"],
        "kind": cfg.get("kind"),
        "card": card_used(_card_source(run)[1]),
        "eps": arr.get("eps"),
        "thr_asym": arr.get("thr_asym"),
        "q": arr.get("q"),
        "x": arr.get("x"),
    }
    for key in SUMMARY_COLUMNS[7:]:
        row[key] = s.get(key)
    return row


def _card_source(run: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    """(folder holding the card.json, config naming the card) of the array a run used.

    SSTL on a device or retune base keeps the base run's array (and card).
    """
    base = run["summary"].get("base_run")
    if run["config"].get("kind") == "sstl" and base and (Path(base) / "config.toml").is_file():
        base_cfg = tomllib.loads((Path(base) / "config.toml").read_text())
        if base_cfg.get("kind") in ("device", "retune"):
            return Path(base), {**base_cfg, "kind": "sstl"}
    return run["path"], run["config"]


def _load_card(run: dict[str, Any]):  # -> DeviceCard | None
    path = _card_source(run)[0] / "card.json"
    if not path.is_file():
        return None
    from ferrocim.calibration.card import DeviceCard

    return DeviceCard.load(path)


def _endurance(run: dict[str, Any], state: dict[str, Any] | None) -> pd.DataFrame | None:
    if state is None:
        return None
    card = _load_card(run)
    nominal = card.endurance.cycles_median if card is not None else None
    return endurance_table(state, nominal_lifetime=nominal)


def run_headline(run: dict[str, Any], state: dict[str, Any] | None = None) -> Headline:
    """The headline of a run read by :func:`_read_run` (tile state read when not given)."""
    if state is None and (run["path"] / "tiles" / "final.h5").is_file():
        state = read_tile_state(run["path"] / "tiles" / "final.h5")
    card = _load_card(run)
    return headline(
        run["summary"],
        _card_source(run)[1],
        card_name=card.name if card is not None else None,
        energy=run["energy"],
        endurance=_endurance(run, state),
    )


def _add_run_sections(
    report: Report, run: dict[str, Any], *, prefix: str, single: bool
) -> Headline:
    sec = prefix
    s = run["summary"]
    kind = run["config"].get("kind")
    tiles_path = run["path"] / "tiles" / "final.h5"
    state = read_tile_state(tiles_path) if tiles_path.is_file() else None
    head = run_headline(run, state)
    if not single:  # one run: the page's own headline box and warnings say it
        report.add_facts("Headline", head.items, section=sec)
    no_events = bool(head.warnings) and s.get("programming_events") == 0
    facts = [f"Run directory: {run['path']}", f"Kind: {kind}"]
    card = card_used(_card_source(run)[1], getattr(_load_card(run), "name", None))
    if card is not None:
        where = (
            " (its calibration is at the end of this section)"
            if (run["path"] / "card.json").is_file()
            else ""
        )
        facts.append(f"Device card used: {card}{where}")
    if "test_acc" in s:
        facts.append(f"Test accuracy of the best model (by validation): {s['test_acc']:.2f} %")
    if "transfer_test_acc" in s:
        facts.append(
            f"Float model {s.get('float_test_acc', float('nan')):.2f} % → after transfer "
            f"(q={s.get('q')}, x={s.get('x')}) {s['transfer_test_acc']:.2f} % → after "
            f"re-tuning {s.get('test_acc', float('nan')):.2f} %"
        )
    if "programming_events" in s:
        facts.append(
            f"Programming events (threshold crossings): {s['programming_events']:,}; "
            f"pulses fired: {s.get('pulses', 0):,}; failed devices: {s.get('failed_devices', 0)}"
        )
    report.add_text("Overview", "\n\n".join(facts), section=sec)

    metrics = run["metrics"]
    if metrics is not None and len(metrics):
        report.add_figure("Learning curves", plots.learning_curves(metrics), section=sec)
        report.add_table("Per-epoch metrics", metrics, section=sec)
    events = run["events"]
    if events is not None and len(events) and kind != "sstl" and not no_events:
        same = plots.crossings_equal_pulses(events)
        report.add_figure(
            "Programming events over training",
            plots.events_over_training(events),
            section=sec,
            caption="Every crossing fired exactly one pulse in this run, so crossings and "
            "pulses are the same curve; one panel is drawn."
            if same
            else "",
        )
        report.add_figure(
            "Programming events per epoch", plots.events_per_epoch(events), section=sec
        )
        per_layer = events.groupby("layer", sort=False)[
            ["ltp_pulses", "ltd_pulses", "ltp_crossings", "ltd_crossings"]
        ].sum()
        report.add_table(
            "Events by layer",
            per_layer.reset_index(),
            section=sec,
            caption="Crossings are the paper's 'programming events'; at most "
            "one pulse fires per weight and step.",
        )
    if state is not None and not no_events:
        pulses = {name: layer["ltp_pulses"] + layer["ltd_pulses"] for name, layer in state.items()}
        report.add_figure("Pulses per device", plots.pulse_histograms(pulses), section=sec)
        for name, layer in state.items():
            tiles = tile_arrays(layer, "pulses")
            if len(tiles) <= 12:
                report.add_figure(
                    f"{name}: pulses per device and tile",
                    plots.tile_heatmaps(name, tiles, label="pulses"),
                    section=sec,
                )
    if state is not None:
        epochs = max(int(run["config"].get("train", {}).get("epochs", 1)), 1)
        table = _endurance(run, state)
        assumed = lifetime_assumed(table)
        if not no_events:
            report.add_figure("Endurance margin", plots.endurance_margin(table), section=sec)
        caption = (
            f"Projected lifetime assumes the same schedule ({epochs} epochs) repeated. "
            + (
                "It rests on an ASSUMED lifetime: the wear model was off in this run, so "
                "the card's median endurance stands in for every device."
                if assumed
                else "Lifetimes were drawn per device from the card's endurance spread."
            )
        )
        report.add_table("Endurance by layer", table, section=sec, caption=caption)
    energy = run["energy"]
    if energy is not None and len(energy):
        report.add_figure(
            "Energy by layer, kind and phase", plots.energy_breakdown(energy), section=sec
        )
        totals = energy.groupby(["phase", "kind"])["energy_j"].sum().reset_index()
        report.add_table("Energy totals", totals, section=sec)
    sstl = run["sstl"]
    if sstl is not None and len(sstl):
        report.add_figure("SSTL accuracy per subject", plots.sstl_before_after(sstl), section=sec)
        counts = ["ltp_pulses", "ltd_pulses"]
        per = sstl.groupby("subject")[["acc_before", "acc_after", *counts]].mean().reset_index()
        per["subject"] = [plots.subject_label(x) for x in per["subject"]]
        per = per.rename(columns={c: f"{c} (mean over folds)" for c in counts})
        report.add_table(
            "SSTL by subject",
            per,
            section=sec,
            caption=f"Accuracies and pulse counts are means over each subject's "
            f"{sstl.groupby('subject')['fold'].nunique().max()} SSTL folds.",
        )
    card_path = run["path"] / "card.json"
    if card_path.is_file():
        _add_card(report, card_path, section=sec)
    return head


def _add_card(report: Report, card_path: Path, *, section: str) -> None:
    from ferrocim.calibration.card import DeviceCard
    from ferrocim.reports.calibration import add_calibration_section

    card = DeviceCard.load(card_path)
    add_calibration_section(report, card, section=f"{section}: device card {card.name}")


def build_report(
    run_dirs: list[str | os.PathLike[str]],
    out: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the report of one or several runs; returns the HTML path.

    Default output: ``RUN/report.html`` for one run, ``report.html`` in the common parent
    for several. PNG files of every figure go to ``<html stem>_figures/`` beside it.
    """
    if not run_dirs:
        raise InputError("give at least one run directory")
    runs = [_read_run(Path(p)) for p in run_dirs]
    if out is None:
        out = (
            runs[0]["path"] / "report.html"
            if len(runs) == 1
            else Path(os.path.commonpath([r["path"] for r in runs])) / "report.html"
        )
    out = Path(out)
    title = "ferrocim run report" if len(runs) == 1 else f"ferrocim report: {len(runs)} runs"
    report = Report(title, subtitle=", ".join(r["name"] for r in runs))
    if len(runs) == 1:
        head = run_headline(runs[0])
        for label, value in head.items:
            report.add_headline(label, value)
        for w in head.warnings:
            report.add_warning(w)
    else:
        for r in runs:
            for w in run_headline(r).warnings:
                report.add_warning(f"{r['name']}: {w}")
    table = pd.DataFrame([summary_row(r) for r in runs]).dropna(axis=1, how="all")
    report.add_table("Runs", table, section="Comparison")
    if "programming_events" in table and table["programming_events"].notna().sum() >= 2:
        sub = table.dropna(subset=["programming_events", "test_acc"])
        if len(sub) >= 2:
            report.add_figure(
                "Accuracy vs programming events",
                plots.accuracy_vs_events(sub),
                section="Comparison",
            )
    for r in runs:
        _add_run_sections(
            report, r, prefix=r["name"] if len(runs) > 1 else "Run", single=len(runs) == 1
        )
    return report.save(out, png_dir=out.parent / f"{out.stem}_figures")


__all__ = ["build_report", "run_headline"]
