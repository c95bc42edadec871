"""Paper scale is ready for a GPU: every method composes at ``scale=paper`` and its cell runs end to end
on the CPU with two training steps at a small crop (the Glow prior too), which catches config and
shape errors without paper-scale compute. The GPU check itself: benchmarks/gpu_paper_check.sh."""
from __future__ import annotations

import math

import pytest

from conftest import compose
from denoise_bench.methods import METHODS, method_class
from denoise_bench.run.cell import run_cell

SMALL = ["data.patch_size=32", "data.batch_size=2", "data.limit.train=4", "data.limit.val=1",
         "data.test.limit=1", "data.test.crop=32", "threads=2"]
# the paper prior (4 levels) at 16x16 with batch 2 gives an infinite loss at step 0 (ActNorm initialised from
# 2 values per channel at its 1x1 top level): 32x32, batch 4 is the smallest run that is meaningful
PRIOR = ["prior.train_steps=2", "prior.image_size=32", "prior.batch_size=4", "prior.warmup_steps=1"]


@pytest.mark.parametrize("name", sorted(METHODS) + ["dncnn_b"])
def test_every_method_runs_two_training_steps_at_paper_scale(name, tmp_path):
    over = [f"method={name}", "scale=paper", "sigma=25", *SMALL]
    if method_class(name if name != "dncnn_b" else "dncnn").trainable:
        over.append("method.train_steps=2")
    if name in ("glow_map", "flow_prior"):
        over += PRIOR
    if name == "glow_map":
        over.append("method.map_steps=1")
    if name == "bm3d":
        over.append("method.run.workers=1")
    cfg = compose(over, tmp_path)
    assert cfg.scale.name == "paper"
    summary = run_cell(cfg)
    assert summary["n_images"] == 1 and math.isfinite(summary["psnr"]["mean"])
    trained = {a["kind"]: a.get("steps") for a in summary["artifacts"] if a["status"] == "trained"}
    if method_class(summary["method"]).trainable:
        assert trained[summary["method"]] == 2
    if name in ("glow_map", "flow_prior"):
        assert trained["glow_prior"] == 2
