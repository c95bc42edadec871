"""Hydra launchers: cells in parallel (joblib) and as submitit jobs (submitit_local runs the cluster
path locally); the sweep table is written at the end of the sweep with either launcher."""
from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO, run_cli

import hydra_plugins.hydra_joblib_launcher  # noqa: E402,F401 - the [test] extra installs both launchers
import hydra_plugins.hydra_submitit_launcher  # noqa: E402,F401

COMMON = ["scale=smoke", "logger=none", "progress=false", "threads=1"]


def sweep(tmp: Path, name: str, *args: str, timeout: int = 300):
    res = run_cli(["-m", *args, *COMMON, f"name={name}", f"paths.multirun={tmp}", f"paths.artifacts={tmp / 'art'}"],
                  timeout=timeout)
    assert res.returncode == 0, (res.stdout[-1500:], res.stderr[-3000:])
    return res, tmp / name


def test_joblib_runs_cells_in_parallel_processes_and_writes_the_table(tmp_path):
    res, sweep_dir = sweep(tmp_path, "par", "method=noisy,dncnn", "sigma=25",
                           "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    assert "Joblib.Parallel(n_jobs=2" in res.stdout + res.stderr
    cells = [json.loads(p.read_text()) for p in sweep_dir.glob("*/metrics.json")]
    assert sorted(c["method"] for c in cells) == ["dncnn", "noisy"]
    table = pd.read_csv(sweep_dir / "table.csv", index_col=0)  # SweepTableCallback.on_multirun_end
    assert sorted(table.index) == ["dncnn", "noisy"] and table.notna().all().all()


def test_submitit_local_runs_the_cluster_path_and_writes_the_table(tmp_path):
    res, sweep_dir = sweep(tmp_path, "sub", "method=noisy", "sigma=15,25", "hydra/launcher=submitit_local",
                           "hydra.launcher.timeout_min=10", "hydra.launcher.cpus_per_task=1")
    assert list((sweep_dir / ".submitit").glob("*/*_result.pkl"))  # the jobs ran through submitit
    assert len(list(sweep_dir.glob("*/metrics.json"))) == 2
    table = pd.read_csv(sweep_dir / "table.csv", index_col=0)
    assert list(table.index) == ["noisy"] and {"σ=15 PSNR", "σ=25 PSNR"} <= set(table.columns)


def _launcher_cfg(*args: str) -> str:
    res = run_cli([*args, "--cfg", "hydra", "--package", "hydra.launcher"], timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def test_project_launcher_configs_compose():
    parallel = _launcher_cfg("hydra/launcher=parallel")
    assert "JoblibLauncher" in parallel and "n_jobs: 2" in parallel
    slurm = _launcher_cfg("hydra/launcher=slurm")
    assert "SlurmLauncher" in slurm and "timeout_min: 240" in slurm and "gpus_per_node: 1" in slurm


def test_launchers_are_an_optional_extra():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extra = " ".join(project["optional-dependencies"]["launchers"])
    assert "hydra-joblib-launcher" in extra and "hydra-submitit-launcher" in extra
    assert not any("launcher" in d for d in project["dependencies"])
