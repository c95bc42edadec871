"""Fixed Haar wavelet downsampling (InvDN / FDN "DownScale" layer).

Each 2×2 block [[a, b], [c, d]] of every channel is mapped to four bands by
y = s·H·(a, b, c, d)ᵀ with the ±1 Hadamard-type matrix

    H = [[1,  1,  1,  1],    # LL (average)
         [1, -1,  1, -1],    # horizontal detail
         [1,  1, -1, -1],    # vertical detail
         [1, -1, -1,  1]]    # diagonal detail

H·Hᵀ = 4I, so |det(s·H)| = 16·s⁴ per block, and for D input values per sample
(D/4 blocks):  log|det J| = D·(log s + log 2).
s = 1/2 (default) is orthonormal (log-det 0, inverse = transpose); s = 1/4 is
InvDN's scaling (LL = block mean, log-det = −D·log 2).

The transform is a stride-2 conv with a fixed, non-trainable weight. Output channels are band-major: channels
[0, C) are the LL band of input channels 0..C−1, then the three detail bands,
so "the first C channels" of the Haar output are the low-pass image (FDN's invertible 1×1 convolution
then mixes all channels before each coupling).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .base import InvertibleLayer

_HAAR = torch.tensor(
    [
        [[1.0, 1.0], [1.0, 1.0]],
        [[1.0, -1.0], [1.0, -1.0]],
        [[1.0, 1.0], [-1.0, -1.0]],
        [[1.0, -1.0], [-1.0, 1.0]],
    ]
)


class HaarDownsampling(InvertibleLayer):
    """[B, C, H, W] -> [B, 4C, H/2, W/2], band-major (LL of all channels first).

    Args:
        channels: input channels C.
        orthonormal: True → scale 1/2 (log-det 0); False → InvDN's 1/4.
    """

    def __init__(self, channels: int, orthonormal: bool = True):
        super().__init__()
        self.channels = channels
        self.scale = 0.5 if orthonormal else 0.25
        weight = (_HAAR * self.scale).unsqueeze(1).repeat(channels, 1, 1, 1)
        # (4C, 1, 2, 2), channel-major (c, band): the filters as stored in trained models' state dicts
        self.register_buffer("weight", weight)
        # What the transform computes with: the same filters as one band-major (4C, C, 2, 2) convolution,
        # output channel band·C + c reading input channel c only. One call gives the band-major output in
        # the convolution's layout (channels-last on the CPU: no reshape back to NCHW before the next layer).
        banded = torch.zeros(4 * channels, channels, 2, 2)
        for c in range(channels):
            banded[c::channels][:, c] = _HAAR * self.scale
        self.register_buffer("banded", banded, persistent=False)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, scale={self.scale}"

    def _logdet(self, x):
        d = x[0].numel()
        value = d * (math.log(self.scale) + math.log(2.0))
        return x.new_full((x.shape[0],), value)

    def forward(self, x):
        c = x.shape[1]
        if c != self.channels:
            raise ValueError(f"expected {self.channels} channels, got {c}")
        return F.conv2d(x, self.banded, stride=2), self._logdet(x)

    def inverse(self, y):
        # (s·H)^{-1} = (s·H)ᵀ / (4 s²)
        return F.conv_transpose2d(y, self.banded, stride=2) / (4 * self.scale**2)
