"""Invertible layers (nflows-style: ``forward -> (y, logdet)``, ``inverse``)
and the Glow density model; shared by the fdn, glow_map and flow_prior methods."""
from .actnorm import ActNorm
from .base import FlowSequence, InvertibleLayer
from .coupling import AffineCoupling, DenseAffineCoupling, DenseBlock, ZeroConv2d
from .dequant import n_bins, postprocess, preprocess
from .glow import Glow, glow_step
from .haar import HaarDownsampling
from .invconv import InvConv1x1
from .split import Split, gaussian_log_prob
from .squeeze import Squeeze

__all__ = [
    "ActNorm",
    "AffineCoupling",
    "DenseAffineCoupling",
    "DenseBlock",
    "FlowSequence",
    "Glow",
    "HaarDownsampling",
    "InvConv1x1",
    "InvertibleLayer",
    "Split",
    "Squeeze",
    "ZeroConv2d",
    "gaussian_log_prob",
    "glow_step",
    "n_bins",
    "postprocess",
    "preprocess",
]
