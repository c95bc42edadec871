"""Specification tests for FDN (seed 002): the invertible network, its loss, its denoising rule
(x̂ = f⁻¹([z_C, 0])), its training modes through the runner, and the FDN experiment configs."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image
from torch.autograd.functional import jacobian

from conftest import REPO, compose, method_cfg, run_cli, write_images
from denoise_bench.errors import ConfigError, TrainingError
from denoise_bench.flows import ActNorm, HaarDownsampling, Squeeze
from denoise_bench.methods.fdn import FDN
from denoise_bench.models.fdn_net import FDNNet, clean_channel_count

PAPER = {"flow_blocks": 2, "sof_blocks": 8, "growth": 32, "split_len": None, "lu": False}


def tiny_net(in_channels=3, flow_blocks=2, sof_blocks=2, growth=4, downscale="haar", lu=False, seed=0):
    """A small FDNNet moved off its identity init (ActNorm initialised, every parameter perturbed)."""
    torch.manual_seed(seed)
    net = FDNNet(in_channels, flow_blocks, sof_blocks, growth=growth, downscale=downscale, lu=lu)
    net(torch.rand(4, in_channels, 8, 8) * 2 + 0.5)  # ActNorm data-dependent init
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return net.double()


# -- the invertible network ------------------------------------------------------------------------
@pytest.mark.parametrize("downscale,lu", [("haar", False), ("squeeze", False), ("haar", True)])
def test_whole_network_inverts_in_float64(downscale, lu):
    net = tiny_net(downscale=downscale, lu=lu)
    y = torch.rand(2, 3, 16, 12, dtype=torch.float64)
    z, logdet = net(y)
    assert z.shape == (2, 48, 4, 3) and logdet.shape == (2,)
    assert not torch.allclose(z[:, :3].repeat_interleave(1, 1), y[:, :, ::4, ::4])  # not a trivial map
    assert (net.inverse(z) - y).abs().max().item() <= 1e-9


def test_logdet_and_l_dis_match_the_autograd_jacobian():
    """L_dis (eq. 10) = −[log N(z; 0, I) + log|det ∂z/∂y|] / D, the Jacobian built by autograd."""
    net = tiny_net(in_channels=1, flow_blocks=2, sof_blocks=1, growth=3)
    y = torch.rand(2, 1, 4, 4, dtype=torch.float64)
    nll, z = net.nll_per_dim(y)
    _, logdet = net(y)
    d = y[0].numel()
    for i in range(2):
        jac = jacobian(lambda v: net(v.reshape(1, 1, 4, 4))[0].reshape(-1), y[i].reshape(-1))
        expected_logdet = torch.linalg.slogdet(jac)[1]
        torch.testing.assert_close(logdet[i], expected_logdet, rtol=1e-9, atol=1e-9)
        log_pz = torch.distributions.Normal(0.0, 1.0).log_prob(z[i]).sum()
        torch.testing.assert_close(nll[i], -(log_pz + expected_logdet) / d, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("n_clean", [36, 2])
def test_training_pass_shares_the_last_coupling_and_equals_the_two_separate_passes(n_clean):
    """``nll_and_restore`` (the training loss's pass) gives L_dis and f⁻¹([z_C, 0]) with their gradients
    exactly as ``nll_per_dim`` then ``restore``; where z_C holds the last coupling's y1 (36 ≥ split_len 3)
    its g2/g3 run once instead of twice, otherwise (2 < 3) the inverse computes them again."""
    net = tiny_net()
    y = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    clean = torch.rand_like(y)

    def loss_and_grads(fn):
        net.zero_grad()
        nll, restored = fn()
        loss = nll.mean() + (restored - clean).abs().mean()
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in net.parameters()]

    def separate():
        nll, z = net.nll_per_dim(y)
        return nll, net.restore(z, n_clean)

    ref_loss, ref_grads = loss_and_grads(separate)
    loss, grads = loss_and_grads(lambda: net.nll_and_restore(y, n_clean))
    torch.testing.assert_close(loss, ref_loss, rtol=1e-12, atol=1e-12)
    for g, ref in zip(grads, ref_grads):
        torch.testing.assert_close(g, ref, rtol=1e-9, atol=1e-12)
    assert _twin_runs(net, separate) == 2
    assert _twin_runs(net, lambda: net.nll_and_restore(y, n_clean)) == (1 if n_clean >= net.layers[-1].split_len else 2)


def _twin_runs(net, fn) -> int:
    """How many times the last coupling's g2/g3 pair ran during ``fn``."""
    last, runs = net.layers[-1], []
    original = last._log_scale_and_shift
    last._log_scale_and_shift = lambda y1: (runs.append(1), original(y1))[1]
    try:
        fn()
    finally:
        del last._log_scale_and_shift
    return len(runs)


def test_paper_configuration_through_the_method_has_4_38m_parameters():
    """Paper config (2 flow blocks × 8 SoF, 3-channel split, growth 32) as composed by
    ``method=fdn scale=paper``: 4,375,680 trainable parameters + 240 fixed Haar weights."""
    cfg = compose(["method=fdn", "scale=paper"])
    assert {k: cfg.method[k] for k in PAPER} == PAPER
    method = FDN(cfg.method, image_channels=3)
    assert method.count_parameters() == 4_375_680
    haar = [m for m in method.modules() if isinstance(m, HaarDownsampling)]
    assert len(haar) == 2 and sum(m.weight.numel() for m in haar) == 240
    assert not any(b.requires_grad for m in haar for b in m.buffers())
    assert method.net.out_channels == 48 and method.n_clean == 36


def test_squeeze_downscale_option_builds_squeeze_layers():
    method = FDN(method_cfg("fdn", {**PAPER, "sof_blocks": 1, "growth": 4, "downscale": "squeeze"}), image_channels=3)
    assert sum(isinstance(m, Squeeze) for m in method.modules()) == 2
    assert not any(isinstance(m, HaarDownsampling) for m in method.modules())
    with pytest.raises(ConfigError, match="downscale"):
        FDN(method_cfg("fdn", {"downscale": "pool"}), image_channels=3)


# -- denoising rule: x̂ = f⁻¹([z_C, 0]) --------------------------------------------------------------
@pytest.mark.parametrize("ratio,n_clean", [(1 / 8, 6), (1 / 4, 12), (1 / 2, 24), (3 / 4, 36), (7 / 8, 42)])
def test_zc_ratio_sets_the_clean_latent_and_denoising_zeroes_the_rest(ratio, n_clean):
    method = FDN(method_cfg("fdn", {"flow_blocks": 2, "sof_blocks": 1, "growth": 4, "zc_ratio": ratio}), image_channels=3)
    assert method.n_clean == n_clean
    method.net = tiny_net(sof_blocks=1)
    y = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    x_hat = method.denoise(y, torch.full((2,), 25.0))
    z, _ = method.net(y)
    z_hat, _ = method.net(x_hat)  # f(f⁻¹(ẑ)) = ẑ = [z_C, 0]
    torch.testing.assert_close(z_hat[:, :n_clean], z[:, :n_clean], rtol=0, atol=1e-9)
    assert z_hat[:, n_clean:].abs().max().item() <= 1e-9
    assert (x_hat - y).abs().max() > 1e-3  # dropping z_N changed the image


def test_zc_ratio_must_give_whole_channels():
    assert clean_channel_count(12, 0.75) == 9
    for channels, ratio in [(12, 1 / 8), (48, 0.1), (48, 1.0), (48, 0.0)]:
        with pytest.raises(ValueError, match="zc_ratio"):
            clean_channel_count(channels, ratio)
    with pytest.raises(ConfigError, match="zc_ratio=0.125 of 12"):
        FDN(method_cfg("fdn", {"flow_blocks": 1, "sof_blocks": 1, "growth": 4, "zc_ratio": 0.125}), image_channels=3)


def test_denoise_keeps_shape_for_sizes_that_are_not_multiples_of_four():
    method = FDN(method_cfg("fdn", {"flow_blocks": 2, "sof_blocks": 1, "growth": 4}), image_channels=3)
    noisy = torch.rand(2, 3, 30, 37)
    out = method.denoise(noisy, torch.full((2,), 25.0))
    assert out.shape == noisy.shape and out.dtype == noisy.dtype
    assert torch.isfinite(out).all()
    # at init (identity couplings) the output stays in the range of an image
    assert -1.0 < out.min() and out.max() < 2.0
    gray = FDN(method_cfg("fdn", {"flow_blocks": 2, "sof_blocks": 1, "growth": 4}), image_channels=1)
    assert gray.net.out_channels == 16 and gray.n_clean == 12
    assert gray.denoise(torch.rand(1, 1, 9, 9), torch.tensor([15.0])).shape == (1, 1, 9, 9)


# -- training ------------------------------------------------------------------------------------------
def smooth_batch(n=8, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    phase = torch.rand(n, 3, 1, 1, generator=g) * 6
    clean = 0.5 + 0.35 * torch.sin(xx / 3.0 + phase) * torch.cos(yy / 4.0 + phase)
    noisy = clean + 50 / 255 * torch.randn(clean.shape, generator=g)
    return clean.float(), noisy.float()


def train_tiny(lambda_dis, lambda_rec, steps=30):
    torch.manual_seed(0)
    method = FDN(method_cfg("fdn", {"flow_blocks": 2, "sof_blocks": 1, "growth": 8, "lr": 1e-3, "lambda_dis": lambda_dis,
                  "lambda_rec": lambda_rec}), image_channels=3)
    opt = method.configure_optimizers()["optimizer"]
    clean, noisy = smooth_batch(n=4)
    history = []
    for _ in range(steps):
        parts = method.losses(noisy, clean)
        opt.zero_grad()
        parts["loss"].backward()
        opt.step()
        history.append({k: float(v) for k, v in parts.items()})
    return history[0], history[-1]


def test_a_smoke_training_run_lowers_the_loss_and_the_reconstruction_error():
    first, last = train_tiny(lambda_dis=0.01, lambda_rec=1.0)  # the default weights
    assert last["loss"] < first["loss"] - 0.1 * abs(first["loss"])
    assert last["l_rec"] < 0.7 * first["l_rec"]


def test_l_dis_alone_learns_the_density_of_the_noisy_images():
    first, last = train_tiny(lambda_dis=1.0, lambda_rec=0.0)
    assert last["l_dis"] < first["l_dis"] - 0.1  # nats per dimension


def test_loss_weights_follow_eq_12():
    method = FDN(method_cfg("fdn", {"flow_blocks": 1, "sof_blocks": 1, "growth": 4, "lambda_dis": 0.3, "lambda_rec": 2.0}),
                 image_channels=3)
    clean, noisy = smooth_batch(n=2, size=8)
    p = method.losses(noisy, clean)
    torch.testing.assert_close(p["loss"], 0.3 * p["l_dis"] + 2.0 * p["l_rec"])
    restored = method.net.restore(method.net(noisy)[0], method.n_clean)
    torch.testing.assert_close(p["l_rec"], (restored - clean).abs().mean())


def test_a_nan_loss_stops_training_with_a_clear_error():
    method = FDN(method_cfg("fdn", {"flow_blocks": 1, "sof_blocks": 1, "growth": 4}), image_channels=3)
    clean, noisy = smooth_batch(n=2, size=8)
    noisy[0, 0, 0, 0] = float("nan")
    with pytest.raises(TrainingError, match="fdn: loss became nan"):
        method.training_step({"noisy": noisy, "clean": clean, "sigma": torch.full((2,), 50.0)}, 0)


def test_grad_clip_bounds_the_gradient_norm():
    method = FDN(method_cfg("fdn", {"flow_blocks": 1, "sof_blocks": 1, "growth": 4, "grad_clip": 1e-3}), image_channels=3)
    opt = method.configure_optimizers()["optimizer"]
    clean, noisy = smooth_batch(n=2, size=8)
    method.losses(noisy, clean)["loss"].backward()
    method.configure_gradient_clipping(opt)
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in method.parameters() if p.grad is not None]))
    assert norm <= 1e-3 * 1.0001


def test_lr_is_halved_every_lr_halve_every_steps():
    method = FDN(method_cfg("fdn", {"flow_blocks": 1, "sof_blocks": 1, "growth": 4, "lr": 2e-4, "lr_halve_every": 3}),
                 image_channels=3)
    conf = method.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    assert conf["lr_scheduler"]["interval"] == "step"
    lrs = []
    for _ in range(7):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([2e-4] * 3 + [1e-4] * 3 + [5e-5])


# -- complexity (Table V) -----------------------------------------------------------------------------
def test_gflops_per_256_image_match_the_papers_table_v():
    """FlopCounterMode at 64×64 scaled to 256×256: the paper's FDN is 76.80 GFLOPs for one pass
    (we denoise with two: forward + inverse) and its DnCNN 73.32."""
    from denoise_bench.complexity import denoise_gflops
    from denoise_bench.methods.bm3d import BM3D
    from denoise_bench.methods.dncnn import DnCNN

    fdn = FDN(method_cfg("fdn", dict(PAPER)), image_channels=3)
    g = denoise_gflops(fdn, 3)
    assert g / 2 == pytest.approx(76.80, rel=0.01)
    assert denoise_gflops(fdn, 3, count_at=32) == pytest.approx(g, rel=1e-9)  # FLOPs ∝ pixels
    assert denoise_gflops(DnCNN(method_cfg("dncnn", {"depth": 17, "features": 64}), 3), 3) == pytest.approx(73.32, rel=0.01)
    assert denoise_gflops(BM3D(method_cfg("bm3d", {}), 3), 3) is None


# -- through the runner ---------------------------------------------------------------------------------
def test_run_cell_writes_metrics_with_what_the_tables_need(tmp_path):
    from denoise_bench.run.cell import run_cell

    cfg = compose(["method=fdn", "scale=smoke", "data=builtin_rgb", "sigma=50"], tmp_path)
    summary = run_cell(cfg)
    m = json.loads((tmp_path / "cell" / "metrics.json").read_text())
    assert m["method"] == "fdn" and m["sigma"] == "50" and m["dataset"] == "builtin_rgb"
    assert m["n_images"] == summary["n_images"] > 0 and math.isfinite(m["psnr"]["mean"])
    c = m["config"]["method"]
    assert (c["flow_blocks"], c["sof_blocks"], c["zc_ratio"]) == (2, 1, 0.75)
    assert m["parameters"] == FDN(cfg.method, 3).count_parameters()
    assert m["gflops_256"] > 0
    assert m["artifacts"][0]["kind"] == "fdn" and m["artifacts"][0]["status"] == "trained"
    assert (tmp_path / "cell" / "per_image.csv").is_file()


def test_blind_training_and_blind_test(tmp_path):
    from denoise_bench.run.cell import run_cell

    run_cell(compose(["method=fdn", "scale=smoke", "sigma=blind"], tmp_path))
    m = json.loads((tmp_path / "cell" / "metrics.json").read_text())
    assert m["sigma"] == "blind"
    rows = (tmp_path / "cell" / "per_image.csv").read_text().splitlines()[1:]
    sigmas = {float(r.split(",")[1]) for r in rows}
    assert len(sigmas) == len(rows) and all(0 <= s <= 55 for s in sigmas)  # one draw per image


def test_real_noise_from_paired_data(tmp_path):
    """data.paired=true: training and test noisy images come from disk (sigma 'real')."""
    from denoise_bench.run.cell import run_cell

    for split, n in (("train", 4), ("test", 2)):
        for sub, seed in (("GT", 0), ("NOISY", 1)):
            write_images(tmp_path / split / sub, n, size=(24, 28), channels=3, seed=seed)
    cfg = compose(["method=fdn", "scale=smoke", "data=paired_folder", f"data.root={tmp_path / 'test'}",
                   f"data.train_root={tmp_path / 'train'}", "data.test.crop=null", "data.patch_size=16"], tmp_path)
    run_cell(cfg)
    m = json.loads((tmp_path / "cell" / "metrics.json").read_text())
    assert m["sigma"] == "real" and m["n_images"] == 2
    assert m["psnr"]["mean"] < 30  # scored against GT/, not the NOISY/ input it was given


# -- experiments -------------------------------------------------------------------------------------------
EXPERIMENTS = {
    "fdn_table3": {"data": "celeba,flowers102,cub200", "sigma": "15,25,50,blind", "method": "bm3d,dncnn,fdn"},
    "fdn_table4": {"data": "rice1,rice2", "sigma": "30,50,70", "method": "bm3d,dncnn,fdn"},
    "fdn_table5": {"method": "dncnn,bm3d,fdn"},
    "fdn_ablation_blocks": {"method.flow_blocks": "1,2,3", "method.sof_blocks": "4,8"},
    "fdn_ablation_zc": {"method.zc_ratio": "0.125,0.25,0.5,0.75,0.875"},
}


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_experiment_composes_with_its_sweep_and_table(name):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = hydra_compose("config", overrides=[f"experiment={name}"], return_hydra_config=True)
    assert cfg.name == name
    assert list(cfg.report.tables) == [name]
    params = {k: str(v).replace(" ", "") for k, v in cfg.hydra.sweeper.params.items()}
    assert params == EXPERIMENTS[name]
    if name == "fdn_table5":
        assert cfg.data.name == "sidd" and cfg.data.paired is True
    elif name.startswith("fdn_ablation"):
        assert cfg.method.name == "fdn" and cfg.data.name == "celeba" and cfg.sigma == 50
        assert list(cfg.data.partitions.test) == [1]  # FDN tests on CelebA's official validation split


def make_celeba(root, n=12, size=(40, 36)):
    """A CelebA-layout tree: img_align_celeba/*.jpg + list_eval_partition.txt (8 train, 2 val, 2 test)."""
    rng = np.random.default_rng(0)
    folder = root / "img_align_celeba"
    folder.mkdir(parents=True)
    lines = []
    for k in range(1, n + 1):
        img = (rng.uniform(0.2, 0.8, (1, 1, 3)) + 0.1 * rng.standard_normal((*size, 3))).clip(0, 1)
        Image.fromarray((img * 255).astype(np.uint8)).save(folder / f"{k:06d}.jpg")
        lines.append(f"{k:06d}.jpg {0 if k <= n - 4 else (1 if k <= n - 2 else 2)}")
    (root / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    return root


def test_ablation_zc_experiment_runs_end_to_end_at_smoke_scale(tmp_path):
    root = make_celeba(tmp_path / "celeba")
    proc = run_cli(["-m", "experiment=fdn_ablation_zc", "scale=smoke", f"data.root={root}", "data.test.crop=32",
                    "logger=none", "progress=false", f"paths.multirun={tmp_path / 'multirun'}",
                    f"paths.artifacts={tmp_path / 'art'}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweep = tmp_path / "multirun" / "fdn_ablation_zc"
    cells = sorted(sweep.rglob("metrics.json"))
    assert len(cells) == 5
    ratios = sorted(json.loads(p.read_text())["config"]["method"]["zc_ratio"] for p in cells)
    assert ratios == [0.125, 0.25, 0.5, 0.75, 0.875]
    for p in cells:
        m = json.loads(p.read_text())
        assert (m["method"], m["dataset"], m["sigma"]) == ("fdn", "celeba", "50")
        assert m["n_images"] == 2  # the official validation partition (1) of the tiny tree
    assert (sweep / "table.md").is_file() and (sweep / "fdn_ablation_zc.md").is_file()  # + the Table II layout
