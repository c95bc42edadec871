"""The method contract, checked for every registered method (``methods.METHODS``), each built from the
composed config the command line uses (``method=<name> scale=smoke``):

- a training step on a real batch gives a finite loss with gradients (trainable methods);
- ``denoise`` keeps shape and dtype and, through the shared ``test_step``, gives finite values in [0, 1];
- a NaN loss stops training with a one-line ``TrainingError`` naming the step (and the Glow prior too);
- ``method.weights`` round-trips: saved weights loaded into a fresh method denoise identically.
"""
from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from conftest import method_cfg, prior_cfg
from denoise_bench.errors import TrainingError
from denoise_bench.flows import Glow
from denoise_bench.methods import METHODS, method_class

SIZE = 16  # divisible by every smoke flow's downscaling (FDN 2 blocks: 4; the smoke prior: 4)


def tiny_prior(channels: int = 1) -> Glow:
    torch.manual_seed(0)
    glow = Glow(channels, levels=2, steps=1, hidden=8, n_bits=8)
    glow.log_prob(torch.rand(4, channels, SIZE, SIZE))  # ActNorm's data-dependent init
    return glow.eval().requires_grad_(False)


def build(name: str, overrides: dict | None = None):
    """The method of ``method=<name> scale=smoke`` (1 channel, one thread), with a prior if it needs one."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    over = {"run": {"workers": 1}} if name == "bm3d" else {}
    method = method_class(name)(method_cfg(name, {**over, **(overrides or {})}), image_channels=1)
    if hasattr(method, "use_prior"):
        method.use_prior(tiny_prior(), SIZE)
    elif hasattr(method, "set_prior"):
        method.set_prior(tiny_prior())
    return method


def batch(n: int = 2, nan: bool = False) -> dict:
    g = torch.Generator().manual_seed(1)
    clean = torch.rand(n, 1, SIZE, SIZE, generator=g) * 0.6 + 0.2
    noisy = clean + 25 / 255 * torch.randn(clean.shape, generator=g)
    if nan:
        noisy[0, 0, 0, 0] = float("nan")
    return {"noisy": noisy, "clean": clean, "sigma": torch.full((n,), 25.0), "id": [f"img{i}" for i in range(n)]}


def train_batch(method, b: dict) -> dict:
    return {k: v for k, v in b.items() if k != "id" and not (k == "clean" and getattr(method, "unpaired", False))}


REGISTERED = sorted(METHODS)
TRAINABLE = [m for m in REGISTERED if method_class(m).trainable]
WITH_WEIGHTS = [m for m in REGISTERED if method_class(m).loads_weights]


def test_every_method_in_the_registry_has_a_yaml_of_its_own_name():
    from conftest import REPO

    for name in REGISTERED:
        cfg = OmegaConf.load(REPO / "conf" / "method" / f"{name}.yaml")
        declared = cfg.method.name if "method" in cfg else cfg.name
        assert declared == name


@pytest.mark.parametrize("name", TRAINABLE)
def test_a_training_step_gives_a_finite_loss_with_gradients(name):
    method = build(name).train()
    loss = method.training_step(train_batch(method, batch()), 0)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in method.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads) and any(float(g.abs().sum()) > 0 for g in grads)


@pytest.mark.parametrize("name", REGISTERED)
def test_denoise_keeps_shape_and_dtype_and_the_test_step_records_finite_metrics_in_range(name):
    method = build(name).eval()
    b = batch()
    with torch.enable_grad() if method.grad_at_test else torch.no_grad():
        out = method.denoise(b["noisy"], b["sigma"])
    assert out.shape == b["noisy"].shape and out.dtype == torch.float32 and torch.isfinite(out).all()
    method.on_test_epoch_start()
    with torch.enable_grad() if method.grad_at_test else torch.no_grad():
        method.test_step(b, 0)
    assert [r["image"] for r in method.rows] == b["id"]
    for r in method.rows:
        assert 0 < r["psnr"] < 100 and -1 <= r["ssim"] <= 1 and 0 <= r["mse"] <= 1
    assert all(0.0 <= float(e["denoised"].min()) and float(e["denoised"].max()) <= 1.0 for e in method.examples)


@pytest.mark.parametrize("name", TRAINABLE)
def test_a_nan_loss_stops_training_naming_the_step(name):
    method = build(name).train()
    with pytest.raises(TrainingError, match=r"at step \d+") as e:
        method.training_step(train_batch(method, batch(nan=True)), 0)
    assert "\n" not in str(e.value)


def test_a_nan_loss_stops_the_glow_prior_naming_the_step():
    from denoise_bench.priors.glow_prior import GlowPrior

    module = GlowPrior(prior_cfg(), channels=1, image_size=SIZE)
    clean = torch.rand(2, 1, SIZE, SIZE)
    clean[0, 0, 0, 0] = float("nan")
    with pytest.raises(TrainingError, match=r"glow_prior: loss became nan at step \d+") as e:
        module.training_step({"clean": clean}, 0)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("name", WITH_WEIGHTS)
def test_weights_round_trip_through_method_weights(name, tmp_path):
    src = build(name).eval()
    with torch.no_grad():  # move away from the initialisation, so a loader that ignored the file would differ
        for p in src.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    path = tmp_path / "weights.pt"
    torch.save(src.state_dict(), path)
    loaded = build(name, {"weights": str(path)}).eval()
    fresh = build(name).eval()
    b = batch()
    with torch.no_grad():
        torch.testing.assert_close(loaded.denoise(b["noisy"], b["sigma"]), src.denoise(b["noisy"], b["sigma"]))
        assert not torch.allclose(fresh.denoise(b["noisy"], b["sigma"]), src.denoise(b["noisy"], b["sigma"]))


def test_a_new_method_is_one_file_whose_class_names_it(tmp_path):
    from denoise_bench.methods import _declared

    f = tmp_path / "my_denoiser.py"
    f.write_text("from denoise_bench.methods.base import DenoisingMethod\n\n\n"
                 "class Helper:\n    name = 'other'\n\n\n"
                 "class MyDenoiser(DenoisingMethod):\n    name = 'my_denoiser'\n    order = 5\n")
    assert _declared(f) == ("MyDenoiser", 5)
    f.write_text("class NotAMethod:\n    name = 'something_else'\n")
    assert _declared(f) is None
