"""Space-to-depth squeeze (Glow / RealNVP multi-scale).

Each 2×2 spatial block of a channel becomes 4 channels: [B, C, H, W] ->
[B, 4C, H/2, W/2], output channel index c·4 + 2·dy + dx (Glow's ordering: the
four sub-pixels of input channel c are adjacent). A permutation: log|det J| = 0.
This is PyTorch's pixel-unshuffle ordering; its kernel keeps the input's memory layout (channels-last
stays channels-last, so the convolutions after it need no conversion).
"""
from __future__ import annotations

import torch.nn.functional as F

from .base import InvertibleLayer


class Squeeze(InvertibleLayer):
    """Reshape 2×2 blocks into channels; volume preserving."""

    factor = 2

    def forward(self, x):
        b, c, h, w = x.shape
        if h % 2 or w % 2:
            raise ValueError(f"Squeeze needs even H and W, got {h}×{w}")
        return F.pixel_unshuffle(x, 2), x.new_zeros(b)

    def inverse(self, y):
        c4 = y.shape[1]
        if c4 % 4:
            raise ValueError(f"Squeeze.inverse needs channels divisible by 4, got {c4}")
        return F.pixel_shuffle(y, 2)
