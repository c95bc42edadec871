"""The table printed when a sweep ends: rows = method (and variant), columns = sigma.

Cells read their numbers from each cell's ``metrics.json``; nothing is recomputed, so the table of a
resumed sweep equals the table of an uninterrupted one. Written as markdown, CSV and LaTeX.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from denoise_bench.artifacts import atomic_write_text

METHOD_ORDER = ["noisy", "bm3d", "dncnn", "flow_prior", "glow_map", "fdn"]
SWEEP_AXES = ("method", "sigma", "data")  # overrides that are rows/columns, not variants


def collect_cells(*dirs: str | Path) -> pd.DataFrame:
    """One row per cell found under ``dirs`` (any depth), with its metrics and config."""
    records = []
    for d in dirs:
        for path in sorted(Path(d).rglob("metrics.json")):
            try:
                m = json.loads(path.read_text())
            except json.JSONDecodeError:
                continue
            if "psnr" not in m:
                continue
            overrides = [o for o in str(m.get("overrides", "")).split(",") if "=" in o]
            variant = ",".join(o for o in overrides if o.split("=")[0] not in SWEEP_AXES)
            records.append({
                "dir": str(path.parent), "method": m["method"], "variant": variant, "dataset": m["dataset"],
                "sigma": str(m["sigma"]), "n_images": m["n_images"], "scale": m.get("scale"),
                "psnr": m["psnr"]["mean"], "psnr_std": m["psnr"]["std"],
                "ssim": m["ssim"]["mean"], "ssim_std": m["ssim"]["std"],
                "mse": m["mse"]["mean"], "mse_std": m["mse"]["std"],
                "seconds": m.get("seconds"), "parameters": m.get("parameters"),
                "noise": m.get("noise", ""), "metric_protocol": m.get("metric_protocol", ""),
                "test_set": m.get("test_set", ""),
            })
    return pd.DataFrame.from_records(records)


def _sigma_key(s: str):
    try:
        return (0, float(s))
    except ValueError:
        return (1, s)


def _row_label(method: str, variant: str) -> str:
    return f"{method} ({variant})" if variant else method


def _drop_constant_overrides(variants: pd.Series) -> pd.Series:
    """Keep only the overrides that tell cells apart (those shared by every cell go to the caption)."""
    parsed = [dict(o.split("=", 1) for o in v.split(",") if "=" in o) for v in variants]
    keys = {k for p in parsed for k in p}
    varying = {k for k in keys if len({p.get(k) for p in parsed}) > 1}
    return pd.Series([",".join(f"{k}={p[k]}" for k in sorted(p) if k in varying) for p in parsed],
                     index=variants.index)


def sweep_table(cells: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """(table of 'mean ± std' strings, caption)."""
    cells = cells.copy()
    cells["variant"] = _drop_constant_overrides(cells["variant"])
    cells["row"] = [_row_label(m, v) for m, v in zip(cells["method"], cells["variant"])]
    multi_data = cells["dataset"].nunique() > 1
    if multi_data:
        cells["row"] = cells["dataset"] + " / " + cells["row"]
    sigmas = sorted(cells["sigma"].unique(), key=_sigma_key)
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    rows = sorted(cells["row"].unique(), key=lambda r: (
        r.split(" / ")[0] if multi_data else "", order.get(r.split(" / ")[-1].split(" ")[0], 99), r))
    table = pd.DataFrame(index=rows)
    table.index.name = "method"
    for s in sigmas:
        for metric, fmt in (("psnr", "{:.2f} ± {:.2f}"), ("ssim", "{:.4f} ± {:.4f}")):
            col = f"σ={s} {metric.upper()}"
            table[col] = ""
            for _, c in cells[cells["sigma"] == s].iterrows():
                table.loc[c["row"], col] = fmt.format(c[metric], c[f"{metric}_std"])
    n = sorted(set(int(x) for x in cells["n_images"]))
    caption = (
        f"PSNR (dB) and SSIM, mean ± std over images. Data: {', '.join(sorted(set(cells['test_set'])))}; "
        f"n images: {', '.join(map(str, n))}; scale: {', '.join(sorted(set(map(str, cells['scale']))))}. "
        f"Noise: {'; '.join(sorted(set(cells['noise'])))}. "
        f"Metrics: {'; '.join(sorted(set(cells['metric_protocol'])))}."
    )
    return table, caption


def write_table_files(table: pd.DataFrame, caption: str, out_dir: str | Path, stem: str = "table") -> str:
    """``<stem>.md / .csv / .tex`` of a sweep table; returns the markdown."""
    out_dir = Path(out_dir)
    md = table.to_markdown() + f"\n\n{caption}\n"
    atomic_write_text(out_dir / f"{stem}.md", md)
    atomic_write_text(out_dir / f"{stem}.csv", table.to_csv())
    atomic_write_text(out_dir / f"{stem}.tex", table.to_latex(caption=caption, escape=True).replace("±", r"$\pm$"))
    return md


def write_sweep_table(sweep_dir: str | Path, out_dir: str | Path | None = None, quiet: bool = False) -> Path | None:
    from filelock import FileLock

    sweep_dir = Path(sweep_dir)
    out_dir = Path(out_dir) if out_dir else sweep_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    # two sweeps sharing a folder: collect + write under one lock, so the later table has every cell
    with FileLock(str(out_dir / ".table.lock")):
        cells = collect_cells(sweep_dir)
        if cells.empty:
            print(f"[table] no finished cells under {sweep_dir}")
            return None
        table, caption = sweep_table(cells)
        md = write_table_files(table, caption, out_dir)
        atomic_write_text(out_dir / "cells.csv", cells.to_csv(index=False))
    if not quiet:
        print(f"\n{md}\n[table] {out_dir}/table.md (.csv, .tex)")
    return out_dir / "table.md"


try:
    from hydra.experimental.callback import Callback
except ImportError:  # pragma: no cover
    Callback = object


class SweepTableCallback(Callback):
    """Hydra callback: after a multirun, aggregate all cells of the sweep dir into one table."""

    def on_multirun_end(self, config, **kwargs) -> None:
        sweep_dir = config.hydra.sweep.dir
        write_sweep_table(sweep_dir)
        from omegaconf import OmegaConf

        for name in OmegaConf.select(config, "report.tables", default=None) or []:
            # paper-layout tables (paper / ours / delta) of an experiment, see report/paper_tables.py
            from denoise_bench.report.paper_tables import build_table

            try:
                build_table(str(name), sweep_dir, out_dir=sweep_dir)
            except Exception as e:  # the cells are done; a table bug must not look like a failed sweep
                print(f"[report] {name}: not built ({type(e).__name__}: {e}); "
                      f"rebuild with python -m denoise_bench.report {sweep_dir} --out {sweep_dir}")
