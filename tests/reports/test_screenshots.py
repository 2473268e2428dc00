"""``benchmarks/report_screenshots.py``: pages built from records, opened in a headless
browser (skipped where none is installed), numbers read back and compared."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from fake_runs import write_energy_study, write_run, write_sweep

from ferrocim.reports.browser import find_browser
from ferrocim.reports.readback import read_page
from ferrocim.reports.sweep import build_sweep_report

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "report_screenshots.py"


def _script():
    spec = importlib.util.spec_from_file_location("report_screenshots", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_check_finds_a_number_that_differs_from_its_record(tmp_path):
    shots = _script()
    sweep = write_sweep(tmp_path / "s", [3, 4], [55.0, 60.25])
    page = read_page(build_sweep_report(sweep))
    assert all(c.ok for c in shots.check_sweep_page(page, sweep))
    write_sweep(tmp_path / "t", [3, 4], [55.0, 60.5])  # the record says otherwise
    bad = [c for c in shots.check_sweep_page(page, tmp_path / "t") if not c.ok]
    assert [(c.what, c.shown, c.record) for c in bad] == [
        ("best test accuracy (%)", "60.25", 60.5),
        ("p1: test_acc", "60.25", 60.5),
    ]
    assert shots.number("6,090") == 6090 and shots.number("—") is None


@pytest.mark.slow
def test_screenshots_of_every_page_with_numbers_read_back(tmp_path):
    browser = find_browser()
    if browser is None:
        pytest.skip("no headless browser installed (Playwright or chromium-headless-shell)")
    shots = _script()
    root = tmp_path / "runs"
    runs = [
        write_run(root / "float", "float", summary={"test_acc": 70.5, "wall_s": 1.0}),
        write_run(
            root / "device",
            "device",
            summary={"test_acc": 61.25, "programming_events": 9, "pulses": 9, "wall_s": 2.0},
            layers={"fc1.synapse": (8, 12), "fc2.synapse": (2, 8)},
            energy=True,
        ),
    ]
    sweep = write_sweep(tmp_path / "sweep", [0, 5], [50.0, 52.5])
    energy = write_energy_study(tmp_path / "energy")
    out = tmp_path / "shots"
    results = shots.run_checks(
        out, runs=runs, sweep=sweep, energy=energy, browser=browser, echo=lambda _s: None
    )
    assert [r.name for r in results] == ["run", "comparison", "sweep", "energy"]
    for r in results:
        assert r.ok, [c for c in r.checks if not c.ok]
        assert r.checks, r.name
        assert r.png is not None and Path(r.png).stat().st_size > 10_000
        width, height = r.size
        assert width == 1400 and 300 < height < 16000  # cut at the page's end
    record = json.loads((out / "checks.json").read_text())
    assert {p["name"] for p in record} == {"run", "comparison", "sweep", "energy"}
