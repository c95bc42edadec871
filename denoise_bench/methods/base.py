"""The one evaluation path: every method is a LightningModule with ``denoise(noisy, sigma)``.

``test_step`` lives here and nowhere else, so every method is measured by the same code: the
output is clamped to [0, 1], then PSNR / SSIM / MSE are computed per image under the configured
``MetricProtocol`` (see ``metrics.py``) and kept as rows (one per image) for the cell's outputs.
Trainable methods add ``training_step`` / ``configure_optimizers``; validation reuses ``denoise``.
"""
from __future__ import annotations

import math
import time

import lightning as L
import torch
import torch.distributed as dist
from omegaconf import DictConfig, OmegaConf

from denoise_bench.errors import TrainingError
from denoise_bench.methods import ensemble
from denoise_bench.metrics import MetricProtocol, image_metrics


class DenoisingMethod(L.LightningModule):
    name = "base"
    trainable = False  # has training_step; the runner fits it (or loads an artifact) before testing
    grad_at_test = False  # needs autograd inside test_step (beta-MAP); the runner disables inference_mode
    loads_weights = False  # method.weights=PATH loads a trained model (else a one-line error)
    n_examples = 4  # images kept for the noisy / denoised / clean grid
    deterministic_denoise = True  # same input, same output: the x8 self-ensemble is allowed (ensemble.py)
    self_ensemble = False  # set by the runner (eval.self_ensemble) through ensemble.use_self_ensemble

    def __init__(self, cfg: DictConfig | dict | None = None, image_channels: int = 1):
        super().__init__()
        self.cfg = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg or {})
        self.image_channels = int(image_channels)
        self.protocol = MetricProtocol()
        self.rows: list[dict] = []
        self.examples: list[dict] = []

    # -- to implement ---------------------------------------------------------------------------
    def denoise(self, noisy: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Estimate of the clean batch [B,C,H,W]; ``sigma`` [B] on the 0-255 scale (NaN: unknown/real)."""
        raise NotImplementedError

    @property
    def has_weights(self) -> bool:
        """True when trained weights were given (``method.weights``): no training then."""
        return bool(self.cfg.get("weights"))

    def prepare(self, ctx) -> None:
        """Called by the runner before testing: fetch or train what the method needs (a prior...)."""

    def artifact_config(self) -> dict:
        """The method config whose model part names the trained model (``identity.model_part``:
        no ``run`` / ``eval`` sections); a method adds what it derives (flow_prior: its prior)."""
        return OmegaConf.to_container(self.cfg, resolve=True)

    # -- evaluation (shared) --------------------------------------------------------------------
    def on_test_epoch_start(self) -> None:
        self.rows, self.examples = [], []

    def test_step(self, batch: dict, batch_idx: int) -> None:
        noisy, clean, sigma = batch["noisy"], batch["clean"], batch["sigma"]
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        if self.self_ensemble:  # x8 flips/rot90, averaged (methods/ensemble.py); timed with the pass
            estimate = ensemble.self_ensemble(self.denoise, noisy, sigma)
        else:
            estimate = self.denoise(noisy, sigma)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - start) / noisy.shape[0]
        if not torch.isfinite(estimate).all():
            raise TrainingError(f"{self.name}: the denoised output is NaN or infinite for test batch {batch_idx} "
                                f"(first image {batch['id'][0]}); no result written")
        estimate = estimate.detach().clamp(0.0, 1.0) if self.protocol.clamp else estimate.detach()
        metrics = image_metrics(estimate, clean, self.protocol)
        for i, image_id in enumerate(batch["id"]):
            s = float(sigma[i])
            self.rows.append({
                "image": image_id,
                "sigma": None if math.isnan(s) else round(s, 4),
                **{k: float(v[i]) for k, v in metrics.items()},  # psnr, ssim, mse (+ psnr_y, ssim_y: colour)
                "seconds": seconds,
            })
            if len(self.examples) < self.n_examples:
                self.examples.append({"image": image_id, "noisy": noisy[i].detach().cpu(),
                                      "denoised": estimate[i].cpu(), "clean": clean[i].detach().cpu()})

    def on_test_epoch_end(self) -> None:
        """Gather the rows of every rank (DDP), each image once."""
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            gathered: list = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, self.rows)
            seen, rows = set(), []
            for part in gathered:
                for row in part:
                    if row["image"] not in seen:  # the distributed sampler pads with repeats
                        seen.add(row["image"])
                        rows.append(row)
            self.rows = rows
            # ranks hold contiguous blocks of the test set (SameShapeBatches): rank order = image order
            parts: list = [None] * dist.get_world_size()
            dist.all_gather_object(parts, self.examples)
            seen, self.examples = set(), []
            for ex in (e for part in parts for e in part):
                if ex["image"] not in seen and len(self.examples) < self.n_examples:
                    seen.add(ex["image"])
                    self.examples.append(ex)

    # -- training helpers (shared by trainable methods) -----------------------------------------
    def validation_step(self, batch: dict, batch_idx: int) -> None:
        estimate = self.denoise(batch["noisy"], batch["sigma"]).clamp(0.0, 1.0)
        psnr = image_metrics(estimate, batch["clean"], self.protocol)["psnr"]
        self.log("val/psnr", psnr.mean().float(), batch_size=len(psnr), prog_bar=True, sync_dist=True)

    def check_finite(self, loss: torch.Tensor) -> torch.Tensor:
        """Stop training with a clear message when the loss is NaN or infinite."""
        if not torch.isfinite(loss).all():
            raise TrainingError(
                f"{self.name}: loss became {float(loss)} at step {self.global_step}; "
                "lower the learning rate or enable gradient clipping (trainer.gradient_clip_val)"
            )
        return loss

    def count_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
