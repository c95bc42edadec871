"""Wall time of whole sweeps: sequential vs parallel cells, shared models vs one per cell, resume.

    python benchmarks/bench_sweeps.py [--scale quick|smoke] [--only a,b,c] [--keep DIR] [--extra K=V ...]

(a) the default baseline sweep ``-m method=noisy,bm3d,dncnn sigma=15,25,50``, basic launcher vs
    ``hydra/launcher=joblib hydra.launcher.n_jobs=2`` (fresh artifact stores: both train);
(b) a glow_map sigma x beta sweep ``method=glow_map sigma=15,25 method.beta=1,4`` (64x64 test crops): one prior shared by
    the four cells (artifact store) vs ``reuse_artifacts=false`` (one prior training per cell). The
    prior is shortened to ``--prior-steps`` (default 300) so that the no-reuse run stays minutes long;
    the ratio is what counts;
(c) re-running sweep (a) when every cell is done (resume: all cells skipped).
Every run uses a private ``name=`` and temporary ``paths.multirun`` / ``paths.artifacts``. The
machines are shared and noisy: compare the ratios within one run.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

REPO = Path(__file__).resolve().parents[1]
BASELINES = ["method=noisy,bm3d,dncnn", "sigma=15,25,50"]
GLOW_GRID = ["method=glow_map", "sigma=15,25", "method.beta=1,4", "data.test.crop=64"]


def sweep(tmp: Path, name: str, args: list[str], scale: str, artifacts: str, extra: list[str]) -> dict:
    args = [*args, *extra]
    cmd = [sys.executable, str(REPO / "run.py"), "-m", *args, f"scale={scale}", "logger=none", "progress=false",
           f"name={name}", f"paths.multirun={tmp / 'multirun'}", f"paths.artifacts={tmp / artifacts}"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "WANDB_MODE": "offline"}
    start = time.perf_counter()
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if res.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{res.stderr[-3000:]}")
    out = res.stdout
    table = (tmp / "multirun" / name / "table.csv").read_text()
    return {"seconds": seconds, "trained": out.count(": training ("), "loaded": out.count(": loaded "),
            "cells": out.count("[cell]"), "skipped": out.count("[skip]"), "table": table,
            "command": "python run.py -m " + " ".join(args) + f" scale={scale}"}


def compare_tables(a: str, b: str) -> str:
    """'identical', or which rows of two table.csv texts differ (by their first column: the method)."""
    if a == b:
        return "identical"
    rows_a = {line.split(",", 1)[0]: line for line in a.splitlines()[1:]}
    rows_b = {line.split(",", 1)[0]: line for line in b.splitlines()[1:]}
    differ = sorted(k for k in rows_a.keys() | rows_b.keys() if rows_a.get(k) != rows_b.get(k))
    same = sorted(k for k in rows_a.keys() & rows_b.keys() if rows_a[k] == rows_b[k])
    return f"DIFFERENT in rows {', '.join(differ)}; identical in rows {', '.join(same) or 'none'}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", default="quick", choices=["smoke", "quick", "paper"])
    ap.add_argument("--only", default="a,b,c", help="which parts, e.g. b,c")
    ap.add_argument("--keep", default=None, help="keep the sweep folders here (default: a temp dir, deleted)")
    ap.add_argument("--prior-steps", type=int, default=300, help="Glow prior training steps in part (b)")
    ap.add_argument("--extra", nargs="*", default=[], help="overrides added to every sweep, e.g. method.train_steps=200")
    args = ap.parse_args()
    parts = set(args.only.split(","))
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_sweeps_"))
    tmp.mkdir(parents=True, exist_ok=True)
    tag = f"bench{os.getpid()}"
    rows = []

    def row(part, label, r, ratio=""):
        rows.append([part, label, f"{r['seconds']:.1f}", ratio, r["cells"], r["skipped"], r["trained"], r["loaded"]])
        print(f"  {label}: {r['seconds']:.1f} s", flush=True)

    try:
        if parts & {"a", "c"}:
            print("(a) baseline sweep, basic launcher ...", flush=True)
            seq = sweep(tmp, f"{tag}_seq", BASELINES, args.scale, "art_seq", args.extra)
            row("a", "sequential (basic launcher)", seq, "1.00")
        if "a" in parts:
            print("(a) baseline sweep, joblib n_jobs=2 ...", flush=True)
            par = sweep(tmp, f"{tag}_par", [*BASELINES, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
                        args.scale, "art_par", args.extra)
            row("a", "joblib, n_jobs=2", par, f"{seq['seconds'] / par['seconds']:.2f}x speed-up")
            print(f"  tables of the two launchers: {compare_tables(seq['table'], par['table'])}")
            print("  (joblib gives each cell cores // n_jobs torch threads; a different thread count changes the\n"
                  "   order of CPU float reductions, so trained models may differ; with threads=1 on both they\n"
                  "   are identical: tests/test_determinism.py)")
        if "c" in parts:
            print("(c) resume: the same sweep again, every cell done ...", flush=True)
            res = sweep(tmp, f"{tag}_seq", BASELINES, args.scale, "art_seq", args.extra)
            row("c", "resume, all cells done", res, f"{res['seconds'] / seq['seconds']:.3f} of (a)")
            print(f"  table after resume: {compare_tables(seq['table'], res['table'])}")
        if "b" in parts:
            grid = [*GLOW_GRID, f"prior.train_steps={args.prior_steps}"]
            print("(b) glow_map sigma x beta, one shared prior ...", flush=True)
            shared = sweep(tmp, f"{tag}_reuse", grid, args.scale, "art_reuse", args.extra)
            print("(b) glow_map sigma x beta, reuse_artifacts=false ...", flush=True)
            alone = sweep(tmp, f"{tag}_noreuse", [*grid, "reuse_artifacts=false"], args.scale, "art_noreuse",
                          args.extra)
            row("b", "glow_map, reuse_artifacts=false (a prior per cell)", alone, "1.00")
            row("b", "glow_map, shared prior (artifact store)", shared,
                f"{alone['seconds'] / shared['seconds']:.2f}x speed-up")
            print(f"  tables with and without reuse: {compare_tables(shared['table'], alone['table'])}")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(tabulate(rows, headers=["part", "sweep", "wall s", "ratio", "cells run", "skipped", "trainings", "loads"],
                  tablefmt="github"))
    print(f"\nscale={args.scale}; extra overrides: {' '.join(args.extra) or 'none'}; cores: {os.cpu_count()}; load average at the end: "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
