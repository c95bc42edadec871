"""Model complexity for the tables: GFLOPs of one denoising pass per 256×256 image (FDN Table V).

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` (a multiply-add = 2 FLOPs;
convolutions and matrix products only) while ``method.denoise`` runs once. The count is taken on a
``count_at``² input and scaled by (256/count_at)²: exact for fully convolutional networks, whose
FLOPs are proportional to the number of pixels (FDN, DnCNN), and far cheaper than a 256² pass on
a CPU. Methods without parameters (noisy, BM3D: not PyTorch) and methods that optimise at test
time (``grad_at_test``: the count would depend on the iteration budget) get None.
"""
from __future__ import annotations

import torch


def denoise_gflops(method, channels: int, size: int = 256, count_at: int = 64) -> float | None:
    """GFLOPs of ``method.denoise`` for one ``channels``×``size``×``size`` image (None: not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    if method.count_parameters() == 0 or getattr(method, "grad_at_test", False):
        return None
    param = next(method.parameters())
    x = torch.rand(1, int(channels), count_at, count_at, generator=torch.Generator().manual_seed(0))
    x = x.to(device=param.device, dtype=param.dtype)
    sigma = torch.full((1,), 25.0, device=param.device)
    was_training = method.training
    method.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            method.denoise(x, sigma)
    except Exception as e:  # noqa: BLE001 - an auxiliary number must never fail a finished cell
        print(f"[complexity] {method.name}: FLOPs not counted ({type(e).__name__}: {e})")
        return None
    finally:
        method.train(was_training)
    return counter.get_total_flops() * (size / count_at) ** 2 / 1e9
