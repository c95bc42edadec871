"""Specification of method=flow_prior (Kattakinda & Rajagopalan 2020): unpaired training against a
frozen clean-image Glow prior, L = ‖B(D) − B(N)‖² − λ(σ)·log p_C(D), λ = c·2σ²‖b‖₂²."""
from __future__ import annotations

import contextlib
import inspect
import io
import json
import math

import pytest
import torch

from conftest import compose, method_cfg
from denoise_bench.blur import GaussianBlur, gaussian_kernel
from denoise_bench.data.sources import list_items, take_part
from denoise_bench.errors import ConfigError, TrainingError
from denoise_bench.flows import Glow
from denoise_bench.methods.flow_prior import FlowPriorDenoiser, map_lambda, tile_starts, tiles
from denoise_bench.models.resnet_denoiser import ResNetDenoiser


def tiny_prior(channels=1, size=8):
    torch.manual_seed(0)
    glow = Glow(channels, levels=2, steps=1, hidden=8, n_bits=8)
    glow.log_prob(torch.rand(4, channels, size, size))  # ActNorm's data-dependent init
    return glow.eval().requires_grad_(False)


# -- B and λ ---------------------------------------------------------------------------------------
def test_blur_kernel_is_a_normalised_gaussian():
    k = gaussian_kernel(7, 1.5)
    assert k.shape == (7, 7) and float(k.sum()) == pytest.approx(1.0, abs=1e-12)
    assert torch.allclose(k, k.T) and torch.allclose(k, k.flip(0)) and int(k.argmax()) == 24  # peak at the centre
    # ‖b‖₂² is the plain sum of squares, close to the continuous value 1/(4π w²) for a wide kernel
    blur = GaussianBlur(13, 2.0)
    assert blur.sq_norm == pytest.approx(float((gaussian_kernel(13, 2.0) ** 2).sum()), rel=1e-6)
    assert blur.sq_norm == pytest.approx(1 / (4 * math.pi * 2.0**2), rel=0.02)
    # sums to one: a constant image is unchanged (borders too, reflect padding); sizes are kept
    x = torch.full((2, 3, 20, 24), 0.37)
    assert torch.allclose(blur(x), x, atol=1e-6)
    with pytest.raises(ConfigError):
        gaussian_kernel(4, 1.0)


def test_no_blur_is_the_identity_with_unit_norm():
    blur = GaussianBlur(5, 1.0, enabled=False)
    x = torch.rand(2, 1, 9, 9)
    assert blur.is_identity and blur.sq_norm == 1.0 and torch.equal(blur(x), x)


def test_blurred_white_noise_has_variance_sigma2_times_b2():
    """The fact behind λ: B(N) − B(C) = B(n) has per-pixel variance σ²‖b‖₂²."""
    torch.manual_seed(0)
    blur, s = GaussianBlur(5, 1.0), 0.2
    n = s * torch.randn(4, 1, 256, 256)
    assert float(blur(n).var()) == pytest.approx(s**2 * blur.sq_norm, rel=0.03)
    assert blur.sq_norm < 0.2  # much smaller than 1: blurring removes most of the noise power


def test_lambda_is_c_times_2_sigma2_b2():
    assert float(map_lambda(25.0, 0.08, 0.5)) == pytest.approx(0.5 * 2 * (25 / 255) ** 2 * 0.08)
    method = FlowPriorDenoiser(method_cfg("flow_prior", {"blur_size": 5, "blur_sigma": 1.0, "lambda_mult": 2.0, "resnet": {"blocks": 1}}))
    sigma = torch.tensor([15.0, 50.0])  # per image (blind training draws one sigma per image)
    expected = 2.0 * 2 * (sigma / 255) ** 2 * float((gaussian_kernel(5, 1.0) ** 2).sum())
    assert torch.allclose(method.lam(sigma), expected.float())
    plain = FlowPriorDenoiser(method_cfg("flow_prior", {"blur": False, "resnet": {"blocks": 1}}))
    assert float(plain.lam(torch.tensor([25.0]))) == pytest.approx(2 * (25 / 255) ** 2)
    with pytest.raises(ConfigError):  # real noise: no sigma, no λ
        plain.lam(torch.tensor([float("nan")]))


def test_lambda_sigma_ref_scales_lambda_by_sigma_over_the_reference():
    """lambda_sigma_ref = s: lambda = c 2 sigma^2 ||b||^2 * sigma/s, the MAP weight at sigma = s, less below it."""
    method = FlowPriorDenoiser(method_cfg("flow_prior", {"blur": False, "lambda_mult": 2.0, "lambda_sigma_ref": 50,
                                                          "resnet": {"blocks": 1}}))
    sigma = torch.tensor([15.0, 25.0, 50.0, 0.0])
    map_weight = 2.0 * 2 * (sigma / 255) ** 2
    assert torch.allclose(method.lam(sigma), map_weight * sigma / 50)
    assert float(method.lam(torch.tensor([50.0]))) == pytest.approx(float(map_weight[2]))
    with pytest.raises(ConfigError, match="lambda_sigma_ref"):
        FlowPriorDenoiser(method_cfg("flow_prior", {"lambda_sigma_ref": 0, "resnet": {"blocks": 1}}))


# -- the network and the objective ----------------------------------------------------------------
def test_resnet_starts_as_the_identity_and_outputs_in_the_unit_interval():
    torch.manual_seed(0)
    net = ResNetDenoiser(3, blocks=4, hidden=8)
    noisy = torch.rand(2, 3, 16, 16) * 1.4 - 0.2
    out = net(noisy)
    assert torch.allclose(out, noisy.clamp(1e-3, 1 - 1e-3), atol=1e-5)  # zero-initialised last convs
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p))
    out = net(noisy)
    assert out.shape == noisy.shape and bool((out >= 0).all() and (out <= 1).all())
    assert not torch.allclose(out, noisy.clamp(1e-3, 1 - 1e-3), atol=1e-2)
    assert net(torch.rand(1, 3, 13, 21)).shape == (1, 3, 13, 21)  # fully convolutional


def test_tiles_cover_every_pixel_at_the_prior_resolution():
    assert tile_starts(32, 16) == [0, 16] and tile_starts(40, 16) == [0, 16, 24]
    x = torch.arange(2 * 40 * 24, dtype=torch.float32).reshape(2, 1, 40, 24)
    t = tiles(x, 16)
    assert t.shape == (2 * 3 * 2, 1, 16, 16)
    assert set(t[:6].flatten().tolist()) == set(x[0].flatten().tolist())  # image 0's tiles come first
    assert tiles(x[:, :, :16, :16], 16).shape == (2, 1, 16, 16)


def test_gradient_reaches_the_resnet_never_the_frozen_prior():
    method = FlowPriorDenoiser(method_cfg("flow_prior", {"resnet": {"blocks": 2, "hidden": 4}}), image_channels=1)
    prior = tiny_prior()
    method.use_prior(prior, 8)
    noisy = torch.rand(3, 1, 16, 16)
    terms = method.objective(method.net(noisy), noisy, torch.full((3,), 25.0))
    assert {k: v.shape for k, v in terms.items()} == {"loss": (3,), "data": (3,), "log_p": (3,)}
    # a 16x16 image is scored as 4 tiles of the 8x8 prior: log p sums the tiles' log-densities
    expected = prior.log_prob(tiles(method.net(noisy), 8), dequantize=False).reshape(3, 4).sum(1)
    assert torch.allclose(terms["log_p"], expected, atol=1e-4)
    terms["loss"].mean().backward()
    assert all(p.grad is not None for p in method.net.parameters())
    assert all(p.grad is None and not p.requires_grad for p in prior.parameters()) and not prior.training
    # the prior is not part of the denoiser's weights or parameter count
    assert not any(k.startswith("_prior") for k in method.state_dict())
    assert method.count_parameters() == sum(p.numel() for p in method.net.parameters())


def test_training_step_refuses_a_batch_with_clean_images():
    method = FlowPriorDenoiser(method_cfg("flow_prior", {"resnet": {"blocks": 1}}), image_channels=1)
    method.use_prior(tiny_prior(), 8)
    batch = {"noisy": torch.rand(2, 1, 8, 8), "sigma": torch.full((2,), 25.0), "clean": torch.rand(2, 1, 8, 8)}
    with pytest.raises(TrainingError, match="unpaired"):
        method.training_step(batch, 0)


def test_the_artifact_key_names_the_prior_and_training_keys():
    a = FlowPriorDenoiser(method_cfg("flow_prior", {"lambda_mult": 1.0, "resnet": {"blocks": 1}}))
    with pytest.raises(TrainingError):  # before prepare(): no prior, no key
        a.artifact_config()
    a.use_prior(tiny_prior(), 8, store_key="abc")
    key = a.artifact_config()
    assert key["prior"]["key"] == "abc" and len(key["prior"]["weights_sha256"]) == 16
    b = FlowPriorDenoiser(method_cfg("flow_prior", {"lambda_mult": 2.0, "resnet": {"blocks": 1}}))
    b.use_prior(tiny_prior(), 8, store_key="abc")
    assert b.artifact_config() != key and {**b.artifact_config(), "lambda_mult": 1.0} == key


# -- unpaired data ----------------------------------------------------------------------------------
def test_train_parts_are_disjoint_and_cover_the_split():
    items = list(range(7))
    first, second = take_part(items, [0.0, 0.5]), take_part(items, [0.5, 1.0])
    assert first and second and not set(first) & set(second) and first + second == items
    for bad in ([0.5, 0.5], [-0.1, 0.5], [0.2], "half"):
        with pytest.raises(ConfigError):
            take_part(items, bad)
    cfg = compose(["method=flow_prior"])
    assert list(cfg.data.train_part) == [0.5, 1.0] and list(cfg.method.prior_part) == [0.0, 0.5]
    denoiser_ids = {i.id for i in list_items(cfg.data, "train")}
    cfg.data.train_part = None
    every = [i.id for i in list_items(cfg.data, "train")]
    assert denoiser_ids == set(every[len(every) - len(denoiser_ids):]) and len(denoiser_ids) == len(every) // 2


def test_overlapping_prior_and_denoiser_parts_are_refused():
    cfg = compose(["method=flow_prior", "method.prior_part=[0.0,0.6]"])
    method = FlowPriorDenoiser(cfg.method)
    with pytest.raises(ConfigError, match="disjoint"):
        method.prior_data_cfg(cfg)
    ok = compose(["method=flow_prior"])
    assert list(FlowPriorDenoiser(ok.method).prior_data_cfg(ok).data.train_part) == [0.0, 0.5]


@pytest.fixture(scope="module")
def two_sigma_cells(tmp_path_factory):
    """Two smoke cells (sigma 15, 25) of method=flow_prior sharing one artifact store, with every
    training batch of the denoiser and the training images of every datamodule recorded."""
    from denoise_bench.run.cell import run_cell
    from denoise_bench.data import datamodule

    tmp = tmp_path_factory.mktemp("flow_prior")
    batches, train_sets = [], []
    real_step, real_init = FlowPriorDenoiser.training_step, datamodule.TrainPatches.__init__

    def recording_step(self, batch, batch_idx):
        batches.append(sorted(batch))
        return real_step(self, batch, batch_idx)

    def recording_init(self, *args, **kwargs):
        bound = inspect.signature(real_init).bind(self, *args, **kwargs)
        bound.apply_defaults()
        train_sets.append({"ids": [i.id for i in bound.arguments["items"]], "unpaired": bound.arguments["unpaired"]})
        real_init(self, *args, **kwargs)

    out, summaries = io.StringIO(), {}
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        mp.setattr(FlowPriorDenoiser, "training_step", recording_step)
        mp.setattr(datamodule.TrainPatches, "__init__", recording_init)
        for sigma in (15, 25):
            cfg = compose(["method=flow_prior", "scale=smoke", f"sigma={sigma}", "threads=1",
                           f"paths.output_dir={tmp / f'cell{sigma}'}", f"paths.artifacts={tmp / 'artifacts'}"])
            summaries[sigma] = run_cell(cfg)
    return {"tmp": tmp, "log": out.getvalue(), "batches": batches, "train_sets": train_sets, "summaries": summaries}


def test_smoke_cells_write_metrics_and_train_the_prior_once(two_sigma_cells):
    tmp, log = two_sigma_cells["tmp"], two_sigma_cells["log"]
    for sigma in (15, 25):
        m = json.loads((tmp / f"cell{sigma}" / "metrics.json").read_text())
        assert m["method"] == "flow_prior" and m["sigma"] == str(sigma) and m["n_images"] == 2
        assert math.isfinite(m["psnr"]["mean"]) and m["config"]["data"]["train_part"] == [0.5, 1.0]
    assert log.count("[artifacts] glow_prior: training") == 1, log
    assert log.count("[artifacts] glow_prior: loaded") == 1, log
    assert log.count("[artifacts] flow_prior: training") == 2  # one denoiser per sigma
    priors = sorted((tmp / "artifacts").glob("glow_prior-*/meta.json"))
    assert len(priors) == 1
    prior_meta = json.loads(priors[0].read_text())
    assert prior_meta["config"]["data"]["train_part"] == [0.0, 0.5]  # the prior's clean part
    denoisers = [json.loads(p.read_text()) for p in sorted((tmp / "artifacts").glob("flow_prior-*/meta.json"))]
    assert len(denoisers) == 2
    # both denoisers name the same prior: its store key and its weights
    assert {d["config"]["model"]["prior"]["key"] for d in denoisers} == {priors[0].parent.name}
    assert len({d["config"]["model"]["prior"]["weights_sha256"] for d in denoisers}) == 1
    assert {d["config"]["noise"]["sigma"] for d in denoisers} == {"15", "25"}


def test_the_denoiser_never_receives_a_clean_tensor(two_sigma_cells):
    batches = two_sigma_cells["batches"]
    assert len(batches) >= 2 * 3  # smoke: 3 steps per cell
    assert all(keys == ["noisy", "sigma"] for keys in batches), batches


def test_prior_and_denoiser_images_are_disjoint(two_sigma_cells):
    sets = two_sigma_cells["train_sets"]
    prior_sets = [s for s in sets if not s["unpaired"]]  # the prior reads clean images
    denoiser_sets = [s for s in sets if s["unpaired"]]
    assert len(prior_sets) == 1 and len(denoiser_sets) == 2  # the prior's data only when it trains
    prior_ids = set(prior_sets[0]["ids"])
    for s in denoiser_sets:
        assert s["ids"] and prior_ids and not prior_ids & set(s["ids"])


def test_psnr_vs_lambda_figure_from_stored_cells(tmp_path):
    from denoise_bench.report.cells import load_cells
    from denoise_bench.report.figures_flow_prior import psnr_vs_lambda

    def cell(name, method, sigma, psnr, **method_cfg):
        d = tmp_path / "sweep" / name
        d.mkdir(parents=True)
        m = {"method": method, "sigma": str(sigma), "dataset": "celeba", "n_images": 4, "scale": "quick",
             "psnr": {"mean": psnr, "std": 1.0}, "ssim": {"mean": 0.8, "std": 0.1}, "mse": {"mean": 0.01, "std": 0.0},
             "overrides": name, "config": {"method": {"name": method, **method_cfg}}}
        (d / "metrics.json").write_text(json.dumps(m))

    for c, p in ((0.25, 23.0), (1.0, 25.8), (4.0, 23.3)):
        cell(f"c{c}", "flow_prior", 25, p, lambda_mult=c, blur=True)
    cell("noblur", "flow_prior", 25, 21.8, lambda_mult=1.0, blur=False)
    cell("bm3d", "bm3d", 25, 30.0)
    cell("other_sigma", "flow_prior", 50, 22.0, lambda_mult=1.0, blur=True)  # one c only: no line
    paths = psnr_vs_lambda(load_cells(tmp_path / "sweep"), tmp_path / "fig")
    assert [p.name for p in paths] == ["psnr_vs_lambda.png", "psnr_vs_lambda.pdf"]
    assert paths[0].stat().st_size > 1000
    assert psnr_vs_lambda(load_cells(tmp_path / "sweep" / "bm3d"), tmp_path / "none") == []


# -- λ chosen per prior by SURE on noisy validation images ------------------------------------------
@pytest.fixture(scope="module")
def sure_cells(tmp_path_factory):
    """A smoke cell choosing λ among two multipliers by SURE, then the plain cell of the multiplier it
    kept, sharing one artifact store."""
    from denoise_bench.run.cell import run_cell

    tmp = tmp_path_factory.mktemp("flow_prior_sure")
    common = ["method=flow_prior", "scale=smoke", "sigma=25", "threads=1", f"paths.artifacts={tmp / 'artifacts'}"]
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        chosen = run_cell(compose(common + ["method.lambda_sure=[0.5,2]", f"paths.output_dir={tmp / 'sure'}"]))
    kept = [a for a in chosen["artifacts"] if a.get("chosen")]
    plain_log = io.StringIO()
    with contextlib.redirect_stdout(plain_log):
        plain = run_cell(compose(common + [f"method.lambda_mult={kept[0]['lambda_mult']}",
                                           f"paths.output_dir={tmp / 'plain'}"]))
    return {"tmp": tmp, "chosen": chosen, "plain": plain, "log": log.getvalue(), "plain_log": plain_log.getvalue()}


def test_lambda_sure_trains_one_resnet_per_multiplier_and_keeps_the_lowest_sure(sure_cells):
    chosen, log = sure_cells["chosen"], sure_cells["log"]
    candidates = [a for a in chosen["artifacts"] if a["kind"] == "flow_prior"]
    assert [a["lambda_mult"] for a in candidates] == [0.5, 2.0]
    assert log.count("[artifacts] flow_prior: training") == 2 and "[flow_prior] lambda by SURE" in log, log
    best = min(candidates, key=lambda a: a["val_sure_mse"])
    assert [a["chosen"] for a in candidates] == [a is best for a in candidates]
    assert all(math.isfinite(a["val_sure_mse"]) for a in candidates)
    # the cell's curve is the kept ResNet's
    kept_curve = (sure_cells["tmp"] / "artifacts" / best["path"].rsplit("/", 1)[-1] / "curve.csv").read_bytes()
    assert (sure_cells["tmp"] / "sure" / "curve_flow_prior.csv").read_bytes() == kept_curve


def test_the_kept_resnet_is_the_plain_cell_of_its_multiplier(sure_cells):
    """The candidates are ordinary flow_prior artifacts: the cell with ``method.lambda_mult`` set to the
    kept multiplier (and no SURE choice) loads that artifact and measures the same PSNR on every image."""
    chosen, plain = sure_cells["chosen"], sure_cells["plain"]
    kept = next(a for a in chosen["artifacts"] if a.get("chosen"))
    assert f"[artifacts] flow_prior: loaded {kept['path']}" in sure_cells["plain_log"], sure_cells["plain_log"]
    assert "training" not in sure_cells["plain_log"]
    assert plain["psnr"] == chosen["psnr"] and plain["ssim"] == chosen["ssim"]


def test_lambda_sure_refuses_clipped_noise_and_bad_multipliers(tmp_path):
    from denoise_bench.run.cell import run_cell

    cfg = compose(["method=flow_prior", "scale=smoke", "noise=clipped", "method.lambda_sure=[0.5,2]",
                   f"paths.output_dir={tmp_path / 'cell'}", f"paths.artifacts={tmp_path / 'artifacts'}"])
    with pytest.raises(ConfigError, match="SURE needs unclipped Gaussian noise"):
        run_cell(cfg)
    assert not (tmp_path / "artifacts").exists() or not list((tmp_path / "artifacts").glob("glow_prior-*"))
    for bad in ([], [1.0, -2.0]):
        with pytest.raises(ConfigError, match="lambda_sure"):
            FlowPriorDenoiser(method_cfg("flow_prior", {"lambda_sure": bad}))


def test_a_sure_cell_killed_between_candidates_resumes_with_the_finished_ones(tmp_path):
    """Nothing lost: the candidates trained before a kill are stored; the re-run loads them, trains only the
    rest, and ends with the cell an uninterrupted run gives."""
    from denoise_bench.run.cell import run_cell
    from denoise_bench.training import TrainingContext

    common = ["method=flow_prior", "scale=smoke", "sigma=25", "threads=1", "method.lambda_sure=[0.5,2,4]",
              f"paths.artifacts={tmp_path / 'artifacts'}"]
    real_fit, calls = TrainingContext.fit_method, []

    def killed_at_the_third(self, method):
        calls.append(method.lambda_mult)
        if len(calls) == 3:
            raise KeyboardInterrupt("killed")
        return real_fit(self, method)

    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(io.StringIO()):
        mp.setattr(TrainingContext, "fit_method", killed_at_the_third)
        with pytest.raises(KeyboardInterrupt):
            run_cell(compose(common + [f"paths.output_dir={tmp_path / 'cell'}"]))
    assert calls == [0.5, 2.0, 4.0] and not (tmp_path / "cell" / "metrics.json").exists()
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        resumed = run_cell(compose(common + [f"paths.output_dir={tmp_path / 'cell'}"]))
    text = log.getvalue()
    assert text.count("[artifacts] flow_prior: loaded") == 2 and text.count("[artifacts] flow_prior: training") == 1, text
    with contextlib.redirect_stdout(io.StringIO()):
        fresh = run_cell(compose(common + [f"paths.output_dir={tmp_path / 'fresh'}",
                                           f"paths.artifacts={tmp_path / 'fresh_artifacts'}"]))
    # the same choice and the same figures up to float rounding (stored weights reload into another memory layout)
    assert [a.get("chosen") for a in resumed["artifacts"]] == [a.get("chosen") for a in fresh["artifacts"]]
    sure = lambda cell: [a["val_sure_mse"] for a in cell["artifacts"] if "val_sure_mse" in a]  # noqa: E731
    assert sure(resumed) == pytest.approx(sure(fresh), rel=1e-6)
    assert resumed["psnr"]["mean"] == pytest.approx(fresh["psnr"]["mean"], abs=1e-6)
