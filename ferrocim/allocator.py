"""Keep freed memory in the process: one call that spares the CPU path its page faults.

The time-parallel network allocates and frees tensors of tens of MB for every chunk of
time steps (conv currents, spikes). glibc's ``malloc`` hands such blocks back to the
operating system when they are freed (``munmap``, or trimming the top of the heap), and the
next chunk's block then costs one page fault per 4 KiB on first touch: 30,000-60,000
faults per batch-64 inference on a 2-core machine, 20-30 % of its time (measured with
``getrusage``; ``benchmarks/bench_network.py`` runs with this setting). Keeping freed
memory lets the next chunk reuse pages that are already mapped; the resident size then
stays at the process's peak instead of shrinking between chunks.

Only glibc (Linux) has these knobs; elsewhere :func:`keep_freed_memory` does nothing.
``FERROCIM_KEEP_FREED_MEMORY=0`` in the environment turns it off.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

__all__ = ["keep_freed_memory", "keeps_freed_memory"]

_M_TRIM_THRESHOLD = -1
"""``mallopt`` parameter: free bytes at the top of the heap above which it is trimmed."""
_M_MMAP_MAX = -4
"""``mallopt`` parameter: most blocks served by ``mmap`` at once (0: all from the heap)."""
_NEVER = 2**31 - 1
"""The largest value ``mallopt`` takes (a C ``int``): 2 GiB of free heap before a trim."""

_done: list[bool] = []  # the result of the first call in this process


def keep_freed_memory() -> bool:
    """Ask glibc to serve every block from the heap and not to trim it; True when set.

    Called by every ``ferrocim`` command before it runs (and by the benchmarks, for the
    published loop and ferrocim alike); scripts that use the library directly may call
    it themselves. Idempotent; False off glibc or when ``FERROCIM_KEEP_FREED_MEMORY=0``.
    """
    if _done:
        return _done[0]
    ok = False
    if os.environ.get("FERROCIM_KEEP_FREED_MEMORY", "1").strip() != "0" and (
        platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    ):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        ok = bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, _NEVER))
    _done.append(ok)
    return ok


def keeps_freed_memory() -> bool:
    """True when :func:`keep_freed_memory` took effect in this process."""
    return bool(_done and _done[0])
