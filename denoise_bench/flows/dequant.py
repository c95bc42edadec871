"""Mapping between [0, 1] images and Glow's input space, with n_bits.

Discrete images with n_bins = 2**n_bits levels per value are modelled by a
continuous density p on [−½, ½)^D via uniform dequantisation (Theis et al.;
Glow): y = q/n_bins + u − ½, q = ⌊x·n_bins⌋, u ~ U[0, 1/n_bins). Each bin
has volume n_bins^{−D}, so the discrete log-likelihood is

    log P(q) ≥ E_u[log p(y)] − D·log n_bins,

and the constant −D·log n_bins must be part of log p (bits/dim then compare
across n_bits). For images given as uint8/255, ⌊x·n_bins⌋ (clipped to
n_bins − 1) equals Glow's bit reduction ⌊k / 2^{8−n_bits}⌋.
"""
from __future__ import annotations

import math

import torch


def n_bins(n_bits: int) -> int:
    return 2 ** int(n_bits)


def preprocess(x01: torch.Tensor, n_bits: int = 8, noise: bool = True, quantize: bool = True):
    """[0, 1] image -> (y in [−½, ½), per-sample constant −D·log n_bins).

    quantize=True: y = q/n_bins − ½ plus U[0, 1/n_bins) noise if ``noise``,
    else the bin centre q/n_bins + 1/(2·n_bins) − ½ (deterministic).
    quantize=False: y = x − ½ (+ U[0, 1/n_bins) if ``noise``), continuous and
    differentiable in x; used when optimising pixels (β-MAP). The constant is
    returned in every case.
    """
    bins = n_bins(n_bits)
    if quantize:
        q = torch.floor(x01.clamp(0.0, 1.0) * bins).clamp(max=bins - 1)
        if noise:
            y = (q + torch.rand_like(q)) / bins - 0.5
        else:
            y = (q + 0.5) / bins - 0.5
    else:
        y = x01 - 0.5
        if noise:
            y = y + torch.rand_like(y) / bins
    d = x01[0].numel()
    const = x01.new_full((x01.shape[0],), -d * math.log(bins))
    return y, const


def postprocess(y: torch.Tensor, n_bits: int = 8, quantize: bool = True) -> torch.Tensor:
    """Glow space -> [0, 1]: clamp(y + ½); with quantize, snap to the n_bins
    levels q/(n_bins − 1) (so 8-bit values return exactly k/255)."""
    x = (y + 0.5).clamp(0.0, 1.0)
    if quantize:
        bins = n_bins(n_bits)
        x = torch.floor(x * bins).clamp(max=bins - 1) / (bins - 1)
    return x
