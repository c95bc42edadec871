"""A cell's folder: one result per folder, never lost, never mixed.

- ``claim``: a per-cell lock (an flock, released by the OS if the holder dies): a second process on
  the same cell waits, then finds the result done and skips.
- ``decide``: a finished result of the same identity is skipped; one of another identity is refused
  with the first differing key named (``force=true`` replaces it), so a mistyped ``data.root`` or
  another ``method.weights`` can never overwrite or be mistaken for a finished result.
- A cell writes into ``.staging/``; ``commit`` moves the new files in only once the result is
  complete, ``metrics.json`` last. Until then the previous result stays as it was.
- ``record_failure`` leaves ``error.json`` (one-line message, type, traceback file) and every cell
  leaves ``outcome.json`` (done / skipped / failed, and which sweep invocation), which the sweep's
  summary counts.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from denoise_bench.atomic import atomic_write_text
from denoise_bench.errors import ConfigError
from denoise_bench.identity import first_difference, lookup, result_config

STAGING = ".staging"
RESULT_FILES = ("metrics.json", "per_image.csv", "samples.png", "examples")  # replaced as one set
SWEEP_ID_ENV = "DENOISE_BENCH_SWEEP_ID"


@contextmanager
def claim(out_dir: Path):
    """Hold the cell's lock; a second process waits for the first (and then usually skips)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(out_dir / ".cell.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"[cell] {out_dir}: another process is running this cell; waiting for it", flush=True)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def decide(out_dir: Path, cfg, key: str) -> str:
    """'run' or 'skip' for this config in this folder; refuses a different finished result."""
    done = read_json(out_dir / "metrics.json")
    if done is None:
        return "run"
    if done.get("cell_key") == key:
        return "run" if cfg.get("force", False) else "skip"
    if cfg.get("force", False):
        return "run"
    old = result_config(done.get("config") or {})
    new = result_config(cfg)
    diff = first_difference(old, new) or "the identity scheme (a result of an older version)"
    where = f"{diff}: {lookup(old, diff)!r} there, {lookup(new, diff)!r} now" if "." in diff or diff in new else diff
    raise ConfigError(f"{out_dir} holds a finished result of another config ({where}); "
                      "choose another folder (name=..., hydra.run.dir=..., hydra.sweep.dir=...) or force=true to replace it")


def staging(out_dir: Path) -> Path:
    d = out_dir / STAGING
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


def commit(out_dir: Path) -> None:
    """Move the complete new result from ``.staging`` into the folder; the old result (if any) is
    set aside first and deleted last. ``metrics.json`` is the last file to appear."""
    stage = out_dir / STAGING
    old = out_dir / f".replaced-{time.time_ns()}"
    replaced = {p.name for p in stage.iterdir()} | set(RESULT_FILES)
    entries = [p for p in out_dir.iterdir() if p.name in replaced or p.name.startswith("curve_")]
    if entries:
        old.mkdir()
        for p in sorted(entries, key=lambda p: p.name != "metrics.json"):  # the old metrics.json goes first
            os.replace(p, old / p.name)
    new = sorted(stage.iterdir(), key=lambda p: p.name == "metrics.json")  # ... and the new one comes last
    for p in new:
        os.replace(p, out_dir / p.name)
    shutil.rmtree(stage, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)


def discard_staging(out_dir: Path) -> Path | None:
    """After a failure: keep what the failed attempt wrote (e.g. last_good.pt) in ``failed/``."""
    stage = out_dir / STAGING
    if not stage.exists():
        return None
    if not any(stage.iterdir()):
        stage.rmdir()
        return None
    dest = out_dir / "failed"
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(stage, dest)
    return dest


def record_outcome(out_dir: Path, status: str, **extra) -> None:
    try:
        atomic_write_text(out_dir / "outcome.json", json.dumps(
            {"status": status, "sweep": os.environ.get(SWEEP_ID_ENV), "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
             **extra}, indent=2, default=str))
    except OSError:
        pass  # a read-only folder already produced its one-line error


def record_failure(out_dir: Path, exc: BaseException, message: str) -> None:
    """``error.json`` (message, type, traceback file) and the failed outcome; best effort."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        tb = out_dir / "error.traceback.txt"
        tb.write_text("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        atomic_write_text(out_dir / "error.json", json.dumps(
            {"message": message, "type": type(exc).__name__, "traceback": str(tb),
             "time": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=2))
    except OSError:
        pass
    record_outcome(out_dir, "failed", message=message)


def clear_failure(out_dir: Path) -> None:
    for name in ("error.json", "error.traceback.txt"):
        (out_dir / name).unlink(missing_ok=True)
    shutil.rmtree(out_dir / "failed", ignore_errors=True)
