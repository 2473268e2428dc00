"""Speed and memory of the EEG SNN against the published per-time-step loop, same run.

Cases (batch B, default 64; the published loop is ``published_loop.PublishedLoopSNN``):

- ``train``: forward + backward + Adam step; ``inference``: forward in eval mode. Each
  model runs in a process of its own (so one model's memory churn does not cost the
  next one page faults), after two warm-up iterations; the processes take turns, one
  iteration each, so all see the same machine load; the median over the turns is
  printed. Each ratio is published time / ferrocim time (> 1: ferrocim faster). Every
  process runs with the settings of a ``ferrocim`` command: ``configure_threads`` and
  ``ferrocim.allocator.keep_freed_memory`` (the published loop's too).
  ferrocim runs its default path (``mode="parallel"``) and the step-by-step oracle, and
  trains on device (``configs/paper_device.toml``'s network and array: every layer on
  tiles of dut2, PulseOptimizer(Adam); its time is also printed as a ratio to the float step).
  The published loop runs twice: as it is, and with subnormal numbers flushed to zero
  (``torch.set_flush_denormal``, "FTZ"): its eager backward makes subnormal gradients
  (the ``0.1`` decays shrink them step by step) and a CPU computes on those many times
  slower, so the step time of the loop as published grows as training goes on and
  moves from machine to machine (measured: the published network itself 6.1 → 10.2 s
  over its first five steps here, 4.6 s with FTZ); ferrocim's kernels flush them.
- ``sstl``: one online SSTL update at batch 1: ferrocim (fc1 + fc2 on device, frozen
  prefix cached, PulseOptimizer(Adam), on one thread as ``ferrocim sstl`` runs batch-1
  updates: ``ferrocim.threads.single_thread``) against the published way (whole network
  forward + backward at batch 1, Adam on fc1 + fc2); worker processes as above,
  ferrocim's timed over 20 updates in a row per turn (an SSTL session runs them back to
  back).
- ``memory``: peak RSS growth of one training step, each model in a fresh process.
- ``two at once``: the same training steps in one process, then in two processes at the
  same time, with threads set by ``ferrocim.threads.configure_threads(workers=2)``, with
  the physical cores each and with each process's own default (``configure_threads()``);
  the slowdown is the ratio of wall times.
- ``busy loop``: the same training steps, one process at a time, while another process
  spins on one core (``while True: pass``): with the default thread count (physical
  cores), with ``FERROCIM_THREADS=auto`` (idle cores), with 1 thread and with the
  physical cores, these with ferrocim's passive OpenMP wait and with libgomp's spinning
  one (the default before, ``GOMP_SPINCOUNT=300000``); printed as seconds per step and
  as ratios to 1 thread. ``--case busy`` runs only this case.
- ``precision``: training and inference of ferrocim in float32 and with
  ``precision="bf16"`` (bfloat16 autocast of the synapse products), as ratios to the
  published loop and to each other, with GFLOP/s against a float32 and a bfloat16 matmul
  measured in the same run. ``--case precision`` runs only this case; the full run
  includes the bf16 model in its table.

Every process imports ferrocim before torch, as a ``ferrocim`` command does
(``OMP_WAIT_POLICY=PASSIVE`` unless set).

Also printed: achieved GFLOP/s (602 M MACs = 1.204 GFLOP per sample forward, ×3 for a
training step) against a float32 matmul measured in the same run. Nothing is asserted.

    python benchmarks/bench_network.py [--quick] [--device cuda] [--batch 64] [--threads N]
    python benchmarks/bench_network.py --case busy [--quick]
    python benchmarks/bench_network.py --case precision [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import ferrocim  # noqa: F401  (first, as in a ferrocim command: OpenMP's passive wait)

# isort: split
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from published_loop import PublishedLoopSNN

PAPER_DEVICE = Path(__file__).resolve().parents[1] / "configs" / "paper_device.toml"
MACS_PER_SAMPLE = 602e6  # about 602 M MACs per sample forward
FLOP_FWD = 2 * MACS_PER_SAMPLE


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _models(names: list[str], device: torch.device, n_steps: int) -> dict[str, Any]:
    from ferrocim.snn import EEGSNN, NetworkConfig

    torch.manual_seed(0)
    out: dict[str, Any] = {}
    for name in names:
        if name in ("published", "published_ftz"):
            out[name] = PublishedLoopSNN(n_steps)
        elif name == "device":
            from ferrocim.pipelines.config import load_config

            # the paper's on-device training: its config file's network and array
            run = load_config(PAPER_DEVICE)
            cfg = NetworkConfig(
                n_steps=n_steps,
                dropout=run.network.dropout,
                w_max_rule=run.network.w_max_rule,
                analog=run.array,
            )
            out[name] = EEGSNN(cfg, generator=torch.Generator().manual_seed(0))
        elif name == "bf16":
            cfg = NetworkConfig(n_steps=n_steps, dropout=0.3, precision="bf16")
            out[name] = EEGSNN(cfg, generator=torch.Generator().manual_seed(0))
        else:
            cfg = NetworkConfig(mode=name, n_steps=n_steps, dropout=0.3)
            out[name] = EEGSNN(cfg, generator=torch.Generator().manual_seed(0))
    return {k: m.to(device) for k, m in out.items()}


def _data(batch: int, n_steps: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, 1, 10, 11, n_steps, generator=g)
    return x.to(device), torch.randint(0, 2, (batch,), generator=g).to(device)


def _step_fn(model: Any, case: str, x: torch.Tensor, y: torch.Tensor):
    if case == "inference":
        model.eval()

        def infer() -> None:
            with torch.no_grad():
                model(x)

        return infer
    model.train()
    opt: Any = torch.optim.Adam(model.parameters(), lr=1e-3)
    if getattr(getattr(model, "config", None), "analog", None) is not None:
        from ferrocim.crossbar import PulseOptimizer

        opt = PulseOptimizer(opt, model)  # the device weights move by pulses

    def train() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return train


def _turns(
    args: argparse.Namespace,
    case: str,
    names: list[str],
    threads: int,
    reps: int | None = None,
    burst: dict[str, int] | None = None,
) -> dict:
    """Median seconds per iteration of each model, each in its own worker process; the
    workers take turns ``reps`` (default ``args.reps``) times after two warm-ups, each turn
    ``burst[name]`` iterations in a row (default 1), timed together."""
    procs = {k: _spawn(args, "--worker", case, k, threads) for k in names}
    times: dict[str, list[float]] = {k: [] for k in names}
    try:
        for k, p in procs.items():  # wait until every worker has built and warmed up
            if p.stdout.readline().strip() != "ready":
                raise SystemExit(f"benchmark worker {k} failed to start")
        for _ in range(reps or args.reps):
            for k, p in procs.items():
                p.stdin.write(f"{(burst or {}).get(k, 1)}\n")
                p.stdin.flush()
                times[k].append(float(p.stdout.readline()))
    finally:
        for p in procs.values():
            p.stdin.close()
            p.wait()
    return {k: statistics.median(v) for k, v in times.items()}


def _build(args: argparse.Namespace, case: str, name: str) -> tuple[torch.device, Any, Any]:
    """Device, model ``name`` and its ``case`` step function on the benchmark's input."""
    device = torch.device(args.device)
    if name == "published_ftz":
        torch.set_flush_denormal(True)  # subnormals flushed to 0 in this worker (x86 CPU)
    if case == "sstl":
        return device, None, _sstl_fn(device, args.steps, name)
    model = _models([name], device, args.steps)[name]
    x, y = _data(args.batch, args.steps, device)
    return device, model, _step_fn(model, case, x, y)


def worker(args: argparse.Namespace) -> None:
    """``--worker CASE MODEL``: build, warm up twice, then per line read (a count ``n``)
    run ``n`` iterations and print the seconds per iteration."""
    device, _, fn = _build(args, *args.worker)
    for _ in range(2):
        fn()
    _sync(device)
    print("ready", flush=True)
    with _HELD:  # released before the interpreter shuts down
        for line in sys.stdin:
            n = int(line)
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            _sync(device)
            print((time.perf_counter() - t0) / n, flush=True)


_HELD = contextlib.ExitStack()  # contexts a worker keeps for its whole life


def _sstl_fn(device: torch.device, n_steps: int, name: str) -> Any:
    """One online SSTL update at batch 1: ``"parallel"`` ferrocim's, ``"published"`` the
    published way."""
    from ferrocim.crossbar import AnalogConfig, PulseOptimizer
    from ferrocim.pipelines.optim import param_groups
    from ferrocim.pipelines.prefix import PrefixForward
    from ferrocim.pipelines.retune import set_trainable
    from ferrocim.snn import EEGSNN, NetworkConfig
    from ferrocim.threads import single_thread

    x, y = _data(1, n_steps, device)
    if name == "published":
        pub = PublishedLoopSNN(n_steps).to(device)
        pub_opt = torch.optim.Adam([*pub.fc1.parameters(), *pub.fc2.parameters()], lr=6e-4)

        def published() -> None:
            pub.train()
            pub_opt.zero_grad(set_to_none=True)
            F.cross_entropy(pub(x), y).backward()
            pub_opt.step()

        return published
    cfg = NetworkConfig(analog=AnalogConfig(card="dut2"), n_steps=n_steps, dropout=0.3)
    model = EEGSNN(cfg, generator=torch.Generator().manual_seed(0)).to(device)
    forward = PrefixForward(model, x, y, "r1")
    set_trainable(model, ["fc1", "fc2"])
    model.train()
    opt = PulseOptimizer(torch.optim.Adam(param_groups(model, 6e-4, scaling="none")), model)
    idx = torch.zeros(1, dtype=torch.long, device=device)
    # as `ferrocim sstl` runs its batch-1 updates: on one thread, for the worker's life
    _HELD.enter_context(single_thread())

    def ours() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(forward(idx), y).backward()
        opt.step()

    return ours


def matmul_peak_gflops(
    device: torch.device, n: int = 2048, dtype: torch.dtype = torch.float32
) -> float:
    """GFLOP/s of an n×n matmul in ``dtype`` (the machine's practical dense peak), best
    of 5."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    a @ b
    best = math.inf
    for _ in range(5):
        _sync(device)
        t0 = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(args: argparse.Namespace) -> dict[str, Any]:
    """One measurement in a fresh process (``--child KIND NAME``)."""
    kind, name = args.child
    device, model, fn = _build(args, "train", name)
    if kind == "memory":
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            fn()
            return {"peak_bytes": torch.cuda.max_memory_allocated(device) - base}
        xs, ys = _data(1, args.steps, device)
        _step_fn(model, "train", xs, ys)()  # loads the kernels' code and workspaces
        base = _rss()
        fn()
        return {"peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base}
    t0 = time.perf_counter()
    for _ in range(args.reps):
        fn()
    _sync(device)
    from ferrocim.threads import last_choice

    choice = last_choice()
    return {
        "wall_s": time.perf_counter() - t0,
        "threads": torch.get_num_threads(),
        "choice": None if choice is None else choice.reason,
    }


def _spawn(
    args: argparse.Namespace,
    role: str,
    kind: str,
    name: str,
    threads: int | None,
    extra_env: dict[str, str | None] | None = None,
) -> Any:
    """This script as a ``role`` (``--child``: one measurement; ``--worker``: steps on
    request, read from its stdin) for ``kind`` and model ``name`` (``threads`` None: the
    child's own default)."""
    cmd = [sys.executable, __file__, role, kind, name, "--device", args.device]
    cmd += ["--batch", str(args.batch), "--steps", str(args.steps), "--reps", str(args.reps)]
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    for k, v in (extra_env or {}).items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    if threads is not None:
        cmd += ["--threads", str(threads)]
    stdin = subprocess.PIPE if role == "--worker" else None
    return subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, text=True, env=env)


def _collect(procs: list[Any]) -> list[dict[str, Any]]:
    outs = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"benchmark child failed with status {p.returncode}")
        outs.append(json.loads(out.strip().splitlines()[-1]))
    return outs


def busy_loop_case(args: argparse.Namespace) -> dict[str, Any]:
    """Training steps while another process spins on one core: the default thread count
    (the child's own ``configure_threads()``), 1 thread, the physical cores (also with
    ``OMP_WAIT_POLICY=PASSIVE``), one process at a time; seconds per step and ratios to
    1 thread. The spinning process is started first and stopped at the end."""
    from ferrocim.threads import physical_cores

    full = physical_cores()
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)  # running before the first child looks at the load
        spin = {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": "300000"}  # libgomp's default
        cases: list[tuple[str, int | None, dict[str, str | None] | None]] = [
            ("default", None, None),
            ("FERROCIM_THREADS=auto", None, {"FERROCIM_THREADS": "auto"}),
            ("1 thread", 1, None),
            (f"{full} threads (passive wait)", full, None),
            (f"{full} threads, spinning wait (before)", full, spin),
        ]
        out: dict[str, Any] = {}
        for label, n, env in cases:
            r = _collect([_spawn(args, "--child", "time", "parallel", n, env)])[0]
            out[label] = {"s_per_step": r["wall_s"] / args.reps, **r}
    finally:
        spinner.terminate()
        spinner.wait()
    one = out["1 thread"]["s_per_step"]
    print(
        f"under a busy loop on one core ({args.reps} training steps per case, batch "
        f"{args.batch}; ratio = time / time with 1 thread):"
    )
    for label, r in out.items():
        name = f"default ({r['threads']} thread{'s' if r['threads'] > 1 else ''})"
        print(
            f"  {name if label == 'default' else label:40} {r['s_per_step']:7.3f} s/step "
            f"{r['s_per_step'] / one:6.2f}×"
        )
    print(f"  default chosen because: {out['default']['choice']}")
    return out


LABELS = {
    "published": "published loop (restated)",
    "published_ftz": "published loop, FTZ",
    "parallel": "ferrocim default (fp32)",
    "bf16": "ferrocim --precision bf16",
    "device": "ferrocim on device",
    "loop": "ferrocim loop (oracle)",
}


def _table(args: argparse.Namespace, names: list[str], threads: int) -> dict[str, Any]:
    """Training and inference turns of ``names`` (``device``: training only); prints
    seconds, samples/s and ratios to the published loop as it runs and with subnormals
    flushed to zero (``published_ftz``, when among ``names``)."""
    res: dict[str, Any] = {}
    ftz = "published_ftz" in names
    print(
        f"{'case':10} {'model':26} {'s/iter':>9} {'samples/s':>10} {'vs published':>13}"
        + (f" {'vs FTZ':>8}" if ftz else "")
    )
    for case in ("train", "inference"):
        run = [k for k in names if case == "train" or k != "device"]
        t = _turns(args, case, run, threads)
        res[case] = t
        for k in run:
            print(
                f"{case:10} {LABELS[k]:26} {t[k]:9.3f} "
                f"{args.batch / t[k]:10.1f} {t['published'] / t[k]:12.2f}×"
                + (f" {t['published_ftz'] / t[k]:7.2f}×" if ftz else "")
            )
    if "device" in res["train"]:
        print(
            f"on-device training step: {res['train']['device'] / res['train']['parallel']:.3f}× "
            "the float step's time"
        )
    return res


def precision_case(args: argparse.Namespace, threads: int, res: dict[str, Any]) -> None:
    """bf16 against fp32 (``res`` holds or gets their train/inference turns)."""
    if "bf16" not in res.get("train", {}):
        res.update(_table(args, ["published", "published_ftz", "parallel", "bf16"], threads))
    device = torch.device(args.device)
    peaks = {
        "fp32": matmul_peak_gflops(device),
        "bf16": matmul_peak_gflops(device, dtype=torch.bfloat16),
    }
    scale = args.steps / 160
    out: dict[str, Any] = {"matmul_peak_gflops": peaks}
    for case, flop in (("train", 3 * FLOP_FWD), ("inference", FLOP_FWD)):
        t = res[case]
        g = {k: flop * scale * args.batch / t[m] / 1e9 for k, m in (("fp32", "parallel"),
                                                                  ("bf16", "bf16"))}  # fmt: skip
        out[case] = {"bf16_speedup": t["parallel"] / t["bf16"], "gflops": g}
        print(
            f"{case}: bf16 {t['parallel'] / t['bf16']:.2f}× the fp32 speed; fp32 "
            f"{g['fp32']:.1f} GFLOP/s ({100 * g['fp32'] / peaks['fp32']:.0f} % of the fp32 "
            f"matmul's {peaks['fp32']:.1f}), bf16 {g['bf16']:.1f} GFLOP/s "
            f"({100 * g['bf16'] / peaks['bf16']:.0f} % of the bf16 matmul's "
            f"{peaks['bf16']:.1f})"
        )
    res["precision"] = out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="batch 8, 40 steps, 1 repeat (CI)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None, help="time steps per window (160)")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument(
        "--case",
        choices=("all", "busy", "precision"),
        default="all",
        help="busy: only the busy-loop case; precision: only fp32 against bf16",
    )
    ap.add_argument("--child", nargs=2, metavar=("KIND", "MODEL"), help=argparse.SUPPRESS)
    ap.add_argument("--worker", nargs=2, metavar=("CASE", "MODEL"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.batch = args.batch or (8 if args.quick else 64)
    args.steps = args.steps or (40 if args.quick else 160)
    args.reps = args.reps or (3 if args.quick else 5)
    from ferrocim.allocator import keep_freed_memory
    from ferrocim.threads import configure_threads, physical_cores

    keep_freed_memory()  # as every ferrocim command; both models' processes alike
    threads = configure_threads(args.threads)
    if args.child:
        print(json.dumps(child(args)))
        return {}
    if args.worker:
        worker(args)
        return {}
    device = torch.device(args.device)
    res: dict[str, Any] = {"device": args.device, "threads": threads, "batch": args.batch}
    if args.case == "busy":
        res["busy_loop"] = busy_loop_case(args)
        if args.json:
            Path(args.json).write_text(json.dumps(res, indent=2))
        return res
    print(
        f"EEG SNN benchmark on {args.device} ({threads} threads), batch {args.batch}, "
        f"{args.steps} time steps, median of {args.reps} turns (one worker process per model)"
    )
    if args.case == "precision":
        precision_case(args, threads, res)
        if args.json:
            Path(args.json).write_text(json.dumps(res, indent=2))
        return res
    names = ["published", "published_ftz", "parallel", "bf16", "device", "loop"]
    res.update(_table(args, names, threads))
    precision_case(args, threads, res)
    t = _turns(args, "sstl", ["published", "parallel"], threads, 3 * args.reps, {"parallel": 20})
    res["sstl"] = t
    print(
        f"{'sstl':10} batch-1 update: ferrocim {1e3 * t['parallel']:.2f} ms (fc1+fc2 on device, "
        f"cached prefix) vs published {1e3 * t['published']:.1f} ms (full network, Adam) → "
        f"{t['published'] / t['parallel']:.0f}×"
    )
    peak = matmul_peak_gflops(device)
    tr, inf = res["train"]["parallel"], res["inference"]["parallel"]
    scale = args.steps / 160
    g_tr = 3 * FLOP_FWD * scale * args.batch / tr / 1e9
    g_inf = FLOP_FWD * scale * args.batch / inf / 1e9
    res.update({"matmul_peak_gflops": peak, "train_gflops": g_tr, "inference_gflops": g_inf})
    print(
        f"ferrocim default: training {g_tr:.1f} GFLOP/s, inference {g_inf:.1f} GFLOP/s; "
        f"float32 matmul {peak:.1f} GFLOP/s ({100 * g_tr / peak:.0f} % / "
        f"{100 * g_inf / peak:.0f} % of it)"
    )
    mem = {
        k: _collect([_spawn(args, "--child", "memory", k, threads)])[0]["peak_bytes"]
        for k in ("published", "parallel", "loop")
    }
    res["train_peak_bytes"] = mem
    print(
        "peak memory growth of one training step: "
        + ", ".join(f"{k} {v / 2**20:.0f} MB" for k, v in mem.items())
    )
    full = threads if args.threads else physical_cores()
    split = max(1, full // 2)  # what configure_threads(workers=2) gives
    solo = _collect([_spawn(args, "--child", "time", "parallel", full)])[0]["wall_s"]
    pair = _collect([_spawn(args, "--child", "time", "parallel", full) for _ in range(2)])
    pair_w = _collect([_spawn(args, "--child", "time", "parallel", split) for _ in range(2)])
    pair_d = _collect([_spawn(args, "--child", "time", "parallel", None) for _ in range(2)])
    res["two_at_once"] = {
        "full_threads_each": max(p["wall_s"] for p in pair) / solo,
        "split_threads": max(p["wall_s"] for p in pair_w) / solo,
        "default_each": max(p["wall_s"] for p in pair_d) / solo,
        "default_threads": [p["threads"] for p in pair_d],
    }
    print(
        f"two trainings at once vs one alone ({full} threads): "
        f"{res['two_at_once']['split_threads']:.2f}× the time with threads split "
        f"({split} each, as configure_threads(workers=2)), "
        f"{res['two_at_once']['full_threads_each']:.2f}× with {full} threads each, "
        f"{res['two_at_once']['default_each']:.2f}× with each one's default (chose "
        f"{' and '.join(map(str, res['two_at_once']['default_threads']))} threads)"
    )
    res["busy_loop"] = busy_loop_case(args)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
