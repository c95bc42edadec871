"""Common interface of invertible layers and their composition.

Every layer is a bijection y = f(x) that also reports the log of the absolute
Jacobian determinant, per sample, so densities follow by change of variables:

    log p_X(x) = log p_Y(f(x)) + log|det df/dx|.
"""
from __future__ import annotations

import abc
from typing import Iterable

import torch
from torch import nn


def to_conv_layout(x: torch.Tensor, module: nn.Module) -> torch.Tensor:
    """``x`` in the memory layout of ``module``'s first convolution weight.

    On the CPU the runner keeps convolution weights channels-last (training/speed.py). The flow layers
    keep their input's layout, so a flow entered in that layout stays in it: no convolution converts
    its input on every call. Weights in the default layout (the GPU) leave ``x`` as it is.
    """
    conv = next((m for m in module.modules() if isinstance(m, nn.Conv2d)), None)
    if x.dim() != 4 or conv is None or conv.weight.is_contiguous():
        return x
    if conv.weight.is_contiguous(memory_format=torch.channels_last):
        return x.contiguous(memory_format=torch.channels_last)
    return x


class InvertibleLayer(nn.Module, metaclass=abc.ABCMeta):
    """A bijection with a tractable log|det J|.

    ``forward(x) -> (y, logdet)`` with ``logdet`` of shape [B];
    ``inverse(y) -> x``.
    """

    @abc.abstractmethod
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ...

    @abc.abstractmethod
    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        ...


class FlowSequence(InvertibleLayer):
    """Composition f = f_n ∘ … ∘ f_1; log-dets add, the inverse runs backwards.

    log|det J_f| = Σ_i log|det J_{f_i}|.
    """

    def __init__(self, layers: Iterable[InvertibleLayer] = ()):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __getitem__(self, idx):
        return self.layers[idx]

    def append(self, layer: InvertibleLayer) -> "FlowSequence":
        self.layers.append(layer)
        return self

    def forward(self, x):
        return self.forward_through(self.layers, x)

    def inverse(self, y):
        return self.inverse_through(self.layers, y)

    @staticmethod
    def forward_through(layers: Iterable[InvertibleLayer], x):
        """``layers`` applied in order (a part of a flow): (output, summed log-dets)."""
        logdet = x.new_zeros(x.shape[0])
        for layer in layers:
            x, ld = layer(x)
            logdet = logdet + ld
        return x, logdet

    @staticmethod
    def inverse_through(layers, y):
        """The inverse of ``forward_through(layers, ·)``: ``layers`` inverted last to first."""
        for layer in reversed(layers):
            y = layer.inverse(y)
        return y
