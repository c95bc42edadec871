"""Each paper's own protocol: clipped, quantised noise for the unpaired flow-prior table; the β-MAP
likelihood at the noise actually added or at the Glow paper's nominal σ; FDN's InvDN initialisation."""
from __future__ import annotations

import pytest
import torch

from conftest import compose, method_cfg
from denoise_bench.errors import ConfigError
from denoise_bench.flows import Glow
from denoise_bench.methods.glow_map import GlowMAP, beta_map


def tiny_prior() -> Glow:
    torch.manual_seed(0)
    glow = Glow(1, levels=2, steps=1, hidden=8, n_bits=8).double()
    glow.log_prob(torch.rand(4, 1, 8, 8, dtype=torch.float64))
    return glow.eval().requires_grad_(False)


def test_flow_prior_table_clips_and_quantises_its_noise_by_default(tmp_path):
    cfg = compose(["experiment=flow_prior_table", f"data.root={tmp_path}"])
    assert cfg.noise.clip and cfg.noise.quantize
    assert not compose(["experiment=flow_prior_table", f"data.root={tmp_path}", "noise=awgn"]).noise.clip


def test_nominal_likelihood_sigma_is_the_noise_likelihood_with_beta_scaled_by_the_variance_ratio():
    prior, g = tiny_prior(), torch.Generator().manual_seed(3)
    noisy = (0.5 + 0.1 * torch.randn(2, 1, 8, 8, generator=g)).double()
    std = torch.tensor([0.05, 0.08], dtype=torch.float64)
    nominal = 1.5 * std  # the Glow paper's sigma is 1.5x the std its noisy images show
    a = beta_map(prior, noisy, std, beta=2.0, steps=4, lr=0.2, likelihood_sigma=nominal)
    b = beta_map(prior, noisy, std, beta=2.0 / 2.25, steps=4, lr=0.2)
    c = beta_map(prior, noisy, std, beta=2.0, steps=4, lr=0.2)
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    assert (a - c).abs().max() > 1e-4  # the switch does change the estimate


def test_the_nominal_sigma_comes_from_the_config_and_is_required(tmp_path):
    method = GlowMAP(method_cfg("glow_map", {"likelihood_sigma": "nominal", "nominal_sigma": 0.1}), image_channels=1)
    assert torch.allclose(method.likelihood_sigma(torch.tensor([0.0667, 0.2])), torch.tensor([0.1, 0.1]))
    with pytest.raises(ConfigError, match="needs method.nominal_sigma"):
        GlowMAP(method_cfg("glow_map", {"likelihood_sigma": "nominal"}), image_channels=1).likelihood_sigma(
            torch.tensor([0.1]))
    cfg = compose(["experiment=glow_map_tables", f"data.root={tmp_path}", "sigma=17",
                   "method.likelihood_sigma=nominal"])
    assert cfg.method.nominal_sigma == pytest.approx(0.1) and cfg.method.likelihood_sigma == "nominal"


def test_fdn_dense_blocks_start_as_invdn_xavier_times_a_tenth_with_a_zero_last_conv():
    from denoise_bench.methods.fdn import FDN

    torch.manual_seed(0)
    xavier = FDN(method_cfg("fdn", {"growth": 16}), image_channels=3)
    torch.manual_seed(0)
    default = FDN(method_cfg("fdn", {"growth": 16, "init": "default"}), image_channels=3)
    block, plain = xavier.net.layers[3].g1, default.net.layers[3].g1  # Haar, ActNorm, 1x1 conv, coupling
    for conv, ref in zip(block.convs, plain.convs):
        fan_in, fan_out = conv.weight.shape[1] * 9, conv.weight.shape[0] * 9
        expected = 0.1 * (2.0 / (fan_in + fan_out)) ** 0.5
        assert float(conv.weight.std()) == pytest.approx(expected, rel=0.15)
        assert float(conv.bias.abs().max()) == 0.0 and float(ref.bias.abs().max()) > 0.0
        assert float(ref.weight.std()) > 2 * expected  # PyTorch's default is far wider
    assert float(block.last.weight.abs().max()) == 0.0 and float(plain.last.weight.abs().max()) == 0.0
