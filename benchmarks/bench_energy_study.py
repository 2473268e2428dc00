"""Wall time of the energy-convergence study and the share spent in pulse programming.

Runs ``ferrocim study energy-convergence`` with its defaults (6 widths × 3 rules × 1 seed,
10 epochs on the 8×8 digits) and, as the baseline in the same run, the same MLP trained
in float with SGD for the same epochs. Prints the study's wall and process-CPU time, the
share of the run time spent in the rules' ``step()`` (pulse-train sampling and device
programming), and each rule's mean run time as a ratio of the float baseline.

    python benchmarks/bench_energy_study.py [--quick] [--cards DIR] [--threads 2]

``--cards`` is a card folder or measurements to calibrate (default: the dut2 preset at
every width, which needs nothing outside the project). ``--quick``: 2 widths × 3 rules,
150 samples, 1 epoch (the CI smoke).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from ferrocim.pipelines.energy_study import StudyConfig, load_data, run_study
from ferrocim.pipelines.width_cards import preset_width_cards


def float_baseline(cfg: StudyConfig) -> float:
    """Seconds to train the same MLP in float with SGD (same epochs, batch, lr)."""
    data = load_data(cfg)
    g = torch.Generator().manual_seed(0)
    sizes = (data.x_train.shape[1], *cfg.hidden, 10)
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers += [nn.Linear(sizes[i], sizes[i + 1]), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    n = len(data.x_train)
    t0 = time.perf_counter()
    for _ in range(cfg.epochs):
        order = torch.randperm(n, generator=g)
        for i in range(0, n, cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            nn.functional.cross_entropy(model(data.x_train[idx]), data.y_train[idx]).backward()
            opt.step()
            opt.zero_grad()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 widths x 3 rules, 1 epoch (CI)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--cards", default=None, help="card folder or measurements (default: dut2)")
    ap.add_argument("--dut", default=None, help="device id when --cards holds several")
    ap.add_argument("--out", default=None, help="study folder (default: a temporary one)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick:
        cfg = StudyConfig(widths=(2e-8, 2e-6), epochs=1, samples=150, device=args.device)
    else:
        cfg = StudyConfig(device=args.device)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp) / "study"
        cards = args.cards or preset_width_cards(Path(tmp) / "cards", cfg.widths)
        t_base = float_baseline(cfg)
        t0, c0 = time.perf_counter(), time.process_time()
        res = run_study(cfg, cards, out, device_id=args.dut, report=False, progress=False)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    df = res.results
    share = df["programming_s"].sum() / df["wall_s"].sum()
    print(
        f"device={args.device} threads={torch.get_num_threads()} runs={len(df)} "
        f"epochs={cfg.epochs} train samples={cfg.samples or 'all'}"
    )
    print(f"study wall time (incl. cards, data)  : {wall:9.1f} s  (process CPU {cpu:.1f} s)")
    print(f"training time of all runs           : {df['wall_s'].sum():9.1f} s")
    print(f"share in pulse programming (step())  : {100 * share:9.1f} %")
    print(f"float SGD baseline, one run          : {t_base:9.2f} s")
    for rule, g in df.groupby("rule", sort=False):
        print(f"{rule:9} mean run / float baseline  : {g['wall_s'].mean() / t_base:9.1f}x")
    return {"wall_s": wall, "programming_share": share, "float_s": t_base}


if __name__ == "__main__":
    main()
