"""The table printed when a sweep ends: rows = method (and variant), columns = sigma.

Cells read their numbers from each cell's ``metrics.json`` (cells.py, the one reader); nothing is
recomputed, so the table of a resumed sweep equals the table of an uninterrupted one. Written as
markdown, CSV and LaTeX, with the paired comparisons behind its bold marks (comparisons.py).
Options: ``channels`` ("rgb", "y" for Y-channel PSNR/SSIM, "both"), ``timing`` (seconds per image
and peak memory columns; None = when some cell recorded them).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from denoise_bench.artifacts import atomic_write_text
from denoise_bench.errors import ConfigError
from denoise_bench.report import comparisons
from denoise_bench.report.caption import significance
from denoise_bench.report.cells import Cell, cells_frame, load_cells, method_rank
from denoise_bench.report.layout import DASH, tex_escape

SWEEP_CHANNELS = ("rgb", "y", "both")
# (column label, metric, channels of the cell view, format)
METRIC_COLUMNS = {"rgb": [("PSNR", "psnr", "rgb", "{:.2f} ± {:.2f}"), ("SSIM", "ssim", "rgb", "{:.4f} ± {:.4f}")],
                  "y": [("PSNR-Y", "psnr", "y", "{:.2f} ± {:.2f}"), ("SSIM-Y", "ssim", "y", "{:.4f} ± {:.4f}")]}
COST_COLUMNS = [("s/img (median)", "s_per_img", "{:.3g}"), ("peak MB", "peak_mb", "{:.0f}")]


def collect_cells(*dirs: str | Path) -> pd.DataFrame:
    """One row per cell found under ``dirs`` (any depth), with its metrics and config (``cells.csv``)."""
    return cells_frame(load_cells(*dirs))


@dataclass
class SweepTable:
    frame: pd.DataFrame  # 'mean ± std' strings, rows = labels, columns = 'σ=<s> <metric>'
    caption: str
    marks: dict = field(default_factory=dict)  # (row, column) -> comparisons.Verdict
    comparisons: list = field(default_factory=list)  # comparisons.Pair
    channels: str = "rgb"
    metrics: tuple = ("psnr", "ssim")  # of the comparisons (psnr_y/ssim_y: the Y channel)

    def shown(self, bold) -> pd.DataFrame:
        """The frame with marks: ``bold(text)`` on significant bests, '(≈ X)' after ties."""
        out = self.frame.copy()
        for (row, col), v in self.marks.items():
            text = out.loc[row, col]
            out.loc[row, col] = bold(text) if v.kind == "significant" else text + v.suffix()
        return out


def _sigma_key(s: str):
    try:
        return (0, float(s))
    except ValueError:
        return (1, s)


def row_labels(cells: list[Cell]) -> dict[int, str]:
    """{id(cell): '[dataset / ]method[ (override=..., ...)]'}: only overrides that tell cells apart
    (those shared by every cell go unsaid); the dataset only when the cells span several."""
    keys = {k for c in cells for k in c.variant}
    varying = sorted(k for k in keys if len({c.variant.get(k) for c in cells}) > 1)
    multi_data = len({c.dataset for c in cells}) > 1
    out = {}
    for c in cells:
        v = ",".join(f"{k}={c.variant[k]}" for k in varying if k in c.variant)
        label = f"{c.method} ({v})" if v else c.method
        out[id(c)] = f"{c.dataset} / {label}" if multi_data else label
    return out


def _has_cost(cells: list[Cell]) -> bool:
    return any(c.value(k)[0] is not None for c in cells for _, k, _ in COST_COLUMNS)


def sweep_table(cells: list[Cell], channels: str = "rgb", timing: bool | None = None) -> SweepTable:
    """The table, its caption, marks and comparisons. ``channels``: rgb | y | both; ``timing``: the
    's/img (median)' and 'peak MB' columns (None: when some cell recorded them; — where a cell did not)."""
    if channels not in SWEEP_CHANNELS:
        raise ConfigError(f"channels {channels!r}: choose one of {', '.join(SWEEP_CHANNELS)}")
    specs = METRIC_COLUMNS["rgb"] * (channels != "y") + METRIC_COLUMNS["y"] * (channels != "rgb")
    timing = _has_cost(cells) if timing is None else timing
    names = row_labels(cells)
    by_label = {}
    for c in cells:  # in path order; a later cell with the same row and sigma replaces an earlier one
        by_label[(names[id(c)], c.sigma)] = c
    sigmas = sorted({c.sigma for c in cells}, key=_sigma_key)
    rows = sorted({names[id(c)] for c in cells}, key=lambda r: (
        r.split(" / ")[0] if " / " in r else "", method_rank(r.split(" / ")[-1].split(" ")[0]), r))
    table = pd.DataFrame(index=rows)
    table.index.name = "method"
    marks, groups = {}, {}
    for s in sigmas:
        for label, metric, ch, fmt in specs:
            col = f"σ={s} {label}"
            table[col] = ""
            ranked: dict[str, list] = {}
            for row in rows:
                c = by_label.get((row, s))
                if c is None:
                    continue
                view = c.with_channels(ch)
                mean, std = view.value(metric)
                table.loc[row, col] = DASH if mean is None else fmt.format(mean, std or 0.0)
                if mean is not None:  # ranked per (dataset, sigma): only those cells see the same noisy images
                    name = row.split(" / ", 1)[-1]
                    ranked.setdefault(c.dataset, []).append(((row, col), name, mean, view))
                    groups.setdefault((c.dataset, s), comparisons.Group(("dataset", "σ"), (c.dataset, s))).add(name, c)
            for cands in ranked.values():
                got = comparisons.verdict(cands, metric, higher=True)
                if got is not None:
                    marks[got[0]] = got[1]
        if timing:
            for label, key, fmt in COST_COLUMNS:
                col = f"σ={s} {label}"
                table[col] = [DASH if (c := by_label.get((r, s))) is None or c.value(key)[0] is None
                              else fmt.format(c.value(key)[0]) for r in rows]
    metrics = (("psnr", "ssim") if channels != "y" else ()) + (("psnr_y", "ssim_y") if channels != "rgb" else ())
    pairs = comparisons.compare(sorted(groups.values(), key=lambda g: (g.values[0], _sigma_key(g.values[1]))), metrics)
    return SweepTable(table, _caption(cells, channels, timing), marks, pairs, channels, metrics)


def _values(cells: list[Cell], fn) -> list[str]:
    return sorted({str(v) for v in map(fn, cells)})


def _caption(cells: list[Cell], channels: str, timing: bool) -> str:
    n = sorted({int(c.m["n_images"]) for c in cells if c.m.get("n_images") is not None})
    which = {"rgb": "PSNR (dB) and SSIM", "y": "PSNR (dB) and SSIM on the Y (luma) channel (psnr_y/ssim_y)",
             "both": "PSNR (dB) and SSIM on all channels and on the Y (luma) channel (-Y: psnr_y/ssim_y)"}[channels]
    parts = [
        f"{which}, mean ± std over images. Data: {', '.join(_values(cells, lambda c: c.m.get('test_set', '')))}; "
        f"n images: {', '.join(map(str, n))}; scale: {', '.join(_values(cells, lambda c: c.m.get('scale')))}. "
        f"Noise: {'; '.join(_values(cells, lambda c: c.noise or ''))}. "
        f"Metrics: {'; '.join(_values(cells, lambda c: c.m.get('metric_protocol', '')))}.",
        significance("the .comparisons.md next to this table", paper=False),
    ]
    if timing:
        kinds = _values([c for c in cells if c.m.get("peak_memory")], lambda c: c.m["peak_memory"].get("kind"))
        warm = _values([c for c in cells if c.m.get("timing")],
                       lambda c: c.m["timing"].get("warmup_images_excluded"))
        parts.append(f"s/img (median): median seconds per test image, the first {'/'.join(warm) or '?'} warm-up "
                     f"image(s) excluded; peak MB: peak memory in MiB ({', '.join(kinds) or 'unrecorded'}: rss = "
                     "process resident set, cuda = torch.cuda.max_memory_allocated); — = not recorded by the cell.")
    return " ".join(parts)


def write_table_files(table: SweepTable, out_dir: str | Path, stem: str = "table") -> str:
    """``<stem>.md / .csv / .tex`` of a sweep table and ``<stem>.comparisons.md/.csv``; returns the markdown."""
    out_dir = Path(out_dir)
    md = table.shown(lambda t: f"**{t}**").to_markdown() + f"\n\n{table.caption}\n"
    atomic_write_text(out_dir / f"{stem}.md", md)
    atomic_write_text(out_dir / f"{stem}.csv", table.frame.to_csv())
    tex = table.shown(lambda t: "\x00" + t + "\x01").map(tex_escape)
    tex.index = [tex_escape(i) for i in tex.index]
    tex.index.name = tex_escape(table.frame.index.name)
    tex.columns = [tex_escape(c) for c in tex.columns]
    latex = tex.to_latex(caption=tex_escape(table.caption), escape=False)
    atomic_write_text(out_dir / f"{stem}.tex", latex.replace("\x00", "\\textbf{").replace("\x01", "}"))
    comparisons.write(table.comparisons, out_dir, stem, "Sweep table: paired comparisons", table.metrics,
                      "y" if table.channels == "y" else "rgb")
    return md


def write_sweep_table(sweep_dir: str | Path, out_dir: str | Path | None = None, quiet: bool = False,
                      channels: str = "rgb", timing: bool | None = None) -> Path | None:
    from filelock import FileLock

    sweep_dir = Path(sweep_dir)
    out_dir = Path(out_dir) if out_dir else sweep_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    # two sweeps sharing a folder: collect + write under one lock, so the later table has every cell
    with FileLock(str(out_dir / ".table.lock")):
        cells = load_cells(sweep_dir)
        if not cells:
            print(f"[table] no finished cells under {sweep_dir}")
            return None
        # timings differ between runs of the same cells: by default they go to their own table, so that
        # table.* of a resumed sweep is byte for byte the table of an uninterrupted one
        md = write_table_files(sweep_table(cells, channels, bool(timing)), out_dir)
        if timing is None and any(c.m.get("timing") for c in cells):
            write_table_files(sweep_table(cells, channels, True), out_dir, "table_cost")
        atomic_write_text(out_dir / "cells.csv", cells_frame(cells).to_csv(index=False))
    if not quiet:
        print(f"\n{md}\n[table] {out_dir}/table.md (.csv, .tex, .comparisons.md; timing and peak memory: table_cost.md)")
    return out_dir / "table.md"


try:
    from hydra.experimental.callback import Callback
except ImportError:  # pragma: no cover
    Callback = object


class SweepTableCallback(Callback):
    """Hydra callback: after a multirun, aggregate all cells of the sweep dir into one table."""

    def on_multirun_end(self, config, **kwargs) -> None:
        from omegaconf import OmegaConf

        sweep_dir = config.hydra.sweep.dir
        channels = OmegaConf.select(config, "report.channels", default=None) or "rgb"
        timing = OmegaConf.select(config, "report.timing", default=None)
        write_sweep_table(sweep_dir, channels=channels, timing=timing)

        for name in OmegaConf.select(config, "report.tables", default=None) or []:
            # paper-layout tables (paper / ours / delta) of an experiment, see report/paper_tables.py
            from denoise_bench.report.paper_tables import build_table

            try:
                build_table(str(name), sweep_dir, out_dir=sweep_dir, channels="y" if channels == "y" else "rgb")
            except Exception as e:  # the cells are done; a table bug must not look like a failed sweep
                print(f"[report] {name}: not built ({type(e).__name__}: {e}); "
                      f"rebuild with python -m denoise_bench.report {sweep_dir} --out {sweep_dir}")
