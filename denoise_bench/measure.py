"""Timing and memory a reader can trust: median per-image seconds without warm-up, peak memory.

Peak memory is the cell's own: on the CPU the process's peak resident set (VmHWM) is reset before
the test (Linux ``/proc/self/clear_refs``) and read after it; on a GPU, ``torch.cuda``'s peak
allocated bytes, reset the same way. ``start_bytes`` is what the process already held when the test
began (in a sweep run by one process, earlier cells' memory): peak − start is the test's own growth. Where the reset is not possible the process's lifetime peak
is reported and says so (``since``).
"""
from __future__ import annotations

import os
import resource
import statistics

import torch


def reset_peak_memory(device: torch.device | str = "cpu") -> str:
    """Start a new peak; returns what the next ``peak_memory`` measures from ('test' or 'process start')."""
    if torch.device(device).type == "cuda":
        try:  # before CUDA is initialised there is nothing to reset (torch: "Invalid device argument")
            torch.cuda.init()
            torch.cuda.reset_peak_memory_stats(torch.device(device))
            return "test"
        except RuntimeError:
            return "process start"
    try:
        with open(f"/proc/{os.getpid()}/clear_refs", "w") as f:
            f.write("5")
        return "test"
    except OSError:
        return "process start"


def current_memory(device: torch.device | str = "cpu") -> int:
    """Bytes in use now: resident set (CPU) or allocated (CUDA) — the baseline a peak is read against."""
    if torch.device(device).type == "cuda":
        try:
            return int(torch.cuda.memory_allocated(torch.device(device)))
        except RuntimeError:
            return 0
    try:
        with open(f"/proc/{os.getpid()}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def peak_memory(device: torch.device | str = "cpu", since: str = "test", start_bytes: int | None = None) -> dict:
    if torch.device(device).type == "cuda":
        try:
            peak = int(torch.cuda.max_memory_allocated(torch.device(device)))
        except RuntimeError:
            peak = int(torch.cuda.max_memory_allocated())
        return {"bytes": peak, "kind": "cuda", "since": since, "start_bytes": start_bytes}
    try:
        with open(f"/proc/{os.getpid()}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return {"bytes": int(line.split()[1]) * 1024, "kind": "rss", "since": since,
                            "start_bytes": start_bytes}
    except OSError:
        pass
    return {"bytes": int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024, "kind": "rss",
            "since": "process start", "start_bytes": start_bytes}


def timing_summary(rows: list[dict], warmup_images: int) -> dict:
    """Per-image seconds over the test set, the first batch (warm-up: lazy init, caches, pools)
    excluded when there is more than one batch."""
    seconds = [float(r["seconds"]) for r in rows]
    skip = warmup_images if len(seconds) > warmup_images else 0
    kept = seconds[skip:]
    return {"seconds_per_image_median": statistics.median(kept) if kept else float("nan"),
            "seconds_per_image_mean": statistics.fmean(kept) if kept else float("nan"),
            "warmup_images_excluded": skip, "n_timed": len(kept)}
