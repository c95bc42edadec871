"""Noise models of the protocol.

AWGN: ``noisy = clean + (sigma/255)·eps``, eps ~ N(0, I). For evaluation eps comes from a generator
seeded by (seed, image id, sigma), so every method sees the identical noisy image. Blind mode draws
one sigma ~ U[0, blind_max] per image (from the same seeded generator). Real noise: the dataset
supplies the noisy image and no synthetic noise is added.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import torch

from denoise_bench.errors import ConfigError

BLIND = "blind"
REAL = "real"


@dataclass(frozen=True)
class NoiseSpec:
    """``sigma``: a level on the 0-255 scale, ``"blind"`` or ``"real"``."""

    sigma: float | str
    clip: bool = False
    quantize: bool = False
    blind_max: float = 55.0
    seed: int = 0

    @classmethod
    def from_cfg(cls, sigma, noise_cfg, seed: int = 0) -> "NoiseSpec":
        return cls(
            sigma=parse_sigma(sigma),
            clip=bool(noise_cfg.get("clip", False)),
            quantize=bool(noise_cfg.get("quantize", False)),
            blind_max=float(noise_cfg.get("blind_max", 55.0)),
            seed=int(seed),
        )

    @property
    def is_blind(self) -> bool:
        return self.sigma == BLIND

    @property
    def is_real(self) -> bool:
        return self.sigma == REAL

    def label(self) -> str:
        return str(self.sigma) if isinstance(self.sigma, str) else f"{self.sigma:g}"

    def describe(self, with_level: bool = False) -> str:
        """The test noise for captions (the level itself is a table column). The blind draw is named
        only for blind noise: a fixed-sigma cell's caption says nothing of U[0, blind_max]."""
        if self.is_real:
            return "real noise (paired noisy images, no synthetic noise)"
        level = f" sigma={self.sigma:g}/255" if with_level and not self.is_blind else ""
        scale = f"0-255 scale, blind: sigma ~ U[0,{self.blind_max:g}] per image" if self.is_blind else "0-255 scale"
        return (f"AWGN{level} ({scale}), {'clipped to [0,1]' if self.clip else 'not clipped'}, "
                f"{'quantised to 8 bits' if self.quantize else 'not quantised'}, "
                f"seeded per (seed {self.seed}, image, sigma)")


def evaluation_noise(cfg) -> NoiseSpec:
    """The test noise of a cell's config (a DictConfig, or the dict a cell stores): paired data carry
    their own, real noise; otherwise ``sigma`` under ``noise``, seeded by ``seed``."""
    data = cfg.get("data") or {}
    sigma = REAL if data.get("paired", False) else cfg.get("sigma")
    return NoiseSpec.from_cfg(sigma, cfg.get("noise") or {}, int(cfg.get("seed") or 0))


def parse_sigma(sigma) -> float | str:
    if isinstance(sigma, str):
        s = sigma.strip().lower()
        if s in (BLIND, REAL):
            return s
        try:
            sigma = float(s)
        except ValueError:
            raise ConfigError(f"sigma={sigma!r}: expected a number >= 0 (0-255 scale), 'blind' or 'real'") from None
    if sigma is None:
        raise ConfigError("sigma is not set: expected a number >= 0 (0-255 scale), 'blind' or 'real'")
    sigma = float(sigma)
    if not math.isfinite(sigma) or sigma < 0:
        raise ConfigError(f"sigma={sigma:g}: expected a number >= 0 (0-255 scale), 'blind' or 'real'")
    return sigma


def noise_seed(seed: int, image_id: str, sigma: float | str) -> int:
    """A 63-bit seed from (seed, image id, sigma): stable across runs, machines and processes."""
    label = sigma if isinstance(sigma, str) else repr(float(sigma))
    digest = hashlib.sha256(f"{seed}|{image_id}|{label}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def apply_awgn(clean: torch.Tensor, sigma255, eps: torch.Tensor, clip: bool, quantize: bool) -> torch.Tensor:
    """clean + sigma/255·eps with optional clipping to [0,1] and rounding to 8 bits."""
    if not torch.is_tensor(sigma255):
        sigma255 = torch.tensor(float(sigma255))
    s = sigma255.to(clean).reshape(-1, *([1] * (clean.dim() - 1))) if sigma255.dim() else sigma255.to(clean)
    noisy = clean + s / 255.0 * eps
    if quantize:
        noisy = torch.round(noisy * 255.0) / 255.0
    if clip:
        noisy = noisy.clamp(0.0, 1.0)
    return noisy


def seeded_noisy(clean: torch.Tensor, image_id: str, spec: NoiseSpec) -> tuple[torch.Tensor, float]:
    """The evaluation noisy image for one clean image [C,H,W]; returns (noisy, sigma used)."""
    if spec.is_real:
        raise ConfigError("sigma=real needs a paired dataset (noisy images on disk)")
    g = torch.Generator().manual_seed(noise_seed(spec.seed, image_id, spec.sigma))
    if spec.is_blind:
        sigma = float(torch.rand((), generator=g, dtype=torch.float64)) * spec.blind_max
    else:
        sigma = float(spec.sigma)
    eps = torch.randn(clean.shape, generator=g, dtype=torch.float32)
    return apply_awgn(clean, sigma, eps, spec.clip, spec.quantize), sigma


def fresh_noisy(clean: torch.Tensor, spec: NoiseSpec, generator: torch.Generator | None = None):
    """Training noise: a fresh draw for a batch [B,C,H,W] (blind: one sigma per image)."""
    b = clean.shape[0]
    if spec.is_blind:
        sigma = torch.rand(b, generator=generator) * spec.blind_max
    else:
        sigma = torch.full((b,), float(spec.sigma))
    eps = torch.randn(clean.shape, generator=generator, dtype=clean.dtype)
    return apply_awgn(clean, sigma, eps, spec.clip, spec.quantize), sigma
