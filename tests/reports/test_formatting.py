"""Number formats of report tables, the headline box and the zero-event warning."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest

from ferrocim.reports import formatting as fmt
from ferrocim.reports.headline import headline, run_warnings
from ferrocim.reports.html import Report


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("programming_events", "count"),
        ("ltp_pulses (mean over folds)", "count"),
        ("R² dW", "r2"),
        ("LTP R² trajectory", "r2"),
        ("Gmin (S)", "conductance"),
        ("g_max_s", "conductance"),
        ("width (s)", "time"),
        ("energy_j", "energy"),
        ("test_acc", "percent"),
        ("wall_s", "number"),
        ("eps", "number"),
    ],
)
def test_column_kind_from_name(name, kind):
    assert fmt.column_kind(name) == kind


def test_counts_r2_missing_and_units():
    assert fmt.count(39970.0) == "39,970"
    assert fmt.count(4825) == "4,825"
    assert fmt.count(4825.5) == "4,825.5"
    assert fmt.r2(-4.441e-16) == "0.000"
    assert fmt.r2(0.98765) == "0.988"
    assert fmt.r2(float("nan")) == fmt.MISSING == "—"
    assert fmt.count(None) == "—"
    assert fmt.quantity(3.2e-9, "energy") == "3.2 nJ"
    assert fmt.quantity(2e-8, "time") == "20 ns"
    assert fmt.quantity(6.676e-8, "conductance") == "66.76 nS"
    # one prefix per column, from its largest value; the unit goes into the header
    head, cells = fmt.format_column("energy_j", [1.83e-10, 2.5e-9, math.nan])
    assert head == "energy (nJ)"
    assert cells == ["0.183", "2.5", "—"]
    head, cells = fmt.format_column("Gmin (S)", [3.408e-08, 1.228e-10])
    assert (head, cells) == ("Gmin (nS)", ["34.08", "0.1228"])


def test_table_html_formats_every_column_and_scrolls_in_its_box():
    rep = Report("t")
    rep.add_table(
        "x",
        pd.DataFrame(
            {
                "layer": ["conv1", "fc2"],
                "total_pulses": [39970.0, 4825],
                "R² dW": [-4.441e-16, 0.5],
                "energy_j": [1e-12, 2e-12],
            }
        ),
    )
    html = rep.render()
    assert '<div class="table-wrap">' in html
    assert "<td>39,970</td>" in html and "<td>4,825</td>" in html
    assert "<td>0.000</td>" in html and "-4.441" not in html
    assert "<th>energy (pJ)</th>" in html
    assert '<td class="text">conv1</td>' in html


def test_headline_and_zero_event_warning():
    cfg = {"kind": "device", "array": {"card": "dut2", "programming": {"eps": 0.05}}}
    summary = {"test_acc": 50.0, "programming_events": 0, "pulses": 0, "steps": 4}
    energy = pd.DataFrame(
        {
            "phase": ["train", "train", "inference"],
            "kind": ["read"] * 3,
            "energy_j": [1e-6, 2e-6, 5.0],
        }
    )
    head = headline(summary, cfg, energy=energy)
    assert dict(head.items) == {
        "kind": "device",
        "device card": "dut2",
        "test accuracy (%)": "50.00",
        "programming events": "0",
        "pulses": "0",
        "training energy (array)": "3 µJ",
    }
    assert len(head.warnings) == 1
    assert re.match(r"No programming events in 4 optimiser steps", head.warnings[0])
    assert "eps = 0.05" in head.warnings[0]
    assert run_warnings({"programming_events": 3}, cfg) == []
    assert run_warnings({"test_acc": 50.0}, {"kind": "float"}) == []
    rep = Report("t")
    rep.add_warning(head.warnings[0])
    for label, value in head.items:
        rep.add_headline(label, value)
    html = rep.render()
    assert html.index('class="warning"') < html.index('class="headline"')


def test_zero_event_run_report_warns_and_writes_svg(tmp_path):
    from ferrocim.reports.run import build_report

    run = tmp_path / "dev"
    run.mkdir()
    (run / "config.toml").write_text(
        'kind = "device"\n[array]\ncard = "dut2"\n[array.programming]\neps = 0.05\n'
    )
    (run / "summary.json").write_text(
        '{"kind": "device", "test_acc": 50.0, "programming_events": 0, "pulses": 0, "steps": 4}'
    )
    pd.DataFrame(
        {
            "phase": ["device"] * 2,
            "epoch": [1, 2],
            "train_loss": [0.7, 0.69],
            "train_acc": [50.0, 50.0],
            "val_loss": [0.7, 0.69],
            "val_acc": [50.0, 50.0],
        }
    ).to_csv(run / "metrics.csv", index=False)
    pd.DataFrame(
        {
            "step": [0],
            "epoch": [0],
            "phase": ["device"],
            "layer": ["fc2"],
            "ltp_pulses": [0],
            "ltd_pulses": [0],
            "ltp_crossings": [0],
            "ltd_crossings": [0],
        }
    ).to_csv(run / "events.csv", index=False)
    html = build_report([run]).read_text()
    assert html.count('class="warning"') == 1
    assert "No programming events in 4 optimiser steps" in html
    assert "Programming events over training" not in html  # no empty event plots
    figs = run / "report_figures"
    assert sorted(p.name for p in figs.iterdir()) == [
        "run-learning-curves.png",
        "run-learning-curves.svg",
    ]
    assert (figs / "run-learning-curves.svg").read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("train_loss", "number"),  # "n_" inside "train_" made it a count (rounded to 0.7)
        ("val_loss", "number"),
        ("n_train", "count"),
        ("n_test", "count"),
        ("projected_runs_to_first_failure", "large"),
        ("median_lifetime", "large"),
        ("max_pulses_per_device", "count"),
    ],
)
def test_column_kind_whole_words(name, kind):
    assert fmt.column_kind(name) == kind


def test_loss_column_keeps_its_digits():
    head, cells = fmt.format_column("train_loss", [0.7001414500105826, 0.69694280500321])
    assert (head, cells) == ("train_loss", ["0.7001", "0.6969"])


def test_large_counts_in_words():
    assert fmt.large_count(526_315_788.5) == "526 million"
    assert fmt.large_count(2_499_999_999.0) == "2.5 billion"
    assert fmt.large_count(999_999.7) == "999,999"  # whole runs: rounded down
    assert fmt.large_count(1e10) == "10 billion"
    assert fmt.large_count(3.4e16) == "3.4 × 10^16"
    assert fmt.large_count(float("inf")) == "∞"
    _, cells = fmt.format_column("projected_runs_to_first_failure", [526_315_788.5, 12.0])
    assert cells == ["526 million", "12"]


def test_one_readable_unit_per_column():
    # the energy table of a run: 0.6691 mJ beside 5.768e-05 mJ before
    head, cells = fmt.format_column("energy_j", [0.6691e-3, 5.768e-08, 0.0])
    assert (head, cells) == ("energy (µJ)", ["669.1", "0.05768", "0"])
    head, cells = fmt.format_column("energy_j", [10.87e-3, 9.351e-9, 0.3383e-3])
    assert (head, cells) == ("energy (µJ)", ["10,870", "0.009351", "338.3"])
    assert not any("e-" in c or "e+" in c for c in cells)
    assert fmt.format_column("energy_j", [0.5e-9, 0.2e-9]) == ("energy (pJ)", ["500", "200"])
    assert fmt.plain(9.99996) == "10"
    assert fmt.plain(123_456.7) == "123,457"


def test_text_in_a_unit_column_is_shown_as_it_is():
    # the energy report's width column showed "—" for every "20ns"
    assert fmt.format_column("width", ["20 ns", "2 µs", None]) == ("width", ["20 ns", "2 µs", "—"])
