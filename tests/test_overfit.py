"""Too little compute, or a bug? FDN and DnCNN each overfit one fixed batch at smoke size: the
training-batch PSNR ends well above the noisy input's. A model that cannot do this has a bug that
more compute will not fix."""
from __future__ import annotations

import math

import pytest
import torch

from conftest import method_cfg
from denoise_bench.methods import method_class


def fixed_batch(n: int = 4, size: int = 16, sigma: float = 50.0) -> dict:
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    phase = torch.rand(n, 1, 1, 1, generator=g) * 6
    clean = (0.5 + 0.35 * torch.sin(xx / 3.0 + phase) * torch.cos(yy / 4.0 + phase)).float()
    noisy = clean + sigma / 255 * torch.randn(clean.shape, generator=g)
    return {"noisy": noisy, "clean": clean, "sigma": torch.full((n,), sigma)}


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a.clamp(0, 1) - b) ** 2).flatten(1).mean(1)
    return float((10 * torch.log10(1.0 / mse)).mean())


@pytest.mark.parametrize("name,overrides,steps,lr,margin", [
    ("dncnn", {"depth": 5, "features": 16}, 300, 3e-3, 20.0),  # measured: 14.5 -> 64.7 dB
    ("fdn", {"sof_blocks": 2, "growth": 8}, 300, 2e-3, 20.0),  # measured: 14.5 -> 43.6 dB
])
def test_each_supervised_method_overfits_a_single_batch(name, overrides, steps, lr, margin):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    method = method_class(name)(method_cfg(name, overrides), image_channels=1).train()
    b = fixed_batch()
    before = psnr(b["noisy"], b["clean"])
    opt = torch.optim.Adam(method.parameters(), lr=lr)
    for step in range(steps):
        opt.zero_grad()
        loss = method.training_step(b, step)
        loss.backward()
        opt.step()
    method.eval()
    with torch.no_grad():
        after = psnr(method.denoise(b["noisy"], b["sigma"]), b["clean"])
    assert math.isfinite(after) and after > before + margin, f"{name}: {before:.2f} -> {after:.2f} dB"
