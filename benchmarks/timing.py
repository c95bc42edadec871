"""Shared by the benchmark scripts (run as ``python benchmarks/NAME.py``, so this folder is on sys.path)."""
from __future__ import annotations

import time


def timed(fn, repeat: int = 1) -> float:
    """Mean wall seconds of ``fn()`` over ``repeat`` calls."""
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat
