"""``method=fdn``: Flow-based Denoising Network (Liu et al., Sensors 2022; seed 002).

FDN learns the density of *noisy* images with an invertible network f (``models/fdn_net.py``),
then denoises by dropping the noise part of the latent: z = f(y) = [z_C, z_N], x̂ = f⁻¹([z_C, 0]).
Training minimises eq. 12,

    L = λ1·L_dis + λ2·L_rec,
    L_dis = −log p(y) with z ~ N(0, I)  (eq. 10, all log-dets; in nats per dimension of y),
    L_rec = ‖f⁻¹([z_C, 0]) − x‖₁          (eq. 11; mean absolute error per pixel and channel),

so both terms are per-dimension averages and λ1, λ2 do not depend on the crop or batch size.
Adam 2e-4 halved every ``lr_halve_every`` steps (paper: 50k), gradient-norm clipping
(``grad_clip``). Noise modes come from the runner: a fixed sigma, ``sigma=blind`` (train and test
on σ ~ U[0,55] per image), ``method.train_sigma=blind`` (blind model, fixed-sigma test) and real
noise (``data.paired=true``: the noisy images come from disk).
"""
from __future__ import annotations

import torch

from denoise_bench.errors import ConfigError
from denoise_bench.methods.base import DenoisingMethod
from denoise_bench.models.fdn_net import FDNNet, clean_channel_count
from denoise_bench.hparams import hp
from denoise_bench.training.speed import adam
from denoise_bench.training.schedule import drop_factor


class FDN(DenoisingMethod):
    name = "fdn"
    order = 40  # place in tables and figures (methods/__init__.py)
    trainable = True
    loads_weights = True

    def __init__(self, cfg=None, image_channels: int = 3):
        super().__init__(cfg, image_channels)
        c = self.cfg
        try:
            self.net = FDNNet(image_channels, flow_blocks=int(hp(c, "flow_blocks")),
                              sof_blocks=int(hp(c, "sof_blocks")), split_len=hp(c, "split_len"),
                              growth=int(hp(c, "growth")), clamp=float(hp(c, "clamp")),
                              downscale=str(hp(c, "downscale")), lu=bool(hp(c, "lu")),
                              init=str(hp(c, "init")))
            self.n_clean = clean_channel_count(self.net.out_channels, float(hp(c, "zc_ratio")))
        except ValueError as e:
            raise ConfigError(f"method=fdn: {e}") from None
        self.lambda_dis = float(hp(c, "lambda_dis"))
        self.lambda_rec = float(hp(c, "lambda_rec"))
        if c.get("weights"):
            self._load_weights(str(c.weights))

    def _load_weights(self, path: str) -> None:
        """A state dict saved by this method (an artifact's model.pt, or a Lightning checkpoint)."""
        from denoise_bench.weights import load_into_net, read_state_dict

        load_into_net(self, read_state_dict(path, "method.weights"), path,
                      "flow_blocks / sof_blocks / growth / split_len / lu / data.channels")

    # -- the model --------------------------------------------------------------------------------
    def losses(self, noisy: torch.Tensor, clean: torch.Tensor) -> dict[str, torch.Tensor]:
        """The two terms of eq. 12 and their weighted sum (batch means)."""
        nll, restored = self.net.nll_and_restore(noisy, self.n_clean)
        l_dis, l_rec = nll.mean(), (restored - clean).abs().mean()
        return {"l_dis": l_dis, "l_rec": l_rec, "loss": self.lambda_dis * l_dis + self.lambda_rec * l_rec}

    def denoise(self, noisy, sigma):
        return self.net.denoise(noisy, self.n_clean)

    # -- training ---------------------------------------------------------------------------------
    def training_step(self, batch, batch_idx):
        if "clean" not in batch:
            raise ConfigError("method=fdn is supervised: it needs clean targets (L_rec, eq. 11)")
        parts = self.losses(batch["noisy"], batch["clean"])
        loss = self.check_finite(parts["loss"])
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/l_dis", parts["l_dis"])
        self.log("train/l_rec", parts["l_rec"])
        return loss

    def configure_optimizers(self):
        c = self.cfg
        opt = adam(self.parameters(), lr=float(hp(c, "lr")),
                               betas=tuple(hp(c, "betas")))
        every = max(1, int(hp(c, "lr_halve_every")))
        drop_at, drop = hp(c, "lr_drop_at"), float(hp(c, "lr_drop"))
        if drop_at is None:  # the paper's schedule: lr halved every lr_halve_every steps
            sched = torch.optim.lr_scheduler.StepLR(opt, step_size=every, gamma=0.5)
        else:  # and lr x lr_drop for the last part of training (or of trainer.budget_minutes)
            late = drop_factor(self, float(drop_at), drop)
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5 ** (step // every) * late(step))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        """``method.grad_clip`` (a gradient-norm bound) replaces the trainer's clipping when it is set."""
        clip = hp(self.cfg, "grad_clip")
        if clip is None:
            self.clip_gradients(optimizer, gradient_clip_val=gradient_clip_val,
                                gradient_clip_algorithm=gradient_clip_algorithm)
            return
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        torch.nn.utils.clip_grad_norm_(params, float(clip))
