"""Specification tests for the invertible layers in denoise_bench.flows.

Every layer must (1) invert exactly: inverse(forward(x)) == x, and (2) report
logdet == log|det ∂y/∂x| per sample, checked against the Jacobian that
autograd builds on tiny float64 inputs.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.autograd.functional import jacobian

from denoise_bench.flows import (
    ActNorm,
    AffineCoupling,
    DenseAffineCoupling,
    DenseBlock,
    FlowSequence,
    HaarDownsampling,
    InvConv1x1,
    InvertibleLayer,
    Split,
    Squeeze,
    gaussian_log_prob,
)
from denoise_bench.flows.coupling import twin_dense_blocks

TOL = {torch.float64: 1e-9, torch.float32: 1e-4}


def perturb(module: torch.nn.Module, scale: float = 0.1) -> torch.nn.Module:
    """Move every parameter off its (often zero / identity) init so that the
    checks exercise non-trivial maps."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))
    return module


def autograd_logdet(layer, x: torch.Tensor) -> torch.Tensor:
    """Per-sample log|det J| from the full autograd Jacobian; also asserts that
    samples do not interact (off-diagonal batch blocks are zero)."""
    jac = jacobian(lambda inp: layer(inp)[0], x, vectorize=True)
    b, d = x.shape[0], x[0].numel()
    jac = jac.reshape(b, -1, b, d)
    assert jac.shape[1] == d, "layer must preserve dimension"
    out = []
    for i in range(b):
        for j in range(b):
            if i != j:
                assert torch.all(jac[i, :, j, :] == 0)
        out.append(torch.linalg.slogdet(jac[i, :, i, :])[1])
    return torch.stack(out)


def _actnorm(c):
    layer = ActNorm(c)
    layer(torch.randn(8, c, 4, 4) * 3.0 + 1.5)  # data-dependent init
    return perturb(layer)


# name -> (factory, input shape); every factory returns a float32 layer with
# non-trivial weights, ready for forward.
LAYERS = {
    "squeeze": (lambda: Squeeze(), (2, 3, 4, 4)),
    "haar_orthonormal": (lambda: HaarDownsampling(3), (2, 3, 4, 4)),
    "haar_invdn": (lambda: HaarDownsampling(2, orthonormal=False), (2, 2, 4, 4)),
    "actnorm": (lambda: _actnorm(4), (2, 4, 4, 4)),
    "invconv_plain": (lambda: perturb(InvConv1x1(4, lu=False)), (2, 4, 4, 4)),
    "invconv_lu": (lambda: perturb(InvConv1x1(4, lu=True)), (2, 4, 4, 4)),
    "affine_coupling": (lambda: perturb(AffineCoupling(4, hidden=8)), (2, 4, 4, 4)),
    "affine_coupling_split1": (lambda: perturb(AffineCoupling(3, hidden=8, split=1)), (2, 3, 4, 4)),
    "dense_coupling": (lambda: perturb(DenseAffineCoupling(4, split_len=3, growth=4)), (2, 4, 4, 4)),
    "dense_coupling_split2": (
        lambda: perturb(DenseAffineCoupling(5, split_len=2, clamp=0.7, growth=4)),
        (2, 5, 4, 4),
    ),
    "split": (lambda: perturb(Split(4)), (2, 4, 4, 4)),
    "flow_sequence": (
        lambda: perturb(
            FlowSequence(
                [
                    HaarDownsampling(1),
                    ActNorm(4),
                    InvConv1x1(4, lu=True),
                    AffineCoupling(4, hidden=8),
                    Squeeze(),
                    DenseAffineCoupling(16, split_len=3, growth=4),
                    Split(16),
                ]
            )
        ),
        (2, 1, 4, 4),
    ),
}


def build(name: str, dtype: torch.dtype):
    torch.manual_seed(0)
    factory, shape = LAYERS[name]
    layer = factory().to(dtype)
    x = torch.randn(*shape, dtype=dtype)
    return layer, x


@pytest.mark.parametrize("name", list(LAYERS))
def test_every_layer_is_an_invertible_layer(name):
    layer, x = build(name, torch.float32)
    assert isinstance(layer, InvertibleLayer)
    y, logdet = layer(x)
    assert logdet.shape == (x.shape[0],)
    assert y.numel() == x.numel()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", list(LAYERS))
def test_inverse_of_forward_is_identity(name, dtype):
    layer, x = build(name, dtype)
    y, _ = layer(x)
    assert y.shape != x.shape or not torch.allclose(y, x)  # the map is not the identity
    x_rec = layer.inverse(y)
    assert x_rec.dtype == dtype
    assert (x_rec - x).abs().max().item() <= TOL[dtype]


@pytest.mark.parametrize("name", list(LAYERS))
def test_logdet_matches_autograd_jacobian(name):
    layer, x = build(name, torch.float64)
    _, logdet = layer(x)
    expected = autograd_logdet(layer, x)
    torch.testing.assert_close(logdet, expected, rtol=1e-9, atol=1e-9)


# -- Squeeze ----------------------------------------------------------------------
def test_squeeze_uses_glow_channel_ordering():
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).reshape(2, 3, 4, 6)
    y, logdet = Squeeze()(x)
    assert y.shape == (2, 12, 2, 3)
    assert torch.all(logdet == 0)
    for c in range(3):
        for dy in range(2):
            for dx in range(2):
                assert torch.equal(y[:, c * 4 + 2 * dy + dx], x[:, c, dy::2, dx::2])


# -- Haar ---------------------------------------------------------------------------
def test_haar_first_channels_are_the_low_pass_band():
    x = torch.rand(2, 3, 8, 8)
    y, logdet = HaarDownsampling(3)(x)
    assert y.shape == (2, 12, 4, 4)
    # orthonormal: LL = (a+b+c+d)/2 = 2·mean of the 2×2 block
    torch.testing.assert_close(y[:, :3], 2 * F.avg_pool2d(x, 2))
    assert torch.all(logdet == 0)
    y4, logdet4 = HaarDownsampling(3, orthonormal=False)(x)
    torch.testing.assert_close(y4[:, :3], F.avg_pool2d(x, 2))  # InvDN: LL = block mean
    torch.testing.assert_close(logdet4, torch.full((2,), -x[0].numel() * math.log(2)))
    # detail bands of a constant image vanish
    yc, _ = HaarDownsampling(3)(torch.ones(1, 3, 4, 4))
    assert torch.all(yc[:, 3:] == 0)


def test_haar_weights_are_fixed_buffers():
    layer = HaarDownsampling(12)
    assert sum(p.numel() for p in layer.parameters()) == 0
    assert layer.weight.shape == (48, 1, 2, 2)
    assert layer.weight.numel() == 192
    assert "weight" in dict(layer.named_buffers())


def test_haar_computes_with_the_stored_filters_in_band_major_order():
    """The convolution's (4C, C, 2, 2) weight holds the stored (4C, 1, 2, 2) filters, output channel band·C + c
    reading input channel c only; it is not part of the state dict (trained models keep their keys)."""
    c = 3
    layer = HaarDownsampling(c)
    for ch in range(c):
        for band in range(4):
            row = layer.banded[band * c + ch]
            torch.testing.assert_close(row[ch], layer.weight[ch * 4 + band, 0])
            assert torch.all(row[[k for k in range(c) if k != ch]] == 0)
    assert set(layer.state_dict()) == {"weight"}


# -- ActNorm ------------------------------------------------------------------------
def test_actnorm_data_dependent_init_normalises_first_batch():
    torch.manual_seed(0)
    layer = ActNorm(3)
    assert not bool(layer.initialized)
    x = torch.randn(16, 3, 8, 8) * torch.tensor([0.5, 2.0, 7.0]).view(1, 3, 1, 1) + 4.0
    y, logdet = layer(x)
    assert bool(layer.initialized)
    torch.testing.assert_close(y.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4, rtol=0)
    # logdet = H·W·Σ logs = −H·W·Σ log std
    expected = -64 * torch.log(x.std(dim=(0, 2, 3), unbiased=False)).sum()
    torch.testing.assert_close(logdet, expected.expand(16), rtol=1e-5, atol=1e-4)
    # a second batch does not re-initialise
    before = [p.clone() for p in layer.parameters()]
    layer(torch.randn(4, 3, 8, 8) * 10)
    assert all(torch.equal(a, b) for a, b in zip(before, layer.parameters()))


def test_actnorm_initialised_flag_survives_state_dict_round_trip():
    torch.manual_seed(0)
    layer = ActNorm(3)
    layer(torch.randn(8, 3, 4, 4) * 3 + 2)
    state = layer.state_dict()
    assert "initialized" in state and bool(state["initialized"])
    fresh = ActNorm(3)
    fresh.load_state_dict(state)
    assert bool(fresh.initialized)
    x_new = torch.randn(5, 3, 4, 4) * 0.1  # very different statistics
    y_ref, ld_ref = layer(x_new)
    y_new, ld_new = fresh(x_new)  # must not re-initialise on this batch
    assert torch.equal(y_ref, y_new) and torch.equal(ld_ref, ld_new)
    assert torch.equal(fresh.bias, layer.bias)


# -- 1×1 convolution -----------------------------------------------------------------
@pytest.mark.parametrize("lu", [False, True])
def test_invconv_starts_as_a_rotation(lu):
    torch.manual_seed(0)
    layer = InvConv1x1(6, lu=lu)
    w = layer.matrix().detach()
    torch.testing.assert_close(w @ w.T, torch.eye(6), atol=1e-5, rtol=0)
    _, logdet = layer(torch.randn(2, 6, 3, 3))
    torch.testing.assert_close(logdet, torch.zeros(2), atol=1e-5, rtol=0)


def test_invconv_lu_parameterisation():
    torch.manual_seed(0)
    layer = perturb(InvConv1x1(5, lu=True)).double()
    names = {n for n, _ in layer.named_parameters()}
    assert names == {"lower", "upper", "log_s"}
    assert {"perm", "sign_s"} <= {n for n, _ in layer.named_buffers()}
    w = layer.matrix()
    torch.testing.assert_close(layer.log_abs_det(), torch.linalg.slogdet(w)[1])
    # gradients never leave the triangular structure
    layer.log_abs_det().sum().backward()
    layer(torch.randn(1, 5, 2, 2, dtype=torch.float64))[0].square().sum().backward()
    assert torch.all(torch.triu(layer.lower.grad) == 0)
    assert torch.all(torch.tril(layer.upper.grad) == 0)


# -- couplings ---------------------------------------------------------------------
def test_affine_coupling_at_init_only_scales_by_sigmoid_two():
    torch.manual_seed(0)
    layer = AffineCoupling(4, hidden=8)
    x = torch.randn(2, 4, 3, 3)
    y, logdet = layer(x)
    assert torch.equal(y[:, :2], x[:, :2])
    torch.testing.assert_close(y[:, 2:], x[:, 2:] * torch.sigmoid(torch.tensor(2.0)))
    torch.testing.assert_close(logdet, torch.full((2,), 18 * F.logsigmoid(torch.tensor(2.0)).item()))
    last = layer.net[-1]
    assert torch.all(last.conv.weight == 0) and torch.all(last.logs == 0)


def test_dense_block_structure():
    block = DenseBlock(9, 3, growth=32)
    convs = [m for m in block.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 5
    assert [c.in_channels for c in convs] == [9, 41, 73, 105, 137]
    assert all(c.kernel_size == (3, 3) and c.bias is not None for c in convs)
    assert torch.all(convs[-1].weight == 0) and torch.all(convs[-1].bias == 0)
    assert block(torch.randn(1, 9, 4, 4)).shape == (1, 3, 4, 4)


def test_g2_and_g3_run_as_one_two_group_network_with_the_same_outputs_and_gradients():
    """The coupling computes g2(y1) and g3(y1) in one pass of grouped convolutions (twin_dense_blocks):
    the outputs and every parameter's gradient equal the two blocks run on their own."""
    torch.manual_seed(0)
    layer = perturb(DenseAffineCoupling(12, split_len=3, growth=4)).double()
    y1 = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    h2, h3 = twin_dense_blocks(layer.g2, layer.g3, y1)
    torch.testing.assert_close(h2, layer.g2(y1), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h3, layer.g3(y1), rtol=1e-12, atol=1e-12)
    params = list(layer.g2.parameters()) + list(layer.g3.parameters())
    fused = torch.autograd.grad((h2 ** 2).sum() + (h3 ** 3).sum(), params)
    alone = torch.autograd.grad((layer.g2(y1) ** 2).sum() + (layer.g3(y1) ** 3).sum(), params)
    for a, b in zip(fused, alone):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_dense_coupling_is_identity_at_init_and_scale_is_bounded():
    torch.manual_seed(0)
    layer = DenseAffineCoupling(6, split_len=3, clamp=1.0, growth=4)
    x = torch.randn(2, 6, 4, 4)
    y, logdet = layer(x)
    assert torch.equal(y, x) and torch.all(logdet == 0)
    perturb(layer, scale=5.0)  # saturate g2: |s| < clamp per element
    _, logdet = layer(x)
    assert torch.all(logdet.abs() < 1.0 * 3 * 16)


def test_fdn_paper_configuration_has_4_38m_parameters():
    """2 DownScale blocks × [Haar → 8 × (ActNorm → plain 1×1 conv → dense coupling)]
    on RGB = 4,375,680 trainable parameters + 240 fixed Haar weights (FDN: 4.38 M)."""
    torch.manual_seed(0)
    layers, c = [], 3
    for _ in range(2):
        layers.append(HaarDownsampling(c))
        c *= 4
        for _ in range(8):
            layers += [ActNorm(c), InvConv1x1(c, lu=False), DenseAffineCoupling(c, split_len=3)]
    net = FlowSequence(layers)
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    haar = sum(m.weight.numel() for m in net.modules() if isinstance(m, HaarDownsampling))
    assert trainable == 4_375_680
    assert haar == 240
    # and the stack runs and inverts
    x = torch.rand(1, 3, 8, 8)
    y, logdet = net(x)
    assert y.shape == (1, 48, 2, 2) and logdet.shape == (1,)
    assert (net.inverse(y) - x).abs().max() < 1e-4


# -- Split ---------------------------------------------------------------------------
def test_split_views_agree():
    torch.manual_seed(0)
    layer = perturb(Split(6)).double()
    z = torch.randn(3, 6, 2, 2, dtype=torch.float64)
    z1, z2, log_p = layer.split(z)
    assert z1.shape == (3, 3, 2, 2) and z2.shape == (3, 3, 2, 2)
    mean, logs = layer.conditional(z1)
    torch.testing.assert_close(log_p, gaussian_log_prob(z2, mean, logs))
    # bijection view: log p(z2|z1) = log N(ε; 0, I) + log|det|
    out, logdet = layer(z)
    eps = out[:, 3:]
    torch.testing.assert_close(log_p, gaussian_log_prob(eps) + logdet)
    # merge inverts split; temperature 0 gives the conditional mean
    assert torch.equal(layer.merge(z1, z2), z)
    torch.testing.assert_close(layer.merge(z1, temperature=0.0)[:, 3:], mean)
    assert layer.merge(z1, temperature=0.5).shape == z.shape


def test_gaussian_log_prob_matches_torch_distributions():
    x, m, s = torch.randn(3, 2, 2, 2, dtype=torch.float64).unbind(0)
    x, m, s = x[None], m[None], s[None]
    ref = torch.distributions.Normal(m, s.exp()).log_prob(x).sum()
    torch.testing.assert_close(gaussian_log_prob(x, m, s), ref.reshape(1))
    ref0 = torch.distributions.Normal(0.0, 1.0).log_prob(x).sum()
    torch.testing.assert_close(gaussian_log_prob(x), ref0.reshape(1).double())
