"""``method=noisy``: the identity, the reference row of every table."""
from __future__ import annotations

from denoise_bench.methods.base import DenoisingMethod


class NoisyInput(DenoisingMethod):
    name = "noisy"
    order = 0  # place in tables and figures (methods/__init__.py)

    def denoise(self, noisy, sigma):
        return noisy
