"""What every training records and keeps: a resumable checkpoint and a learning curve.

``Checkpointer`` writes Lightning's own checkpoint (``trainer.save_checkpoint``: weights, optimiser,
schedulers, step, callback states) to ``last.ckpt`` every ``every`` steps and when the run is stopped
by SIGTERM (Lightning turns SIGTERM into ``SIGTERMException`` at the next batch boundary and calls
``on_exception``). A failing step (NaN loss) leaves the last checkpoint as it was: the last good one.
Writes go through a temp file and a rename, so a kill mid-write leaves the previous checkpoint.

``weight_average(d)`` (``trainer.ema_decay``) keeps an exponential moving average of the weights beside
the trained ones (Lightning's ``WeightAveraging`` with PyTorch's EMA update): validations (so the curve), the test and the stored
model use the average, and Lightning's checkpoint carries both, so a resumed training continues it.

``CurveRecorder`` appends (step, training seconds, training loss, validation PSNR) to ``curve.csv``
at regular intervals; its rows and the seconds already spent travel in the checkpoint, so a resumed
training continues its curve instead of restarting it.
"""
from __future__ import annotations

import csv
import io
import math
import os
import time
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import WeightAveraging
from lightning.pytorch.utilities.exceptions import SIGTERMException
from torch.optim.swa_utils import get_ema_multi_avg_fn

from denoise_bench.errors import ConfigError

CURVE_COLUMNS = ("step", "seconds", "train_loss", "val_psnr")


class Checkpointer(L.Callback):
    def __init__(self, folder: Path, every: int):
        self.folder, self.every = Path(folder), max(1, int(every))
        self.path = self.folder / "last.ckpt"
        self.saved_step: int | None = None

    def save(self, trainer) -> None:
        if trainer.global_rank != 0:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".last.ckpt.{os.getpid()}.tmp"
        trainer.save_checkpoint(tmp)
        os.replace(tmp, self.path)
        self.saved_step = int(trainer.global_step)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        # before the next batch, not after the last one: Lightning steps the lr schedulers after
        # on_train_batch_end, so only here is step N complete (weights, optimiser and schedulers)
        step = int(trainer.global_step)
        if step > 0 and step % self.every == 0 and step != self.saved_step:
            self.save(trainer)

    def on_exception(self, trainer, pl_module, exception) -> None:
        if isinstance(exception, (SIGTERMException, KeyboardInterrupt)) and trainer.global_step != self.saved_step:
            self.save(trainer)  # the step in hand finished cleanly: keep it


def weight_average(decay: float) -> L.Callback:
    """θ_ema ← d·θ_ema + (1 − d)·θ after every optimiser step, parameters and buffers (one fused lerp)."""
    if not 0.0 < decay < 1.0:
        raise ConfigError(f"trainer.ema_decay={decay}: expected a decay in (0, 1), e.g. 0.999, or null for none")
    return WeightAveraging(multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


class CurveRecorder(L.Callback):
    """Learning curve: a training-loss row every ``every`` steps and a validation-PSNR row after
    each validation, with the training wall seconds so far (validation time excluded)."""

    def __init__(self, path: Path, every: int):
        self.path, self.every = Path(path), max(1, int(every))
        self.rows: list[dict] = []
        self.seconds = 0.0
        self._t0: float | None = None
        self._val_t0: float | None = None

    # -- time, excluding validation ------------------------------------------------------------
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._t0 is None:
            self._t0 = time.perf_counter()

    def _elapsed(self) -> float:
        return self.seconds + (time.perf_counter() - self._t0 if self._t0 is not None else 0.0)

    def on_validation_start(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        self.seconds, self._t0 = self._elapsed(), None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = int(trainer.global_step)
        if step % self.every == 0:
            loss = trainer.callback_metrics.get("train/loss")
            self._add(step, train_loss=None if loss is None else float(loss))

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        psnr = trainer.callback_metrics.get("val/psnr")
        if psnr is not None:
            self._add(int(trainer.global_step), val_psnr=float(psnr))

    def on_train_end(self, trainer, pl_module) -> None:
        self.seconds, self._t0 = self._elapsed(), None
        self.write(trainer)

    def on_exception(self, trainer, pl_module, exception) -> None:
        self.write(trainer)

    def _add(self, step: int, train_loss=None, val_psnr=None) -> None:
        self.rows.append({"step": step, "seconds": round(self._elapsed(), 3),
                          "train_loss": train_loss, "val_psnr": val_psnr})

    def write(self, trainer=None) -> None:
        if trainer is not None and trainer.global_rank != 0:
            return
        from denoise_bench.atomic import atomic_write_text

        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=CURVE_COLUMNS)
        w.writeheader()
        for r in self.rows:
            w.writerow({k: ("" if v is None or (isinstance(v, float) and math.isnan(v)) else v) for k, v in r.items()})
        atomic_write_text(self.path, buf.getvalue())

    # -- carried in Lightning's checkpoint -----------------------------------------------------
    def state_dict(self) -> dict:
        return {"rows": list(self.rows), "seconds": self._elapsed()}

    def load_state_dict(self, state: dict) -> None:
        self.rows = list(state.get("rows", []))
        self.seconds, self._t0 = float(state.get("seconds", 0.0)), None
