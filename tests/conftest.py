"""Shared fixtures: composing the project's Hydra config, tiny image trees, the shared data."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DENOISE_BENCH_SHARED", REPO.parent / "shared")) / "data"

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


def compose(overrides: list[str] | None = None, tmp: Path | None = None):
    """The project config as ``run.py`` would compose it (plus tmp output / artifact dirs)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    extra = []
    if tmp is not None:
        extra = [f"paths.output_dir={tmp / 'cell'}", f"paths.artifacts={tmp / 'artifacts'}"]
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return hydra_compose("config", overrides=["logger=none", "progress=false", *extra, *(overrides or [])])


@pytest.fixture
def cfg_factory(tmp_path):
    return lambda overrides=None: compose(overrides, tmp_path)


def run_cli(args: list[str], cwd: Path = REPO, timeout: int = 600, env: dict | None = None):
    """``python run.py ARGS`` as a user runs it; returns the CompletedProcess (text)."""
    e = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    return subprocess.run([sys.executable, str(REPO / "run.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=e)


def write_images(folder: Path, n: int, size=(32, 40), channels: int = 1, seed: int = 0, prefix: str = "") -> list[Path]:
    """``n`` smooth random images (PNG) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        h, w = size
        yy, xx = np.mgrid[0:h, 0:w]
        base = 0.5 + 0.4 * np.sin(xx / (3 + i) + rng.uniform(0, 6)) * np.cos(yy / (4 + i))
        img = np.clip(base[..., None] + 0.05 * rng.standard_normal((h, w, channels)), 0, 1)
        arr = (img * 255).round().astype(np.uint8)
        p = folder / f"{prefix}{i:02d}.png"
        Image.fromarray(arr[..., 0] if channels == 1 else arr).save(p)
        paths.append(p)
    return paths


@pytest.fixture
def image_folder(tmp_path) -> Path:
    folder = tmp_path / "imgs"
    write_images(folder, 3, size=(48, 56))
    return folder


def shared_data(*parts: str) -> Path:
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} is not available on this machine")
    return p


def method_cfg(name: str, overrides: dict | None = None, scale: str = "smoke"):
    """``cfg.method`` of ``method=<name> scale=<scale>`` as the command line composes it, with
    ``overrides`` merged in: tests build methods from the same defaults as the benchmark."""
    from omegaconf import OmegaConf

    return OmegaConf.merge(_composed(name, scale).method, overrides or {})


def prior_cfg(overrides: dict | None = None, scale: str = "smoke"):
    """``cfg.prior`` (the Glow prior) at ``scale``, with ``overrides`` merged in."""
    from omegaconf import OmegaConf

    return OmegaConf.merge(_composed("glow_map", scale).prior, overrides or {})


_COMPOSED: dict = {}


def _composed(method: str, scale: str):
    if (method, scale) not in _COMPOSED:
        _COMPOSED[method, scale] = compose([f"method={method}", f"scale={scale}"])
    return _COMPOSED[method, scale]
