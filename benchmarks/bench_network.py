"""Throughput and peak memory of the EEG SNN: time-parallel path vs the step-by-step oracle.

Cases (each in a fresh subprocess, so peak memory is its own):

- ``float-train``: forward + backward + Adam step at batch B;
- ``device-train``: the same with every weight on tiles and PulseOptimizer(Adam); also the
  share of the step spent in pulse programming (``optimizer.step``);
- ``inference``: forward in eval mode at batch B;
- ``sstl-update``: one online SSTL update at batch 1 (fc1 + fc2 on device, frozen prefix
  cached) against a full step-by-step forward + backward of the network at batch 1.

Each case runs the oracle (``mode="loop"``) and the default (``mode="parallel"``) on the same
machine in the same run; the ratio is what counts. Also printed: GFLOP/s reached by the
parallel path (602 M MACs = 1.204 GFLOP per sample forward, ×3 for a training step) against a
large float32 matmul measured in the same run (the machine's practical peak).

    python benchmarks/bench_network.py [--quick] [--device cuda] [--batch 64] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

import torch

MACS_PER_SAMPLE = 602e6  # about 602 M MACs per sample forward
FLOP_FWD = 2 * MACS_PER_SAMPLE


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _build(mode: str, analog: bool, device: torch.device, compact: bool = True):
    from ferrocim.snn import EEGSNN, NetworkConfig

    kw: dict[str, Any] = {"mode": mode}
    if analog:
        from ferrocim.crossbar import AnalogConfig

        kw["analog"] = AnalogConfig(card="dut2")
    kw["compact_spikes"] = compact
    g = torch.Generator().manual_seed(0)
    return EEGSNN(NetworkConfig(**kw), generator=g).to(device)


def _data(batch: int, device: torch.device):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, 1, 10, 11, 160, generator=g).to(device)
    y = torch.randint(0, 2, (batch,), generator=g).to(device)
    return x, y


def _timeit(fn, n_warm: int, n_rep: int, device: torch.device) -> list[float]:
    for _ in range(n_warm):
        fn()
    _sync(device)
    out = []
    for _ in range(n_rep):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        out.append(time.perf_counter() - t0)
    return out


def run_case(
    case: str, mode: str, batch: int, device: torch.device, reps: int, compact: bool = True
) -> dict[str, Any]:
    """One measurement in this process: seconds per iteration and working memory."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    analog = case in ("device-train", "sstl-update")
    b = 1 if case == "sstl-update" else batch
    model = _build(mode, analog, device, compact)
    x, y = _data(b, device)
    extra: dict[str, Any] = {}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        base = _rss_bytes()
    if case == "inference":
        model.eval()

        def fn() -> None:
            with torch.no_grad():
                model(x)

    elif case in ("float-train", "device-train"):
        model.train()
        opt: Any = torch.optim.Adam(model.parameters(), lr=1e-3)
        prog_times: list[float] = []
        if analog:
            from ferrocim.crossbar import PulseOptimizer

            opt = PulseOptimizer(opt, model)

        def fn() -> None:
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            _sync(device)
            t0 = time.perf_counter()
            opt.step()
            _sync(device)
            prog_times.append(time.perf_counter() - t0)

        extra["optimizer_step_s"] = prog_times
    elif case == "sstl-update":
        from ferrocim.crossbar import PulseOptimizer

        if mode == "loop":  # the baseline: full step-by-step forward + backward
            model.train()

            def fn() -> None:
                model.zero_grad(set_to_none=True)
                F.cross_entropy(model(x), y).backward()

        else:
            from ferrocim.pipelines.optim import param_groups
            from ferrocim.pipelines.prefix import PrefixForward
            from ferrocim.pipelines.retune import set_trainable

            forward = PrefixForward(model, x, y, "r1")  # what SSTL runs: cached prefix
            set_trainable(model, ["fc1", "fc2"])
            model.train()
            opt = PulseOptimizer(torch.optim.Adam(param_groups(model, 6e-4, scaling="none")), model)
            idx = torch.zeros(1, dtype=torch.long, device=device)

            def fn() -> None:
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(forward(idx), y).backward()
                opt.step()

    else:
        raise SystemExit(f"unknown case {case!r}")
    times = _timeit(fn, 2 if reps > 3 else 1, reps, device)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    res = {
        "case": case,
        "mode": mode,
        "batch": b,
        "s_per_iter": statistics.median(times),
        "peak_mem_bytes": max(int(peak), 0),
    }
    if "optimizer_step_s" in extra:
        res["optimizer_step_s"] = statistics.median(extra["optimizer_step_s"][-reps:])
    return res


def matmul_peak_gflops(device: torch.device, n: int = 2048) -> float:
    """GFLOP/s of a float32 n×n matmul (the machine's practical dense peak)."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    times = _timeit(lambda: a @ b, 2, 5, device)
    return 2 * n**3 / statistics.median(times) / 1e9


def _subprocess(args: list[str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"benchmark child {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small batch, few repeats (CI)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--child", nargs=4, metavar=("CASE", "MODE", "BATCH", "REPS"))
    ap.add_argument("--no-compact", action="store_true")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if args.child:
        case, mode, batch, reps = args.child
        print(
            json.dumps(
                run_case(case, mode, int(batch), device, int(reps), compact=not args.no_compact)
            )
        )
        return {}
    batch = args.batch or (4 if args.quick else 64)
    reps = args.reps or (2 if args.quick else 5)
    dev = ["--device", args.device]
    results: dict[str, Any] = {
        "device": args.device,
        "batch": batch,
        "threads": torch.get_num_threads(),
    }
    print(
        f"ferrocim network benchmark on {args.device} ({torch.get_num_threads()} threads), "
        f"batch {batch}, median of {reps}"
    )
    rows = []
    for case in ("float-train", "device-train", "inference", "sstl-update"):
        loop = _subprocess([case, "loop", str(batch), str(max(1, reps // 2)), *dev])
        par = _subprocess([case, "parallel", str(batch), str(reps), *dev])
        speed = loop["s_per_iter"] / par["s_per_iter"]
        rows.append((case, loop, par, speed))
        results[case] = {"loop": loop, "parallel": par, "speedup": speed}
    nc = _subprocess(["float-train", "parallel", str(batch), str(reps), *dev, "--no-compact"])
    results["float-train"]["parallel_float_spikes"] = nc
    peak = matmul_peak_gflops(device)
    results["matmul_peak_gflops"] = peak
    print(
        f"{'case':14} {'oracle s/it':>12} {'parallel s/it':>14} {'speed-up':>9} "
        f"{'samples/s':>10} {'mem oracle':>11} {'mem parallel':>13}"
    )
    for case, loop, par, speed in rows:
        sps = par["batch"] / par["s_per_iter"]
        print(
            f"{case:14} {loop['s_per_iter']:12.4f} {par['s_per_iter']:14.4f} {speed:8.1f}× "
            f"{sps:10.1f} {loop['peak_mem_bytes'] / 2**20:9.0f} MB "
            f"{par['peak_mem_bytes'] / 2**20:11.0f} MB"
        )
    ft = results["float-train"]["parallel"]
    gflops = 3 * FLOP_FWD * ft["batch"] / ft["s_per_iter"] / 1e9
    dt = results["device-train"]["parallel"]
    share = dt["optimizer_step_s"] / dt["s_per_iter"]
    ft_opt = ft["optimizer_step_s"] / ft["s_per_iter"]
    inf = results["inference"]["parallel"]
    inf_gflops = FLOP_FWD * inf["batch"] / inf["s_per_iter"] / 1e9
    results.update(
        {
            "train_gflops": gflops,
            "inference_gflops": inf_gflops,
            "pulse_step_share": share,
            "float_optimizer_share": ft_opt,
        }
    )
    print(
        f"float training {gflops:.1f} GFLOP/s, inference {inf_gflops:.1f} GFLOP/s; "
        f"float32 matmul peak {peak:.1f} GFLOP/s "
        f"({100 * gflops / peak:.0f} % / {100 * inf_gflops / peak:.0f} % of it)"
    )
    print(
        f"pulse programming (PulseOptimizer.step) share of a device-aware training step: "
        f"{100 * share:.1f} % (Adam alone in float training: {100 * ft_opt:.1f} %)"
    )
    cm = results["float-train"]["parallel"]["peak_mem_bytes"]
    print(
        f"spikes saved for backward as bool: training working memory {cm / 2**20:.0f} MB vs "
        f"{nc['peak_mem_bytes'] / 2**20:.0f} MB with float spikes "
        f"({100 * (1 - cm / max(nc['peak_mem_bytes'], 1)):.0f} % saved); step time "
        f"{results['float-train']['parallel']['s_per_iter']:.3f} s vs {nc['s_per_iter']:.3f} s"
    )
    sstl = results["sstl-update"]
    print(
        f"online SSTL update (batch 1, cached prefix): {1e3 * sstl['parallel']['s_per_iter']:.2f}"
        f" ms vs full step-by-step forward+backward {1e3 * sstl['loop']['s_per_iter']:.1f} ms"
        f" → {sstl['speedup']:.0f}× faster"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return results


if __name__ == "__main__":
    main()
