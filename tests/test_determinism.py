"""Same seed, same numbers: the noisy test inputs, the training crops and noise, and the metrics of a
trained cell, across runs and across Hydra launchers (CPU)."""
from __future__ import annotations

import json

import lightning as L
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from conftest import compose, run_cli
from denoise_bench.data.datamodule import DenoisingDataModule
from denoise_bench.data.noise import NoiseSpec


def _datamodule(seed: int) -> DenoisingDataModule:
    cfg = compose(["scale=smoke", f"seed={seed}"])
    return DenoisingDataModule(cfg.data, NoiseSpec(25.0, seed=seed), train_steps=2, seed=seed)


def test_noisy_test_inputs_depend_only_on_seed_image_and_sigma():
    a, b, c = _datamodule(0).test_set(), _datamodule(0).test_set(), _datamodule(1).test_set()
    for x, y, z in zip(a.samples, b.samples, c.samples):
        assert torch.equal(x["noisy"], y["noisy"]) and not torch.equal(x["noisy"], z["noisy"])


def _first_batch(seed: int) -> dict:
    L.seed_everything(seed, verbose=False)
    return next(iter(_datamodule(seed).train_dataloader()))


def test_training_crops_and_noise_follow_the_seed():
    """Augmentation (albumentations keeps its own RNG) must follow seed_everything too."""
    a, b, c = _first_batch(0), _first_batch(0), _first_batch(1)
    assert torch.equal(a["clean"], b["clean"]) and torch.equal(a["noisy"], b["noisy"])
    assert not torch.equal(a["clean"], c["clean"])


def _sweep(tmp, name, *launcher):
    res = run_cli(["-m", "method=dncnn", "sigma=15,25", "scale=smoke", "logger=none", "progress=false", "threads=1",
                   f"name={name}", f"paths.multirun={tmp}", f"paths.artifacts={tmp / name / 'art'}", *launcher],
                  timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("[artifacts] dncnn: training") == 2  # each sweep trains its own models
    cells = {}
    for path in (tmp / name).glob("*/metrics.json"):
        m = json.loads(path.read_text())
        rows = pd.read_csv(path.parent / "per_image.csv").drop(columns="seconds")
        cells[m["sigma"]] = ({k: m[k] for k in ("psnr", "ssim", "mse", "n_images", "cell_key")}, rows)
    return cells


def test_basic_and_joblib_launchers_give_identical_metrics(tmp_path):
    basic = _sweep(tmp_path, "basic")
    parallel = _sweep(tmp_path, "joblib", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    assert sorted(basic) == sorted(parallel) == ["15", "25"]
    for sigma in basic:
        assert basic[sigma][0] == parallel[sigma][0]  # bit-identical means and stds
        pd.testing.assert_frame_equal(basic[sigma][1], parallel[sigma][1], check_exact=True)
