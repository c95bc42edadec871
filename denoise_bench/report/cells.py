"""The one reader of cell outputs: each cell's ``metrics.json`` (summary + full resolved config) and
its ``per_image.csv``, and the one method order every table and figure uses.

Tables and figures read only these stored outputs, never recompute. A cell is identified by its
directory relative to the sweep dir it was found in (``rel``), so the same cells copied elsewhere
(``results/cells/<sweep>``) give byte-identical tables.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import pandas as pd

from denoise_bench.errors import DataError
from denoise_bench.methods import METHODS

SWEEP_AXES = ("method", "sigma", "data", "data.root", "data.test_root")  # table axes, not variants
METHOD_ORDER: tuple[str, ...] = tuple(METHODS)  # the registry's order: rows of tables, colours of figures
CHANNELS = ("rgb", "y")  # "y": PSNR/SSIM read from the luma columns psnr_y/ssim_y
PER_IMAGE_COLUMN = {"psnr": "psnr", "ssim": "ssim", "mse": "mse", "mse100": "mse"}  # table metric -> csv column


def method_rank(method: str) -> int:
    """Position of a method in METHOD_ORDER; unknown methods after all known ones."""
    return METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER)


def split_overrides(joined: str) -> list[str]:
    """``a=1,b=[0.5,1],c=x`` → ["a=1", "b=[0.5,1]", "c=x"]: the commas that join a cell's overrides
    (``identity.cell_dirname``), not those inside a list, a dict or quotes."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(joined):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            parts.append(joined[start:i])
            start = i + 1
    parts.append(joined[start:])
    return [p for p in parts if p]


@dataclass
class Cell:
    rel: str  # cell dir relative to the sweep dir ("." for a cell dir given directly)
    path: Path  # absolute cell dir (never printed into a table)
    m: dict = field(repr=False)  # metrics.json
    channels: str = "rgb"  # which PSNR/SSIM value() and per_image_values() read (see with_channels)
    _per_image: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    def with_channels(self, channels: str) -> "Cell":
        """The same cell reading Y-channel PSNR/SSIM (``psnr_y``/``ssim_y``) when ``channels="y"``."""
        if channels not in CHANNELS:
            raise ValueError(f"channels {channels!r}: choose one of {', '.join(CHANNELS)}")
        return replace(self, channels=channels, _per_image=self._per_image)

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
    def noise(self) -> str | None:
        """The test noise in words, read off the cell's config as the cell built it (``NoiseSpec``), so a
        table rebuilt from stored cells says what the config did; the stored text where the config lacks it."""
        from denoise_bench.data.noise import evaluation_noise
        from denoise_bench.errors import ConfigError

        if self.config.get("sigma") is not None and isinstance(self.config.get("noise"), dict):
            try:
                return evaluation_noise(self.config).describe()
            except ConfigError:
                pass
        return self.m.get("noise")

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
        return dict(o.split("=", 1) for o in split_overrides(str(self.m.get("overrides", ""))) if "=" in o)

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

    @property
    def seed(self):
        """The seed of the cell's noise (config ``seed``): cells are paired only when it is the same."""
        return self.get("seed")

    def metric_key(self, metric: str) -> str:
        """The stored key of a table metric: psnr -> psnr_y when the cell reads the Y channel."""
        if self.channels == "y" and metric in ("psnr", "ssim"):
            return f"{metric}_y"
        return metric

    def value(self, metric: str) -> tuple[float | None, float | None]:
        """(mean, std) of a metric in table units: psnr, ssim, mse, mse100, psnr_y, ssim_y, params_m,
        gflops (256×256), s_per_img (median seconds per image), peak_mb (peak memory, MiB), train_steps (the
        steps of the method's own model), prior_steps (its Glow prior's) and train_min (the training minutes
        of all its models, a prior's included)."""
        if metric in ("psnr", "ssim", "mse", "psnr_y", "ssim_y"):
            s = self.m.get(self.metric_key(metric)) or {}
            return s.get("mean"), s.get("std")
        if metric == "s_per_img":
            t = (self.m.get("timing") or {}).get("seconds_per_image_median")
            return (None if t is None else float(t)), None
        if metric == "peak_mb":
            b = (self.m.get("peak_memory") or {}).get("bytes")
            return (None if b is None else float(b) / 2**20), None
        if metric == "mse100":
            s = self.m.get("mse") or {}
            return (None if s.get("mean") is None else 100 * s["mean"],
                    None if s.get("std") is None else 100 * s["std"])
        if metric == "train_steps":
            v = self.training().get("steps")
            return (None if v is None else float(v)), None
        if metric == "prior_steps":
            v = self.training("glow_prior").get("steps")
            return (None if v is None else float(v)), None
        if metric == "train_min":  # all the cell's models: a prior's training is part of the method's compute
            secs = [t["training_seconds"] for t in self.trainings() if t.get("training_seconds") is not None]
            return (sum(secs) / 60.0 if secs else None), None
        if metric == "params_m":
            p = self.m.get("parameters")
            return (None if p is None else p / 1e6), None
        if metric == "gflops":
            g = self.m.get("gflops_256")  # cli.py via complexity.py; None for noisy / BM3D / beta-MAP
            return (None if g is None else float(g)), None
        return None, None


    def training(self, kind: str | None = None) -> dict:
        """The training record (steps, training_seconds, budget_minutes) of the model of ``kind`` (default:
        the cell's method; ``"glow_prior"``: its Glow prior) the cell trained or loaded (``artifacts`` in
        metrics.json); {} where there is none, e.g. for training-free methods."""
        for a in self.trainings():
            if a.get("kind") == (kind or self.method):
                return a
        return {}

    def trainings(self) -> list[dict]:
        """The training records of every model the cell trained or loaded: the method's own and, for
        glow_map / flow_prior, the Glow prior's (kind ``glow_prior``); [] for training-free methods."""
        return [a for a in self.m.get("artifacts") or [] if isinstance(a, dict)]

    def per_image(self) -> pd.DataFrame:
        """The cell's ``per_image.csv`` (read once); DataError when it is missing or has no image ids."""
        if self._per_image is None:
            p = self.path / "per_image.csv"
            try:
                df = pd.read_csv(p)
            except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
                raise DataError(f"cell {self.rel}: no readable per_image.csv ({type(e).__name__})") from e
            if "image" not in df.columns:
                raise DataError(f"cell {self.rel}: per_image.csv has no 'image' column")
            df["image"] = df["image"].astype(str)
            if df["image"].duplicated().any():
                raise DataError(f"cell {self.rel}: per_image.csv repeats image ids")
            self._per_image = df
        return self._per_image

    def per_image_values(self, metric: str) -> pd.Series:
        """Per-image values of a table metric (psnr, ssim, mse100 -> mse...) indexed by image id."""
        col = self.metric_key(PER_IMAGE_COLUMN.get(metric, metric))
        df = self.per_image()
        if col not in df.columns:
            raise DataError(f"cell {self.rel}: per_image.csv has no {col!r} column")
        return pd.Series(df[col].to_numpy(dtype=float), index=df["image"].to_numpy(), name=col)


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


def cells_frame(cells: list[Cell]) -> pd.DataFrame:
    """One row per cell (the sweep's ``cells.csv``): where it is, what it is, its numbers."""
    records = []
    for c in cells:
        row = {"dir": str(c.path), "rel": c.rel, "method": c.method,
               "variant": ",".join(f"{k}={v}" for k, v in c.variant.items()), "dataset": c.dataset,
               "sigma": c.sigma, "seed": c.seed, "n_images": c.m.get("n_images"), "scale": c.m.get("scale")}
        for metric in ("psnr", "ssim", "mse", "psnr_y", "ssim_y"):
            row[metric], row[f"{metric}_std"] = c.value(metric)
        row["s_per_img_median"], row["peak_mb"] = c.value("s_per_img")[0], c.value("peak_mb")[0]
        row["peak_memory_kind"] = (c.m.get("peak_memory") or {}).get("kind")
        row |= {"seconds": c.m.get("seconds"), "parameters": c.m.get("parameters"), "noise": c.noise or "",
                "metric_protocol": c.m.get("metric_protocol", ""), "test_set": c.m.get("test_set", "")}
        records.append(row)
    return pd.DataFrame.from_records(records)
