"""DDP: a Hydra-launched cell trained and evaluated by 2 CPU processes (gloo) gives each test image
exactly once, the values of a one-process evaluation, one training log line and one set of outputs."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import compose, run_cli
from denoise_bench.run.cell import run_cell

DATA = ["data.test.limit=3", "data.test.batch_size=1"]  # 3 batches on 2 ranks: rank 1 is padded


def test_two_process_ddp_cell_gathers_every_image_once_with_one_process_values(tmp_path):
    run_dir, art = tmp_path / "run", tmp_path / "art"
    res = run_cli(["method=dncnn", "sigma=25", "scale=smoke", "logger=none", "progress=false", "threads=1",
                   "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", *DATA,
                   f"hydra.run.dir={run_dir}", f"paths.artifacts={art}"], timeout=300)
    assert res.returncode == 0, (res.stdout[-1500:], res.stderr[-3000:])
    assert res.stdout.count("[artifacts] dncnn: training") == 1 and res.stdout.count("[cell]") == 1

    rows = pd.read_csv(run_dir / "per_image.csv")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert list(rows["image"]) == ["builtin/camera", "builtin/coins", "builtin/moon"]  # once each, in order
    assert metrics["n_images"] == 3
    # rank 1 wrote nothing: no second Hydra output folder, log or config of its own
    assert sorted(p.name for p in run_dir.iterdir() if p.name != "examples") == [
        ".cell.lock", ".hydra", "curve_dncnn.csv", "metrics.json", "outcome.json", "per_image.csv", "run.log",
        "samples.png"]
    (model,) = art.glob("dncnn-*/model.pt")
    assert json.loads((model.parent / "meta.json").read_text())["config"]["world_size"] == 2

    # the same weights evaluated by one process
    one = run_cell(compose(["method=dncnn", "sigma=25", "scale=smoke", "threads=1", *DATA,
                            f"method.weights={model}"], tmp_path))
    single = pd.read_csv(tmp_path / "cell" / "per_image.csv")
    pd.testing.assert_frame_equal(rows.drop(columns="seconds"), single.drop(columns="seconds"))
    assert one["psnr"] == metrics["psnr"] and one["ssim"] == metrics["ssim"]


@pytest.mark.parametrize("n_batches,world", [(3, 2), (1, 2), (5, 3), (4, 4), (2, 3)])
def test_same_shape_batches_give_each_rank_a_contiguous_equal_block(n_batches, world, monkeypatch):
    import torch.distributed as dist

    from denoise_bench.data.datamodule import SameShapeBatches

    sampler = SameShapeBatches.__new__(SameShapeBatches)
    sampler.batches = [[2 * i, 2 * i + 1] for i in range(n_batches)]
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: world)
    per_rank = []
    for rank in range(world):
        monkeypatch.setattr(dist, "get_rank", lambda r=rank: r)
        per_rank.append(sampler.mine())
    assert len({len(b) for b in per_rank}) == 1  # same number of steps on every rank (collectives)
    seen = []
    for idx in (i for block in per_rank for batch in block for i in batch):
        if idx not in seen:
            seen.append(idx)
    assert seen == list(range(2 * n_batches))  # rank order, repeats dropped = the one-process order


def _actnorm_rank(rank: int, port: int, queue) -> None:
    import torch.distributed as dist

    from denoise_bench.training.distributed import DistributedTrainingFixes
    from denoise_bench.flows import ActNorm

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.manual_seed(rank)  # each rank's first batch differs
    layer = ActNorm(3)
    layer(torch.randn(4, 3, 5, 5) * (1 + rank) + rank)  # data-dependent init from the local batch
    before = layer.bias.detach().clone()

    class Trainer:  # what the callback reads
        world_size, global_rank = 2, rank

    DistributedTrainingFixes().on_after_backward(Trainer(), layer)
    queue.put((rank, before, layer.bias.detach().clone(), layer.logs.detach().clone()))
    dist.destroy_process_group()


def test_actnorm_data_dependent_init_is_made_consistent_across_ranks():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_actnorm_rank, args=(r, port, queue)) for r in range(2)]
    for p in procs:
        p.start()
    out = dict((r, rest) for r, *rest in (queue.get(timeout=120) for _ in procs))
    for p in procs:
        p.join(timeout=60)
    (before0, bias0, logs0), (before1, bias1, logs1) = out[0], out[1]
    assert not torch.allclose(before0, before1)  # the ranks did initialise differently
    assert torch.equal(bias0, bias1) and torch.equal(logs0, logs1) and torch.equal(bias0, before0)
