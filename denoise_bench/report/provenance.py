"""Where a number came from: the code version, libraries, weights and machine of a cell's run.

A cell stores ``provenance`` (``cell_provenance()``) in its ``metrics.json`` when it is written;
tables print only the cells' commits (stable), while the report's own date and command and the
cells' versions, weight hashes and machines go to a separate ``PROVENANCE.md``, so that tables stay
byte-for-byte reproducible. Cells written before the versions/weights/dirty keys existed are read by
``commit_of`` (their commit carried a '+dirty' suffix) and show 'unrecorded' for the rest.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import os
import platform
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# distributions whose versions can change a number (or the way it is computed and logged)
PACKAGES = ("torch", "lightning", "hydra-core", "omegaconf", "torchmetrics", "numpy", "scipy", "scikit-image",
            "bm3d", "wandb")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@lru_cache(maxsize=1)
def git_state() -> tuple[str | None, bool | None]:
    """(``git rev-parse --short HEAD``, whether tracked files are modified); (None, None) outside git."""
    head = _git("rev-parse", "--short", "HEAD")
    if not head:
        return None, None
    return head, bool(_git("status", "--porcelain", "--untracked-files=no"))


def git_commit() -> str | None:
    """The commit as one label: '<sha>' or '<sha>+dirty'."""
    head, dirty = git_state()
    return None if head is None else head + ("+dirty" if dirty else "")


def commit_of(prov: dict) -> tuple[str | None, bool | None]:
    """(commit, dirty) of a cell's stored provenance, new ('dirty' key) or old ('<sha>+dirty')."""
    commit = prov.get("commit")
    if commit is None:
        return None, prov.get("dirty")
    commit = str(commit)
    if "dirty" in prov:
        return commit, prov["dirty"]
    return commit.removesuffix("+dirty"), commit.endswith("+dirty")


def commit_label(prov: dict) -> str | None:
    """'<sha>' or '<sha>+dirty' (None when unrecorded), the same for old and new cells."""
    commit, dirty = commit_of(prov)
    return None if commit is None else commit + ("+dirty" if dirty else "")


def versions() -> dict[str, str | None]:
    """{'python': '3.12.3', 'torch': '2.x', ...}: installed versions of PACKAGES (None: not installed)."""
    from importlib import metadata

    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


@lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_file(path: str | Path) -> str | None:
    """Hex sha256 of a file (memoised per path, size and mtime); None when it cannot be read."""
    try:
        st = os.stat(path)
        return _sha256(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    except OSError:
        return None


def weights_provenance(weights_files: dict[str, str | Path] | None) -> dict[str, dict]:
    """{role: {'path': str, 'sha256': hex or None}} for each weights file a cell read."""
    return {str(role): {"path": str(p), "sha256": sha256_file(p)}
            for role, p in sorted((weights_files or {}).items()) if p}


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """/proc/cpuinfo's 'model name' (else platform's processor / machine)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_name() -> str | None:
    """The CUDA devices' names (distinct, sorted), None without torch or CUDA. Never imports torch
    itself (a report process does not need it): reads it only when the caller already did."""
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_available():
            return ", ".join(sorted({torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())}))
    except Exception:  # a broken driver must not lose a finished cell
        return None
    return None


def torch_threads() -> int | None:
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else None


def _cores() -> int | None:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


@lru_cache(maxsize=1)
def machine() -> str:
    """'<cpu> (<n> cores), <gpu or no GPU>, torch <version>, <os>' without host names."""
    torch = sys.modules.get("torch")
    torch_version = getattr(torch, "__version__", None) or versions().get("torch") or "?"
    return (f"{cpu_model()} ({_cores()} cores), {gpu_name() or 'no GPU'}, torch {torch_version}, "
            f"{platform.system()} {platform.release()}")


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def cell_provenance(weights_files: dict[str, str] | None = None, threads: int | None = None) -> dict:
    """Stored in each cell's metrics.json: commit and dirty flag, when it finished, library versions,
    sha256 of every weights file it read (``{role: path}``, e.g. ``{"method.weights": p,
    "artifact:glow_prior": ".../model.pt"}``), and the machine (CPU model, GPU, torch threads).

    ``threads``: the torch thread count the cell ran with (default: ``torch.get_num_threads()``)."""
    commit, dirty = git_state()
    return {"commit": commit, "dirty": dirty, "finished": now(), "machine": machine(), "versions": versions(),
            "weights": weights_provenance(weights_files), "cpu": cpu_model(), "gpu": gpu_name(),
            "threads": threads if threads is not None else torch_threads()}
