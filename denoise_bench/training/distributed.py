"""DDP on the training floor: which rank this is, and two fixes that data-parallel training needs.

- every rank would draw the same random crops and noise (same seed): each rank reseeds with
  ``seed + rank`` when training starts (the training samples also fold the rank into their seed,
  see ``data/datamodule.py``; the test noise is seeded per image and is unaffected);
- data-dependent initialisation (Glow/FDN ActNorm: mean/std of the *first batch*, Kingma &
  Dhariwal 2018 §3.1) would differ per rank and never be reconciled, since DDP only averages
  gradients: after the first backward pass every parameter is broadcast from rank 0.

How ranks > 0 are started for a Hydra-launched cell is the runner's business (``run/ddp_launch.py``).
"""
from __future__ import annotations

import os
import random

import lightning as L
import numpy as np
import torch


def is_rank_zero() -> bool:
    """True unless this process is a non-zero DDP rank (known from the environment before Lightning starts)."""
    for var in ("RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        if os.environ.get(var) not in (None, ""):
            return int(os.environ[var]) == 0
    return int(os.environ.get("LOCAL_RANK", 0) or 0) == 0 and int(os.environ.get("NODE_RANK", 0) or 0) == 0


class DistributedTrainingFixes(L.Callback):
    """Per-rank training randomness and one broadcast of the weights after the first backward pass."""

    def __init__(self):
        self._synced = False

    def on_train_start(self, trainer, pl_module) -> None:
        if trainer.world_size > 1:
            seed = int(os.environ.get("PL_GLOBAL_SEED", 0)) + trainer.global_rank
            torch.manual_seed(seed)
            np.random.seed(seed % 2**32)
            random.seed(seed)

    def on_after_backward(self, trainer, pl_module) -> None:
        if self._synced:
            return
        self._synced = True
        broadcast_parameters(pl_module, trainer.world_size)


def broadcast_parameters(module: torch.nn.Module, world_size: int) -> None:
    """Copy rank 0's parameters to every rank (after data-dependent init, before the optimiser step)."""
    import torch.distributed as dist

    if world_size <= 1 or not (dist.is_available() and dist.is_initialized()):
        return
    with torch.no_grad():
        for p in module.parameters():
            dist.broadcast(p.data, src=0)


def callbacks() -> list:
    return [DistributedTrainingFixes()]
