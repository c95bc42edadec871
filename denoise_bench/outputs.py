"""What one sweep cell leaves in its output dir: metrics.json, per_image.csv, samples.png.

Every file is written atomically (temp file + rename), and ``metrics.json`` last: a cell killed
half-way leaves no ``metrics.json``, so a re-run of the sweep recomputes it.
"""
from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from denoise_bench.atomic import atomic_write_bytes, atomic_write_text
from denoise_bench.tensor_images import to_uint8

METRIC_KEYS = ("psnr", "ssim", "mse")
COLOUR_METRIC_KEYS = ("psnr_y", "ssim_y")  # rows of colour images only (metrics.image_metrics)


def summarise(rows: list[dict]) -> dict:
    """Mean and std over images (sample std, ddof=1) of each metric; the luma metrics when every
    row has them (colour data)."""
    out = {}
    luma = [k for k in COLOUR_METRIC_KEYS if rows and all(k in r for r in rows)]
    for key in (*METRIC_KEYS, *luma):
        v = np.array([r[key] for r in rows], dtype=np.float64)
        out[key] = {"mean": float(v.mean()) if len(v) else math.nan,
                    "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0}
    return out


def _to_rgb_uint8(x: torch.Tensor) -> np.ndarray:
    a = to_uint8(x)
    return np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a


def sample_grid(examples: list[dict], gap: int = 4, max_side: int = 256) -> Image.Image:
    """Rows of [noisy | denoised | clean], each image scaled to at most ``max_side``."""
    tiles = []
    for ex in examples:
        row = []
        for key in ("noisy", "denoised", "clean"):
            im = Image.fromarray(_to_rgb_uint8(ex[key]))
            scale = min(1.0, max_side / max(im.size))
            if scale < 1.0:
                im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.BICUBIC)
            row.append(im)
        tiles.append(row)
    width = max(sum(t.width for t in row) + gap * 2 for row in tiles)
    height = sum(max(t.height for t in row) for row in tiles) + gap * (len(tiles) - 1)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    y = 0
    for row in tiles:
        x = 0
        for t in row:
            canvas.paste(t, (x, y))
            x += t.width + gap
        y += max(t.height for t in row) + gap
    return canvas


N_EXAMPLE_FILES = 2  # first test images also saved one PNG per image (report/figures.py compares methods)


def example_pngs(examples: list[dict]) -> dict[str, bytes]:
    """``examples/<k>_<image id>_<noisy|denoised|clean>.png`` (8-bit, gray stays gray)."""
    out = {}
    for k, ex in enumerate(examples[:N_EXAMPLE_FILES]):
        safe = "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in str(ex["image"]))
        for key in ("noisy", "denoised", "clean"):
            a = to_uint8(ex[key])
            buf = io.BytesIO()
            Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a).save(buf, format="PNG")
            out[f"examples/{k:02d}_{safe}_{key}.png"] = buf.getvalue()
    return out


def write_cell(out_dir: Path, rows: list[dict], examples: list[dict], summary: dict) -> None:
    from denoise_bench.report.provenance import cell_provenance

    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "per_image.csv", pd.DataFrame(rows).to_csv(index=False))
    if examples:
        buf = io.BytesIO()
        sample_grid(examples).save(buf, format="PNG")
        atomic_write_bytes(out_dir / "samples.png", buf.getvalue())
    for name, data in example_pngs(examples).items():
        atomic_write_bytes(out_dir / name, data)
    summary = {**summary, "provenance": summary.get("provenance") or cell_provenance()}
    atomic_write_text(out_dir / "metrics.json", json.dumps(summary, indent=2, default=str))


def read_metrics(out_dir: Path) -> dict | None:
    p = Path(out_dir) / "metrics.json"
    try:
        return json.loads(p.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
