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


def ssim_per_image(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Gaussian-window SSIM (11×11, σ 1.5, data_range 1), mean over channels and valid pixels.

    The SSIM map is averaged over the pixels whose window lies inside the image, as in Wang et
    al.'s reference code and scikit-image; torchmetrics' own mean also counts the reflect-padded
    border, so we take its full map and drop the border ourselves.
    """
    _, ssim_map = structural_similarity_index_measure(
        x, ref, gaussian_kernel=True, sigma=1.5, kernel_size=11, data_range=1.0, reduction="none",
        return_full_image=True,
    )
    r = SSIM_RADIUS
    if ssim_map.shape[-1] > 2 * r and ssim_map.shape[-2] > 2 * r:
        ssim_map = ssim_map[..., r:-r, r:-r]
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
