"""Training curves of a cell, from whatever its logger left: ``train_curve.csv`` (the copy kept under
results/cells), the CSV logger's ``csv/metrics.csv``, or the W&B run file (offline or synced).

Only a cell that trained a model has a curve (later cells load the stored artifact). A cell that
trains twice (a prior, then the denoiser) logs two runs of steps; ``segments`` splits them.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

CURVE_FILE = "train_curve.csv"


def _tidy(df: pd.DataFrame) -> pd.DataFrame:
    keep = [c for c in df.columns if c.startswith(("train/", "val/"))]
    if not keep or "step" not in df.columns:
        return pd.DataFrame()
    df = df[["step", *sorted(keep)]].dropna(how="all", subset=keep)
    return df.reset_index(drop=True)


def read_curve(cell_dir: str | Path) -> pd.DataFrame:
    """Columns: step, train/*, val/* (one row per logged step, in logging order); empty if none."""
    d = Path(cell_dir)
    if (d / CURVE_FILE).exists():
        return _tidy(pd.read_csv(d / CURVE_FILE))
    csv = d / "csv" / "metrics.csv"
    if csv.exists():
        return _tidy(pd.read_csv(csv))
    from denoise_bench.report.wandb_offline import read_run, run_files

    rows = []
    for f in run_files(d):
        try:
            history = read_run(f)["history"]
        except (ValueError, OSError):
            continue
        for h in history:
            if any(k.startswith(("train/", "val/")) for k in h):
                step = h.get("trainer/global_step", h.get("_step"))
                rows.append({"step": step, **{k: v for k, v in h.items()
                                              if k.startswith(("train/", "val/")) and isinstance(v, (int, float))}})
    return _tidy(pd.DataFrame(rows)) if rows else pd.DataFrame()


def segments(curve: pd.DataFrame) -> list[pd.DataFrame]:
    """Split where the step goes back (a second training run in the same cell)."""
    if curve.empty:
        return []
    starts = [0] + [i for i in range(1, len(curve)) if curve["step"].iloc[i] < curve["step"].iloc[i - 1]]
    ends = starts[1:] + [len(curve)]
    return [curve.iloc[a:b] for a, b in zip(starts, ends)]


def learning_curves(cell_dir: str | Path) -> dict[str, pd.DataFrame]:
    """The ``curve_<kind>.csv`` of every model a cell trained or loaded (``training/callbacks.py``):
    kind -> columns step, seconds (training wall-clock, validation excluded), train_loss, val_psnr."""
    out = {}
    for p in sorted(Path(cell_dir).glob("curve_*.csv")):
        try:
            df = pd.read_csv(p)
        except (OSError, ValueError, pd.errors.EmptyDataError):
            continue
        if {"step", "seconds", "val_psnr"} <= set(df.columns):
            out[p.stem.removeprefix("curve_")] = df
    return out
