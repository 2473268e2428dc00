"""The energy-study report (issue 28): widths shown (in µs, not "us"), no empty panel when
no run reached the target, readable energy units, whole-number epoch ticks."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from fake_runs import energy_results as results

from ferrocim.reports.energy_study import (
    accuracy_vs_epoch,
    energy_to_target,
    micro,
    summary_table,
    width_label,
    write_study_report,
)
from ferrocim.reports.readback import read_page


def write(tmp_path: Path, table: pd.DataFrame) -> Path:
    out = tmp_path / "study"
    out.mkdir()
    table.to_parquet(out / "results.parquet")
    return write_study_report(out)


def test_widths_in_words_and_micro_not_us():
    assert [width_label(w) for w in (2e-8, 2e-6, 2e-3)] == ["20 ns", "2 µs", "2 ms"]
    assert micro("20 ns, 200 ns, 2 us, 20us") == "20 ns, 200 ns, 2 µs, 20 µs"
    assert list(summary_table(results(reached=True))["pulse width"]) == [
        "20 ns",
        "20 ns",
        "2 µs",
        "2 µs",
    ]


def test_page_widths_units_and_numbers(tmp_path):
    res = results(reached=True)
    page = read_page(write(tmp_path, res))
    table = page.table("Results (median over seeds)")
    assert table.column("pulse width") == ["20 ns", "20 ns", "2 µs", "2 µs"]  # was "—"
    assert "Energy to target accuracy" in page.figures
    assert not any(" us" in t or "us)" in t for t in page.texts)
    for head in table.headers:
        if "energy" in head:
            cells = [c for c in table.column(head) if c != "—"]
            assert not any("e-" in c or "e+" in c for c in cells), (head, cells)
    # key numbers: the final accuracies are the results' medians, in %
    acc = [float(v) for v in table.column("final_acc (%)")]
    assert acc == pytest.approx(list(100 * res["final_acc"]), abs=0.005)
    (head,) = [h for h in table.headers if h.startswith("energy_to")]
    assert head.endswith("(µJ)")


def test_no_run_reached_the_target_says_so_instead_of_an_empty_panel(tmp_path):
    page = read_page(write(tmp_path, results(reached=False)))
    assert "Energy to target accuracy" not in page.figures
    assert any(t.startswith("Not drawn: no run reached the target of 80 %") for t in page.texts)
    assert len(list((tmp_path / "study" / "plots").glob("*.png"))) == 2


def test_energy_axis_in_micro_joules_and_epoch_ticks_whole():
    fig = energy_to_target(results(reached=True))
    assert fig.axes[0].get_ylabel() == "energy to target (µJ)"
    plt.close(fig)
    fig = accuracy_vs_epoch(results(reached=True, epochs=2))
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        lo, hi = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
    plt.close(fig)
