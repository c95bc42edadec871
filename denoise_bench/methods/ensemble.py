"""``eval.self_ensemble=true``: the x8 geometric self-ensemble (Timofte et al., CVPR 2016, "Seven
ways to improve example-based single image super resolution"; used by EDSR, KAIR, InvDN).

The 8 transforms are the symmetries of the square (rot90 by k = 0..3, with or without a horizontal
flip). Each transformed batch is denoised, transformed back, and the 8 results are averaged:

    x̂ = 1/8 Σ_T T⁻¹(D(T(N), σ)).

A denoiser that commutes with every T (per-pixel or D4-symmetric) gains nothing; one that does not
(learned filters, BM3D's block grid, bottom/right padding) gains. An H×W batch becomes W×H under
odd k: every image of a batch turns the same way, so the batch stays one shape. Only for methods
whose ``denoise`` is deterministic: averaging a sampler's outputs would mix sample averaging into
the gain.
"""
from __future__ import annotations

from typing import Callable

import torch

from denoise_bench.errors import ConfigError

CAPTION = "x8 self-ensemble (4 rotations x 2 flips, averaged)"
TRANSFORMS = [(k, flip) for flip in (False, True) for k in range(4)]


def forward_transform(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    """Flip left-right (if ``flip``), then rotate by k·90° in the image plane."""
    x = x.flip(-1) if flip else x
    return torch.rot90(x, k, dims=(-2, -1))


def inverse_transform(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    x = torch.rot90(x, -k, dims=(-2, -1))
    return x.flip(-1) if flip else x


def self_ensemble(denoise: Callable, noisy: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Mean over the 8 flips/rot90 of T⁻¹(denoise(T(noisy), sigma)); ``sigma`` [B] passes unchanged."""
    total = None
    for k, flip in TRANSFORMS:
        out = inverse_transform(denoise(forward_transform(noisy, k, flip), sigma), k, flip)
        total = out if total is None else total + out
    return total / len(TRANSFORMS)


def use_self_ensemble(method, enabled: bool) -> None:
    """Set ``method.self_ensemble`` from ``eval.self_ensemble``; refuse a non-deterministic denoiser."""
    if enabled and not getattr(method, "deterministic_denoise", False):
        raise ConfigError(f"eval.self_ensemble=true: method={method.name} does not denoise deterministically, "
                          "so an average of 8 passes is not a self-ensemble; set eval.self_ensemble=false")
    method.self_ensemble = bool(enabled)
