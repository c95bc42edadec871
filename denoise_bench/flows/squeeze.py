"""Space-to-depth squeeze (Glow / RealNVP multi-scale).

Each 2×2 spatial block of a channel becomes 4 channels: [B, C, H, W] ->
[B, 4C, H/2, W/2], output channel index c·4 + 2·dy + dx (Glow's ordering: the
four sub-pixels of input channel c are adjacent). A permutation: log|det J| = 0.
"""
from __future__ import annotations

from .base import InvertibleLayer


class Squeeze(InvertibleLayer):
    """Reshape 2×2 blocks into channels; volume preserving."""

    factor = 2

    def forward(self, x):
        b, c, h, w = x.shape
        if h % 2 or w % 2:
            raise ValueError(f"Squeeze needs even H and W, got {h}×{w}")
        y = x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
        return y.reshape(b, c * 4, h // 2, w // 2), x.new_zeros(b)

    def inverse(self, y):
        b, c4, h, w = y.shape
        if c4 % 4:
            raise ValueError(f"Squeeze.inverse needs channels divisible by 4, got {c4}")
        c = c4 // 4
        x = y.reshape(b, c, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
        return x.reshape(b, c, h * 2, w * 2)
