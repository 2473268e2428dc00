"""`ferrocim demo` end to end on a tiny size: every stage runs and the report is written."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from ferrocim.pipelines.demo import DemoSize, run_demo


@pytest.mark.slow  # ~40 s on 2 cores; runs in `make test-slow` (CI)
def test_demo_runs_every_stage(tmp_path: Path) -> None:
    size = DemoSize(
        n_subjects=5,
        float_epochs=1,
        device_epochs=1,
        max_train_trials=8,
        sstl_subjects=1,
        sstl_epochs=1,
    )
    lines: list[str] = []
    report = run_demo(tmp_path / "demo", size=size, echo=lines.append)
    assert report.is_file() and report.stat().st_size > 10_000
    assert (tmp_path / "demo" / "calibration" / "calibration.html").is_file()
    runs = report.parent
    for stage in ("float", "device", "sstl"):
        summary = json.loads((runs / stage / "summary.json").read_text())
        assert summary["kind"] == stage
    # only the size departs from the paper: its method is the configuration default
    device_cfg = tomllib.loads((runs / "device" / "config.toml").read_text())
    assert device_cfg["network"]["width"] == DemoSize().width
    assert device_cfg["network"]["dropout"] == 0.3
    assert device_cfg["network"]["surrogate_window"] == 0.3
    assert device_cfg["network"]["surrogate_height"] == 0.3
    assert device_cfg["data"]["normalization"] == "global"
    assert device_cfg["train"]["lr"] == 1e-4 and device_cfg["train"]["lr_schedule"] == "cosine"
    assert device_cfg["train"]["batch_size"] == 64
    assert device_cfg["array"]["programming"]["eps"] == 0.025
    sstl_cfg = tomllib.loads((runs / "sstl" / "config.toml").read_text())
    assert sstl_cfg["sstl"]["lr"] == 6e-4
    assert [line[:5] for line in lines if line.startswith("[")] == [
        "[1/5]",
        "[2/5]",
        "[3/5]",
        "[4/5]",
        "[5/5]",
    ]
    assert sum(line.lstrip().startswith("subject ") for line in lines) == 1  # per subject


def test_pick_card_warns_when_the_best_fit_is_on_a_bound(tmp_path: Path) -> None:
    """The demo never trains on an at-bound card without a warning naming the device."""
    from ferrocim.calibration.card import KernelParams, preset
    from ferrocim.pipelines.demo import pick_card

    card = preset("dut2").model_copy(
        update={
            "name": "D7",
            "ltd": KernelParams(a=0.5969, alpha=10.0, beta=1.6885, at_bound=["alpha"]),
            "fit": {"r2_ltp": 0.99, "r2_ltd": 0.97},
        }
    )
    card.save(tmp_path / "cards" / "D7.json")
    path, why = pick_card(tmp_path)
    assert path.endswith("D7.json")
    assert why == (
        "calibrated card D7 (R² ≥ 0.970); WARNING: D7's fit ends on a parameter bound (LTD alpha)"
    )


def test_demo_ships_its_measurements_and_needs_no_click():
    import subprocess
    import sys

    import ferrocim
    from ferrocim.pipelines.demo import BUNDLED_MEASUREMENTS

    # package data (found in a wheel install too), the same files as measurements/
    assert Path(ferrocim.__file__).parent in BUNDLED_MEASUREMENTS.parents
    assert len(list(BUNDLED_MEASUREMENTS.rglob("*.csv"))) == 15  # 14 B1500 + csv-example
    code = "import sys, ferrocim.pipelines.demo; sys.exit('click' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
