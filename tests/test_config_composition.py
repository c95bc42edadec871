"""Every method composes at every scale, and every experiment composes and resolves (nothing read
from disk: experiments that need a dataset get a placeholder root)."""
from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from conftest import REPO, compose
from denoise_bench.methods import METHODS

METHOD_FILES = sorted(p.stem for p in (REPO / "conf" / "method").glob("*.yaml"))
SCALES = sorted(p.stem for p in (REPO / "conf" / "scale").glob("*.yaml"))
EXPERIMENTS = sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("method", METHOD_FILES)
def test_every_method_composes_and_resolves_at_every_scale(method, scale):
    cfg = compose([f"method={method}", f"scale={scale}"])
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["method"]["name"] in METHODS and resolved["scale"]["name"] == scale
    assert method.startswith(resolved["method"]["name"])  # dncnn_b is a dncnn


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_resolves(experiment, tmp_path):
    root = tmp_path / "placeholder"  # never read: composition only
    exp = OmegaConf.load(REPO / "conf" / "experiment" / f"{experiment}.yaml")
    required = [f"{k}={tmp_path / k}" for k in exp if k != "defaults" and OmegaConf.is_missing(exp, k)]  # ??? keys
    cfg = compose([f"experiment={experiment}", f"data.root={root}", "scale=smoke", *required])
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["method"]["name"] in METHODS
    assert resolved["name"] == experiment
    for table in resolved["report"]["tables"]:
        from denoise_bench.report.paper_tables import TABLES

        assert table in TABLES
