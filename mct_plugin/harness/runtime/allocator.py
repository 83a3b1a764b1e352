"""Process-level performance settings for CPU runs.

glibc returns every freed block above 32 MB to the kernel and serves the next one from fresh
``mmap`` pages, so each feature map of a convolutional network is page-faulted in again at every
layer and step. On this project's workloads that doubles the time of a training step (measured
in benchmarks/RESULTS.md). :func:`tune_allocator` keeps freed memory in the heap instead.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_MAX = -4
OPT_OUT_ENV = "DD_HARNESS_MALLOC_TUNING"
_done = False


def tune_allocator() -> bool:
    """Ask glibc malloc to keep freed memory (no mmap for large blocks, no trimming).

    A no-op off Linux/glibc or when ``DD_HARNESS_MALLOC_TUNING=0``. Idempotent.
    :returns: whether the settings were applied.
    """
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux") or os.environ.get(OPT_OUT_ENV, "1") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = mallopt(_M_MMAP_MAX, 0) and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) and mallopt(_M_TOP_PAD, 1 << 28)
    _done = bool(ok)
    return _done
