"""Invertible 1×1 convolution (Glow §3.2): a learned channel mixing.

    y[:, :, i, j] = W · x[:, :, i, j],   log|det J| = H·W·log|det W|

W starts as a random rotation. With ``lu=True`` W is kept in the PLU form of
Glow §3.2,  W = P · L · (U + diag(sign(s)·exp(log|s|))),  P a fixed
permutation, L unit lower-triangular, U strictly upper-triangular; then
log|det W| = Σ log|s| costs O(C) and W stays invertible by construction.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import InvertibleLayer


def random_rotation(channels: int) -> torch.Tensor:
    """Random orthogonal matrix (QR of a Gaussian matrix, sign-fixed)."""
    q, r = torch.linalg.qr(torch.randn(channels, channels))
    return q * torch.sign(torch.diagonal(r)).unsqueeze(0)


class InvConv1x1(InvertibleLayer):
    """Invertible 1×1 conv, plain (``lu=False``) or LU-parameterised."""

    def __init__(self, channels: int, lu: bool = True):
        super().__init__()
        self.channels = channels
        self.lu = lu
        w = random_rotation(channels)
        if not lu:
            self.weight = nn.Parameter(w)
            return
        p, l, u = torch.linalg.lu(w)
        s = torch.diagonal(u)
        self.register_buffer("perm", p)
        self.register_buffer("sign_s", torch.sign(s))
        self.lower = nn.Parameter(torch.tril(l, -1))
        self.upper = nn.Parameter(torch.triu(u, 1))
        self.log_s = nn.Parameter(torch.log(torch.abs(s)))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, lu={self.lu}"

    def matrix(self) -> torch.Tensor:
        """The C×C mixing matrix W."""
        if not self.lu:
            return self.weight
        eye = torch.eye(self.channels, dtype=self.log_s.dtype, device=self.log_s.device)
        lower = torch.tril(self.lower, -1) + eye
        upper = torch.triu(self.upper, 1) + torch.diag(self.sign_s * torch.exp(self.log_s))
        return self.perm @ lower @ upper

    def log_abs_det(self) -> torch.Tensor:
        if self.lu:
            return self.log_s.sum()
        return torch.linalg.slogdet(self.weight)[1]

    def forward(self, x):
        w = self.matrix()
        y = F.conv2d(x, w.view(self.channels, self.channels, 1, 1))
        logdet = x.shape[2] * x.shape[3] * self.log_abs_det()
        return y, logdet.expand(x.shape[0])

    def inverse(self, y):
        w_inv = torch.linalg.inv(self.matrix())
        return F.conv2d(y, w_inv.view(self.channels, self.channels, 1, 1))
