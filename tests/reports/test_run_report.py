"""The run and comparison reports (issue 28): what the page shows, read back from its HTML
and compared with the run records it came from."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from fake_runs import write_run

from ferrocim.reports import formatting as fmt
from ferrocim.reports.readback import Page, read_page
from ferrocim.reports.run import build_report

LAYERS = {"fc1.synapse": (8, 12), "fc2.synapse": (2, 8), "r1.recurrent": (8, 8)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    return {
        "float": write_run(root / "float", "float", summary={"test_acc": 70.5555, "wall_s": 12.0}),
        "device": write_run(
            root / "device",
            "device",
            summary={
                "test_acc": 71.1111,
                "programming_events": 6090,
                "pulses": 6090,
                "failed_devices": 0,
                "steps": 30,
                "wall_s": 394.65,
            },
            layers=LAYERS,
            energy=True,
            seed=1,
        ),
        "stopped": write_run(root / "stopped", "device", summary=None, epochs=2, seed=2),
        "dev2": write_run(
            root / "dev2",
            "device",
            summary={"test_acc": 64.0, "programming_events": 12, "pulses": 10, "wall_s": 3.5},
            seed=3,
        ),
    }


@pytest.fixture(scope="module")
def comparison(runs) -> Page:
    """Three runs side by side (the device run with tiles has its own page: it is slow)."""
    return read_page(build_report([runs[n] for n in ("float", "dev2", "stopped")]))


@pytest.fixture(scope="module")
def device_page(runs) -> Page:
    return read_page(build_report([runs["device"]]))


def test_comparison_key_columns_first_and_float_row_blank(comparison):
    table = comparison.table("Runs")
    heads = table.headers
    assert heads[:4] == ["run", "kind", "status", "test_acc (%)"]
    assert heads.index("programming_events") < heads.index("card") < heads.index("eps")
    rows = {r["run"]: r for r in table.records()}
    # a float run has no array: no card, eps or thr_asym (the config holds the defaults)
    assert [rows["float"][c] for c in ("card", "eps", "thr_asym")] == ["—"] * 3
    assert [rows["dev2"][c] for c in ("card", "eps", "thr_asym")] == ["dut2", "0.025", "1"]
    assert "q" not in heads and "x" not in heads  # only re-tuning runs have a transfer
    assert [rows[n]["status"] for n in ("float", "dev2", "stopped")] == [
        "done",
        "done",
        "unfinished",
    ]


def test_comparison_overlays_the_validation_curves(comparison, runs):
    assert comparison.articles[:2] == ["Runs", "Validation curves"]
    assert "Validation curves" in comparison.figures
    figs = runs["float"].parent / "report_figures"
    assert (figs / "comparison-validation-curves.png").is_file()


def test_unfinished_run_is_flagged_with_its_resume_command(comparison, runs):
    page = read_page(build_report([runs["stopped"]]))
    assert page.headline_value("status") == "unfinished"
    (warning,) = page.warnings
    command = f"ferrocim train device --resume --run-dir {runs['stopped'].absolute()}"
    assert "Unfinished run: no summary.json" in warning
    assert "after epoch 2 of 2" in warning
    assert warning.endswith(command)
    assert any(w.startswith("Warning: stopped: Unfinished run") for w in comparison.warnings)
    assert len(comparison.warnings) == 1


def test_failed_run_says_it_failed(tmp_path):
    run = write_run(tmp_path / "f", "retune", summary=None, epochs=1)
    (run / "failure.json").write_text(json.dumps({"error": "RuntimeError: boom"}))
    page = read_page(build_report([run]))
    assert page.headline_value("status") == "failed"
    assert "It failed (RuntimeError: boom) after epoch 1 of 1" in page.warnings[0]
    assert page.warnings[0].endswith(f"ferrocim retune --resume --run-dir {run.absolute()}")


def test_loss_digits_and_lifetime_in_words(device_page, runs):
    metrics = pd.read_csv(runs["device"] / "metrics.csv")
    shown = device_page.table("Per-epoch metrics").column("train_loss")
    assert shown == [fmt.number(v) for v in metrics["train_loss"]]
    assert len(set(shown)) == len(shown)  # not "0.7" on every row
    life = device_page.headline_value("projected lifetime")
    assert life.endswith("million runs"), life
    cells = device_page.table("Endurance by layer").column("projected_runs_to_first_failure")
    assert cells and all(c.endswith("million") for c in cells), cells


def test_energy_totals_one_readable_unit(device_page, runs):
    table = device_page.table("Energy totals")
    (head,) = [h for h in table.headers if h.startswith("energy")]
    assert head == "energy (µJ)"
    cells = table.column(head)
    assert not any("e-" in c for c in cells), cells
    energy = pd.read_csv(runs["device"] / "energy.csv")
    assert sorted(float(c.replace(",", "")) for c in cells) == pytest.approx(
        sorted(energy.groupby(["phase", "kind"])["energy_j"].sum() * 1e6), rel=1e-3
    )


def test_tile_heatmaps_fold_into_one_block(device_page, runs):
    assert device_page.articles.count("Pulses per device and tile") == 1
    assert not any(a.endswith(": pulses per device and tile") for a in device_page.articles)
    html = (runs["device"] / "report.html").read_text()
    assert html.count('<details class="figure">') == len(LAYERS)
    figs = sorted(p.name for p in (runs["device"] / "report_figures").glob("*tile*.png"))
    assert len(figs) == len(LAYERS)


def test_key_numbers_equal_summary_json(device_page, comparison, runs):
    """The page's headline numbers and each run's comparison row equal its summary.json."""
    s = json.loads((runs["device"] / "summary.json").read_text())
    assert device_page.headline_value("test accuracy (%)") == f"{s['test_acc']:.2f}"
    assert device_page.headline_value("programming events") == f"{s['programming_events']:,}"
    assert device_page.headline_value("pulses") == f"{s['pulses']:,}"
    for row in comparison.table("Runs").records():
        path = runs[row["run"]] / "summary.json"
        if not path.is_file():
            assert row["test_acc (%)"] == "—"
            continue
        s = json.loads(path.read_text())
        assert float(row["test_acc (%)"]) == pytest.approx(s["test_acc"], abs=0.005)
        if "programming_events" in s:
            assert int(row["programming_events"].replace(",", "")) == s["programming_events"]
        assert math.isclose(float(row["wall_s"]), s["wall_s"], rel_tol=1e-3)
