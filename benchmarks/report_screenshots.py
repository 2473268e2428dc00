"""Screenshots of the run, comparison, sweep and energy reports, with their numbers checked.

    python benchmarks/report_screenshots.py --out OUT [--demo reports/demo]
        [--runs RUN ...] [--sweep SWEEP_DIR] [--energy STUDY_DIR]

Builds each page from the records into OUT (nothing is written into the given folders),
opens it in a headless browser (:mod:`ferrocim.reports.browser`: Playwright or a Chromium
binary), saves ``OUT/<page>.png`` and reads the page's key numbers back from the DOM the
browser built, comparing them with the records they come from (``summary.json``,
``results.parquet``). Where no headless browser is installed the screenshots are skipped
with a message and the numbers are read from the HTML files instead. Pages:

- ``run``: the first array run of ``--runs`` (or of the demo's latest runs folder) alone;
- ``comparison``: all those runs on one page (what ``make demo`` writes);
- ``calibration``: the demo's calibration page as it is (screenshot and headline only);
- ``sweep`` and ``energy``: from a sweep folder and an energy-study folder.

Exit status 1 when a number on a page differs from its record; OUT/checks.json lists
every page, its screenshot and each number compared.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ferrocim.reports.browser import Browser, capture, find_browser
from ferrocim.reports.readback import Page, read_page

#: The order pages are built and listed in.
PAGES = ("run", "comparison", "calibration", "sweep", "energy")


def number(cell: str) -> float | None:
    """A displayed number back as a float (``"6,090"`` → 6090.0; ``"—"`` → None)."""
    text = cell.replace(",", "").replace("%", "").strip()
    if text in ("", "—"):
        return None
    return float(text.split()[0])


@dataclass
class Check:
    """One number shown on a page against its record (``ok`` within the shown rounding)."""

    what: str
    shown: str
    record: float | None
    ok: bool


@dataclass
class PageResult:
    """A page, its screenshot (None where no browser) and its checks."""

    name: str
    html: str
    png: str | None = None
    size: tuple[int, int] | None = None
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def _agree(shown: str, record: Any, decimals: int) -> Check:
    value = number(shown)
    rec = None if record is None or (isinstance(record, float) and math.isnan(record)) else record
    if rec is None or value is None:
        return Check("", shown, rec, value is None and rec is None)
    return Check("", shown, float(rec), abs(value - float(rec)) <= 0.5 * 10**-decimals + 1e-9)


def _check(checks: list[Check], what: str, shown: str, record: Any, decimals: int = 0) -> None:
    c = _agree(shown, record, decimals)
    c.what = what
    checks.append(c)


def _summary(run: Path) -> dict[str, Any]:
    path = run / "summary.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def check_run_page(page: Page, runs: list[Path]) -> list[Check]:
    """The headline of a one-run page against its ``summary.json``."""
    s = _summary(runs[0])
    out: list[Check] = []
    labels = dict(page.headline)
    if "test accuracy (%)" in labels:
        _check(out, "test accuracy (%)", labels["test accuracy (%)"], s.get("test_acc"), 2)
    for label, key in (("programming events", "programming_events"), ("pulses", "pulses")):
        if label in labels:
            _check(out, label, labels[label], s.get(key))
    return out


def check_comparison_page(page: Page, runs: list[Path]) -> list[Check]:
    """Each row of the comparison table against its run's ``summary.json``."""
    by_name = {r.name: r for r in runs}
    out: list[Check] = []
    for row in page.table("Runs").records():
        s = _summary(by_name[row["run"]])
        for col, key, dec in (
            ("test_acc (%)", "test_acc", 2),
            ("acc_after (%)", "acc_after", 2),
            ("programming_events", "programming_events", 0),
            ("pulses", "pulses", 0),
        ):
            if col in row:
                _check(out, f"{row['run']}: {col}", row[col], s.get(key), dec)
    return out


def check_sweep_page(page: Page, sweep: Path) -> list[Check]:
    """Points done, best accuracy and each point's accuracy against ``results.parquet``."""
    table = pd.read_parquet(sweep / "results.parquet")
    done = table[table["status"] == "done"]
    out: list[Check] = []
    _check(out, "points done", page.headline_value("points done").split("/")[0], len(done))
    if done["test_acc"].notna().any():
        shown = page.headline_value("best test accuracy (%)")
        _check(out, "best test accuracy (%)", shown, done["test_acc"].max(), 2)
    shown_rows = {r["point"]: r for r in page.table("Points").records()}
    for _, r in table.iterrows():
        _check(
            out, f"{r['point']}: test_acc", shown_rows[r["point"]]["test_acc (%)"], r["test_acc"], 2
        )
    return out


def check_energy_page(page: Page, study: Path) -> list[Check]:
    """The table's median final accuracies and pulses against ``results.parquet``."""
    res = pd.read_parquet(study / "results.parquet")
    med = res.groupby(["width_s", "rule"], sort=False)[["final_acc", "pulses"]].median()
    rows = page.table("Results (median over seeds)").records()
    out: list[Check] = []
    for row, ((_w, rule), rec) in zip(rows, med.iterrows(), strict=True):
        what = f"{row['pulse width']} {rule}"
        _check(out, f"{what}: final_acc (%)", row["final_acc (%)"], 100 * rec["final_acc"], 2)
        _check(out, f"{what}: pulses", row["pulses"], rec["pulses"])
    return out


def latest_demo_runs(demo: Path) -> list[Path]:
    """The run folders of the demo's latest ``runs/<stamp>/`` folder (float, device, SSTL)."""
    stamps = sorted(p for p in (demo / "runs").glob("*") if p.is_dir())
    if not stamps:
        return []
    return sorted(p for p in stamps[-1].iterdir() if (p / "config.toml").is_file())


def build_pages(
    out: Path,
    *,
    runs: list[Path],
    calibration: Path | None = None,
    sweep: Path | None = None,
    energy: Path | None = None,
) -> list[tuple[str, Path, Callable[[Page], list[Check]]]]:
    """Write the pages into ``out``: (name, HTML file, its check) for each page built."""
    from ferrocim.reports.energy_study import write_study_report
    from ferrocim.reports.run import build_report
    from ferrocim.reports.sweep import build_sweep_report
    from ferrocim.rundir import RunDir

    pages: list[tuple[str, Path, Callable[[Page], list[Check]]]] = []
    if runs:
        kinds = [RunDir(r).read_config().get("kind") for r in runs]
        one = next((r for r, k in zip(runs, kinds, strict=True) if k != "float"), runs[0])
        html = build_report([one], out / "run.html")
        pages.append(("run", html, lambda p: check_run_page(p, [one])))
    if len(runs) > 1:
        html = build_report(runs, out / "comparison.html")
        pages.append(("comparison", html, lambda p: check_comparison_page(p, runs)))
    if calibration is not None and calibration.is_file():
        pages.append(("calibration", calibration, lambda p: []))
    if sweep is not None:
        html = build_sweep_report(sweep, out / "sweep.html")
        pages.append(("sweep", html, lambda p: check_sweep_page(p, sweep)))
    if energy is not None:
        study = out / "energy"
        study.mkdir(parents=True, exist_ok=True)
        shutil.copy2(energy / "results.parquet", study / "results.parquet")
        html = write_study_report(study)
        pages.append(("energy", html, lambda p: check_energy_page(p, energy)))
    return pages


def run_checks(
    out: Path,
    *,
    runs: list[Path],
    calibration: Path | None = None,
    sweep: Path | None = None,
    energy: Path | None = None,
    browser: Browser | None = None,
    echo: Callable[[str], None] = print,
) -> list[PageResult]:
    """Build, screenshot (where ``browser``) and check every page; write OUT/checks.json."""
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for name, html, check in build_pages(
        out, runs=runs, calibration=calibration, sweep=sweep, energy=energy
    ):
        res = PageResult(name, str(html))
        if browser is not None:
            png = out / f"{name}.png"
            dom = capture(browser, html, png)
            page = read_page(dom)
            from PIL import Image

            with Image.open(png) as im:
                res.png, res.size = str(png), im.size
        else:
            page = read_page(Path(html))
        res.checks = check(page)
        if not page.title:
            res.checks.append(Check("page title", "", None, False))
        results.append(res)
        bad = [c for c in res.checks if not c.ok]
        shot = (
            f"{res.png} ({res.size[0]}×{res.size[1]} px)"
            if res.png and res.size
            else "no screenshot"
        )
        echo(
            f"{name:<12} {shot}; {len(res.checks)} numbers checked"
            + ("" if not bad else f"; MISMATCH: {[(c.what, c.shown, c.record) for c in bad]}")
        )
    (out / "checks.json").write_text(json.dumps([asdict(r) for r in results], indent=1))
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for the pages and PNGs")
    ap.add_argument("--demo", type=Path, default=None, help="a demo output (default reports/demo)")
    ap.add_argument("--runs", type=Path, nargs="*", default=None, help="run folders")
    ap.add_argument("--sweep", type=Path, default=None, help="a sweep folder")
    ap.add_argument("--energy", type=Path, default=None, help="an energy-study folder")
    args = ap.parse_args(argv)
    demo = args.demo if args.demo is not None else Path("reports/demo")
    runs = list(args.runs) if args.runs else (latest_demo_runs(demo) if demo.is_dir() else [])
    calibration = demo / "calibration" / "calibration.html" if demo.is_dir() else None
    if not (runs or args.sweep or args.energy):
        print("nothing to show: give --runs/--demo (run `make demo`), --sweep or --energy")
        return 2
    browser = find_browser()
    if browser is None:
        print(
            "skipped screenshots: no headless browser (install Playwright with its Chromium, "
            "or Debian's chromium-headless-shell); numbers are read from the HTML files"
        )
    else:
        print(f"browser: {browser.describe()}")
    results = run_checks(
        args.out,
        runs=runs,
        calibration=calibration,
        sweep=args.sweep,
        energy=args.energy,
        browser=browser,
    )
    bad = [r.name for r in results if not r.ok]
    print(
        f"{len(results)} pages, {sum(len(r.checks) for r in results)} numbers checked; "
        + (f"mismatches on {bad}" if bad else "all equal their records")
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
