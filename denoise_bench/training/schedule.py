"""Learning-rate schedules written against the fraction of training done, so they also hold under a budget.

A schedule such as DnCNN's "lr × 0.1 after 60 % of training" is defined on the progress p ∈ [0, 1].
Without a budget p = step / max_steps. Under ``trainer.budget_minutes`` training stops at max_steps or
at the budget, whichever comes first, so p = max(step / max_steps, elapsed / budget): the drop then
happens at 60 % of the wall-clock budget instead of at a step the budget never reaches. The elapsed
time is Lightning's own ``Timer`` (the clock that stops the training, restored from a checkpoint
when a killed training resumes).
"""
from __future__ import annotations

import torch


def _timer(trainer):
    from lightning.pytorch.callbacks import Timer

    for cb in getattr(trainer, "callbacks", None) or []:
        if isinstance(cb, Timer) and cb._duration:
            return cb
    return None


def budget_fraction(module) -> float:
    """Fraction of the wall-clock budget spent (0 without ``trainer.budget_minutes`` or a Trainer)."""
    trainer = getattr(module, "_trainer", None)
    timer = _timer(trainer) if trainer is not None else None
    if timer is None:
        return 0.0
    return min(1.0, timer.time_elapsed("train") / float(timer._duration))


def drop_factor(module, drop_at: float, factor: float):
    """step -> ``factor`` from step ⌊drop_at · max_steps⌋ on, or once ``drop_at`` of the budget is spent,
    whichever comes first; 1 before."""
    trainer = getattr(module, "_trainer", None)
    max_steps = int(trainer.max_steps) if trainer is not None and trainer.max_steps > 0 else 1
    drop_step = max(1, int(max_steps * float(drop_at)))
    return lambda step: factor if step >= drop_step or budget_fraction(module) >= drop_at else 1.0


def step_drop(module, optimizer, drop_at: float, factor: float):
    """The paper schedules of DnCNN and flow_prior: lr × ``factor`` for the last part of training
    (``drop_factor``), as a step-interval LambdaLR."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, drop_factor(module, drop_at, factor))
