"""ferrocim.allocator: large blocks come from the heap and stay there once freed."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

glibc = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver() < ("glibc", "2.33"),
    reason="glibc >= 2.33 (mallinfo2) only",
)

# glibc's own accounting (mallinfo2): bytes in mmap'ed blocks (hblkhd) and free bytes kept
# in the heap (fordblks) while a 64 MiB array is alive and after it is freed. 64 MiB is
# above glibc's largest automatic mmap threshold (32 MiB), so by default the array is a
# mapping of its own, unmapped again by free.
_SCRIPT = """
import ctypes, numpy as np
from ferrocim.allocator import keep_freed_memory
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split())]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
kept = keep_freed_memory()
assert keep_freed_memory() is kept  # idempotent
a = np.ones(16 << 20, np.float32)
alive = libc.mallinfo2().hblkhd
del a
print(kept, alive >> 20, libc.mallinfo2().fordblks >> 20)
"""


def _run(flag: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env["FERROCIM_KEEP_FREED_MEMORY"] = flag
    cmd = [sys.executable, "-c", _SCRIPT]
    return subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout.split()


@glibc
def test_large_blocks_come_from_the_heap_and_stay_after_free() -> None:
    kept, mapped_mib, free_kept_mib = _run("1")
    assert kept == "True"
    assert int(mapped_mib) == 0  # not a mapping of its own
    assert int(free_kept_mib) >= 64  # its pages stay in the process for the next block


@glibc
def test_opt_out_leaves_glibc_defaults() -> None:
    kept, mapped_mib, free_kept_mib = _run("0")
    assert kept == "False"
    assert int(mapped_mib) >= 64  # glibc default: its own mapping ...
    assert int(free_kept_mib) < 64  # ... handed back by free


def test_every_command_keeps_freed_memory(monkeypatch) -> None:
    import torch
    from click.testing import CliRunner

    from ferrocim import allocator, threads
    from ferrocim.cli import main

    monkeypatch.setattr(allocator, "_done", [])  # as in a fresh process
    monkeypatch.setattr(threads, "_chosen", [])
    before = torch.get_num_threads()
    try:
        res = CliRunner().invoke(main, ["devices", "list", "--threads", "1"])
    finally:
        torch.set_num_threads(before)
    assert res.exit_code == 0, res.output
    assert len(allocator._done) == 1  # the command called keep_freed_memory once
