"""The sweep report (issue 28): no empty log plot when nothing fired, a stated tie-break,
and a resume command for points not done."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
from fake_runs import write_sweep

from ferrocim.reports.readback import read_page
from ferrocim.reports.sweep import TIE_RULE, best_points, build_sweep_report


def test_no_pulse_anywhere_skips_the_log_plot_with_a_sentence(tmp_path):
    sweep = write_sweep(tmp_path / "s", [0, 0, 0], [50.0, 50.0, 50.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib's "no positive values" warning
        page = read_page(build_sweep_report(sweep))
    assert "Accuracy vs programming events per eps" not in page.figures
    assert any(t.startswith("Not drawn: none of the 3 finished points fired") for t in page.texts)


def test_points_without_events_are_left_out_and_counted(tmp_path):
    sweep = write_sweep(tmp_path / "s", [0, 10, 20], [50.0, 60.0, 61.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        page = read_page(build_sweep_report(sweep))
    assert "Accuracy vs programming events per eps" in page.figures
    assert any("1 point(s) with no programming event are not drawn" in t for t in page.texts)


def test_best_point_among_ties_follows_the_stated_rule(tmp_path):
    sweep = write_sweep(tmp_path / "s", [30, 10, 10, 5], [70.0, 70.0, 70.0, 60.0])
    table = pd.read_parquet(sweep / "results.parquet")
    assert list(best_points(table)["point"]) == ["p1", "p2", "p0"]
    page = read_page(build_sweep_report(sweep))
    assert page.headline_value("best point") == "p1 (+2 tied)"
    assert page.headline_value("best test accuracy (%)") == "70.00"
    (text,) = [t for t in page.texts if t.startswith("Best test accuracy")]
    assert TIE_RULE in text
    assert "3 points share this accuracy: p1 (10 events), p2 (10 events), p0 (30 events)" in text


def test_points_not_done_give_the_command_that_continues_them(tmp_path):
    sweep = write_sweep(tmp_path / "s", [3, 4], [55.0, float("nan")], status=["done", "unfinished"])
    page = read_page(build_sweep_report(sweep))
    (warning,) = page.warnings
    assert "1 point(s) not done" in warning
    assert warning.endswith(
        f"ferrocim sweep {sweep.absolute()}/sweep.toml --out {sweep.absolute()}"
    )
    assert page.table("Points not done").column("status") == ["unfinished"]


@pytest.mark.parametrize("events", [[0, 0], [2, 1]])
def test_key_numbers_equal_the_results_table(tmp_path, events):
    sweep = write_sweep(tmp_path / "s", events, [52.25, 57.5])
    table = pd.read_parquet(sweep / "results.parquet")
    page = read_page(build_sweep_report(sweep))
    assert page.headline_value("points done") == f"{len(table)} / {len(table)}"
    shown = page.table("Points")
    assert [float(v) for v in shown.column("test_acc (%)")] == list(table["test_acc"])
    assert [int(v) for v in shown.column("programming_events")] == events
