"""Glow density model (Kingma & Dhariwal 2018) for [0, 1] images.

Architecture: L levels of [Squeeze → K × (ActNorm → InvConv1x1 → AffineCoupling)],
a Split after every level but the last (the factored-out half is scored under
a Gaussian conditioned on the kept half), and a top prior on what is left:
N(μ, σ²) with (μ, logσ) = ZeroConv(0) learned per channel, or N(0, I).

Density (change of variables, y = preprocessed image, z = (z_1, …, z_L)):

    log p(x) = Σ_l log p(z_l | z_{>l} path) + log|det ∂z/∂y| − D·log n_bins.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from .actnorm import ActNorm
from .base import FlowSequence, to_conv_layout
from .coupling import AffineCoupling, ZeroConv2d
from .dequant import postprocess, preprocess
from .invconv import InvConv1x1
from .split import Split, gaussian_log_prob
from .squeeze import Squeeze


def glow_step(channels: int, hidden: int, lu: bool = True) -> FlowSequence:
    """One step of flow: ActNorm → invertible 1×1 conv → affine coupling."""
    return FlowSequence(
        [ActNorm(channels), InvConv1x1(channels, lu=lu), AffineCoupling(channels, hidden)]
    )


def _pair(size) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


class Glow(nn.Module):
    """Multi-scale Glow.

    Args:
        in_channels: image channels (1 gray, 3 RGB).
        levels: L.  steps: K steps of flow per level.  hidden: coupling width.
        n_bits: bits per value of the modelled discrete images (5 or 8).
        lu: LU-decomposed 1×1 convs.  learn_top: learned top prior, else N(0, I).

    Latents ``zs`` are listed from the first split to the top; with
    ``standardize=True`` each is replaced by ε = (z − μ)/σ under its own prior,
    which is N(0, I) and whose log-det is folded into ``logdet``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        levels: int = 3,
        steps: int = 32,
        hidden: int = 512,
        n_bits: int = 8,
        lu: bool = True,
        learn_top: bool = True,
    ):
        super().__init__()
        if levels < 1:
            raise ValueError("Glow needs at least one level")
        self.in_channels = in_channels
        self.n_levels = levels
        self.n_bits = n_bits
        self.levels = nn.ModuleList()
        self.splits = nn.ModuleList()
        c = in_channels
        for i in range(levels):
            c *= 4
            layers = [Squeeze()] + [glow_step(c, hidden, lu) for _ in range(steps)]
            self.levels.append(FlowSequence(layers))
            if i < levels - 1:
                split = Split(c)
                self.splits.append(split)
                c = split.c1
        self.top_channels = c
        self.top = ZeroConv2d(2 * c, 2 * c) if learn_top else None

    # -- priors ---------------------------------------------------------------
    def top_prior(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, logσ) of the top latent, broadcast to z's shape."""
        if self.top is None:
            return torch.zeros_like(z), torch.zeros_like(z)
        b, c, h, w = z.shape
        mean, logs = self.top(to_conv_layout(z.new_zeros(b, 2 * c, h, w), self.top)).chunk(2, dim=1)
        return mean, logs

    def latent_shapes(self, image_size) -> list[tuple[int, int, int]]:
        """Per-sample shapes (C, H, W) of zs for an image of ``image_size``."""
        h, w = _pair(image_size)
        f = 2**self.n_levels
        if h % f or w % f:
            raise ValueError(f"image size {h}×{w} must be divisible by 2^levels = {f}")
        shapes, c = [], self.in_channels
        for i in range(self.n_levels):
            c, h, w = c * 4, h // 2, w // 2
            if i < self.n_levels - 1:
                shapes.append((c - c // 2, h, w))
                c = c // 2
        shapes.append((c, h, w))
        return shapes

    # -- y-space flow ---------------------------------------------------------
    def _flow(self, y: torch.Tensor, standardize: bool):
        """y -> (zs, log|det ∂zs/∂y|, Σ log p(z_l | …))."""
        h = to_conv_layout(y, self)
        logdet = y.new_zeros(y.shape[0])
        log_pz = y.new_zeros(y.shape[0])
        zs = []
        for i, level in enumerate(self.levels):
            h, ld = level(h)
            logdet = logdet + ld
            if i < len(self.splits):
                split = self.splits[i]
                if standardize:
                    out, ld = split(h)
                    z1, eps = out.split([split.c1, split.c2], dim=1)
                    logdet = logdet + ld
                    log_pz = log_pz + gaussian_log_prob(eps)
                    zs.append(eps)
                else:
                    z1, z2, lp = split.split(h)
                    log_pz = log_pz + lp
                    zs.append(z2)
                h = z1
        mean, logs = self.top_prior(h)
        if standardize:
            eps = (h - mean) * torch.exp(-logs)
            logdet = logdet - logs.flatten(1).sum(1)
            log_pz = log_pz + gaussian_log_prob(eps)
            zs.append(eps)
        else:
            log_pz = log_pz + gaussian_log_prob(h, mean, logs)
            zs.append(h)
        return zs, logdet, log_pz

    def _unflow(self, zs: Sequence[torch.Tensor], standardized: bool) -> torch.Tensor:
        zs = [to_conv_layout(z, self) for z in zs]
        h = zs[-1]
        if standardized:
            mean, logs = self.top_prior(h)
            h = mean + h * torch.exp(logs)
        for i in reversed(range(self.n_levels)):
            if i < len(self.splits):
                split = self.splits[i]
                if standardized:
                    h = split.inverse(torch.cat([h, zs[i]], dim=1))
                else:
                    h = split.merge(h, zs[i])
            h = self.levels[i].inverse(h)
        return h

    # -- public API -------------------------------------------------------------
    def encode(self, x: torch.Tensor, dequantize: bool = False, standardize: bool = False):
        """[0, 1] image -> (zs, logdet).

        ``logdet`` = log|det ∂zs/∂x| (the centring x − ½ has unit Jacobian; with
        ``dequantize`` the input is first quantised + noised). Excludes the
        −D·log n_bins constant and the prior terms.
        """
        y, _ = preprocess(x, self.n_bits, noise=dequantize, quantize=dequantize)
        zs, logdet, _ = self._flow(y, standardize)
        return zs, logdet

    def decode(self, zs: Sequence[torch.Tensor], standardized: bool = False) -> torch.Tensor:
        """Exact inverse of ``encode`` (no dequantisation): zs -> x = y + ½,
        not clamped. Use ``postprocess`` for displayable images."""
        return self._unflow(zs, standardized) + 0.5

    def log_prob(self, x: torch.Tensor, dequantize: bool = True) -> torch.Tensor:
        """log p(x) in nats per image, [B], including −D·log n_bins.

        dequantize=True: quantise to n_bits and add U[0, 1/n_bins) noise (the
        training / bits-per-dim objective). False: evaluate the density at
        y = x − ½ directly, differentiable w.r.t. x (β-MAP).
        """
        y, const = preprocess(x, self.n_bits, noise=dequantize, quantize=dequantize)
        _, logdet, log_pz = self._flow(y, standardize=False)
        return log_pz + logdet + const

    def forward(self, x: torch.Tensor, dequantize: bool = True) -> torch.Tensor:
        return self.log_prob(x, dequantize=dequantize)

    def bits_per_dim(self, x: torch.Tensor, dequantize: bool = True) -> torch.Tensor:
        """−log p(x) / (D·ln 2), [B]."""
        d = x[0].numel()
        return -self.log_prob(x, dequantize=dequantize) / (d * math.log(2.0))

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, *, image_size, quantize: bool = True):
        """n images in [0, 1], shape [n, C, H, W]; every latent is drawn as
        z = μ + T·σ·ε (Glow's temperature T)."""
        p = next(self.parameters())
        eps = [
            temperature * torch.randn(n, *shape, device=p.device, dtype=p.dtype)
            for shape in self.latent_shapes(image_size)
        ]
        y = self._unflow(eps, standardized=True)
        return postprocess(y, self.n_bits, quantize=quantize)
