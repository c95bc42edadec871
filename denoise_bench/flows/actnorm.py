"""Activation normalisation (Glow §3.1).

    y = (x + b) · exp(logs)            (per channel)
    log|det J| = H·W·Σ_c logs_c

b and logs are initialised from the first batch seen so that y has zero mean
and unit variance per channel (data-dependent init); afterwards they are free
parameters. The "initialised" flag is a registered buffer, so a model restored
from a checkpoint does not re-initialise on its next batch.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import InvertibleLayer


class ActNorm(InvertibleLayer):
    """Per-channel affine normalisation with data-dependent init."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.channels = channels
        self.eps = eps
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.logs = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("initialized", torch.tensor(False))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, initialized={bool(self.initialized)}"

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        """Set b = −mean(x), logs = −log(std(x)) per channel over (B, H, W)."""
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        std = x.std(dim=(0, 2, 3), keepdim=True, unbiased=False)
        self.bias.copy_(-mean)
        self.logs.copy_(-torch.log(std + self.eps))
        self.initialized.fill_(True)

    def _logdet(self, x):
        h, w = x.shape[2], x.shape[3]
        return (h * w * self.logs.sum()).expand(x.shape[0])

    def forward(self, x):
        if not bool(self.initialized):
            self.initialize(x.detach())
        y = (x + self.bias) * torch.exp(self.logs)
        return y, self._logdet(x)

    def inverse(self, y):
        return y * torch.exp(-self.logs) - self.bias
