"""Specification of SURE (denoise_bench/sure.py): a denoiser's MSE estimated from noisy images alone."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from denoise_bench.sure import sure_mse


def smooth_images(n=8, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 1, size // 8, size // 8, generator=g, dtype=torch.float64)
    return F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


def box_blur(k):
    weight = torch.full((1, 1, k, k), 1.0 / k**2, dtype=torch.float64)
    return lambda y: F.conv2d(F.pad(y, [k // 2] * 4, mode="reflect"), weight)


def noisy_and_probe(clean, sigma, seed=1):
    g = torch.Generator().manual_seed(seed)
    noisy = clean + sigma * torch.randn(clean.shape, generator=g, dtype=clean.dtype)
    return noisy, torch.randn(clean.shape, generator=g, dtype=clean.dtype)


def test_sure_matches_the_true_mse_of_linear_smoothers_without_the_clean_image():
    """Unbiased: over 40 noise and probe draws SURE's mean equals the true MSE's mean. (One draw of 8
    images at 64² scatters by 4-12 %, mostly from the one-probe divergence; the mean of 40 by < 2 %.)"""
    clean, sigma = smooth_images(), 25 / 255
    for k in (3, 5, 9):
        d, est, true = box_blur(k), 0.0, 0.0
        for draw in range(40):
            noisy, probe = noisy_and_probe(clean, sigma, seed=draw + 1)
            true += float((d(noisy) - clean).pow(2).mean())
            est += float(sure_mse(d, noisy, torch.full((8,), sigma), probe).mean())
        assert abs(est / true - 1) < 0.06, (k, est / 40, true / 40)


def test_sure_ranks_denoisers_as_their_true_mse_does():
    """Under-smoothing (identity), a good smoother and an over-smoother: SURE puts them in the true order."""
    clean, sigma = smooth_images(seed=3), 50 / 255
    noisy, probe = noisy_and_probe(clean, sigma, seed=4)
    candidates = {"identity": lambda y: y, "box5": box_blur(5), "box31": box_blur(31)}
    true = {k: float((d(noisy) - clean).pow(2).mean()) for k, d in candidates.items()}
    est = {k: float(sure_mse(d, noisy, sigma, probe).mean()) for k, d in candidates.items()}
    assert sorted(true, key=true.get) == sorted(est, key=est.get) == ["box5", "box31", "identity"], (true, est)


def test_sure_of_the_identity_is_the_noise_variance():
    """D(y) = y: no residual, divergence = d, so SURE = σ² (up to the Monte-Carlo probe's ‖b‖²/d)."""
    clean, sigma = smooth_images(n=4), 15 / 255
    noisy, probe = noisy_and_probe(clean, sigma)
    est = sure_mse(lambda y: y, noisy, torch.full((4,), sigma), probe)
    expected = -sigma**2 + 2 * sigma**2 * probe.flatten(1).pow(2).mean(1)
    torch.testing.assert_close(est, expected, rtol=1e-6, atol=1e-12)
    # ‖b‖²/d has a standard deviation of √(2/d) = 2.2 % per 64² image, 4.4 % on SURE/σ², 2.2 % on the mean of 4
    assert abs(float(est.mean()) / sigma**2 - 1) < 0.07
