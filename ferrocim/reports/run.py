"""The run report: one self-contained HTML page (plus PNGs) built from run directories.

Everything shown is read from the run directory's files (config, metrics, events, tile
state, energy, SSTL table, card), so a report can be rebuilt later from the folder alone.
Several run directories give one page with a comparison table and each run's sections.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ferrocim.checks import InputError
from ferrocim.reports import plots
from ferrocim.reports.array_state import endurance_table, read_tile_state, tile_arrays
from ferrocim.reports.headline import (
    ANALOG_KINDS,
    Headline,
    card_used,
    headline,
    lifetime_assumed,
    unfinished_warning,
)
from ferrocim.reports.html import Report
from ferrocim.rundir import COUNT_FIELDS, RunDir, RunSummary, config_value, resume_command

#: Comparison-table columns taken from each run's config.toml (column → dotted field):
#: array fields for the kinds that program an array, transfer fields for re-tuning runs.
ARRAY_COLUMNS = {
    "card": "array.card",
    "eps": "array.programming.eps",
    "thr_asym": "array.programming.thr_asym",
}
TRANSFER_COLUMNS = {"q": "transfer.q", "x": "transfer.x"}
#: Comparison-table columns taken from each run's summary.json (RunSummary fields), the
#: results first; the settings (card, eps, ...) follow them, then these.
SUMMARY_COLUMNS = (
    "test_acc",
    "transfer_test_acc",
    "acc_before",
    "acc_after",
    "programming_events",
    "pulses",
)
TAIL_COLUMNS = ("failed_devices", "wall_s")
FAILURE_RECORD = "failure.json"  # written by ferrocim.pipelines.runs (not imported here)


@dataclass(frozen=True)
class RunContents:
    """What a report reads from one run directory."""

    run: RunDir
    config: dict[str, Any]
    summary: RunSummary
    metrics: pd.DataFrame
    events: pd.DataFrame
    energy: pd.DataFrame | None
    sstl: pd.DataFrame

    @property
    def name(self) -> str:
        return self.run.path.name

    @property
    def kind(self) -> str | None:
        return config_value(self.config, "kind")

    @property
    def finished(self) -> bool:
        """True once the run wrote ``summary.json`` (its final numbers)."""
        return self.run.summary.is_file()

    def failure(self) -> dict[str, Any] | None:
        """``failure.json`` of a run marked failed, else None."""
        path = self.run.path / FAILURE_RECORD
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"error": f"unreadable {FAILURE_RECORD}"}
        return data if isinstance(data, dict) else {}

    @property
    def status(self) -> str:
        """``done``, ``failed`` (marked by ``failure.json``) or ``unfinished``."""
        if self.finished:
            return "done"
        return "failed" if self.failure() is not None else "unfinished"

    def resume_command(self) -> str | None:
        """The exact command that continues this run (None once finished)."""
        return None if self.finished else resume_command(self.kind, self.run.path)

    def unfinished_warning(self) -> str | None:
        """The warning of an unfinished run (None once finished)."""
        if self.finished:
            return None
        m = self.metrics
        done = int(m["epoch"].max()) if len(m) and "epoch" in m else None
        total = config_value(self.config, "sstl.epochs" if self.kind == "sstl" else "train.epochs")
        return unfinished_warning(
            resumable=self.resume_command() is not None,
            epochs_done=done,
            epochs_total=int(total) if total is not None else None,
            failure=self.failure(),
        )


def _read_run(path: Path) -> RunContents:
    run = RunDir(path)
    if not run.exists():
        raise InputError(f"{path} is not a ferrocim run directory (no config.toml inside)")
    config = run.read_config()
    return RunContents(
        run=run,
        config=config,
        summary=run.read_summary() or RunSummary(kind=str(config.get("kind"))),
        metrics=run.read_metrics(),
        events=run.read_events(),
        energy=run.read_energy(),
        sstl=pd.DataFrame([vars(r) for r in run.read_sstl()]),
    )


def summary_row(run: RunContents) -> dict[str, Any]:
    """One comparison-table row of a run: name, kind, status, results, then the settings
    that apply to its kind (a float run has no card, eps or thr_asym; only re-tuning runs
    have q and x); missing numbers left empty."""
    row: dict[str, Any] = {"run": run.name, "kind": run.kind, "status": run.status}
    row.update({key: getattr(run.summary, key) for key in SUMMARY_COLUMNS})
    analog = run.kind in ANALOG_KINDS
    row.update(
        {c: config_value(run.config, k) if analog else None for c, k in ARRAY_COLUMNS.items()}
    )
    row["card"] = card_used(run.config)  # float runs have none
    retune = run.kind == "retune"
    row.update(
        {c: config_value(run.config, k) if retune else None for c, k in TRANSFER_COLUMNS.items()}
    )
    row.update({key: getattr(run.summary, key) for key in TAIL_COLUMNS})
    return row


def _card_name(run: RunContents) -> str | None:
    return run.run.read_card().name if run.run.card.is_file() else None


def _endurance(run: RunContents, state: dict[str, Any] | None) -> pd.DataFrame | None:
    if state is None:
        return None
    nominal = run.run.read_card().endurance.cycles_median if run.run.card.is_file() else None
    return endurance_table(state, nominal_lifetime=nominal)


def run_headline(run: RunContents, state: dict[str, Any] | None = None) -> Headline:
    """The headline of a run (its tile state read here when not given)."""
    if state is None and run.run.tiles.is_file():
        state = read_tile_state(run.run.tiles)
    head = headline(
        run.summary.to_json(),
        run.config,
        card_name=_card_name(run),
        energy=run.energy,
        endurance=_endurance(run, state),
    )
    if not run.finished:
        head.items.insert(1, ("status", run.status))
    return head


def _add_run_sections(report: Report, run: RunContents, *, prefix: str, single: bool) -> None:
    sec = prefix
    s = run.summary
    kind = run.kind
    state = read_tile_state(run.run.tiles) if run.run.tiles.is_file() else None
    head = run_headline(run, state)
    if not single:  # one run: the page's own headline box and warnings say it
        report.add_facts("Headline", head.items, section=sec)
    no_events = bool(head.warnings) and s.programming_events == 0
    facts = [f"Run directory: {run.run.path}", f"Kind: {kind}"]
    card = card_used(run.config, _card_name(run))
    if card is not None:
        where = " (its calibration is at the end of this section)" if run.run.card.is_file() else ""
        facts.append(f"Device card used: {card}{where}")
    nan = float("nan")
    if s.test_acc is not None:
        facts.append(f"Test accuracy of the best model (by validation): {s.test_acc:.2f} %")
    if s.transfer_test_acc is not None:
        facts.append(
            f"Float model {s.float_test_acc if s.float_test_acc is not None else nan:.2f} % "
            f"→ after transfer (q={s.q}, x={s.x}) {s.transfer_test_acc:.2f} % → after "
            f"re-tuning {s.test_acc if s.test_acc is not None else nan:.2f} %"
        )
    if s.programming_events is not None:
        facts.append(
            f"Programming events (threshold crossings): {s.programming_events:,}; "
            f"pulses fired: {s.pulses or 0:,}; failed devices: {s.failed_devices or 0}"
        )
    report.add_text("Overview", "\n\n".join(facts), section=sec)

    metrics = run.metrics
    if metrics is not None and len(metrics):
        report.add_figure("Learning curves", plots.learning_curves(metrics), section=sec)
        report.add_table("Per-epoch metrics", metrics, section=sec)
    events = run.events
    if len(events) and kind != "sstl" and not no_events:
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
        per_layer = events.groupby("layer", sort=False)[list(COUNT_FIELDS)].sum()
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
        maps = []
        for name, layer in state.items():
            tiles = tile_arrays(layer, "pulses")
            if len(tiles) <= 12:
                total = int(pulses[name].sum())
                maps.append(
                    (
                        f"{name} ({len(tiles)} tile{'s' if len(tiles) > 1 else ''}, "
                        f"{total:,} pulses)",
                        plots.tile_heatmaps(name, tiles, label="pulses"),
                    )
                )
        if maps:
            report.add_figure_group(
                "Pulses per device and tile",
                maps,
                section=sec,
                caption="One heatmap per layer (rows: inputs, columns: outputs, one panel per "
                "tile); click a layer to open it.",
            )
    if state is not None:
        epochs = max(int(config_value(run.config, "train.epochs") or 1), 1)
        table = _endurance(run, state)
        if not no_events:
            report.add_figure("Endurance margin", plots.endurance_margin(table), section=sec)
        caption = f"Projected lifetime assumes the same schedule ({epochs} epochs) repeated. " + (
            "It rests on an ASSUMED lifetime: the wear model was off in this run, so the "
            "card's median endurance stands in for every device."
            if lifetime_assumed(table)
            else "Lifetimes were drawn per device from the card's endurance spread."
        )
        report.add_table("Endurance by layer", table, section=sec, caption=caption)
    energy = run.energy
    if energy is not None and len(energy):
        report.add_figure(
            "Energy by layer, kind and phase", plots.energy_breakdown(energy), section=sec
        )
        totals = energy.groupby(["phase", "kind"])["energy_j"].sum().reset_index()
        report.add_table("Energy totals", totals, section=sec)
    sstl = run.sstl
    if len(sstl):
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
    if run.run.card.is_file():
        from ferrocim.reports.calibration import add_calibration_section

        card = run.run.read_card()
        add_calibration_section(report, card, section=f"{sec}: device card {card.name}")


def build_report(
    run_dirs: list[str | os.PathLike[str]],
    out: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the report of one or several runs; returns the HTML path.

    Default output: ``RUN/report.html`` for one run, ``report.html`` in the common parent
    for several. PNG and SVG files of every figure go to ``<html stem>_figures/`` beside it.
    """
    if not run_dirs:
        raise InputError("give at least one run directory")
    runs = [_read_run(Path(p)) for p in run_dirs]
    if out is None:
        out = (
            runs[0].run.path / "report.html"
            if len(runs) == 1
            else Path(os.path.commonpath([r.run.path for r in runs])) / "report.html"
        )
    out = Path(out)
    title = "ferrocim run report" if len(runs) == 1 else f"ferrocim report: {len(runs)} runs"
    report = Report(title, subtitle=", ".join(r.name for r in runs))
    single = len(runs) == 1
    for r in runs:
        who = "" if single else f"{r.name}: "
        text = r.unfinished_warning()
        if text is not None:
            report.add_warning(who + text, command=r.resume_command())
        head = run_headline(r)
        for w in head.warnings:
            report.add_warning(who + w)
        if single:
            for label, value in head.items:
                report.add_headline(label, value)
    table = pd.DataFrame([summary_row(r) for r in runs]).dropna(axis=1, how="all")
    if (table["status"] == "done").all():
        table = table.drop(columns="status")
    report.add_table(
        "Runs",
        table,
        section="Comparison",
        caption="Results first, then the settings that apply to each kind of run (blank "
        "where a kind has none: a float run has no array).",
    )
    curves = {r.name: r.metrics for r in runs if len(r.metrics) and "val_acc" in r.metrics}
    if not single and curves:
        report.add_figure(
            "Validation curves",
            plots.validation_overlay(curves),
            section="Comparison",
            caption="Validation accuracy and loss per epoch of every run with per-epoch "
            "metrics, on shared axes (SSTL runs have none: see their per-subject tables).",
        )
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
            report, r, prefix=r.name if len(runs) > 1 else "Run", single=len(runs) == 1
        )
    return report.save(out, png_dir=out.parent / f"{out.stem}_figures")


__all__ = ["build_report", "run_headline"]
