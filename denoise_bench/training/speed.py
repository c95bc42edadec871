"""CPU fast paths that leave the numbers as they are (up to float rounding).

Measured on the 2-core CPU (``benchmarks/bench_training_speed.py``; profiles in benchmarks/RESULTS.md):
the training steps of FDN and the Glow prior spend about 70 % of their time in oneDNN convolutions,
so what pays is around them:

- ``channels_last``: convolution weights in NHWC let oneDNN skip the layout reorders that NCHW tensors
  need on every call (β-MAP on one 512² image: 0.67 → 0.43 s per iteration). The flows take their input
  into that layout and keep it through every layer (``flows/base.py: to_conv_layout``).
- ``adam``: PyTorch's fused Adam, one kernel over all parameters instead of a loop over tensors (FDN
  quick: 4.4 → 5.3 training steps/s on its own).
- ``keep_freed_memory``: glibc hands every block above 32 MiB back to the OS when it is freed, so a
  network whose activations are that large faults every page in again on every layer of every call
  (DnCNN-S on four 256² images: 1.03 M page faults per call, about 40 % of the time; batch 4 was
  slower per image than batch 1). Serving large blocks from the heap and keeping freed memory lets
  the next layer reuse the pages.
"""
from __future__ import annotations

import ctypes
import sys

import torch

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_kept = False


def adam(params, **kwargs) -> torch.optim.Adam:
    """``torch.optim.Adam`` with the fused kernel where every parameter allows it (float, CPU or CUDA)."""
    params = list(params)
    tensors = [p for group in params for p in (group["params"] if isinstance(group, dict) else [group])]
    fused = bool(tensors) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in tensors)
    return torch.optim.Adam(params, fused=fused or None, **kwargs)


def channels_last(module: torch.nn.Module) -> torch.nn.Module:
    """Convolution weights (every 4-d parameter and buffer) in channels-last layout, on the CPU only."""
    if any(p.device.type != "cpu" for p in module.parameters()):
        return module
    return module.to(memory_format=torch.channels_last)


def keep_freed_memory() -> bool:
    """glibc: no mmap for large blocks, no trimming of the heap (see the module docstring). Once per
    process; True when applied (False elsewhere, e.g. macOS or musl, where nothing changes)."""
    global _kept
    if _kept:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    except (OSError, AttributeError):
        return False
    _kept = bool(ok)
    return _kept
