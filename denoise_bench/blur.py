"""The normalised Gaussian blur B of the unpaired flow-prior loss (Kattakinda & Rajagopalan 2020).

The loss ‖B(D) − B(N)‖² compares only the low frequencies of the denoised image D with those of
the noisy input N (they are barely touched by white noise); the prior fills in the rest. B is a
depthwise convolution with a 2-D Gaussian kernel b that sums to 1 (so B keeps the mean intensity),
applied with reflect padding (so B keeps the image size and treats borders like interior pixels).

White noise of std σ becomes, after B, noise of per-pixel variance σ²‖b‖₂² — the factor that
enters λ (see ``methods/flow_prior.py``). ``GaussianBlur(size=1)`` or ``enabled=False`` is the
identity, with ‖b‖₂² = 1.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from denoise_bench.errors import ConfigError


def gaussian_kernel(size: int, width: float, dtype=torch.float64) -> torch.Tensor:
    """[size, size] Gaussian with std ``width`` (pixels), normalised to sum 1."""
    size = int(size)
    if size < 1 or size % 2 == 0:
        raise ConfigError(f"blur kernel size {size}: expected an odd number >= 1 (method.blur_size)")
    if size == 1:
        return torch.ones(1, 1, dtype=dtype)
    if not width > 0:
        raise ConfigError(f"blur width {width}: expected a std > 0 in pixels (method.blur_sigma)")
    r = torch.arange(size, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2.0 * float(width) ** 2))
    k = g[:, None] * g[None, :]
    return k / k.sum()


class GaussianBlur(nn.Module):
    """B: per-channel convolution with a normalised Gaussian kernel, same output size."""

    def __init__(self, size: int = 5, width: float = 1.0, enabled: bool = True):
        super().__init__()
        k = gaussian_kernel(size if enabled else 1, width).float()
        self.register_buffer("kernel", k, persistent=False)  # fixed: not a parameter, not in checkpoints

    @property
    def is_identity(self) -> bool:
        return self.kernel.numel() == 1

    @property
    def sq_norm(self) -> float:
        """‖b‖₂² = Σ b², the variance factor of blurred white noise (1 for the identity)."""
        return float((self.kernel.double() ** 2).sum())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.is_identity:
            return x
        c = x.shape[1]
        pad = self.kernel.shape[-1] // 2
        if min(x.shape[-2:]) <= pad:
            raise ConfigError(f"image {tuple(x.shape[-2:])} too small for a {self.kernel.shape[-1]}x"
                              f"{self.kernel.shape[-1]} blur kernel (method.blur_size)")
        weight = self.kernel.to(x).expand(c, 1, *self.kernel.shape)
        return F.conv2d(F.pad(x, (pad, pad, pad, pad), mode="reflect"), weight, groups=c)
