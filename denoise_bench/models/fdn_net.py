"""FDN's invertible network (Liu et al., Sensors 2022, Fig. 3), built from ``denoise_bench.flows``.

    f = K DownScale Flow blocks,  block = [downscale → S Step-of-Flow],
    Step-of-Flow = ActNorm (eq. 6) → invertible 1×1 conv (eq. 8) → DenseAffineCoupling (eqs. above Table I)

The downscale is the fixed Haar transform of FDN's predecessor InvDN (default) or the paper's
checkerboard squeeze (Fig. 4). Both are volume-preserving here, so every log-det comes from
ActNorm, the 1×1 convs and the couplings. With K=2, S=8, RGB, a 3-channel coupling split, dense
blocks of growth 32 and a plain 1×1 conv this is 4,375,680 trainable parameters (the paper's 4.38 M).

Denoising (eqs. 4–5): z = f(y) = [z_C, z_N] along channels of the final tensor; x̂ = f⁻¹([z_C, 0]).
"""
from __future__ import annotations

import torch

from denoise_bench.flows import (ActNorm, DenseAffineCoupling, FlowSequence, HaarDownsampling, InvConv1x1, Squeeze,
                                 gaussian_log_prob)
from denoise_bench.flows.base import to_conv_layout
from denoise_bench.tensor_images import pad_to_multiple

DOWNSCALES = ("haar", "squeeze")


def clean_channel_count(channels: int, zc_ratio: float) -> int:
    """Channels of z_C: ``zc_ratio`` of the final channels; must be a whole number in [1, channels−1]."""
    n = zc_ratio * channels
    if abs(n - round(n)) > 1e-6 or not 1 <= round(n) <= channels - 1:
        raise ValueError(f"zc_ratio={zc_ratio:g} of {channels} latent channels is {n:g}: "
                         f"needs a whole number of channels between 1 and {channels - 1}")
    return int(round(n))


def _nll_per_dim(z: torch.Tensor, logdet: torch.Tensor, d: int) -> torch.Tensor:
    """−[log N(z; 0, I) + log|det ∂z/∂y|] / D (eq. 10 per dimension; the flows' one Gaussian log-density)."""
    return -(gaussian_log_prob(z) + logdet) / d


class FDNNet(FlowSequence):
    """The bijection y ↦ z of FDN; ``forward(y) -> (z, log|det ∂z/∂y|)``, ``inverse(z) -> y``.

    Args:
        in_channels: image channels C (the final latent has C·4^K channels at 1/2^K resolution).
        flow_blocks: K DownScale Flow blocks.  sof_blocks: S Step-of-Flow per block.
        split_len: channels x1 of every coupling (null: C). The 1×1 convolution before each coupling
            mixes all channels, so x1 is a learned mixture, not the Haar low-pass band.
        growth, clamp: dense-block width and the bound on the coupling's log-scale.
        init: the dense blocks' initialisation, "xavier0.1" (InvDN's) or "default" (PyTorch's).
        downscale: "haar" or "squeeze".  lu: LU-parameterised 1×1 conv (the paper's is plain).
    """

    def __init__(self, in_channels: int = 3, flow_blocks: int = 2, sof_blocks: int = 8,
                 split_len: int | None = None, growth: int = 32, clamp: float = 1.0,
                 downscale: str = "haar", lu: bool = False, init: str = "xavier0.1"):
        if downscale not in DOWNSCALES:
            raise ValueError(f"downscale={downscale!r}: choose one of {DOWNSCALES}")
        if flow_blocks < 1 or sof_blocks < 0:
            raise ValueError(f"need flow_blocks >= 1 and sof_blocks >= 0, got {flow_blocks}, {sof_blocks}")
        split = int(split_len or in_channels)
        layers, c = [], in_channels
        for _ in range(flow_blocks):
            layers.append(HaarDownsampling(c) if downscale == "haar" else Squeeze())
            c *= 4
            for _ in range(sof_blocks):
                layers += [ActNorm(c), InvConv1x1(c, lu=lu),
                           DenseAffineCoupling(c, split_len=split, clamp=clamp, growth=growth, init=init)]
        super().__init__(layers)
        self.in_channels, self.flow_blocks, self.out_channels = in_channels, flow_blocks, c

    def forward(self, y):
        return super().forward(to_conv_layout(y, self))

    def inverse(self, z):
        return super().inverse(to_conv_layout(z, self))

    @property
    def multiple(self) -> int:
        """Height and width must be multiples of this (each block halves them)."""
        return 2 ** self.flow_blocks

    def nll_per_dim(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(L_dis of eq. 10 per sample, in nats per dimension of y; z).

        −log p(y) = −[log N(z; 0, I) + Σ_i log|det ∂f_i/∂h_i|], divided by D = C·H·W so that the
        loss weight λ1 does not depend on the crop size (bits/dim = this / ln 2).
        """
        z, logdet = self(y)
        return _nll_per_dim(z, logdet, y[0].numel()), z

    def restore(self, z: torch.Tensor, n_clean: int, last_scale_shift=None) -> torch.Tensor:
        """f⁻¹([z_C, 0]): the first ``n_clean`` latent channels are kept, z_N is set to 0 (eq. 4).

        ``last_scale_shift``: the (s, g3(y1)) of the last coupling from the forward pass that gave z
        (``nll_and_restore``). Where z_C holds that coupling's y1 (n_clean ≥ split_len), its inverse
        reads the same y1, so the values are reused instead of running g2 and g3 again.
        """
        mask = torch.zeros_like(z)
        mask[:, :n_clean] = 1.0
        zc = to_conv_layout(z * mask, self)
        last = self.layers[-1]
        if last_scale_shift is None or not isinstance(last, DenseAffineCoupling) or n_clean < last.split_len:
            return super().inverse(zc)
        return self.inverse_through(self.layers[:-1], last.inverse_with_scale_shift(zc, *last_scale_shift))

    def nll_and_restore(self, y: torch.Tensor, n_clean: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(L_dis per sample as ``nll_per_dim``, f⁻¹([z_C, 0])): FDN's training pass, with the last
        coupling's g2/g3 output shared between the two directions (``restore``)."""
        last = self.layers[-1]
        if not isinstance(last, DenseAffineCoupling):
            nll, z = self.nll_per_dim(y)
            return nll, self.restore(z, n_clean)
        x, logdet = self.forward_through(self.layers[:-1], to_conv_layout(y, self))
        z, ld, scale_shift = last.forward_with_scale_shift(x)
        logdet = logdet + ld
        return _nll_per_dim(z, logdet, y[0].numel()), self.restore(z, n_clean, scale_shift)

    def denoise(self, y: torch.Tensor, n_clean: int) -> torch.Tensor:
        """x̂ = f⁻¹([z_C, 0]) for any image size: reflect-pad to a multiple of 2^K, crop back."""
        h, w = y.shape[-2:]
        z, _ = self(pad_to_multiple(y, self.multiple))
        return self.restore(z, n_clean)[..., :h, :w]
