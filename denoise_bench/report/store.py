"""Keep the small outputs of a sweep's cells in the repository (``results/cells/<sweep>/``).

Copied per cell: ``metrics.json``, ``per_image.csv`` and ``.hydra/overrides.yaml`` verbatim, the example PNGs as the centre crop
the comparison figures show, and the training curve as ``train_curve.csv`` (from the CSV logger or
the W&B run file). Checkpoints, W&B media and sample grids stay behind. The report built from the
copy is byte-identical to the one built from the sweep dir, and the copy is what results/ commits.
"""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np

from denoise_bench.artifacts import atomic_write_bytes, atomic_write_text
from denoise_bench.report.cells import load_cells
from denoise_bench.report.curves import CURVE_FILE, read_curve
from denoise_bench.report.figures import centre_crop, example_files


def store_cells(sweep_dirs: list[str | Path], dest: str | Path) -> int:
    """Copy the cells under ``sweep_dirs`` into ``dest`` (same relative dirs); returns the count.

    With several sweep dirs, each one's cells go under ``dest/<sweep dir name>/``.
    """
    from PIL import Image

    dest = Path(dest)
    n = 0
    for sweep in sweep_dirs:
        sweep = Path(sweep)
        base = dest if len(sweep_dirs) == 1 else dest / sweep.resolve().name
        for cell in load_cells(sweep):
            target = base / cell.rel
            if target.resolve() == cell.path:
                continue  # storing a stored copy onto itself
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cell.path / "metrics.json", target / "metrics.json")
            for small in ("per_image.csv", ".hydra/overrides.yaml",  # the latter: the cell's full command line
                          *(p.name for p in sorted(cell.path.glob("curve_*.csv")))):  # training.callbacks curves
                if (cell.path / small).exists():
                    (target / small).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(cell.path / small, target / small)
            for stem, files in example_files(cell.path).items():
                if stem.split("_", 1)[0] != "00":
                    continue  # the first image is the one the figures show
                for kind, p in files.items():
                    buf = io.BytesIO()
                    Image.fromarray(centre_crop(np.asarray(Image.open(p)))).save(buf, format="PNG")
                    atomic_write_bytes(target / "examples" / p.name, buf.getvalue())
            curve = read_curve(cell.path)
            if not curve.empty:
                atomic_write_text(target / CURVE_FILE, curve.to_csv(index=False))
            n += 1
    return n
