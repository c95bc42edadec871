"""Stein's unbiased risk estimate (SURE): a denoiser's mean squared error from the noisy image alone.

For y = x + n with n ~ N(0, σ²I) in d dimensions and a weakly differentiable denoiser D (Stein 1981),

    E ‖D(y) − x‖²/d  =  E [ ‖D(y) − y‖²/d − σ² + 2σ²·div D(y)/d ],

with the divergence div D = Σ_i ∂D_i/∂y_i estimated by one Monte-Carlo probe b ~ N(0, I)
(Ramani, Blu & Unser 2008):  div D(y) ≈ bᵀ(D(y + εb) − D(y)) / ε.

Unsupervised methods use it to choose a setting without clean images (``method=flow_prior``:
``method.lambda_sure``). It holds for unclipped Gaussian noise only: clipping to [0, 1] makes the
noise non-Gaussian where the image is dark or bright, and on CelebA faces at σ = 25 (7 % of the pixels
clipped) it then overestimated the PSNR of over-smoothing denoisers by up to 2 dB (benchmarks/RESULTS.md).
"""
from __future__ import annotations

import torch


@torch.no_grad()
def sure_mse(denoiser, noisy: torch.Tensor, sigma: torch.Tensor, probe: torch.Tensor,
             eps: float = 1e-3) -> torch.Tensor:
    """SURE of the per-pixel MSE of ``denoiser`` on each image of ``noisy`` [B,C,H,W], [B].

    Args:
        denoiser: a function of the noisy batch (deterministic: it is called twice).
        sigma: [B] (or a scalar) noise standard deviation on the scale of ``noisy`` (0-1 images: σ/255).
        probe: the Monte-Carlo direction b, shaped like ``noisy`` (draw it from N(0, I) once).
        eps: the finite-difference step ε.
    """
    b = noisy.shape[0]
    var = torch.as_tensor(sigma, dtype=noisy.dtype, device=noisy.device).reshape(-1).expand(b) ** 2
    d = noisy[0].numel()
    out = denoiser(noisy)
    divergence = ((denoiser(noisy + eps * probe) - out) * probe).flatten(1).sum(1) / eps
    residual = (out - noisy).flatten(1).pow(2).sum(1)
    return residual / d - var + 2.0 * var * divergence / d
