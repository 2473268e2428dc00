"""Run every benchmark in benchmarks/ (``--quick``: the CI smoke, under a minute).

    python benchmarks/run_all.py [--quick] [--device cuda]

Each benchmark prints ratios against a baseline measured in the same run; nothing here
asserts a time.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ("bench_analog_linear.py", "bench_network.py", "bench_energy_study.py")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    failed = 0
    for name in BENCHMARKS:
        cmd = [sys.executable, str(HERE / name), "--device", args.device]
        if args.quick:
            cmd.append("--quick")
        print(f"\n=== {name} ===", flush=True)
        failed += subprocess.run(cmd, check=False).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
