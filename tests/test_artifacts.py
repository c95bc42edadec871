"""The artifact store: the key is exactly what determines a model; corrupt files are never used;
concurrent cells train a shared model once and never see it half-written; list/clear from the CLI."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO, compose
from denoise_bench.artifacts import ArtifactStore, CorruptArtifact, config_key
from denoise_bench.run.cell import run_cell


# -- the key ---------------------------------------------------------------------------------------
class _Captured(Exception):
    pass


def artifact_key(overrides: list[str], tmp: Path, monkeypatch, kind: str | None = None) -> tuple[str, dict]:
    """(kind, key config) of the first model a cell asks the store for; nothing is trained."""
    seen = {}

    def fake_load(self, k, config, repair=True):
        if kind is None or k == kind:
            seen["kind"], seen["config"] = k, config
            raise _Captured
        return None

    monkeypatch.setattr(ArtifactStore, "load", fake_load)
    cfg = compose(["scale=smoke", *overrides], tmp)
    with pytest.raises(_Captured):
        run_cell(cfg)
    return seen["kind"], seen["config"]


BASE = ["method=dncnn", "sigma=25"]


@pytest.mark.parametrize("change", [
    ["metrics.quantize=true", "metrics.border=2"],  # metric switches
    ["logger=csv", "progress=true", "name=other", "threads=1", "force=true"],  # how the cell runs
    ["data.test.crop=32", "data.test.limit=1", "data.test.batch_size=1"],  # test handling
])
def test_key_ignores_evaluation_only_settings(change, tmp_path, monkeypatch):
    _, base = artifact_key(BASE, tmp_path / "a", monkeypatch)
    _, changed = artifact_key([*BASE, *change], tmp_path / "b", monkeypatch)
    assert config_key(changed) == config_key(base)


@pytest.mark.parametrize("change", [
    ["sigma=15"],  # a DnCNN-S is trained at the cell's sigma
    ["method.lr=0.01"], ["method.depth=4"], ["method.train_steps=5"],  # optimiser, architecture, steps
    ["seed=1"], ["data.patch_size=32"], ["data.limit.train=3"], ["data.channels=3"],  # seed, training data
    ["noise.clip=true"],  # training noise
    ["trainer.gradient_clip_val=0.5"], ["trainer.precision=64-true"],
    ["trainer.ema_decay=0.999"],  # the stored model is the moving average of the weights
    ["trainer.devices=2", "trainer.strategy=ddp"],  # world size: each rank draws its own batch
])
def test_key_changes_with_what_determines_the_model(change, tmp_path, monkeypatch):
    _, base = artifact_key(BASE, tmp_path / "a", monkeypatch)
    _, changed = artifact_key([*BASE, *change], tmp_path / "b", monkeypatch)
    assert config_key(changed) != config_key(base)


def test_blind_model_is_shared_by_every_test_sigma(tmp_path, monkeypatch):
    keys = {config_key(artifact_key(["method=dncnn", "method.train_sigma=blind", f"sigma={s}"],
                                    tmp_path / str(s), monkeypatch)[1]) for s in (15, 25, 50)}
    assert len(keys) == 1


def test_prior_key_ignores_beta_and_test_sigma(tmp_path, monkeypatch):
    a = artifact_key(["method=glow_map", "sigma=15", "method.beta=1"], tmp_path / "a", monkeypatch, "glow_prior")
    b = artifact_key(["method=glow_map", "sigma=50", "method.beta=8"], tmp_path / "b", monkeypatch, "glow_prior")
    assert a[0] == "glow_prior" and config_key(a[1]) == config_key(b[1])


# -- store: round trip, corruption -----------------------------------------------------------------
KEY = {"method": {"name": "toy", "depth": 2}, "seed": 0}


def test_round_trip_and_meta(tmp_path):
    store = ArtifactStore(tmp_path)
    state = {"w": torch.arange(10.0)}
    d = store.save("toy", KEY, state, {"steps": 3})
    meta = json.loads((d / "meta.json").read_text())
    assert meta["config"] == KEY and meta["steps"] == 3 and meta["key"] == config_key(KEY)
    assert torch.equal(store.load("toy", KEY)["w"], state["w"])
    assert store.load("toy", {**KEY, "seed": 1}) is None
    assert [e["key"] for e in store.list()] == [config_key(KEY)]
    assert not list(tmp_path.glob(".stage-*"))  # the staging folder was renamed into place


@pytest.mark.parametrize("damage", ["truncate", "flip", "meta", "no_model"])
def test_corrupt_artifact_is_detected_moved_aside_and_not_used(damage, tmp_path, capsys):
    store = ArtifactStore(tmp_path)
    d = store.save("toy", KEY, {"w": torch.arange(1000.0)})
    model = d / "model.pt"
    if damage == "truncate":
        model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    elif damage == "flip":  # same size, one byte changed: only the checksum can tell
        data = bytearray(model.read_bytes())
        data[-20] ^= 0xFF
        model.write_bytes(bytes(data))
    elif damage == "meta":
        (d / "meta.json").write_text('{"kind": "toy", "sha')
    else:
        model.unlink()
    with pytest.raises(CorruptArtifact):
        store.verify(d, KEY)
    assert store.load("toy", KEY) is None
    assert "unusable" in capsys.readouterr().out
    assert not d.exists() and len(list(tmp_path.glob(f"{d.name}.corrupt-*"))) == 1
    assert store.list() == [] and [e["status"] for e in store.entries()] == ["corrupt"]


def test_cell_retrains_a_truncated_artifact(tmp_path, capsys):
    """End to end: a damaged model file is reported and retrained, and the result equals the first run."""
    over = ["method=dncnn", "sigma=25", "scale=smoke", "threads=1"]
    first = run_cell(compose(over, tmp_path))
    (art,) = ArtifactStore(tmp_path / "artifacts").list()
    model = Path(art["path"]) / "model.pt"
    model.write_bytes(model.read_bytes()[:100])
    capsys.readouterr()
    second = run_cell(compose([*over, "force=true"], tmp_path))
    out = capsys.readouterr().out
    assert "unusable" in out and "dncnn: training" in out
    assert second["psnr"] == first["psnr"]  # retrained deterministically, never loaded the broken file
    ArtifactStore(tmp_path / "artifacts").verify(Path(art["path"]))


def test_train_false_refuses_a_missing_model_with_a_clear_message(tmp_path):
    from denoise_bench.errors import ConfigError

    with pytest.raises(ConfigError, match="train=false"):
        run_cell(compose(["method=dncnn", "scale=smoke", "train=false"], tmp_path))


def test_reuse_artifacts_false_neither_reads_nor_writes(tmp_path):
    store = ArtifactStore(tmp_path, enabled=False)
    store.save("toy", KEY, {"w": torch.zeros(2)})
    assert not any(tmp_path.iterdir()) and store.load("toy", KEY) is None


def test_side_files_written_during_training_are_kept(tmp_path):
    """A prior writes samples/report into its artifact folder before the runner saves the weights."""
    store = ArtifactStore(tmp_path)
    d = store.dir_for("toy", KEY)
    d.mkdir()
    (d / "report.json").write_text("{}")
    assert store.load("toy", KEY) is None  # incomplete, not corrupt: nothing moved aside
    store.save("toy", KEY, {"w": torch.zeros(2)})
    assert (d / "report.json").exists() and store.load("toy", KEY) is not None
    assert not list(tmp_path.glob("*.corrupt-*"))


# -- two processes ---------------------------------------------------------------------------------
def _fit_or_load_worker(root: str, start_delay: float, queue) -> None:
    """One 'cell': fit_or_load of a 4 M-parameter toy model whose training takes ~1.5 s."""
    import lightning as L
    from omegaconf import OmegaConf
    from torch import nn
    from torch.utils.data import DataLoader

    from denoise_bench.training import TrainingContext as RunContext

    class Toy(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(4_000_000))

        def training_step(self, batch, batch_idx):
            time.sleep(0.5)
            return ((self.w[:4] - batch) ** 2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.5)

        def train_dataloader(self):
            return DataLoader(torch.ones(12, 4), batch_size=4)

    time.sleep(start_delay)
    cfg = OmegaConf.create({"paths": {"artifacts": root}, "progress": False,
                            "trainer": {"accelerator": "cpu", "devices": 1}})
    module = Toy()
    status = RunContext(cfg, Path(root)).fit_or_load(module, "toy", {"toy": 1}, None, max_steps=3)
    queue.put((status, float(module.w[:4].sum())))


def test_two_processes_train_a_shared_model_once_and_never_read_it_half_written(tmp_path):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_fit_or_load_worker, args=(str(tmp_path), delay, queue)) for delay in (0.0, 0.3)]
    seen_incomplete, stop = [], threading.Event()

    def watch():  # whenever an artifact folder is visible, it must be complete and intact
        store = ArtifactStore(tmp_path)
        while not stop.is_set():
            for d in tmp_path.glob("toy-*"):
                try:
                    store.verify(d)
                except CorruptArtifact as e:
                    seen_incomplete.append(str(e))
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    stop.set()
    watcher.join()
    assert sorted(s for s, _ in results) == ["loaded", "trained"]
    assert results[0][1] == results[1][1] != 0.0  # the loader got the trained weights
    assert seen_incomplete == []
    assert len(list(tmp_path.glob("toy-*"))) == 1 and not list(tmp_path.glob(".stage-*"))


# -- command line ----------------------------------------------------------------------------------
def _cli(*args):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "denoise_bench.artifacts", *args], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=120)


def test_command_line_list_and_clear(tmp_path):
    store = ArtifactStore(tmp_path)
    store.save("dncnn", {"data": {"name": "builtin"}, "noise": {"sigma": "25"}, "seed": 0}, {"w": torch.zeros(3)})
    store.save("glow_prior", KEY, {"w": torch.zeros(3)})
    listed = _cli("list", "--root", str(tmp_path), "--verify")
    assert listed.returncode == 0, listed.stderr
    assert "dncnn" in listed.stdout and "glow_prior" in listed.stdout and "sigma=25" in listed.stdout
    assert "2 artifacts" in listed.stdout and " ok " in listed.stdout
    cleared = _cli("clear", "--kind", "dncnn", "--root", str(tmp_path))
    assert cleared.returncode == 0 and "removed 1 dncnn" in cleared.stdout
    assert [e["kind"] for e in store.list()] == ["glow_prior"]
    assert _cli("clear", "--root", str(tmp_path)).returncode == 0 and store.list() == []
