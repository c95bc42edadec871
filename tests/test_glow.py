"""Specification tests for the Glow density model and n_bits preprocessing."""
from __future__ import annotations

import math

import pytest
import torch
from torch.autograd.functional import jacobian

from denoise_bench.flows import ActNorm, Glow, gaussian_log_prob, postprocess, preprocess


def perturb(module, scale=0.1):
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))
    return module


def tiny_glow(dtype=torch.float64, **kw):
    """1×4×4 gray images, L=2, K=1: D = 16; ActNorm initialised, every weight
    moved off its init (zero convs included) so no term is trivially zero."""
    torch.manual_seed(0)
    opts = dict(in_channels=1, levels=2, steps=1, hidden=8, n_bits=8)
    opts.update(kw)
    model = Glow(**opts)
    model.log_prob(torch.rand(8, opts["in_channels"], 4, 4))  # data-dependent init
    return perturb(model).to(dtype)


def flat(zs):
    return torch.cat([z.flatten(1) for z in zs], dim=1)


def per_sample_slogdet(fn, x):
    jac = jacobian(fn, x, vectorize=True)
    b, d = x.shape[0], x[0].numel()
    jac = jac.reshape(b, -1, b, d)
    assert jac.shape[1] == d
    return torch.stack([torch.linalg.slogdet(jac[i, :, i, :])[1] for i in range(b)])


def test_latent_shapes_cover_all_dimensions():
    model = Glow(in_channels=3, levels=3, steps=1, hidden=4)
    shapes = model.latent_shapes(16)
    assert shapes == [(6, 8, 8), (12, 4, 4), (48, 2, 2)]
    assert sum(math.prod(s) for s in shapes) == 3 * 16 * 16
    zs, logdet = model.encode(torch.rand(2, 3, 16, 16))
    assert [tuple(z.shape[1:]) for z in zs] == shapes and logdet.shape == (2,)
    with pytest.raises(ValueError):
        model.latent_shapes(12)


def test_first_forward_initialises_every_actnorm():
    model = Glow(in_channels=1, levels=2, steps=2, hidden=4)
    norms = [m for m in model.modules() if isinstance(m, ActNorm)]
    assert len(norms) == 4 and not any(bool(m.initialized) for m in norms)
    model.log_prob(torch.rand(4, 1, 8, 8))
    assert all(bool(m.initialized) for m in norms)


@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_decode_inverts_encode(dtype, standardize):
    model = tiny_glow(dtype)
    x = torch.rand(3, 1, 4, 4, dtype=dtype)
    zs, _ = model.encode(x, standardize=standardize)
    x_rec = model.decode(zs, standardized=standardize)
    tol = 1e-9 if dtype == torch.float64 else 1e-4
    assert (x_rec - x).abs().max().item() <= tol


def test_encode_logdet_matches_autograd_jacobian():
    model = tiny_glow()
    x = torch.rand(2, 1, 4, 4, dtype=torch.float64)
    for standardize in (False, True):
        _, logdet = model.encode(x, standardize=standardize)
        expected = per_sample_slogdet(lambda v: flat(model.encode(v, standardize=standardize)[0]), x)
        torch.testing.assert_close(logdet, expected, rtol=1e-9, atol=1e-9)


def test_log_prob_is_change_of_variables_with_exact_jacobian():
    """x ↦ ε (all latents standardised by their conditional / top priors) is a
    bijection onto N(0, I), so log p(x) = log N(ε; 0, I) + log|det ∂ε/∂x| − D·log 256
    holds exactly, with the Jacobian built by autograd (not by the model)."""
    model = tiny_glow()
    x = torch.rand(2, 1, 4, 4, dtype=torch.float64)
    to_eps = lambda v: flat(model.encode(v, standardize=True)[0])
    eps = to_eps(x)
    expected = (
        gaussian_log_prob(eps)
        + per_sample_slogdet(to_eps, x)
        - 16 * math.log(256)
    )
    torch.testing.assert_close(model.log_prob(x, dequantize=False), expected, rtol=1e-10, atol=1e-9)
    # the raw latents give the same density through the conditional priors
    zs, logdet = model.encode(x)
    d = x[0].numel()
    bpd = model.bits_per_dim(x, dequantize=False)
    torch.testing.assert_close(bpd, -expected / (d * math.log(2)))
    assert sum(z[0].numel() for z in zs) == d and logdet.shape == (2,)


def test_log_prob_includes_minus_d_log_n_bins_on_a_known_density():
    """L=1, K=0, N(0, I) top: y = x − ½ only gets squeezed, so
    log p(x) = Σ log N(x − ½; 0, 1) − D·log 2^n_bits."""
    x = torch.rand(3, 3, 4, 4, dtype=torch.float64)
    d = 3 * 16
    gauss = torch.distributions.Normal(0.0, 1.0).log_prob(x - 0.5).flatten(1).sum(1)
    for n_bits in (8, 5):
        model = Glow(3, levels=1, steps=0, n_bits=n_bits, learn_top=False).double()
        lp = model.log_prob(x, dequantize=False)
        torch.testing.assert_close(lp, gauss - d * n_bits * math.log(2))
        torch.testing.assert_close(model.bits_per_dim(x, dequantize=False), -lp / (d * math.log(2)))


def test_n_bits_changes_only_the_constant():
    m8 = tiny_glow(n_bits=8)
    m5 = tiny_glow(n_bits=5)
    m5.load_state_dict(m8.state_dict())
    x = torch.rand(2, 1, 4, 4, dtype=torch.float64)
    diff = m5.log_prob(x, dequantize=False) - m8.log_prob(x, dequantize=False)
    torch.testing.assert_close(diff, torch.full((2,), 16 * 3 * math.log(2), dtype=torch.float64))


def test_log_prob_is_differentiable_in_pixels_without_dequantisation():
    """β-MAP optimises pixels through log p; the gradient must exist and be right."""
    model = tiny_glow()
    x = torch.rand(2, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(model.log_prob(x, dequantize=False).sum(), x)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert torch.autograd.gradcheck(lambda v: model.log_prob(v, dequantize=False), (x,))


def test_dequantised_log_prob_is_finite_and_noisy():
    torch.manual_seed(1)
    model = tiny_glow(torch.float32, n_bits=5)
    x = torch.randint(0, 256, (4, 1, 4, 4)).float() / 255
    a, b = model.log_prob(x), model.log_prob(x)
    assert a.shape == (4,) and torch.isfinite(a).all()
    assert not torch.equal(a, b)  # fresh U[0, 1/n_bins) noise each call
    assert torch.isfinite(model.bits_per_dim(x)).all()


def test_glow_state_dict_round_trip_keeps_the_density():
    model = tiny_glow(torch.float32)
    fresh = Glow(in_channels=1, levels=2, steps=1, hidden=8, n_bits=8)
    fresh.load_state_dict(model.state_dict())
    x = torch.rand(2, 1, 4, 4) * 0.1  # statistics unlike the init batch
    torch.testing.assert_close(fresh.log_prob(x, dequantize=False), model.log_prob(x, dequantize=False))


@pytest.mark.parametrize("learn_top", [True, False])
def test_sample_shape_range_and_temperature(learn_top):
    model = tiny_glow(torch.float32, in_channels=3, learn_top=learn_top, n_bits=5)
    s = model.sample(5, temperature=0.7, image_size=8)
    assert s.shape == (5, 3, 8, 8)
    assert torch.isfinite(s).all() and s.min() >= 0 and s.max() <= 1
    levels = s * 31  # quantised to the 2^5 levels k/31
    torch.testing.assert_close(levels, levels.round(), atol=1e-5, rtol=0)
    # T = 0 draws every latent at its prior mean: deterministic
    assert torch.equal(model.sample(2, 0.0, image_size=8), model.sample(2, 0.0, image_size=8))
    cont = model.sample(2, 1.0, image_size=(8, 4), quantize=False)
    assert cont.shape == (2, 3, 8, 4) and cont.min() >= 0 and cont.max() <= 1


def test_learned_top_prior_receives_gradients():
    model = tiny_glow(torch.float32)
    model.log_prob(torch.rand(2, 1, 4, 4)).mean().backward()
    assert model.top.conv.bias.grad.abs().sum() > 0
    assert all(s.prior.conv.weight.grad is not None for s in model.splits)


# -- n_bits preprocessing ------------------------------------------------------------
def test_preprocess_quantises_like_glow_and_postprocess_inverts_it():
    k = torch.arange(256, dtype=torch.float64).reshape(1, 1, 16, 16)
    x = k / 255
    for n_bits in (8, 5):
        bins = 2**n_bits
        q = torch.div(k, 2 ** (8 - n_bits), rounding_mode="floor")  # Glow's bit reduction
        y, const = preprocess(x, n_bits, noise=True)
        assert torch.all(y >= q / bins - 0.5) and torch.all(y < (q + 1) / bins - 0.5)
        torch.testing.assert_close(const, torch.tensor([-256 * math.log(bins)], dtype=torch.float64))
        y_mid, _ = preprocess(x, n_bits, noise=False)
        torch.testing.assert_close(y_mid, (q + 0.5) / bins - 0.5)
        torch.testing.assert_close(postprocess(y_mid, n_bits), q / (bins - 1))
    y8, _ = preprocess(x, 8, noise=False)
    assert torch.equal(postprocess(y8, 8), x)  # 8-bit images survive exactly
    y_cont, _ = preprocess(x, 8, noise=False, quantize=False)
    torch.testing.assert_close(y_cont, x - 0.5)
    assert y.min() >= -0.5 and y.max() < 0.5
