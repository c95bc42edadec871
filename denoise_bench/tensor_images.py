"""Small tensor <-> image helpers used in several places: one home each.

- ``to_uint8``: a [0,1] tensor (C,H,W or B,C,H,W) -> uint8 numpy, channels last (clamped, rounded);
- ``pad_to_multiple``: reflect-pad the bottom/right so H and W are multiples of a factor (flows
  that squeeze need it); crop the result back with ``[..., :h, :w]``.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Rounded 8-bit values, channels last: (C,H,W) -> (H,W,C), (B,C,H,W) -> (B,H,W,C)."""
    a = (x.detach().cpu().clamp(0, 1) * 255.0).round().to(torch.uint8)
    return a.permute(*range(a.dim() - 3), -2, -1, -3).numpy()


def pad_to_multiple(x: torch.Tensor, factor: int, mode: str = "reflect") -> torch.Tensor:
    """Pad H and W (bottom / right) up to multiples of ``factor``; reflect needs the pad < the side,
    so small images fall back to replicate padding."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % factor, (-w) % factor
    if not (ph or pw):
        return x
    if mode == "reflect" and (ph >= h or pw >= w):
        mode = "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)
