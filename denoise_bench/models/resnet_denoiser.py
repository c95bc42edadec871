"""The ResNet denoiser D = R(N) of the unpaired flow-prior method (Kattakinda & Rajagopalan 2020).

The authors' released network is a stack of residual blocks that keep the image's own channel count
(64 blocks at 3 channels, each 3→8→8→3 with InstanceNorm and LeakyReLU 0.2, last conv
zero-initialised) followed by a sigmoid. Only that description is available; what we assumed:

- block:  x + conv3×3(C→h) → IN → LReLU → conv3×3(h→h) → IN → LReLU → conv3×3(h→C), the last conv
  zero-initialised (weight and bias), InstanceNorm with a learned affine, no activation after the
  sum (a pre-sum activation would clip the residual stream that the sigmoid reads);
- input map: the residual stream starts from logit(clamp(N, ε, 1−ε)) (``input: logit``, default),
  so with the zero-initialised blocks the network is exactly D = clamp(N) at initialisation and
  the sigmoid output stays in (0, 1). ``input: identity`` feeds N itself (then D = sigmoid(N) at
  init, which is far from N: kept only to compare).

The network is fully convolutional: it denoises images of any size.
"""
from __future__ import annotations

import torch
from torch import nn

from denoise_bench.errors import ConfigError

NORMS = {"instance": lambda c: nn.InstanceNorm2d(c, affine=True), "batch": nn.BatchNorm2d,
         "none": lambda c: nn.Identity()}


class ResidualBlock(nn.Module):
    """x + f(x), f = conv → norm → LReLU → conv → norm → LReLU → conv(zero-init)."""

    def __init__(self, channels: int, hidden: int = 8, norm: str = "instance", slope: float = 0.2):
        super().__init__()
        make_norm = NORMS[norm]
        self.body = nn.Sequential(
            nn.Conv2d(channels, hidden, 3, padding=1, padding_mode="reflect"), make_norm(hidden),
            nn.LeakyReLU(slope),
            nn.Conv2d(hidden, hidden, 3, padding=1, padding_mode="reflect"), make_norm(hidden),
            nn.LeakyReLU(slope),
            nn.Conv2d(hidden, channels, 3, padding=1, padding_mode="reflect"),
        )
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNetDenoiser(nn.Module):
    """[B,C,H,W] noisy image (≈[0,1]) → denoised image in (0, 1)."""

    def __init__(self, channels: int, blocks: int = 64, hidden: int = 8, norm: str = "instance",
                 slope: float = 0.2, input: str = "logit", logit_eps: float = 1e-3):
        super().__init__()
        if norm not in NORMS:
            raise ConfigError(f"method.resnet.norm={norm!r}: choose one of {sorted(NORMS)}")
        if input not in ("logit", "identity"):
            raise ConfigError(f"method.resnet.input={input!r}: choose 'logit' or 'identity'")
        if int(blocks) < 0 or int(hidden) < 1:
            raise ConfigError(f"method.resnet: blocks={blocks}, hidden={hidden}; expected blocks >= 0, hidden >= 1")
        self.input, self.logit_eps = input, float(logit_eps)
        self.blocks = nn.Sequential(*[ResidualBlock(channels, int(hidden), norm, float(slope))
                                      for _ in range(int(blocks))])

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        h = noisy
        if self.input == "logit":
            h = torch.logit(noisy.clamp(self.logit_eps, 1.0 - self.logit_eps))
        return torch.sigmoid(self.blocks(h))
