"""The main job on the embedded defaults, end to end, in a few minutes on a laptop.

calibrate the bundled measurements → synthetic motor-imagery data set (EDF, read back by
the real loader) → float pretraining → on-device training with the calibrated card (or
dut2 when the calibration is not usable) → SSTL on the test subjects → HTML report.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from ferrocim.pipelines.config import load_config

#: The bundled measurement files, package data of ferrocim (``ferrocim/data/measurements``,
#: shown as ``measurements/`` at the top of a source checkout); found in a wheel install too.
BUNDLED_MEASUREMENTS = Path(str(files("ferrocim") / "data" / "measurements"))


@dataclass(frozen=True)
class DemoSize:
    """How big the demo is: the only settings in which it differs from the paper.

    Everything else is the published method (surrogate ``0.3·1[|v−θ|<0.3]``, dropout 0.3,
    global normalisation, Adam 1e-4 with cosine annealing, batch 64, eps 0.025, SSTL at
    6e-4): the demo is the paper's experiment on 40 synthetic subjects instead of 103, a
    quarter-width network (``width = 0.25``: 16/32/64 channels, 64 hidden neurons, 49,888
    parameters; ``width = 1`` is the paper's 721,312-parameter network, about 6× slower on
    a CPU), 10 float epochs and SSTL on four test subjects. On-device training needs the
    optimiser steps: with 20 subjects (10 steps per epoch) its 200 steps programmed the
    array 363 times and it stayed at chance (50.6 %); with 40 subjects it leaves chance
    after about 100 steps (measured, dut2, seed 0: validation 66 % at epoch 6, 74 % at
    14). :meth:`paper_differences` lists the sizes for the log.
    """

    n_subjects: int = 40
    width: float = 0.25
    float_epochs: int = 10
    device_epochs: int = 20
    max_train_trials: int | None = None
    sstl_subjects: int = 4
    sstl_epochs: int = 5

    def paper_differences(self) -> list[str]:
        """What this demo does differently from the published method (for the log)."""
        return [
            f"width {self.width:g} (paper 1), {self.n_subjects} synthetic subjects "
            "(paper: 103 EEGMMIDB subjects)",
            f"{self.float_epochs}/{self.device_epochs} float/device epochs (paper 20), "
            f"SSTL {self.sstl_epochs} epochs on {self.sstl_subjects} test subjects "
            "(paper: every test subject)",
        ]


def pick_card(calibration_dir: Path) -> tuple[str, str]:
    """The calibrated card to train on, or ``dut2`` with the reason it was not used."""
    from ferrocim.calibration.card import DeviceCard

    cards = sorted((calibration_dir / "cards").glob("*.json"))
    best: tuple[float, Path] | None = None
    for path in cards:
        card = DeviceCard.load(path)
        r2 = min(float(card.fit.get("r2_ltp", 0.0)), float(card.fit.get("r2_ltd", 0.0)))
        if best is None or r2 > best[0]:
            best = (r2, path)
    if best is None:
        return "dut2", "no calibrated card was produced"
    if best[0] < 0.5:
        return "dut2", f"best calibrated card {best[1].stem} fits with R² {best[0]:.2f} < 0.5"
    card = DeviceCard.load(best[1])
    bound = [f"{k.upper()} {p}" for k in ("ltp", "ltd") for p in getattr(card, k).at_bound]
    why = f"calibrated card {best[1].stem} (R² ≥ {best[0]:.3f})"
    if bound:
        why += f"; WARNING: {best[1].stem}'s fit ends on a parameter bound ({', '.join(bound)})"
    return str(best[1]), why


def run_demo(
    out_dir: str | os.PathLike[str] = "reports/demo",
    *,
    size: DemoSize | None = None,
    seed: int = 0,
    device: str = "cpu",
    measurements: str | os.PathLike[str] | None = None,
    echo: Callable[[str], Any] = print,
) -> Path:
    """Run every stage on the embedded defaults; returns the path of the HTML report.

    ``echo`` receives the progress lines (the CLI passes ``click.echo``).
    """
    from ferrocim.calibration import calibrate
    from ferrocim.pipelines.sstl import sstl
    from ferrocim.pipelines.train import train
    from ferrocim.reports.calibration import write_calibration_report
    from ferrocim.reports.run import build_report

    size = size or DemoSize()
    out = Path(out_dir)
    t0 = time.perf_counter()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    runs = out / "runs" / stamp

    echo("differences from the paper's settings (configs/paper_*.toml has them):")
    for line in size.paper_differences():
        echo(f"  - {line}")
    echo("[1/5] calibrating the bundled measurements")
    calib_dir = out / "calibration"
    calibrated = calibrate([Path(measurements or BUNDLED_MEASUREMENTS)], calib_dir)
    write_calibration_report(calibrated, calib_dir)
    card, why = pick_card(calib_dir)
    echo(f"      device card for training: {why}")

    common: dict[str, Any] = {
        "seed": seed,
        "device": device,
        "data.n_subjects": size.n_subjects,
        "data.cache_dir": str(out / "data"),
        "data.max_train_trials": size.max_train_trials,
        "network.width": size.width,
        "array.card": card,
    }
    echo("[2/5] synthetic EEG + float pretraining")
    float_cfg = load_config(
        None,
        {
            **common,
            "train.epochs": size.float_epochs,
        },
        kind="float",
    )
    float_run = train(float_cfg, run_dir=runs / "float")
    echo(f"      float test accuracy {float_run.read_summary().test_acc:.1f} %")

    echo("[3/5] on-device training from scratch")
    dev_cfg = load_config(
        None,
        {
            **common,
            "train.epochs": size.device_epochs,
        },
        kind="device",
    )
    dev_run = train(dev_cfg, run_dir=runs / "device")
    s = dev_run.read_summary()
    echo(
        f"      device test accuracy {s.test_acc:.1f} %, "
        f"{s.programming_events or 0:,} programming events"
    )

    echo("[4/5] subject-specific transfer learning (fc1+fc2 on device, batch 1)")
    test_subjects = s.test_subjects[: size.sstl_subjects]
    sstl_cfg = load_config(
        None,
        {
            **common,
            "sstl.base_run": str(dev_run.path),
            "sstl.subjects": test_subjects,
            "sstl.epochs": size.sstl_epochs,
        },
        kind="sstl",
    )
    sstl_run = sstl(sstl_cfg, run_dir=runs / "sstl")
    ss = sstl_run.read_summary()
    echo(f"      SSTL {ss.acc_before:.1f} → {ss.acc_after:.1f} % on subjects {test_subjects}")
    by_subject: dict[int, list[tuple[float, float]]] = {}
    for row in sstl_run.read_sstl():
        by_subject.setdefault(row.subject, []).append((row.acc_before, row.acc_after))
    for subject, accs in by_subject.items():
        before = sum(b for b, _ in accs) / len(accs)
        after = sum(a for _, a in accs) / len(accs)
        echo(f"        subject {subject}: {before:.1f} → {after:.1f} % (mean of {len(accs)} folds)")

    echo("[5/5] report")
    report = build_report([float_run.path, dev_run.path, sstl_run.path], runs / "report.html")
    echo(f"done in {time.perf_counter() - t0:.0f} s")
    echo(f"calibration report: {calib_dir / 'calibration.html'}")
    echo(f"run report:         {report}")
    return report


__all__ = ["DemoSize", "pick_card", "run_demo"]
