"""Finished cells as records: each cell's ``metrics.json`` (summary + full resolved config).

Tables and figures read only these stored outputs, never recompute. A cell is identified by its
directory relative to the sweep dir it was found in (``rel``), so the same cells copied elsewhere
(``results/cells/<sweep>``) give byte-identical tables.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

SWEEP_AXES = ("method", "sigma", "data", "data.root", "data.test_root")  # table axes, not variants


@dataclass
class Cell:
    rel: str  # cell dir relative to the sweep dir ("." for a cell dir given directly)
    path: Path  # absolute cell dir (never printed into a table)
    m: dict = field(repr=False)  # metrics.json

    @property
    def config(self) -> dict:
        return self.m.get("config") or {}

    def get(self, dotted: str, default=None):
        """A key of the cell's resolved config, e.g. ``method.beta``."""
        node = self.config
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    @property
    def method(self) -> str:
        return str(self.m.get("method"))

    @property
    def sigma(self) -> str:
        """The noise level label: '25', 'blind' or 'real'."""
        return sigma_label(self.m.get("sigma"))

    @property
    def dataset(self) -> str:
        """The dataset's name; for a folder dataset the folder's name (Set12, BSD68...)."""
        data = self.config.get("data") or {}
        if data.get("source") in ("folder", "paired_folder") and data.get("root"):
            return Path(str(data["root"]).rstrip("/")).name
        return str(self.m.get("dataset"))

    @property
    def overrides(self) -> dict[str, str]:
        return dict(o.split("=", 1) for o in str(self.m.get("overrides", "")).split(",") if "=" in o)

    @property
    def task_overrides(self) -> list[str]:
        """The cell's full command-line overrides (Hydra's ``.hydra/overrides.yaml``; it also holds the
        keys the folder name leaves out, e.g. experiment=, data.root=); else the folder's overrides."""
        p = self.path / ".hydra" / "overrides.yaml"
        if p.exists():
            import yaml

            try:
                return [str(o) for o in (yaml.safe_load(p.read_text()) or [])]
            except yaml.YAMLError:
                pass
        return [f"{k}={v}" for k, v in self.overrides.items()]

    @property
    def variant(self) -> dict[str, str]:
        """The cell's overrides other than the sweep axes (method / sigma / data / its folder)."""
        return {k: v for k, v in self.overrides.items() if k not in SWEEP_AXES}

    def value(self, metric: str) -> tuple[float | None, float | None]:
        """(mean, std) of a metric in table units: psnr, ssim, mse, mse100, params_m, gflops (256×256)."""
        if metric in ("psnr", "ssim", "mse"):
            s = self.m.get(metric) or {}
            return s.get("mean"), s.get("std")
        if metric == "mse100":
            s = self.m.get("mse") or {}
            return (None if s.get("mean") is None else 100 * s["mean"],
                    None if s.get("std") is None else 100 * s["std"])
        if metric == "params_m":
            p = self.m.get("parameters")
            return (None if p is None else p / 1e6), None
        if metric == "gflops":
            g = self.m.get("gflops_256")  # cli.py via complexity.py; None for noisy / BM3D / beta-MAP
            return (None if g is None else float(g)), None
        return None, None


def sigma_label(sigma) -> str:
    if sigma is None:
        return "?"
    try:
        return f"{float(sigma):g}"
    except (TypeError, ValueError):
        return str(sigma).lower()


def fraction_label(x) -> str:
    """0.75 / '3/4' / 0.875 -> '3/4' / '3/4' / '7/8' (the FDN paper's dim(z_C) labels)."""
    try:
        return str(Fraction(str(x)).limit_denominator(64))
    except (ValueError, ZeroDivisionError):
        return str(x)


def number_label(x) -> str:
    """1 / 1.0 / '2' -> '1' / '1' / '2'; anything else as a string."""
    try:
        return f"{float(x):g}"
    except (TypeError, ValueError):
        return str(x)


def load_cells(*dirs: str | Path) -> list[Cell]:
    """Every finished cell (a ``metrics.json`` with a PSNR summary) under ``dirs``, in path order."""
    cells = []
    for d in dirs:
        d = Path(d)
        for path in sorted(d.rglob("metrics.json")):
            if any(part.startswith(".") for part in path.relative_to(d).parts):
                continue  # hidden dirs (.hydra, temp copies)
            try:
                m = json.loads(path.read_text())
            except (json.JSONDecodeError, OSError):
                continue
            if not isinstance(m, dict) or "psnr" not in m:
                continue
            rel = path.parent.relative_to(d).as_posix()
            cells.append(Cell(rel=rel, path=path.parent.resolve(), m=m))
    return cells
