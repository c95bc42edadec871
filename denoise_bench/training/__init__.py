"""The training floor, below the runner: ``TrainingContext.fit_or_load`` (the project's only
``trainer.fit``), checkpoints and learning curves (``callbacks.py``), DDP helpers (``distributed.py``)."""
from denoise_bench.training.context import TrainingContext, make_trainer

__all__ = ["TrainingContext", "make_trainer"]
