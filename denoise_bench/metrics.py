"""Per-image PSNR / SSIM / MSE with the protocol switches in one place.

Every table in the suite is the mean over images of these per-image values (not the PSNR of a
pooled MSE). Switches (``metrics.*`` in the config, printed in every caption):

- ``quantize``: round both images to 8 bits first, as the DnCNN and InvDN evaluation code does;
- ``y_channel``: measure RGB images on the BT.601 luma channel only;
- ``border``: ignore this many pixels at each edge.

Colour images also get ``psnr_y`` / ``ssim_y``, measured on the BT.601 luma whatever
``y_channel`` says, so RGB and Y numbers sit side by side: papers from the super-resolution /
restoration line (KAIR, BasicSR) report Y, the denoising papers mostly RGB. The luma follows
BasicSR's ``calculate_psnr(test_y_channel=True)``: Y = (16 + 65.481 R + 128.553 G + 24.966 B)/255
on [0, 1] images after the same clamp / uint8 rounding, not rounded again (KAIR's ``rgb2ycbcr``
on uint8 images rounds Y to integers, which moves PSNR by a few hundredths of a dB).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torchmetrics.functional.image import structural_similarity_index_measure

# ITU-R BT.601 luma for images in [0, 1], as MATLAB's rgb2ycbcr (offset 16/255, range 219/255)
_Y_WEIGHTS = torch.tensor([65.481, 128.553, 24.966]) / 255.0
_Y_OFFSET = 16.0 / 255.0


@dataclass(frozen=True)
class MetricProtocol:
    quantize: bool = False
    y_channel: bool = False
    border: int = 0
    clamp: bool = True  # clamp to [0,1] first; false measures an estimate as is (an unclipped noisy input)

    @classmethod
    def from_cfg(cls, cfg) -> "MetricProtocol":
        return cls(
            quantize=bool(cfg.get("quantize", False)),
            y_channel=bool(cfg.get("y_channel", False)),
            border=int(cfg.get("border", 0)),
            clamp=bool(cfg.get("clamp", True)),
        )

    def describe(self) -> str:
        return (
            f"PSNR peak 1 per image then averaged; SSIM gaussian 11/1.5, data_range 1; "
            f"uint8 rounding {'on' if self.quantize else 'off'}; "
            f"{'Y channel' if self.y_channel else 'all channels'}; border {self.border}px"
            + ("" if self.clamp else "; estimates not clamped to [0,1]")
        )


def prepare(x: torch.Tensor, protocol: MetricProtocol) -> torch.Tensor:
    """Clamp to [0,1] (unless ``protocol.clamp`` is off) and apply the protocol switches to a batch [B,C,H,W]."""
    x = x.detach().to(torch.float64)
    x = x.clamp(0.0, 1.0) if protocol.clamp else x
    if protocol.quantize:
        x = torch.round(x * 255.0) / 255.0
    if protocol.y_channel and x.shape[1] == 3:
        w = _Y_WEIGHTS.to(x).view(1, 3, 1, 1)
        x = (x * w).sum(dim=1, keepdim=True) + _Y_OFFSET
    b = protocol.border
    if b > 0:
        x = x[..., b:-b, b:-b]
    return x


def mse_per_image(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return ((x - ref) ** 2).flatten(1).mean(dim=1)


def psnr_per_image(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """10·log10(1 / MSE) per image, peak 1 (identical images give +inf)."""
    return 10.0 * torch.log10(1.0 / mse_per_image(x, ref))


SSIM_RADIUS = 5  # 11×11 gaussian window


def _gaussian_window(dtype, device) -> torch.Tensor:
    """The normalised 1-D Gaussian (σ 1.5, 11 taps); its outer product is the 11×11 SSIM window."""
    t = torch.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=dtype, device=device)
    g = torch.exp(-(t ** 2) / (2 * 1.5 ** 2))
    return g / g.sum()


def _filter_valid(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filtering of [N,1,H,W], only where the window lies inside the image."""
    x = F.conv2d(x, g.view(1, 1, 1, -1))
    return F.conv2d(x, g.view(1, 1, -1, 1))


def ssim_per_image(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Gaussian-window SSIM (11×11, σ 1.5, data_range 1; Wang et al. 2004, eq. 13), mean over
    channels and over the pixels whose window lies inside the image, as in Wang et al.'s reference
    code and scikit-image. The window is applied separably (two 11-tap passes): a full 11×11
    convolution in float64 needs ~121× the image in scratch memory (2.5 GB for two 512² images)."""
    b, c, h, w = x.shape
    if h <= 2 * SSIM_RADIUS or w <= 2 * SSIM_RADIUS:  # no valid window: fall back to the padded map
        _, ssim_map = structural_similarity_index_measure(
            x, ref, gaussian_kernel=True, sigma=1.5, kernel_size=11, data_range=1.0, reduction="none",
            return_full_image=True)
        return ssim_map.flatten(1).mean(dim=1)
    g = _gaussian_window(x.dtype, x.device)
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    stack = torch.cat([x, ref, x * x, ref * ref, x * ref]).reshape(5 * b * c, 1, h, w)
    mu_x, mu_y, xx, yy, xy = _filter_valid(stack, g).reshape(5, b, c, h - 2 * SSIM_RADIUS, w - 2 * SSIM_RADIUS)
    var_x, var_y, cov = xx - mu_x ** 2, yy - mu_y ** 2, xy - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return ssim_map.flatten(1).mean(dim=1)


def image_metrics(
    estimate: torch.Tensor, clean: torch.Tensor, protocol: MetricProtocol = MetricProtocol()
) -> dict[str, torch.Tensor]:
    """PSNR, SSIM and MSE of each image of a batch, each a float64 tensor of shape [B]; for colour
    images also ``psnr_y`` and ``ssim_y`` (BT.601 luma, see the module docstring)."""
    x, ref = prepare(estimate, protocol), prepare(clean, protocol)
    out = {
        "psnr": psnr_per_image(x, ref),
        "ssim": ssim_per_image(x, ref),
        "mse": mse_per_image(x, ref),
    }
    if estimate.shape[1] == 3 and protocol.y_channel:  # already measured on Y
        out["psnr_y"], out["ssim_y"] = out["psnr"], out["ssim"]
    elif estimate.shape[1] == 3:  # colour: the luma metrics side by side
        luma = replace(protocol, y_channel=True)
        xy, refy = prepare(estimate, luma), prepare(clean, luma)
        out["psnr_y"], out["ssim_y"] = psnr_per_image(xy, refy), ssim_per_image(xy, refy)
    return out
