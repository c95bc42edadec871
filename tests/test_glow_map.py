"""method=glow_map: beta-MAP (seed 001, eq. 5) with a frozen Glow prior, one Adam problem per image."""
from __future__ import annotations

import json

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from conftest import compose, method_cfg, prior_cfg, run_cli, shared_data
from denoise_bench.run.cell import run_cell
from denoise_bench.errors import ConfigError
from denoise_bench.methods.glow_map import GlowMAP, beta_map
from denoise_bench.priors import GlowPrior, freeze


class FlatFaces(torch.utils.data.Dataset):
    """A family the prior can learn exactly: flat 8x8 gray images (level ~ U[.2,.8]) with faint texture."""

    def __init__(self, n: int):
        g = torch.Generator().manual_seed(0)
        self.level = 0.2 + 0.6 * torch.rand(n, generator=g)
        self.texture = 0.02 * torch.randn(n, 1, 8, 8, generator=g)

    def __len__(self):
        return len(self.level)

    def __getitem__(self, i):
        return {"clean": self.level[i] + self.texture[i]}


@pytest.fixture(scope="module")
def flat_prior():
    torch.manual_seed(0)
    module = GlowPrior(prior_cfg({"levels": 2, "steps": 2, "hidden": 16, "lr": 5e-3, "warmup_steps": 10}), channels=1)
    trainer = L.Trainer(max_steps=150, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu", gradient_clip_val=1.0)
    trainer.fit(module, DataLoader(FlatFaces(150 * 16), batch_size=16))
    return freeze(module.glow)


def psnr(x, ref):
    return (-10 * torch.log10(((x.clamp(0, 1) - ref) ** 2).flatten(1).mean(1))).mean().item()


def flat_test_batch(sigma=0.1):
    clean = torch.stack([torch.full((1, 8, 8), v) for v in (0.3, 0.5, 0.7, 0.45)])
    noisy = clean + sigma * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    return clean, noisy


def test_beta_map_removes_noise_the_prior_knows_and_beta_pulls_towards_the_input(flat_prior):
    clean, noisy = flat_test_batch()
    sigma = torch.full((4,), 0.1)
    true_map = beta_map(flat_prior, noisy, sigma, beta=1.0, steps=60, lr=0.2)
    assert psnr(true_map, clean) > psnr(noisy, clean) + 6.0
    assert true_map.min() >= 0 and true_map.max() <= 1  # kept in range
    # a large beta trusts the observation: the estimate stays near N
    loose = beta_map(flat_prior, noisy, sigma, beta=1000.0, steps=60, lr=0.2)
    assert (loose - noisy.clamp(0, 1)).abs().mean() < 0.3 * (true_map - noisy.clamp(0, 1)).abs().mean()


def test_each_image_is_its_own_problem_whatever_the_batch(flat_prior):
    _, noisy = flat_test_batch()
    sigma = torch.tensor([0.1, 0.05, 0.2, 0.1])
    together = beta_map(flat_prior, noisy, sigma, beta=2.0, steps=20, lr=0.1)
    alone = beta_map(flat_prior, noisy[:1], sigma[:1], beta=2.0, steps=20, lr=0.1)
    pair = beta_map(flat_prior, noisy[[0, 2]], sigma[[0, 2]], beta=2.0, steps=20, lr=0.1)
    torch.testing.assert_close(alone[0], together[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(pair[0], together[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(pair[1], together[2], atol=1e-5, rtol=0)


def test_latent_space_option_also_denoises(flat_prior):
    clean, noisy = flat_test_batch()
    # latents are standardised (unit scale): a larger step than in pixel space
    out = beta_map(flat_prior, noisy, torch.full((4,), 0.1), beta=1.0, steps=60, lr=0.1, space="latent")
    assert out.shape == noisy.shape and psnr(out, clean) > psnr(noisy, clean) + 3.0


def test_odd_sizes_are_padded_for_the_prior_and_cropped_back(flat_prior):
    noisy = torch.rand(2, 1, 10, 13)
    out = beta_map(flat_prior, noisy, torch.full((2,), 0.1), steps=2, lr=0.1)
    assert out.shape == noisy.shape


def test_glow_map_needs_a_known_noise_level(flat_prior):
    method = GlowMAP(method_cfg("glow_map", {"beta": 1.0, "map_steps": 1}), image_channels=1)
    method.set_prior(flat_prior)
    with pytest.raises(ConfigError, match="sigma=real"):
        method.denoise(torch.rand(1, 1, 8, 8), torch.tensor([float("nan")]))
    with pytest.raises(ConfigError, match="models 1-channel images, the test images have 3"):
        GlowMAP(method_cfg("glow_map", {}), image_channels=3).set_prior(flat_prior)


def test_beta_and_map_settings_are_evaluation_only(tmp_path):
    """beta-MAP trains nothing of its own: its keys name the cell, never the prior it loads."""
    from denoise_bench.identity import cell_key
    from denoise_bench.priors.store import prior_data_config, prior_key

    base = compose(["method=glow_map", "scale=smoke"], tmp_path)
    other = compose(["method=glow_map", "scale=smoke", "method.beta=4", "method.map_steps=9", "method.map_lr=0.1",
                     "method.space=latent"], tmp_path)
    assert prior_key(other, prior_data_config(other), 1) == prior_key(base, prior_data_config(base), 1)
    assert cell_key(other) != cell_key(base)
    assert GlowMAP.grad_at_test and not GlowMAP.trainable


def test_a_smoke_cell_runs_through_the_runner_and_the_next_cell_loads_the_prior(tmp_path):
    cfg = compose(["method=glow_map", "scale=smoke", "sigma=25"], tmp_path)
    summary = run_cell(cfg)
    m = json.loads((tmp_path / "cell" / "metrics.json").read_text())
    assert m["method"] == "glow_map" and m["n_images"] == 2 and m["psnr"]["mean"] == pytest.approx(summary["psnr"]["mean"])
    assert m["parameters"] > 0 and (tmp_path / "cell" / "samples.png").exists()
    assert [a["status"] for a in m["artifacts"] if a["kind"] == "glow_prior"] == ["trained"]
    cfg2 = compose(["method=glow_map", "scale=smoke", "sigma=15", "method.beta=4"], tmp_path)
    cfg2.paths.output_dir = str(tmp_path / "cell2")
    run_cell(cfg2)
    m2 = json.loads((tmp_path / "cell2" / "metrics.json").read_text())
    assert [a["status"] for a in m2["artifacts"] if a["kind"] == "glow_prior"] == ["loaded"]


def test_the_tables_experiment_maps_the_paper_sigma_and_columns(tmp_path):
    base = ["experiment=glow_map_tables", "data.root=/nonexistent", "scale=smoke"]
    for sigma, paper in (("4.25", 0.025), ("8.5", 0.05), ("17", 0.1), ("34", 0.2)):
        cfg = compose(base + [f"sigma={sigma}"], tmp_path)
        assert cfg.sigma_paper == paper and float(sigma) * 1.5 / 255 == pytest.approx(paper)
    cfg = compose(base + ["glow_map_column=beta8"], tmp_path)
    assert cfg.method.name == "glow_map" and cfg.method.beta == 8 and cfg.name == "glow_map_tables"
    assert cfg.data.test.limit == 32 and cfg.data.test.from_end and list(cfg.report.tables) == ["glow_map_tables"]
    assert compose(base + ["glow_map_column=noisy"], tmp_path).method.name == "noisy"


def test_the_noisy_column_matches_the_paper_within_0_2_db(tmp_path):
    root = shared_data("CelebA_subset")
    paper = {4.25: 35.5, 8.5: 29.5, 17: 23.5, 34: 17.5}
    for sigma, want in paper.items():
        cfg = compose(["experiment=glow_map_tables", f"data.root={root}", "glow_map_column=noisy", f"sigma={sigma}",
                       "scale=smoke"], tmp_path)
        cfg.paths.output_dir = str(tmp_path / f"noisy{sigma}")
        s = run_cell(cfg)
        assert s["n_images"] == 32 and abs(s["psnr"]["mean"] - want) < 0.2, (sigma, s["psnr"])


def test_a_sweep_trains_the_prior_once(tmp_path):
    r = run_cli(["-m", "method=glow_map", "method.beta=1,4", "sigma=15,25", "scale=smoke", "logger=none",
                 "progress=false", "name=g", f"paths.multirun={tmp_path}", f"paths.artifacts={tmp_path / 'art'}"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(list((tmp_path / "g").glob("*/metrics.json"))) == 4
    assert r.stdout.count("[artifacts] glow_prior: training") == 1
    assert r.stdout.count("[artifacts] glow_prior: loaded") == 3


# -- the prior learns what the test images are (method.prior_data) ------------------------------------
def _compose(*overrides):
    from conftest import compose

    return compose(["method=glow_map", *overrides])


def test_prior_of_aligned_test_crops_learns_the_training_images_prepared_the_same_way(capsys):
    from denoise_bench.methods.glow_map import prior_run_config
    from denoise_bench.priors.store import prior_data_config

    cfg = _compose("data=celeba", "data.root=/x", "scale=quick")
    d = prior_data_config(prior_run_config(cfg))
    assert (d.train_center_crop, d.train_size, d.patch_size) == (64, None, 64)
    assert "64x64 centre crops" in capsys.readouterr().out
    # resized test images: the prior learns them at the resized size
    d = prior_data_config(prior_run_config(_compose("data=celeba", "data.root=/x", "data.test.size=32")))
    assert (d.train_center_crop, d.train_size, d.patch_size) == (64, 32, 32)


def test_prior_of_whole_image_test_sets_or_patches_mode_keeps_its_patches():
    from denoise_bench.methods.glow_map import prior_run_config
    from denoise_bench.priors.store import prior_data_config

    cfg = _compose("scale=quick")  # builtin: whole test images of several sizes
    assert prior_run_config(cfg) is cfg and prior_data_config(cfg).patch_size == 32
    cfg = _compose("data=celeba", "data.root=/x", "scale=quick", "method.prior_data=patches")
    assert prior_run_config(cfg) is cfg


def test_prior_data_test_refuses_a_test_size_the_prior_cannot_squeeze():
    from denoise_bench.errors import ConfigError
    from denoise_bench.methods.glow_map import prior_run_config

    with pytest.raises(ConfigError, match="not a multiple of"):
        prior_run_config(_compose("data=celeba", "data.root=/x", "data.test.crop=60"))


def test_the_discrepancy_stop_ends_each_image_when_its_residual_reaches_the_noise_energy(flat_prior):
    """method.map_stop: image i stops after the first iteration with ‖C − N‖²/(D·σ_i²) ≥ τ, on its own."""
    _, noisy = flat_test_batch()
    sigma = torch.tensor([0.1, 0.05, 0.2, 0.1])
    ratio = lambda c, n, s: ((c - n) ** 2).flatten(1).mean(1) / s ** 2  # noqa: E731
    runs: list[list[float]] = [[] for _ in range(4)]

    def trace(step, est):
        for i, r in enumerate(ratio(est, noisy, sigma)):
            runs[i].append(float(r))

    full = beta_map(flat_prior, noisy, sigma, beta=1.0, steps=60, lr=0.2, trace=trace)
    tau = 0.3
    stops = [next(k for k in range(1, 61) if r[k] >= tau) for r in runs]  # each image reaches τ before 60
    assert len(set(stops)) > 1  # the images stop at different iterations
    stopped = beta_map(flat_prior, noisy, sigma, beta=1.0, steps=60, lr=0.2, stop_ratio=tau)
    got = ratio(stopped, noisy, sigma)
    for i, k in enumerate(stops):
        assert got[i].item() == pytest.approx(runs[i][k], rel=1e-5)  # the estimate of its stopping iteration
        assert got[i] >= tau and runs[i][k - 1] < tau
    alone = beta_map(flat_prior, noisy[1:2], sigma[1:2], beta=1.0, steps=60, lr=0.2, stop_ratio=tau)
    torch.testing.assert_close(alone[0], stopped[1], atol=1e-5, rtol=0)
    never = beta_map(flat_prior, noisy, sigma, beta=1.0, steps=60, lr=0.2, stop_ratio=1e9)
    torch.testing.assert_close(never, full, atol=0, rtol=0)  # unreachable τ: every image runs all steps


class CountingPrior:
    """The prior, recording how many images each log-density evaluation carries."""

    def __init__(self, prior):
        self.prior, self.batch_sizes = prior, []

    def __getattr__(self, name):
        return getattr(self.prior, name)

    def log_prob(self, x, **kwargs):
        self.batch_sizes.append(x.shape[0])
        return self.prior.log_prob(x, **kwargs)


def test_a_stopped_image_leaves_the_batch_and_costs_nothing_more(flat_prior):
    """With the discrepancy stop the prior sees, in all, each image once per iteration it ran — not the
    whole batch until the last image stops — and every image's estimate is the one it stopped at."""
    _, noisy = flat_test_batch()
    sigma = torch.tensor([0.1, 0.05, 0.2, 0.1])
    tau = 0.3
    counting = CountingPrior(flat_prior)
    stopped = beta_map(counting, noisy, sigma, beta=1.0, steps=60, lr=0.2, stop_ratio=tau)
    alone, iterations = [], []
    for i in range(4):
        single = CountingPrior(flat_prior)
        alone.append(beta_map(single, noisy[i:i + 1], sigma[i:i + 1], beta=1.0, steps=60, lr=0.2, stop_ratio=tau))
        iterations.append(len(single.batch_sizes))
    assert len(set(iterations)) > 1 and max(iterations) < 60  # the images stop at different iterations
    assert sum(counting.batch_sizes) == sum(iterations)  # image-iterations: each image's own count
    assert counting.batch_sizes == sorted(counting.batch_sizes, reverse=True) and counting.batch_sizes[-1] < 4
    torch.testing.assert_close(stopped, torch.cat(alone), atol=1e-5, rtol=0)
    latent = beta_map(flat_prior, noisy, sigma, beta=1.0, steps=60, lr=0.1, space="latent", stop_ratio=tau)
    latent_alone = [beta_map(flat_prior, noisy[i:i + 1], sigma[i:i + 1], beta=1.0, steps=60, lr=0.1, space="latent",
                             stop_ratio=tau) for i in range(4)]
    torch.testing.assert_close(latent, torch.cat(latent_alone), atol=1e-5, rtol=0)
