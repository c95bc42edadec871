"""``method=dncnn``: DnCNN (Zhang et al., TIP 2017), residual learning of the noise.

DnCNN-S (one model per sigma, depth 17) and DnCNN-B (blind, sigma ~ U[0,55], depth 20):
conv+ReLU, (depth-2) × [conv (no bias) + BN + ReLU], conv; output = noisy − net(noisy).
The layer list is named ``dncnn`` so published state dicts (keys ``dncnn.{i}.*``, optionally
prefixed ``module.``) load directly with ``method.weights=PATH``.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from denoise_bench.errors import ConfigError
from denoise_bench.methods.base import DenoisingMethod


class DnCNNNet(nn.Module):
    def __init__(self, image_channels: int = 1, depth: int = 17, features: int = 64, bias: bool = False):
        super().__init__()
        layers = [nn.Conv2d(image_channels, features, 3, padding=1, bias=bias), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(features, features, 3, padding=1, bias=False),
                       nn.BatchNorm2d(features, eps=1e-4, momentum=0.95),
                       nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(features, image_channels, 3, padding=1, bias=bias))
        self.dncnn = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.orthogonal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        """The predicted noise (residual)."""
        return self.dncnn(noisy)


def read_state_dict(path: str) -> dict:
    """A published state dict with the ``module.`` (DataParallel) prefix removed."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"{p}: weights file not found (method.weights)")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise ConfigError(f"{p}: cannot read weights ({type(e).__name__}); expected a PyTorch state dict") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or not state:
        raise ConfigError(f"{p}: expected a state dict (parameter name -> tensor)")
    return {k.removeprefix("module.").removeprefix("net."): v for k, v in state.items()}


def architecture_of(state: dict, path: str = "weights") -> dict:
    """(image_channels, depth, features, bias) of a DnCNN state dict, read off its conv weights."""
    convs = sorted((int(k.split(".")[1]) for k in state if k.startswith("dncnn.") and k.endswith(".weight")
                    and state[k].dim() == 4))
    if not convs:
        raise ConfigError(f"{path}: no 'dncnn.<i>.weight' conv weights; not a DnCNN state dict")
    first = state[f"dncnn.{convs[0]}.weight"]
    return {"image_channels": int(first.shape[1]), "depth": len(convs), "features": int(first.shape[0]),
            "bias": f"dncnn.{convs[0]}.bias" in state}


def load_state_dict_file(net: nn.Module, path: str) -> None:
    """Load a published state dict (keys with or without ``module.``); refuse a mismatching one."""
    p = Path(path).expanduser()
    state = read_state_dict(path)
    own = net.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in state if k in own and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        raise ConfigError(
            f"{p}: does not fit this network (missing {missing[:3]}, unexpected {unexpected[:3]}, "
            f"shape mismatch {wrong[:3]}); check method.depth / method.features / data.channels"
        )
    net.load_state_dict(state, strict=False)


class DnCNN(DenoisingMethod):
    name = "dncnn"
    trainable = True
    loads_weights = True

    def __init__(self, cfg=None, image_channels: int = 1):
        super().__init__(cfg, image_channels)
        c = self.cfg
        arch = {"image_channels": image_channels, "depth": int(c.get("depth", 17)),
                "features": int(c.get("features", 64)), "bias": bool(c.get("bias", False))}
        if c.get("weights"):  # published weights fix the architecture, whatever the scale says
            arch = architecture_of(read_state_dict(c.weights), c.weights)
            if arch["image_channels"] != image_channels:
                raise ConfigError(f"{c.weights}: weights are for {arch['image_channels']}-channel images, "
                                  f"the test images have {image_channels} (data.channels)")
        self.net = DnCNNNet(**arch)
        if c.get("weights"):
            load_state_dict_file(self.net, c.weights)

    def denoise(self, noisy, sigma):
        return noisy - self.net(noisy)

    def training_step(self, batch, batch_idx):
        # the DnCNN paper's loss: half the summed squared residual error per patch, averaged
        residual = self.net(batch["noisy"])
        target = batch["noisy"] - batch["clean"]
        loss = 0.5 * ((residual - target) ** 2).sum() / batch["noisy"].shape[0]
        self.check_finite(loss)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        c = self.cfg
        opt = torch.optim.Adam(self.parameters(), lr=float(c.get("lr", 1e-3)))
        steps = int(self.trainer.max_steps) if self.trainer and self.trainer.max_steps > 0 else 1
        # lr 1e-3, then 1e-4 for the last part of training (paper: epoch 30 of 50)
        drop_at = max(1, int(steps * float(c.get("lr_drop_at", 0.6))))
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[drop_at], gamma=float(c.get("lr_drop", 0.1)))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
