"""The Glow prior: trained once per prior config by maximum likelihood, stored, reused, never retrained."""
from __future__ import annotations

import json

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from conftest import compose, prior_cfg, shared_data
from denoise_bench.training import TrainingContext as RunContext
from denoise_bench.errors import ConfigError, TrainingError
from denoise_bench.priors import GlowPrior, build_glow, load_or_train_prior, prior_data_config, prior_key
from denoise_bench.priors.store import prior_channels


def smoke_cfg(tmp_path, *overrides):
    return compose(["method=glow_map", "scale=smoke", *overrides], tmp_path)


def ctx_for(cfg, tmp_path):
    return RunContext(cfg, tmp_path / "cell")


def clean_patches(cfg, n=8):
    """n training crops of the prior's data, as the prior sees them."""
    from denoise_bench.data.datamodule import DenoisingDataModule
    from denoise_bench.data.noise import NoiseSpec

    dm = DenoisingDataModule(prior_data_config(cfg), NoiseSpec(0.0), train_steps=4)
    torch.manual_seed(1)
    return next(iter(DataLoader(dm.train_set(), batch_size=n, shuffle=True)))["clean"]


def test_training_lowers_bits_per_dim_and_leaves_a_sample_grid(tmp_path):
    cfg = smoke_cfg(tmp_path, "prior.train_steps=40")
    x = clean_patches(cfg)
    torch.manual_seed(0)
    untrained = build_glow(cfg.prior, x.shape[1])
    untrained.log_prob(x)  # ActNorm's data-dependent init: a fair starting point
    before = untrained.bits_per_dim(x, dequantize=False).mean().item()

    ctx = ctx_for(cfg, tmp_path)
    glow = load_or_train_prior(ctx, cfg)
    after = glow.bits_per_dim(x, dequantize=False).mean().item()
    assert after < before - 0.5, (before, after)
    # frozen for the methods that use it
    assert not glow.training and not any(p.requires_grad for p in glow.parameters())
    entry = ctx.artifacts_used[-1]
    assert entry["kind"] == "glow_prior" and entry["status"] == "trained"
    assert entry["val_bits_per_dim"] > 0
    folder = tmp_path / "artifacts"
    (art,) = folder.glob("glow_prior-*")
    assert (art / "samples.png").stat().st_size > 0
    assert json.loads((art / "report.json").read_text())["steps"] == 40


def test_the_artifact_is_loaded_by_every_cell_with_the_same_prior_config(tmp_path, capsys):
    first = smoke_cfg(tmp_path)
    glow1 = load_or_train_prior(ctx_for(first, tmp_path), first)
    assert "[artifacts] glow_prior: training" in capsys.readouterr().out
    # another cell: other sigma, other beta, other MAP settings -> same prior, loaded
    other = smoke_cfg(tmp_path, "sigma=50", "method.beta=8", "method.map_steps=3", "method.map_lr=0.1")
    assert prior_key(other, prior_data_config(other), 1) == prior_key(first, prior_data_config(first), 1)
    ctx = ctx_for(other, tmp_path)
    glow2 = load_or_train_prior(ctx, other)
    out = capsys.readouterr().out
    assert "[artifacts] glow_prior: loaded" in out and "training" not in out
    assert ctx.artifacts_used[-1]["status"] == "loaded"
    for (k, a), b in zip(glow1.state_dict().items(), glow2.state_dict().values()):
        assert torch.equal(a, b), k
    # what determines the prior is in its key
    for change in ("prior.hidden=8", "prior.train_steps=21", "prior.lr=0.01", "seed=1", "prior.n_bits=5"):
        c = smoke_cfg(tmp_path, change)
        assert prior_key(c, prior_data_config(c), 1) != prior_key(first, prior_data_config(first), 1), change


def test_train_false_without_a_stored_prior_is_an_error(tmp_path):
    cfg = smoke_cfg(tmp_path, "train=false")
    with pytest.raises(ConfigError, match="glow_prior: no trained model"):
        load_or_train_prior(ctx_for(cfg, tmp_path), cfg)


def test_a_prior_checkpoint_of_another_config_is_refused(tmp_path, capsys):
    cfg = smoke_cfg(tmp_path)
    load_or_train_prior(ctx_for(cfg, tmp_path), cfg)
    (art,) = (tmp_path / "artifacts").glob("glow_prior-*")
    # a stored prior given as prior.weights, for a model of another width
    wider = smoke_cfg(tmp_path, f"prior.weights={art / 'model.pt'}", "prior.hidden=8")
    with pytest.raises(ConfigError, match=r"different config \(hidden=16 \(wanted 8\)\)"):
        load_or_train_prior(ctx_for(wider, tmp_path), wider)
    # a bare state dict of another architecture
    bare = tmp_path / "other.pt"
    torch.save(build_glow(wider.prior, 1).state_dict(), bare)
    given = smoke_cfg(tmp_path, f"prior.weights={bare}")
    with pytest.raises(ConfigError, match="not a Glow prior for this config"):
        load_or_train_prior(ctx_for(given, tmp_path), given)
    # the matching file is accepted as given weights (no training)
    same = smoke_cfg(tmp_path, f"prior.weights={art / 'model.pt'}")
    ctx = ctx_for(same, tmp_path)
    load_or_train_prior(ctx, same)
    assert ctx.artifacts_used[-1]["status"] == "given"
    # the store never uses an artifact whose recorded config is not the requested one: set aside, retrained
    meta = json.loads((art / "meta.json").read_text())
    meta["config"]["model"]["hidden"] = 999
    (art / "meta.json").write_text(json.dumps(meta))
    ctx = ctx_for(cfg, tmp_path)
    load_or_train_prior(ctx, cfg)
    assert ctx.artifacts_used[-1]["status"] == "trained"
    assert "stored key config differs" in capsys.readouterr().out
    assert list((tmp_path / "artifacts").glob(f"{art.name}.corrupt-*"))


class NaNAt(torch.utils.data.Dataset):
    """Clean 8x8 gray batches; the batch at index ``bad`` holds a NaN pixel."""

    def __init__(self, bad: int, batch: int = 4, n_batches: int = 6):
        torch.manual_seed(0)
        self.x = torch.rand(n_batches * batch, 1, 8, 8)
        self.x[bad * batch, 0, 0, 0] = float("nan")

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"clean": self.x[i]}


def test_nan_stops_training_with_the_step_and_keeps_the_last_good_weights(tmp_path):
    module = GlowPrior(prior_cfg({"levels": 1, "steps": 1, "hidden": 8, "lr": 1e-3}), channels=1, image_size=8)
    module.failure_dir = tmp_path
    trainer = L.Trainer(max_steps=6, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu")
    with pytest.raises(TrainingError) as err:
        trainer.fit(module, DataLoader(NaNAt(bad=3), batch_size=4, shuffle=False))
    msg = str(err.value)
    assert "\n" not in msg and "at step 3" in msg and str(tmp_path / "last_good.pt") in msg
    saved = torch.load(tmp_path / "last_good.pt", weights_only=True)
    assert saved["step"] == 2
    assert all(torch.isfinite(v.float()).all() for v in saved["state_dict"].values())
    glow = build_glow(module.cfg, 1)
    glow.load_state_dict({k.removeprefix("glow."): v for k, v in saved["state_dict"].items()})


def test_the_last_good_weights_are_those_before_the_latest_update_and_follow_replaced_buffers():
    module = GlowPrior(prior_cfg({"levels": 2, "steps": 2, "hidden": 8}), channels=1, image_size=8)
    module.log = lambda *a, **k: None
    batch = {"clean": torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))}
    module.on_train_batch_start(batch, 0)
    opt = torch.optim.Adam(module.parameters(), lr=1e-2)
    for step in range(4):
        if step == 2:  # a dtype round trip replaces every buffer object: the copies must read the new ones
            module.double().float()
            module.glow.levels[0][1][1].sign_s.neg_()  # a buffer value only the new object has
        before = {k: v.detach().clone() for k, v in module.state_dict().items()}
        opt.zero_grad()
        module.training_step(batch, 0).backward()
        opt.step()
        assert module._good.keys() == before.keys()
        assert all(torch.equal(module._good[k], before[k]) for k in before)
    after = module.state_dict()
    assert not all(torch.equal(module._good[k], after[k]) for k in after)  # the update moved some weight
    assert torch.equal(module._good["glow.levels.0.layers.1.layers.1.sign_s"], module.glow.levels[0][1][1].sign_s)


def test_faces_are_prepared_for_the_prior_as_for_the_test(tmp_path):
    root = shared_data("CelebA_subset")
    cfg = compose(["experiment=glow_map_tables", f"data.root={root}", "scale=smoke"], tmp_path)
    d = prior_data_config(cfg)
    # whole, centre-cropped, resized images of the prior's size, as the test images
    assert d.patch_size == d.train_size == cfg.data.test.size == cfg.prior.image_size == 16
    assert d.train_center_crop == cfg.data.test.crop == 64
    assert prior_channels(d) == 3
    key = prior_key(cfg, d, 3)
    assert "test" not in key["data"] and "run" not in key["data"] and "run" not in key["model"]
