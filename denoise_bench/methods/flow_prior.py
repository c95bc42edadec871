"""``method=flow_prior``: unpaired denoising with a flow prior (Kattakinda & Rajagopalan, ICIP 2020).

Stage 1 — a Glow density p_C trained on CLEAN images (the shared ``glow`` prior artifact, trained
once per prior config, see ``denoise_bench.priors``), here on the part ``method.prior_part`` of the
training split.
Stage 2 — a ResNet denoiser D = R(N) trained on NOISY images only, from the disjoint part
``data.train_part`` of the split (the datamodule drops "clean" from its batches: ``unpaired``), by
minimising the paper's objective

    L(D) = ‖B(D) − B(N)‖² − λ(σ)·log p_C(D),

B a normalised Gaussian blur (``denoise_bench.blur``; ``method.blur=false``: B = identity).
λ from the MAP argument: B(N) = B(C) + B(n) with B(n) ~ N(0, σ²‖b‖₂²) per pixel, so
−log p(B(N)|D) = ‖B(D) − B(N)‖² / (2σ²‖b‖₂²) + const; multiplying the MAP objective by
2σ²‖b‖₂² gives λ = 2σ²‖b‖₂² (σ on [0, 1]), times ``method.lambda_mult`` = c (and, with
``method.lambda_sigma_ref`` = σ_ref, times σ/σ_ref: see ``map_lambda``).
The prior is frozen, in eval(), evaluated without dequantisation noise (a smooth function of D).
How much the prior should count depends on the prior itself (one trained with another seed wanted 4× the
rule's λ), so ``method.lambda_sure`` = [m1, …] trains one ResNet per λ = m·λ(rule) and keeps the one whose
SURE (``denoise_bench.sure``), an MSE estimate from the noisy validation images alone, is lowest.

Resolution: the prior models images of one size (its training crops = ``data.patch_size``). The
denoiser trains on crops of that size; larger images (validation) are scored by tiling them into
prior-size patches (the last row / column of tiles overlaps so every pixel is covered) and summing
their log-densities. The ResNet itself is fully convolutional: denoising needs no tiling.
"""
from __future__ import annotations

import hashlib
import math
from pathlib import Path

import torch
from omegaconf import OmegaConf

from denoise_bench.blur import GaussianBlur
from denoise_bench.errors import ConfigError, TrainingError
from denoise_bench.methods.base import DenoisingMethod
from denoise_bench.models.resnet_denoiser import ResNetDenoiser
from denoise_bench.hparams import hp
from denoise_bench.training.speed import adam
from denoise_bench.training.schedule import step_drop

RESNET_KEYS = ("blocks", "hidden", "norm", "slope", "input", "logit_eps")  # models/resnet_denoiser.py


def map_lambda(sigma255: torch.Tensor | float, blur_sq_norm: float, mult: float = 1.0,
               sigma_ref: float | None = None) -> torch.Tensor:
    """λ = c · 2σ²‖b‖₂², σ = sigma/255: the MAP weight of −log p for the summed squared error.

    With ``sigma_ref`` (0-255 scale) λ is further multiplied by sigma/sigma_ref: the prior counts
    less at low noise and as the MAP weight at sigma_ref (a weak prior over-smooths when weighted as
    a true density; ``method.lambda_sigma_ref``, chosen on validation images at quick scale)."""
    sigma = torch.as_tensor(sigma255, dtype=torch.float32)
    lam = float(mult) * 2.0 * (sigma / 255.0) ** 2 * float(blur_sq_norm)
    return lam if sigma_ref is None else lam * sigma / float(sigma_ref)


def tile_starts(length: int, tile: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering [0, length): a regular grid, the last tile
    moved back to end at the border (it overlaps its neighbour when ``tile`` does not divide)."""
    if length < tile:
        raise ConfigError(f"image side {length} is smaller than the prior's resolution {tile}")
    starts = list(range(0, length - tile + 1, tile))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


def tiles(x: torch.Tensor, size: int) -> torch.Tensor:
    """[B,C,H,W] → [B·T, C, size, size], T tiles per image (see ``tile_starts``)."""
    if tuple(x.shape[-2:]) == (size, size):
        return x
    rows, cols = tile_starts(x.shape[-2], size), tile_starts(x.shape[-1], size)
    patches = [x[:, :, r : r + size, c : c + size] for r in rows for c in cols]
    return torch.stack(patches, dim=1).flatten(0, 1)


def partition_overlaps(a, b) -> bool:
    return float(a[0]) < float(b[1]) and float(b[0]) < float(a[1])


def state_fingerprint(module: torch.nn.Module) -> str:
    """SHA-256 (16 hex) of a module's state: identifies exactly which prior a denoiser was trained with."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class FlowPriorDenoiser(DenoisingMethod):
    name = "flow_prior"
    order = 50  # place in tables and figures (methods/__init__.py)
    loads_weights = True
    trainable = True
    unpaired = True  # the datamodule drops "clean" from training batches

    def __init__(self, cfg=None, image_channels: int = 1):
        super().__init__(cfg, image_channels)
        c = self.cfg
        arch = OmegaConf.to_container(hp(c, "resnet"), resolve=True)
        if set(arch) != set(RESNET_KEYS):
            raise ConfigError(f"method.resnet: keys {sorted(arch)}; expected {sorted(RESNET_KEYS)}")
        self.resnet_arch = arch
        self.net = ResNetDenoiser(image_channels, **arch)
        self.blur = GaussianBlur(int(hp(c, "blur_size")), float(hp(c, "blur_sigma")),
                                 enabled=bool(hp(c, "blur")))
        self.lambda_mult = float(hp(c, "lambda_mult"))
        if not self.lambda_mult >= 0:
            raise ConfigError(f"method.lambda_mult={self.lambda_mult}: expected >= 0")
        ref = hp(c, "lambda_sigma_ref")
        self.lambda_sigma_ref = None if ref is None else float(ref)
        if self.lambda_sigma_ref is not None and not self.lambda_sigma_ref > 0:
            raise ConfigError(f"method.lambda_sigma_ref={ref}: expected a noise level > 0 (0-255 scale) or null")
        sure = hp(c, "lambda_sure")
        self.lambda_sure = None if sure is None else [float(m) for m in sure]
        if self.lambda_sure is not None and (not self.lambda_sure or min(self.lambda_sure) <= 0):
            raise ConfigError(f"method.lambda_sure={list(sure)}: expected a non-empty list of multipliers > 0, or null")
        self.lambda_choice: dict | None = None  # what the SURE choice measured (prepare)
        self._prior: tuple = ()  # (Glow,) kept outside the module tree: not trained, not in the artifact
        self.prior_key: dict | None = None
        self.prior_size: int | None = None
        if c.get("weights"):
            self.load_weights(str(c.weights))

    def load_weights(self, path: str) -> None:
        """``method.weights``: the ResNet saved by this method's training (an artifact's model.pt or a
        Lightning checkpoint). Its stored ``method.resnet`` (meta.json beside the file) must match
        ours: ``input`` or ``slope`` change the network without changing any shape."""
        import json

        from denoise_bench.weights import load_into_net, read_state_dict

        p = Path(path).expanduser()
        state = read_state_dict(p, "method.weights")
        meta = p.parent / "meta.json"
        if meta.is_file():
            try:
                config = json.loads(meta.read_text()).get("config") or {}
                stored = config.get("model") or config.get("method") or {}
            except (json.JSONDecodeError, AttributeError):
                stored = {}
            if stored.get("name") not in (None, self.name):
                raise ConfigError(f"{p}: weights of method={stored.get('name')}, not {self.name} (method.weights)")
            theirs = stored.get("resnet") or {}
            diff = [f"{k}={theirs[k]} (ours {v})" for k, v in self.resnet_arch.items() if k in theirs and theirs[k] != v]
            if diff:
                raise ConfigError(f"{p}: a flow_prior ResNet of another config ({', '.join(diff)}); "
                                  "set method.resnet.* to match it (method.weights)")
        load_into_net(self, state, p, "method.resnet.* and data.channels")

    # -- stage 1: the prior --------------------------------------------------------------------
    def prior_data_cfg(self, cfg):
        """The run config with ``data.train_part`` = ``method.prior_part`` (clean images of the prior)."""
        prior_part = list(hp(self.cfg, "prior_part"))
        own_part = cfg.data.get("train_part")
        if own_part is None or partition_overlaps(prior_part, own_part):
            raise ConfigError(
                f"flow_prior: the prior's images (method.prior_part={prior_part}) and the denoiser's noisy "
                f"images (data.train_part={None if own_part is None else list(own_part)}) must be disjoint "
                "parts of the training split, e.g. [0, 0.5] and [0.5, 1]")
        out = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
        out.data.train_part = prior_part
        return out

    def prepare(self, ctx) -> None:
        """Load (or train once, via the artifact store) the clean-image Glow prior; freeze it.
        With ``method.weights`` the ResNet is already trained: denoising needs no prior."""
        if self.has_weights:
            return
        from denoise_bench.priors.store import freeze, load_or_train_prior, prior_data_config

        if self.lambda_sure is not None and (ctx.train_noise or {}).get("clip"):
            raise ConfigError("method.lambda_sure: SURE needs unclipped Gaussian noise and the training noise is clipped "
                              "(noise.clip=true); set method.lambda_sure=null and choose method.lambda_mult")
        cfg = self.prior_data_cfg(ctx.cfg)
        data_cfg = prior_data_config(cfg)
        crop = ctx.cfg.data.get("patch_size")
        if data_cfg.get("patch_size") is None or crop is None or int(crop) < int(data_cfg.patch_size):
            raise ConfigError(f"flow_prior: data.patch_size={crop} (the denoiser's training crops) must be at least "
                              f"the prior's resolution {data_cfg.get('patch_size')} (prior.image_size); set it equal")
        prior = load_or_train_prior(ctx, cfg)
        used = ctx.artifacts_used[-1] if ctx.artifacts_used else {}  # the entry load_or_train_prior added
        store_key = Path(used["path"]).name if used.get("status") in ("trained", "loaded") else "prior.weights"
        self.use_prior(freeze(prior), int(data_cfg.patch_size), store_key)
        if self.lambda_sure is not None:
            self.choose_lambda_by_sure(ctx)

    @property
    def has_weights(self) -> bool:
        """Given weights, or the ResNet that the SURE choice kept: no training by the runner then."""
        return super().has_weights or self.lambda_choice is not None

    def choose_lambda_by_sure(self, ctx) -> None:
        """``method.lambda_sure`` = [m1, m2, …]: train one ResNet per λ = m·λ(rule) (each an ordinary
        flow_prior artifact, ``method.lambda_mult`` = m·c, reused by later cells) and keep the one whose
        SURE (``denoise_bench.sure``) on the NOISY validation images is lowest: λ is chosen for this
        prior without a clean image. Refused for clipped noise, where SURE is biased."""
        import lightning as L

        from denoise_bench.sure import sure_mse

        dm, seed = ctx.datamodule, int(ctx.cfg.seed)
        val = list(dm.val_dataloader())
        if not val:
            raise ConfigError("method.lambda_sure: the validation split has no images to compute SURE on")
        g = torch.Generator().manual_seed(seed)
        probes = [torch.randn(b["noisy"].shape, generator=g) for b in val]
        scores = []
        for m in self.lambda_sure:
            cfg = OmegaConf.merge(self.cfg, {"lambda_mult": self.lambda_mult * m, "lambda_sure": None})
            L.seed_everything(seed, verbose=False)  # each candidate starts where a cell of its own would
            candidate = FlowPriorDenoiser(cfg, self.image_channels)
            candidate._prior, candidate.prior_size, candidate.prior_key = self._prior, self.prior_size, self.prior_key
            before = len(ctx.artifacts_used)
            ctx.fit_method(candidate)
            entry = ctx.artifacts_used[-1] if len(ctx.artifacts_used) > before else {}  # (rank 0 records)
            candidate.eval()
            mse = torch.cat([sure_mse(candidate.net, b["noisy"], b["sigma"] / 255.0, p) for b, p in zip(val, probes)])
            scores.append((float(mse.mean()), m, candidate, entry))
        best = min(scores, key=lambda s: s[0])
        for mse, m, _, entry in scores:
            entry.update({"lambda_mult": self.lambda_mult * m, "val_sure_mse": mse, "chosen": m == best[1]})
        self.net.load_state_dict(best[2].net.state_dict())
        if best[3].get("path"):
            ctx.copy_curve(Path(best[3]["path"]) / "curve.csv", self.name)  # the kept ResNet's curve in the cell
        table = ", ".join(f"x{m:g}: {-10 * math.log10(max(mse, 1e-12)):.2f} dB" for mse, m, _, _ in scores)
        print(f"[flow_prior] lambda by SURE on {sum(len(b['noisy']) for b in val)} noisy validation images "
              f"(SURE PSNR per multiplier: {table}); kept x{best[1]:g}", flush=True)
        self.lambda_choice = {"multipliers": self.lambda_sure, "val_sure_mse": [s[0] for s in scores],
                              "chosen": best[1], "lambda_mult": self.lambda_mult * best[1]}

    def use_prior(self, prior, size: int, store_key: str | None = None) -> None:
        """Attach a frozen prior of resolution ``size``; the denoiser's artifact key then names it
        by the prior's store entry (``glow_prior-<key>``, or the ``prior.weights`` file) and the
        fingerprint of its exact weights."""
        self._prior = (prior,)
        self.prior_size = int(size)
        self.prior_key = {"key": store_key, "weights_sha256": state_fingerprint(prior)}

    @property
    def prior(self):
        if not self._prior:
            raise TrainingError("flow_prior: the prior is not loaded (prepare(ctx) must run before training)")
        prior = self._prior[0]
        if next(prior.parameters()).device != self.device:
            prior.to(self.device)
        return prior

    def artifact_config(self) -> dict:
        """Method config + the exact prior it is trained against (its weights' fingerprint)."""
        if self.prior_key is None:
            raise TrainingError("flow_prior: artifact_config() needs the prior; call prepare(ctx) first")
        return {**super().artifact_config(), "prior": self.prior_key}

    # -- the objective -------------------------------------------------------------------------
    def prior_log_prob(self, images: torch.Tensor) -> torch.Tensor:
        """log p_C per image [B] (nats, no dequantisation noise), summed over prior-size tiles."""
        b = images.shape[0]
        patches = tiles(images, self.prior_size)
        return self.prior.log_prob(patches, dequantize=False).reshape(b, -1).sum(1)

    def lam(self, sigma: torch.Tensor) -> torch.Tensor:
        if torch.isnan(sigma).any():
            raise ConfigError("flow_prior needs the noise level for λ(σ); real noise (sigma=real) is not supported")
        return map_lambda(sigma, self.blur.sq_norm, self.lambda_mult, self.lambda_sigma_ref).to(sigma.device)

    def objective(self, denoised: torch.Tensor, noisy: torch.Tensor, sigma: torch.Tensor) -> dict:
        """Per-image terms of L = ‖B(D) − B(N)‖² − λ·log p_C(D), [B] each."""
        data = ((self.blur(denoised) - self.blur(noisy)) ** 2).flatten(1).sum(1)
        log_p = self.prior_log_prob(denoised)
        lam = self.lam(sigma)
        return {"loss": data - lam * log_p, "data": data, "log_p": log_p}

    # -- Lightning -----------------------------------------------------------------------------
    def denoise(self, noisy, sigma):
        return self.net(noisy)

    def training_step(self, batch, batch_idx):
        if "clean" in batch:  # the datamodule must drop it (unpaired); refuse rather than risk a leak
            raise TrainingError("flow_prior: a training batch holds clean images; the method is unpaired")
        noisy = batch["noisy"]
        terms = self.objective(self.net(noisy), noisy, batch["sigma"])
        pixels = noisy[0].numel()
        loss = self.check_finite(terms["loss"].mean() / pixels)  # per pixel: a readable scale
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/data", terms["data"].mean() / pixels)
        self.log("train/bpd", -terms["log_p"].mean() / (pixels * math.log(2.0)))
        return loss

    def validation_step(self, batch, batch_idx):
        """The unsupervised objective on noisy validation images (never the clean ones)."""
        noisy = batch["noisy"]
        terms = self.objective(self.net(noisy), noisy, batch["sigma"])
        self.log("val/loss", terms["loss"].mean() / noisy[0].numel(), batch_size=noisy.shape[0],
                 prog_bar=True, sync_dist=True)

    def configure_optimizers(self):
        c = self.cfg
        opt = adam(self.net.parameters(), lr=float(hp(c, "lr")))
        # lr x lr_drop for the last part of training (DnCNN paper: 1e-3, then 1e-4 from epoch 30 of 50);
        # under trainer.budget_minutes the drop comes at that fraction of the budget if it comes first
        sched = step_drop(self, opt, float(hp(c, "lr_drop_at")), float(hp(c, "lr_drop")))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
