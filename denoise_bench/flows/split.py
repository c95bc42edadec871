"""Multi-scale split with a learned conditional Gaussian (Glow / RealNVP).

z = [z1, z2] (channel halves). z1 continues through the flow; z2 is "factored
out" and scored under
    p(z2 | z1) = N(z2; μ(z1), diag(exp(logσ(z1)))²),   (μ, logσ) = ZeroConv(z1).

Two views of the same layer:
* multi-scale API: ``split(z) -> (z1, z2, log p(z2|z1))`` and
  ``merge(z1, z2=None, temperature)`` (samples z2 = μ + T·σ·ε when not given;
  T = 0 gives the conditional mean);
* as an InvertibleLayer it is the bijection z ↦ [z1, ε], ε = (z2 − μ)/σ, with
  log|det J| = −Σ logσ, so log p(z2|z1) = log N(ε; 0, I) + log|det J|.
"""
from __future__ import annotations

import math

import torch

from .base import InvertibleLayer
from .coupling import ZeroConv2d

_LOG_2PI = math.log(2 * math.pi)


def gaussian_log_prob(x: torch.Tensor, mean=None, logs=None) -> torch.Tensor:
    """Σ over non-batch dims of log N(x; mean, exp(logs)²); [B].

    log N = −½(log 2π + 2·logs + (x − mean)²·exp(−2·logs)).
    """
    if mean is None and logs is None:  # standard normal: no zero tensors to build
        return -0.5 * (_LOG_2PI * x[0].numel() + (x.flatten(1) ** 2).sum(1))
    if mean is None:
        mean = torch.zeros_like(x)
    if logs is None:
        logs = torch.zeros_like(x)
    lp = -0.5 * (_LOG_2PI + 2.0 * logs + (x - mean) ** 2 * torch.exp(-2.0 * logs))
    return lp.flatten(1).sum(1)


class Split(InvertibleLayer):
    """Factor out the second channel half under a Gaussian conditioned on the first."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.c1 = channels // 2
        self.c2 = channels - self.c1
        if self.c1 == 0:
            raise ValueError("Split needs at least 2 channels")
        self.prior = ZeroConv2d(self.c1, 2 * self.c2)

    def conditional(self, z1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, logσ) of p(z2 | z1)."""
        mean, logs = self.prior(z1).chunk(2, dim=1)
        return mean, logs

    # -- multi-scale API ------------------------------------------------------
    def split(self, z):
        z1, z2 = z.split([self.c1, self.c2], dim=1)
        mean, logs = self.conditional(z1)
        return z1, z2, gaussian_log_prob(z2, mean, logs)

    def merge(self, z1, z2=None, temperature: float = 1.0):
        if z2 is None:
            mean, logs = self.conditional(z1)
            z2 = mean + temperature * torch.exp(logs) * torch.randn_like(mean)
        return torch.cat([z1, z2], dim=1)

    # -- bijection view -------------------------------------------------------
    def forward(self, x):
        z1, z2 = x.split([self.c1, self.c2], dim=1)
        mean, logs = self.conditional(z1)
        eps = (z2 - mean) * torch.exp(-logs)
        return torch.cat([z1, eps], dim=1), -logs.flatten(1).sum(1)

    def inverse(self, y):
        z1, eps = y.split([self.c1, self.c2], dim=1)
        mean, logs = self.conditional(z1)
        return torch.cat([z1, mean + eps * torch.exp(logs)], dim=1)
