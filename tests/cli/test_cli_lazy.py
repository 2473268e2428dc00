"""`ferrocim --version` and `--help` build the command line without importing torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import runpy, sys
sys.argv = ["ferrocim", *sys.argv[1:]]
try:
    runpy.run_module("ferrocim", run_name="__main__")
except SystemExit:
    pass
heavy = sorted(m for m in ("torch", "numpy", "pandas", "pydantic", "scipy") if m in sys.modules)
print("HEAVY", ",".join(heavy))
"""


def _heavy(*args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, check=True
    )
    return out.stdout.strip().splitlines()[-1]


def test_version_and_help_do_not_import_torch():
    assert _heavy("--version") == "HEAVY"
    assert _heavy("--help") == "HEAVY"
    assert _heavy("train", "--help") == "HEAVY"
