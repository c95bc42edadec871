"""Where a number came from: the code version and the machine of a cell's run, and of a report.

A cell stores ``provenance`` (commit, finish time, machine) in its ``metrics.json`` when it is
written; tables print only the cells' commits (stable), while the report's own date and command go
to a separate ``PROVENANCE.md`` so that tables stay byte-for-byte reproducible.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """``git rev-parse --short HEAD`` of this checkout, '+dirty' when tracked files are modified."""
    head = _git("rev-parse", "--short", "HEAD")
    if not head:
        return None
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return head + ("+dirty" if dirty else "")


@lru_cache(maxsize=1)
def machine() -> str:
    """'<cpu> (<n> cores), <gpu or no GPU>, torch <version>, <os>' without host names."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = "no GPU"
    torch_version = "?"
    try:
        import torch

        torch_version = torch.__version__
        if torch.cuda.is_available():
            gpu = ", ".join(sorted({torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())}))
    except ImportError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu} ({cores} cores), {gpu}, torch {torch_version}, {platform.system()} {platform.release()}"


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def cell_provenance(weights_files=None, threads=None) -> dict:
    """Stored in each cell's metrics.json: the commit, when it finished and on what machine."""
    return {"commit": git_commit(), "finished": now(), "machine": machine()}
