"""``method=dncnn``: DnCNN (Zhang et al., TIP 2017), residual learning of the noise.

DnCNN-S (one model per sigma, depth 17) and DnCNN-B (blind, sigma ~ U[0,55], depth 20):
conv+ReLU, (depth-2) × [conv (no bias) + BN + ReLU], conv; output = noisy − net(noisy).

``method.weights=PATH`` loads the weights people have; the architecture is read off the file
(depth, features, channels, which convolutions have a bias, whether there is batch norm):

- ours and SaoYan's DnCNN-PyTorch (the shared ``DnCNN-S-*.pth`` / ``DnCNN-B.pth``): keys
  ``dncnn.{i}.*``, BN after each middle conv, no conv bias (``method.bias=true``: both end convs);
- the authors' PyTorch port (cszn/DnCNN ``TrainingCodes/dncnn_pytorch``): ``dncnn.{i}.*``, a bias on
  the first conv only, BN (eps 1e-4) after each middle conv;
- KAIR's model zoo (``dncnn_15/25/50.pth``, ``dncnn_gray_blind.pth``...): keys ``model.{i}.*``, BN
  merged into the convolutions (every conv has a bias, no BN layer), ReLUs at odd indices.

Keys may carry ``module.`` (DataParallel) or ``net.`` (our artifacts, Lightning checkpoints).
Training builds ours: ``method.bias`` puts a bias on both end convolutions (default false).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from denoise_bench.errors import ConfigError
from denoise_bench.methods.base import DenoisingMethod
from denoise_bench.weights import read_state_dict, sha256_file
from denoise_bench.hparams import hp
from denoise_bench.training.speed import adam
from denoise_bench.training.schedule import step_drop

LAYOUTS = ("ours/SaoYan's 'dncnn.<i>.*' with BN, cszn's PyTorch port 'dncnn.<i>.*' with BN and a first-conv "
           "bias, or KAIR's model zoo 'model.<i>.*' with BN merged into the conv biases")


class DnCNNNet(nn.Module):
    """conv(+bias_first) ReLU, (depth−2) × [conv(+bias_middle) (BN) ReLU], conv(+bias_last).

    ``bias_middle`` defaults to ``not batch_norm``: a BN layer makes a bias redundant, and a net
    whose BN was merged into its convolutions (KAIR) keeps it as their bias. Without BN the layer
    indices are KAIR's (convs at even indices), with it they are the paper code's.
    """

    def __init__(self, image_channels: int = 1, depth: int = 17, features: int = 64, bias_first: bool = False,
                 bias_last: bool = False, batch_norm: bool = True, bias_middle: bool | None = None):
        super().__init__()
        bias_middle = (not batch_norm) if bias_middle is None else bias_middle
        layers = [nn.Conv2d(image_channels, features, 3, padding=1, bias=bias_first), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers.append(nn.Conv2d(features, features, 3, padding=1, bias=bias_middle))
            if batch_norm:
                layers.append(nn.BatchNorm2d(features, eps=1e-4, momentum=0.95))
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Conv2d(features, image_channels, 3, padding=1, bias=bias_last))
        self.dncnn = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.orthogonal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, noisy: torch.Tensor) -> torch.Tensor:
        """The predicted noise (residual)."""
        return self.dncnn(noisy)


def normalise_keys(state: dict, path) -> dict:
    """Keys as ``dncnn.{i}.*``: drop ``net.`` (our artifacts), rename KAIR's ``model.``."""
    out = {}
    for k, v in state.items():
        k = k.removeprefix("net.")
        if k.startswith("model."):
            k = "dncnn." + k[len("model."):]
        if not k.startswith("dncnn.") or not k.split(".")[1].isdigit():
            raise ConfigError(f"{path}: not a DnCNN state dict (key {k!r}); expected {LAYOUTS} (method.weights)")
        out[k] = v
    return out


def architecture_of(state: dict, path="weights") -> dict:
    """``DnCNNNet`` arguments read off a state dict with ``dncnn.{i}.*`` keys (``normalise_keys``)."""
    convs = sorted(int(k.split(".")[1]) for k, v in state.items() if k.endswith(".weight") and v.dim() == 4)
    if not convs:
        raise ConfigError(f"{path}: no convolution weights; not a DnCNN state dict, expected {LAYOUTS} "
                          "(method.weights)")
    first = state[f"dncnn.{convs[0]}.weight"]
    has_bias = [f"dncnn.{i}.bias" in state for i in convs]
    return {"image_channels": int(first.shape[1]), "depth": len(convs), "features": int(first.shape[0]),
            "bias_first": has_bias[0], "bias_last": has_bias[-1],
            "batch_norm": any(k.endswith(".running_mean") for k in state), "bias_middle": any(has_bias[1:-1])}


def load_into(net: nn.Module, state: dict, path) -> None:
    """Load a normalised state dict, refusing (one line) one whose keys or shapes differ."""
    own = net.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in state if k in own and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        raise ConfigError(f"{path}: fits none of the DnCNN layouts ({LAYOUTS}): missing {missing[:3]}, "
                          f"unexpected {unexpected[:3]}, shape mismatch {wrong[:3]} (method.weights)")
    net.load_state_dict(state, strict=False)


def load_weights(path, image_channels: int) -> DnCNNNet:
    """The network stored in ``path`` (any of the layouts above), built to fit the file."""
    p = Path(str(path)).expanduser()
    state = normalise_keys(read_state_dict(p, "method.weights"), p)
    arch = architecture_of(state, p)
    if arch["image_channels"] != image_channels:
        raise ConfigError(f"{p}: weights are for {arch['image_channels']}-channel images, "
                          f"the test images have {image_channels} (data.channels)")
    net = DnCNNNet(**arch)
    load_into(net, state, p)
    return net


class DnCNN(DenoisingMethod):
    name = "dncnn"
    order = 20  # place in tables and figures (methods/__init__.py)
    trainable = True
    loads_weights = True

    def __init__(self, cfg=None, image_channels: int = 1):
        super().__init__(cfg, image_channels)
        c = self.cfg
        self.weights_sha256 = None
        if c.get("weights"):  # published weights fix the architecture, whatever the scale says
            self.net = load_weights(c.weights, image_channels)
            self.weights_sha256 = sha256_file(c.weights)
        else:
            bias = bool(hp(c, "bias"))
            self.net = DnCNNNet(image_channels, int(hp(c, "depth")), int(hp(c, "features")),
                                bias_first=bias, bias_last=bias)

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
        opt = adam(self.parameters(), lr=float(hp(c, "lr")))
        # lr x lr_drop for the last part of training (DnCNN paper: 1e-3, then 1e-4 from epoch 30 of 50);
        # under trainer.budget_minutes the drop comes at that fraction of the budget if it comes first
        sched = step_drop(self, opt, float(hp(c, "lr_drop_at")), float(hp(c, "lr_drop")))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
