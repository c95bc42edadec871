"""Training the Glow density prior on clean images (the first stage of glow_map and flow_prior).

Maximum likelihood on uniformly dequantised images (Glow, Kingma & Dhariwal 2018): the loss is
the negative log-likelihood in nats per image, −log p(x) (including −D·log n_bins, see
``flows/dequant.py``), reported and optimised as bits/dim = NLL / (D·ln 2), so the loss scale does
not depend on the image size. Stabilisers: linear lr warm-up, grad-norm clipping (the trainer's
``gradient_clip_val``), LU 1×1 convs, ActNorm's data-dependent init on the first training batch.

A non-finite loss stops training with the step number; the weights of the last step whose loss was
finite are written to ``<failure_dir>/last_good.pt`` first (the cell's output dir when trained by
``load_or_train_prior``), so nothing learned is lost.
"""
from __future__ import annotations

import io
import json
import math
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.distributed as dist
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from denoise_bench.errors import TrainingError
from denoise_bench.flows import ActNorm, Glow
from denoise_bench.tensor_images import to_uint8
from denoise_bench.hparams import hp
from denoise_bench.training.speed import adam


def build_glow(cfg, channels: int) -> Glow:
    """The Glow of a prior config (``levels``, ``steps``, ``hidden``, ``n_bits``, ``lu``, ``learn_top``)."""
    return Glow(in_channels=int(channels), levels=int(hp(cfg, "levels", "prior")), steps=int(hp(cfg, "steps", "prior")),
                hidden=int(hp(cfg, "hidden", "prior")), n_bits=int(hp(cfg, "n_bits", "prior")),
                lu=bool(hp(cfg, "lu", "prior")), learn_top=bool(hp(cfg, "learn_top", "prior")))


def crop_to_multiple(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Centre crop [B,C,H,W] so H and W are multiples of ``factor`` (Glow squeezes L times)."""
    h, w = x.shape[-2] - x.shape[-2] % factor, x.shape[-1] - x.shape[-1] % factor
    top, left = (x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2
    return x[..., top : top + h, left : left + w]


def image_grid(images: torch.Tensor, nrow: int | None = None, gap: int = 2) -> Image.Image:
    """[N,C,H,W] in [0,1] -> one RGB PIL image, ``nrow`` images per row."""
    n, c, h, w = images.shape
    nrow = nrow or max(1, int(math.ceil(math.sqrt(n))))
    rows = int(math.ceil(n / nrow))
    canvas = np.full((rows * (h + gap) - gap, nrow * (w + gap) - gap, 3), 255, dtype=np.uint8)
    arr = to_uint8(images)
    if c == 1:
        arr = np.repeat(arr, 3, axis=3)
    for i in range(n):
        r, k = divmod(i, nrow)
        canvas[r * (h + gap) : r * (h + gap) + h, k * (w + gap) : k * (w + gap) + w] = arr[i]
    return Image.fromarray(canvas)


class GlowPrior(L.LightningModule):
    """Maximum-likelihood training of a Glow on ``batch["clean"]`` (any dataset of the suite).

    The trained density is ``self.glow``; the artifact stored by the runner is this module's
    state dict (keys ``glow.*``).
    """

    def __init__(self, cfg: DictConfig | dict, channels: int, image_size: int | None = None):
        super().__init__()
        self.cfg = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg)
        self.channels = int(channels)
        self.image_size = image_size
        self.glow = build_glow(self.cfg, channels)
        self.failure_dir: Path | None = None  # where last_good.pt goes when the loss diverges
        self.seed = 0
        self._good: dict | None = None
        self._good_sources: list = []  # (module, name) of each state-dict entry
        self._good_step = -1
        self.val_bpd: float | None = None
        self.train_bpd: float | None = None
        self.samples: Image.Image | None = None

    # -- training -------------------------------------------------------------------------------
    def on_train_batch_start(self, batch: dict, batch_idx: int) -> None:
        """ActNorm's data-dependent init on the first training batch (averaged over DDP ranks)."""
        norms = [m for m in self.glow.modules() if isinstance(m, ActNorm)]
        if all(bool(m.initialized) for m in norms):
            return
        with torch.no_grad():
            self.glow.log_prob(batch["clean"], dequantize=True)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            for m in norms:  # every rank starts from the same parameters
                for p in (m.bias, m.logs):
                    dist.all_reduce(p.data)
                    p.data /= dist.get_world_size()

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        x = batch["clean"]
        nll = -self.glow.log_prob(x, dequantize=True)  # nats per image
        bpd = nll.mean() / (x[0].numel() * math.log(2.0))
        if not torch.isfinite(bpd):
            self._diverged(float(bpd))
        self._remember_good()
        self.train_bpd = float(bpd.detach())
        self.log("train/nll", nll.mean().detach(), batch_size=x.shape[0])
        self.log("train/bpd", bpd.detach(), batch_size=x.shape[0], prog_bar=True)
        return bpd

    def _remember_good(self) -> None:
        """Copy the weights that just gave a finite loss (before this step's update), under the state
        dict's keys. Every step: one ``_foreach_copy_`` from the live tensors, looked up by (module,
        name) so a buffer that ``.to()`` replaced is followed (building ``state_dict()`` and copying
        tensor by tensor took about 2 % of a quick training step)."""
        with torch.no_grad():
            if self._good is None:
                state = self.state_dict()
                self._good = {k: v.detach().clone() for k, v in state.items()}
                self._good_sources = [(self.get_submodule(k.rpartition(".")[0]), k.rpartition(".")[2])
                                      for k in state]
            else:
                live = [getattr(module, name) for module, name in self._good_sources]
                torch._foreach_copy_(list(self._good.values()), live)
        self._good_step = int(self.global_step)

    def _diverged(self, value: float) -> None:
        where = "no finite step yet, nothing saved"
        if self._good is not None and self.failure_dir is not None:
            from denoise_bench.artifacts import atomic_write_bytes

            path = Path(self.failure_dir) / "last_good.pt"
            buf = io.BytesIO()
            torch.save({"state_dict": {k: v.cpu() for k, v in self._good.items()}, "step": self._good_step,
                        "config": OmegaConf.to_container(self.cfg, resolve=True)}, buf)
            atomic_write_bytes(path, buf.getvalue())
            where = f"last good weights (step {self._good_step}) saved to {path}"
        raise TrainingError(f"glow_prior: loss became {value} at step {int(self.global_step)}; {where}; "
                            "lower prior.lr, raise prior.warmup_steps or set prior.gradient_clip_val")

    def configure_optimizers(self):
        opt = adam(self.parameters(), lr=float(hp(self.cfg, "lr", "prior")))
        warmup = max(1, int(hp(self.cfg, "warmup_steps", "prior") or 1))
        # Glow's linear warm-up: lr·min(1, (step+1)/warmup)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # -- validation: bits/dim of held-out clean images ------------------------------------------
    def validation_step(self, batch: dict, batch_idx: int) -> None:
        x = crop_to_multiple(batch["clean"], 2 ** self.glow.n_levels)
        bpd = self.glow.bits_per_dim(x, dequantize=True)
        self.log("val/bpd", bpd.mean(), batch_size=x.shape[0], prog_bar=True)

    def on_validation_epoch_end(self) -> None:
        v = self.trainer.callback_metrics.get("val/bpd")
        if v is not None:
            self.val_bpd = float(v)

    # -- after training: a sample grid and a small report next to the weights -----------------
    def make_samples(self) -> Image.Image | None:
        if not self.image_size:
            return None
        n = int(OmegaConf.select(self.cfg, "run.n_samples", default=16))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(self.seed))
            x = self.glow.sample(n, float(OmegaConf.select(self.cfg, "run.sample_temperature", default=0.7)), image_size=int(self.image_size))
        return image_grid(x)

    def on_train_end(self) -> None:
        was_training = self.training
        self.eval()
        try:
            self.samples = self.make_samples()
        finally:
            self.train(was_training)
        if self.samples is not None and self.logger and hasattr(self.logger, "log_image"):
            try:
                self.logger.log_image(key="prior/samples", images=[self.samples])
            except Exception:  # noqa: BLE001 - a logger that cannot show images is not an error
                pass

    def report(self) -> dict:
        return {"train_bits_per_dim": self.train_bpd, "val_bits_per_dim": self.val_bpd,
                "steps": int(self.global_step),
                "parameters": sum(p.numel() for p in self.glow.parameters())}

    def write_report(self, folder: Path) -> None:
        from denoise_bench.artifacts import atomic_write_bytes, atomic_write_text

        atomic_write_text(folder / "report.json", json.dumps(self.report(), indent=2))
        if self.samples is not None:
            buf = io.BytesIO()
            self.samples.save(buf, format="PNG")
            atomic_write_bytes(folder / "samples.png", buf.getvalue())
