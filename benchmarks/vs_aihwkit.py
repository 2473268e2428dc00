"""ferrocim against IBM aihwkit 1.1.0 on the same device cards (the table of issue 25).

The digits 8×8 MLP 64-256-128-10 trained with each rule (plain pulsed SGD, the same with
the reference at the symmetry point, mixed precision), SGD lr 0.1, batch 16, BL 31,
10 epochs, per pulse width; test accuracy per (width, rule), mean over seeds. Not run in
CI. aihwkit needs its own virtual environment (its extension fails on torch 2.9 and 2.13):

    python3.11 -m venv .venv-aihwkit
    .venv-aihwkit/bin/pip install torch==2.10.0 torchvision==0.25.0 aihwkit==1.1.0

Three steps, one folder BENCH:

1. ferrocim side, with the project's venv: runs ``ferrocim study energy-convergence``
   (``--config`` passed on when given) into BENCH/study, reads its results.parquet into
   BENCH/ferrocim.csv, exports each width's card with ``ferrocim devices export --to
   aihwkit`` (BENCH/aihwkit/<width>.json + .py) and writes the study's data split
   (BENCH/data.npz) and settings (BENCH/setup.json) for the other side::

       .venv/bin/python benchmarks/vs_aihwkit.py --cards DIR --out BENCH [--config TOML]

2. aihwkit side, with the aihwkit venv (needs neither ferrocim nor scikit-learn): trains
   the same MLP in aihwkit from the exported cards (tiles: PiecewiseStepDevice, ideal
   periphery, digital biases; ``plain``/``symmetry`` on a SingleRPUConfig with w = 0 at
   W = 0.5 or at the card's W* — the device's whole window shifted, none of it cut off; with
   device-to-device spread that is the nominal W*, not each device's own — ``mixed`` on a
   MixedPrecisionCompound; aihwkit's dw_min is the up step at W = 0.5, ferrocim's the mean
   of the up and down steps), weight bounds ``--bounds fan-in`` (±1/√fan_in,
   as ferrocim's layers) or ``--bounds one`` (±1, aihwkit's usual), into
   BENCH/aihwkit-<bounds>.csv (``--out-bound``: aihwkit's ``forward.out_bound``, 12 by
   default; its tiles zero the error passed back at outputs ``|W x| >= 0.999·12`` even with
   ``is_perfect``, ferrocim's ``array.grad_out_bound``; 0 turns the mask off;
   ``--periphery aihwkit``: aihwkit's default noisy IOParameters instead of a perfect
   periphery, into BENCH/aihwkit-<bounds>-aihwkit-periphery.csv, ferrocim's twin
   ``--set array.periphery=aihwkit``)::

       .venv-aihwkit/bin/python benchmarks/vs_aihwkit.py --out BENCH --bounds fan-in

3. the table (any Python)::

       python benchmarks/vs_aihwkit.py --compare BENCH/ferrocim.csv BENCH/aihwkit-fan-in.csv

Which side runs is chosen by what imports (aihwkit first; ``--side`` overrides).
``--check-device EXPORT.json`` (aihwkit venv) pulses one exported device up then down in
aihwkit and prints its largest deviation from the Beta kernel integrated pulse by pulse.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import itertools
import json
import math
import os
import runpy
import statistics
import subprocess
import sys
import time
from pathlib import Path

INSTALL = (
    "aihwkit is not installed in this Python. It needs its own virtual environment:\n"
    "    python3.11 -m venv .venv-aihwkit && .venv-aihwkit/bin/pip install "
    "torch==2.10.0 torchvision==0.25.0 aihwkit==1.1.0\n"
    "then run this script with .venv-aihwkit/bin/python (aihwkit 1.1.0's extension fails "
    "on torch 2.9 and 2.13; it runs on CPU)."
)
RULES = ("mixed", "plain", "symmetry")
FIELDS = ("simulator", "bounds", "width_s", "rule", "seed", "final_acc", "acc_per_epoch")
ISSUE_WIDTHS = "2e-8,2e-6,2e-4,2e-3"


def has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def write_rows(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, FIELDS)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


def width_words(w: float) -> str:
    for unit, f in (("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if w >= f:
            return f"{w / f:g} {unit}"
    return f"{w:g} s"


# ---- ferrocim side (project venv) -------------------------------------------------------
def ferrocim_side(args: argparse.Namespace) -> Path:
    import numpy as np
    import pandas as pd

    from ferrocim.crossbar.aihwkit_export import export_aihwkit
    from ferrocim.pipelines.energy_study import StudyConfig, load_data
    from ferrocim.pipelines.width_cards import pick, resolve_width_cards

    if not args.cards:
        sys.exit("the ferrocim side needs --cards DIR (a card folder or measurements)")
    out = Path(args.out)
    study = out / "study"
    cmd = [
        sys.executable, "-m", "ferrocim", "-q", "study", "energy-convergence",
        "--cards", args.cards, "--out", str(study), "--widths", args.widths,
        "--rules", args.rules, "--seeds", args.seeds, "--epochs", str(args.epochs),
        "--no-report",
    ]  # fmt: skip
    if args.config:
        cmd += ["--config", args.config]
    if args.dut:
        cmd += ["--dut", args.dut]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    df = pd.read_parquet(study / "results.parquet")
    rows = [
        {
            "simulator": "ferrocim", "bounds": "ferrocim", "width_s": r.width_s,
            "rule": r.rule, "seed": r.seed, "final_acc": r.final_acc,
            "acc_per_epoch": json.dumps([float(a) for a in r.acc_per_epoch]),
        }
        for r in df.itertuples()
    ]  # fmt: skip
    write_rows(out / "ferrocim.csv", rows)
    settings = json.loads((study / "study.json").read_text())
    cards = resolve_width_cards(args.cards, study / "cards", device=args.dut)
    exports = []
    for w in sorted({float(v) for v in df.width_s}):
        c = pick(cards, w)
        path, _ = export_aihwkit(c.card, out / "aihwkit" / f"{c.tag}.json")
        exports.append({"width_s": w, "json": str(path.relative_to(out))})
    cfg = StudyConfig(**{k: settings[k] for k in ("data", "root", "samples") if k in settings})
    data = load_data(cfg)
    np.savez_compressed(
        out / "data.npz",
        x_train=data.x_train.numpy(), y_train=data.y_train.numpy(),
        x_test=data.x_test.numpy(), y_test=data.y_test.numpy(),
    )  # fmt: skip
    setup = {"study": settings, "exports": exports}
    (out / "setup.json").write_text(json.dumps(setup, indent=2) + "\n")
    print(f"ferrocim results: {out / 'ferrocim.csv'}; exported cards: {out / 'aihwkit'}")
    print(f"next, with the aihwkit venv: python {sys.argv[0]} --out {out} --bounds fan-in")
    if not has("aihwkit"):
        print(INSTALL)
    return out / "ferrocim.csv"


# ---- aihwkit side (aihwkit venv) ----------------------------------------------------------
def _build(
    rpu_config,
    sizes: tuple[int, ...],
    bounds: str,
    rule: str,
    out_bound: float = 12.0,
    periphery: str = "ideal",
):
    from aihwkit.nn import AnalogLinear, AnalogSequential
    from torch import nn

    layers = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        w_max = 1.0 / math.sqrt(a) if bounds == "fan-in" else 1.0
        # "ideal": perfect forward/backward; "aihwkit": aihwkit's default IOParameters
        config = rpu_config(w_max=w_max, rule=rule, ideal=periphery == "ideal")
        config.forward.out_bound = out_bound  # 12: aihwkit's default; 0: no gradient mask
        layers.append(AnalogLinear(a, b, bias=True, rpu_config=config))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return AnalogSequential(*layers)


def train_aihwkit(export: Path, data: dict, rule: str, seed: int, hp: dict, bounds: str):
    """Test accuracy per epoch of one (card, rule, seed) run in aihwkit."""
    import torch
    from aihwkit.optim import AnalogSGD
    from torch import nn

    torch.manual_seed(seed)
    rpu_config = runpy.run_path(str(export.with_suffix(".py")))["rpu_config"]
    x, y = data["x_train"], data["y_train"]
    sizes = (x.shape[1], *hp["hidden"], int(data["y_test"].max()) + 1)
    model = _build(
        rpu_config, sizes, bounds, rule, hp.get("out_bound", 12.0), hp.get("periphery", "ideal")
    )
    opt = AnalogSGD(model.parameters(), lr=hp["lr"])
    opt.regroup_param_groups(model)
    accs = []
    for epoch in range(hp["epochs"]):
        model.train()
        g = torch.Generator().manual_seed(1000 * seed + epoch)
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), hp["batch_size"]):
            idx = order[i : i + hp["batch_size"]]
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            pred = model(data["x_test"]).argmax(1)
        accs.append(float((pred == data["y_test"]).float().mean()))
    return accs


def aihwkit_side(args: argparse.Namespace) -> Path:
    if not has("aihwkit"):
        sys.exit(INSTALL)
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    if not (out / "setup.json").is_file():
        sys.exit(f"{out / 'setup.json'} not found: run the ferrocim side first (project venv)")
    setup = json.loads((out / "setup.json").read_text())
    st = setup["study"]
    hp = {
        "lr": st["lr"], "batch_size": st["batch_size"], "hidden": tuple(st["hidden"]),
        "epochs": args.epochs if args.epochs_given else st["epochs"],
        "out_bound": args.out_bound, "periphery": args.periphery,
    }  # fmt: skip
    if st.get("bl", 31) != 31:
        print(f"note: the exports use desired_bl 31, the study used bl {st['bl']}")
    npz = np.load(out / "data.npz")
    data = {k: torch.as_tensor(npz[k]) for k in npz.files}
    rules = [r for r in args.rules.split(",") if r]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    widths = {float(w) for w in args.widths.split(",")} if args.widths_given else None
    rows = []
    for e in setup["exports"]:
        if widths is not None and not any(abs(e["width_s"] - w) <= 1e-3 * w for w in widths):
            continue
        for rule in rules:
            for seed in seeds:
                t0 = time.perf_counter()
                accs = train_aihwkit(out / e["json"], data, rule, seed, hp, args.bounds)
                print(
                    f"aihwkit {width_words(e['width_s']):>7} {rule:8} seed {seed}: "
                    f"{100 * accs[-1]:.1f} % ({time.perf_counter() - t0:.0f} s)",
                    flush=True,
                )
                rows.append(
                    {
                        "simulator": "aihwkit", "bounds": args.bounds, "width_s": e["width_s"],
                        "rule": rule, "seed": seed, "final_acc": accs[-1],
                        "acc_per_epoch": json.dumps(accs),
                    }
                )  # fmt: skip
    tail = "" if args.periphery == "ideal" else f"-{args.periphery}-periphery"
    path = out / f"aihwkit-{args.bounds}{tail}.csv"
    write_rows(path, rows)
    print(f"aihwkit results: {path}")
    return path


def check_device(export: str, n: int = 200) -> float:
    """Largest |w_aihwkit - w_kernel| / (w_max - w_min) over n up then n down pulses of one
    noiseless device, from w_min; the kernel integrated here with the export's mapping.
    Also prints the largest relative error of a single aihwkit step against the kernel at
    the state it started from (the interpolation error of the tables)."""
    if not has("aihwkit"):
        sys.exit(INSTALL)
    import numpy as np
    import torch
    from aihwkit.simulator.tiles import AnalogTile

    spec = json.loads(Path(export).read_text())
    rpu_config = runpy.run_path(str(Path(export).with_suffix(".py")))["rpu_config"]
    dev, m, card = spec["device"], spec["mapping"], spec["card"]
    lo, hi = dev["w_min"], dev["w_max"]
    config = rpu_config()
    config.device.dw_min_std = 0.0  # noiseless, one pulse per update
    config.update.desired_bl = 1
    config.update.update_bl_management = config.update.update_management = False
    tile = AnalogTile(1, 1, config)
    tile.set_learning_rate(1.0)
    tile.set_weights(torch.full((1, 1), lo))
    direction = np.array([1.0] * n + [-1.0] * n)
    trace = []
    for d in direction:  # x = -1, d = +1: the weight goes up by one pulse
        tile.update(-torch.ones(1, 1), torch.full((1, 1), float(d)))
        trace.append(float(tile.get_weights()[0][0, 0]))
    trace = np.array(trace)
    c_lo, c_hi = m["kernel_clip"]

    def step(w: float, k: list[float]) -> float:
        s = min(max((w - lo) / (hi - lo), c_lo), c_hi)
        return (hi - lo) * k[0] * s ** (k[1] - 1) * (1 - s) ** (k[2] - 1)

    w, ref = lo, []
    for d in direction:
        w = w + step(w, card["ltp"]) if d > 0 else w - step(w, card["ltd"])
        w = min(max(w, lo), hi)
        ref.append(w)
    err = float(np.max(np.abs(trace - np.array(ref)))) / (hi - lo)
    # each aihwkit step against the kernel at the state it started from (W in 5-95 %)
    before = np.concatenate([[lo], trace[:-1]])
    rel = []
    for w0, w1, d in zip(before, trace, direction, strict=True):
        if 0.05 <= (w0 - lo) / (hi - lo) <= 0.95 and lo < w1 < hi:
            want = step(w0, card["ltp"] if d > 0 else card["ltd"])
            rel.append(abs(abs(w1 - w0) - want) / want)
    step_err = max(rel) if rel else float("nan")
    print(
        f"{export}: {n} up + {n} down pulses; aihwkit ends up at {trace[n - 1]:.4f} / "
        f"{trace[-1]:.4f}, the kernel at {ref[n - 1]:.4f} / {ref[-1]:.4f}; trajectories "
        f"differ by at most {100 * err:.2f} % of the window; single steps (W in 5-95 %) "
        f"by at most {100 * step_err:.2f} % of the kernel's step"
    )
    return err


# ---- the table ------------------------------------------------------------------------------
def read_rows(path: str) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def compare(paths: list[str]) -> str:
    """Mean final accuracy (%) per width and rule, ``first / second`` file."""
    tables = []
    for p in paths:
        acc: dict[tuple[float, str], list[float]] = {}
        for r in read_rows(p):
            acc.setdefault((float(r["width_s"]), r["rule"]), []).append(float(r["final_acc"]))
        tables.append({k: 100 * statistics.mean(v) for k, v in acc.items()})
    names = [Path(p).stem for p in paths]
    widths = sorted({w for t in tables for w, _ in t})
    rules = [r for r in RULES if any(r == k[1] for t in tables for k in t)]

    def cell(t: dict, w: float, r: str) -> str:
        return f"{t[(w, r)]:.1f}" if (w, r) in t else "—"

    head = "| width | " + " | ".join(f"{r} {' / '.join(names)}" for r in rules) + " |"
    lines = [head, "|---" * (len(rules) + 1) + "|"]
    for w in widths:
        cells = [" / ".join(cell(t, w, r) for t in tables) for r in rules]
        lines.append(f"| {width_words(w)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--side", choices=("auto", "ferrocim", "aihwkit"), default="auto")
    ap.add_argument("--out", default="bench-vs-aihwkit", help="folder BENCH of both sides")
    ap.add_argument("--cards", help="ferrocim side: card folder (widths.json) or measurements")
    ap.add_argument("--dut", help="ferrocim side: device id when --cards holds several")
    ap.add_argument("--config", help="ferrocim side: study TOML passed to the study")
    ap.add_argument("--widths", default=None, help=f"pulse widths, s (default {ISSUE_WIDTHS})")
    ap.add_argument("--rules", default="plain,symmetry,mixed")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=None, help="default: 10 (the study's)")
    ap.add_argument(
        "--bounds", choices=("fan-in", "one"), default="fan-in",
        help="aihwkit side: weight bounds ±1/sqrt(fan_in) (ferrocim's) or ±1 (aihwkit's usual)",
    )  # fmt: skip
    ap.add_argument(
        "--out-bound", type=float, default=12.0,
        help="aihwkit side: forward.out_bound (default 12, aihwkit's; its tiles zero the "
        "error passed back at outputs |W x| >= 0.999 of it, also with is_perfect; 0: off; "
        "ferrocim's twin: --set array.grad_out_bound=12)",
    )  # fmt: skip
    ap.add_argument(
        "--periphery", choices=("ideal", "aihwkit"), default="ideal",
        help="aihwkit side: perfect forward/backward (default) or aihwkit's default noisy "
        "IOParameters (into BENCH/aihwkit-<bounds>-aihwkit-periphery.csv); ferrocim's twin: "
        "--set array.periphery=aihwkit",
    )  # fmt: skip
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--compare", nargs="+", metavar="CSV", help="print the table of result files")
    ap.add_argument("--check-device", metavar="EXPORT.json", help="aihwkit pulse response check")
    args = ap.parse_args(argv)
    args.widths_given, args.epochs_given = args.widths is not None, args.epochs is not None
    args.widths = args.widths or ISSUE_WIDTHS
    args.epochs = args.epochs or 10
    if args.compare:
        print(compare(args.compare))
        return
    if args.check_device:
        check_device(args.check_device)
        return
    side = args.side
    if side == "auto":
        side = "aihwkit" if has("aihwkit") else "ferrocim" if has("ferrocim") else None
    if side is None:
        sys.exit("neither aihwkit nor ferrocim imports here.\n" + INSTALL)
    (aihwkit_side if side == "aihwkit" else ferrocim_side)(args)


if __name__ == "__main__":
    main()
