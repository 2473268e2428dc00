"""Time of one training step of AnalogLinear(256, 256) + PulseOptimizer(Adam) against
torch.nn.Linear + Adam, at batch 64 (forward + backward + optimizer step).

Prints the median step time of each over many repeats (after a warm-up) and their ratio.

    python benchmarks/bench_analog_linear.py [--quick] [--device cuda] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from ferrocim.crossbar import AnalogLinear, PulseOptimizer


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_pairs(
    steps: tuple, n_warm: int, n_rep: int, device: torch.device
) -> tuple[list[list[float]], list[list[float]]]:
    """Alternate the steps one after the other ``n_rep`` times (after ``n_warm``), so both
    see the same machine load; wall-clock and process-CPU seconds of each step."""
    for _ in range(n_warm):
        for step in steps:
            step()
    _sync(device)
    wall: list[list[float]] = [[] for _ in steps]
    cpu: list[list[float]] = [[] for _ in steps]
    for _ in range(n_rep):
        for i, step in enumerate(steps):
            t0, c0 = time.perf_counter(), time.process_time()
            step()
            _sync(device)
            wall[i].append(time.perf_counter() - t0)
            cpu[i].append(time.process_time() - c0)
    return wall, cpu


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few repeats (CI smoke)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--size", type=int, default=256, help="in = out features")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    n_warm, n_rep = (20, 100) if args.quick else (100, 1500)

    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, args.size, generator=g).to(device)
    target = torch.randn(args.batch, args.size, generator=g).to(device)

    ref = nn.Linear(args.size, args.size, device=device)
    ref_opt = torch.optim.Adam(ref.parameters(), lr=args.lr)
    ana = AnalogLinear(
        args.size, args.size, generator=torch.Generator().manual_seed(1), device=device
    )
    ana_opt = PulseOptimizer(torch.optim.Adam(ana.parameters(), lr=args.lr), ana)
    pulses = [0]

    def float_step() -> None:
        ref_opt.zero_grad(set_to_none=True)
        nn.functional.mse_loss(ref(x), target).backward()
        ref_opt.step()

    def analog_step() -> None:
        ana_opt.zero_grad(set_to_none=True)
        nn.functional.mse_loss(ana(x), target).backward()
        pulses[0] += ana_opt.step().total()["pulses"]

    (t_float, t_analog), (c_float, c_analog) = _time_pairs(
        (float_step, analog_step), n_warm, n_rep, device
    )
    mf, ma = statistics.median(t_float), statistics.median(t_analog)
    cf, ca = statistics.median(c_float), statistics.median(c_analog)
    pair = statistics.median(a / f for a, f in zip(t_analog, t_float, strict=True))
    n_steps = n_warm + n_rep
    print(
        f"device={device} threads={torch.get_num_threads()} layer={args.size}x{args.size} "
        f"batch={args.batch}"
    )
    print(f"nn.Linear + Adam                 : {mf * 1e6:9.1f} us/step (median of {len(t_float)})")
    print(f"AnalogLinear + PulseOptimizer    : {ma * 1e6:9.1f} us/step (median of {len(t_analog)})")
    print(f"pulses per step (mean)           : {pulses[0] / n_steps:9.1f}")
    print(f"ratio analog / float             : {ma / mf:9.2f}x")
    print(f"median of step-by-step ratios    : {pair:9.2f}x")
    if cf > 0:  # process CPU time: less sensitive to other load on the machine
        print(f"ratio of process CPU time        : {ca / cf:9.2f}x")
    return {"float_s": mf, "analog_s": ma, "ratio": ma / mf, "pair_ratio": pair}


if __name__ == "__main__":
    main()
