"""Training a model, the one place the project calls ``trainer.fit``; methods and priors use it.

``TrainingContext.fit_or_load(module, kind, key, datamodule, max_steps)`` loads the model from the
artifact store when one was trained for the same identity (``identity.training_identity``), and
otherwise trains it and stores it. A training checkpoints every ``trainer.run.checkpoint_every``
steps and on SIGTERM into ``<artifacts>/.partial-<kind>-<key>/``; a re-run of a killed cell resumes
from there ("resuming <kind> from step N") and the finished model equals an uninterrupted run's
(training samples are a function of (seed, rank, sample index), see ``data/datamodule.py``).
Every training records ``curve.csv`` (step, seconds, training loss, validation PSNR), stored next to
the model and copied into the cell. A wall-clock budget (``trainer.budget_minutes``) stops training
at that time (Lightning's ``max_time``); the steps it allowed are recorded.
"""
from __future__ import annotations

import contextlib
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from denoise_bench.errors import ConfigError, TrainingError
from denoise_bench.identity import training_identity
from denoise_bench.training import distributed
from denoise_bench.training.callbacks import Checkpointer, CurveRecorder, weight_average
from denoise_bench.training.speed import channels_last


def make_trainer(cfg: DictConfig, logger=False, max_steps: int = -1, inference_mode: bool = True,
                 callbacks: list | None = None, **overrides):
    """A Lightning Trainer from ``cfg.trainer`` (its ``run`` section included); ``budget_minutes`` -> ``max_time``,
    ``ema_decay`` -> an averaged copy of the weights (``callbacks.weight_average``)."""
    import lightning as L

    t = OmegaConf.to_container(cfg.trainer, resolve=True)
    t.pop("_target_", None)
    run = t.pop("run", None) or {}
    run.pop("checkpoint_every", None)
    budget = t.pop("budget_minutes", None)
    ema_decay = t.pop("ema_decay", None)
    t.update(run)
    t.update(overrides)
    t.setdefault("use_distributed_sampler", False)  # under DDP our loaders shard themselves
    if budget and max_steps > 0:
        t["max_time"] = {"minutes": float(budget)}
    t["callbacks"] = list(t.get("callbacks") or []) + distributed.callbacks() + list(callbacks or [])
    if ema_decay is not None and max_steps > 0:
        t["callbacks"].append(weight_average(float(ema_decay)))
    return L.Trainer(
        logger=logger,
        max_steps=max_steps,
        max_epochs=-1 if max_steps > 0 else 1,
        inference_mode=inference_mode,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=bool(cfg.get("progress", True)),
        **t,
    )


@dataclass
class TrainingContext:
    """What a method may use while it prepares: the config, the artifact store, the cell folder."""

    cfg: DictConfig
    out_dir: Path
    logger: object = False
    timings: dict = field(default_factory=dict)
    artifacts_used: list = field(default_factory=list)
    datamodule: object = None  # the cell's data (its training noise), for fit_method
    train_noise: dict | None = None  # the cell's training noise as the model's identity names it

    @property
    def store(self):
        from denoise_bench.artifacts import ArtifactStore

        return ArtifactStore(self.cfg.paths.artifacts, enabled=bool(self.cfg.get("reuse_artifacts", True)))

    def identity(self, model_cfg, data_cfg, noise: dict, channels: int, world_size: int = 1) -> dict:
        return training_identity(model_cfg, data_cfg, self.cfg.trainer, noise, channels, int(self.cfg.seed),
                                 world_size)

    def fit_method(self, method) -> str:
        """Load or train a denoising method on the cell's data and training noise, for its
        ``method.train_steps`` (the runner's path; a method's ``prepare`` may use it for variants of
        itself, e.g. flow_prior's λ candidates). Returns 'loaded' or 'trained'."""
        if self.datamodule is None or self.train_noise is None:
            raise TrainingError("fit_method: the context has no datamodule / train_noise (the runner sets them)")
        identity = self.identity(method.artifact_config(), self.cfg.data, self.train_noise, method.image_channels)
        return self.fit_or_load(method, method.name, identity, self.datamodule, int(method.cfg.get("train_steps") or 0))

    def _record(self, kind: str, path: Path, status: str, **extra) -> None:
        self.artifacts_used.append({"kind": kind, "path": str(path), "status": status, **extra})

    def fit_or_load(self, module, kind: str, key: dict, datamodule, max_steps: int, **trainer_overrides) -> str:
        """Load ``module``'s weights from the store, or train it (resuming a killed training) and store
        them. Returns 'loaded' or 'trained'. Under DDP only rank 0 locks and saves; ranks > 0 were
        started by rank 0 from inside this method, so they find the artifact exactly when rank 0 did."""
        store = self.store
        every = int(OmegaConf.select(self.cfg, "trainer.run.checkpoint_every", default=None) or 500)
        if store.enabled:
            work = store.partial_dir(kind, key)
        else:  # reuse_artifacts=false: the checkpoint lives with the cell
            work = Path(self.out_dir) / f".training-{kind}"
        log_every = int(OmegaConf.select(self.cfg, "trainer.run.log_every_n_steps", default=None) or 10)
        curve = CurveRecorder(work / "curve.csv", every=log_every)
        ckpt = Checkpointer(work, every)
        trainer = make_trainer(self.cfg, logger=self.logger, max_steps=max_steps, callbacks=[curve, ckpt],
                               **trainer_overrides)
        key = {**key, "world_size": int(trainer.world_size)}
        if not distributed.is_rank_zero():
            state = store.load(kind, key, repair=False)
            if state is not None:
                module.load_state_dict(state)
                return "loaded"
            channels_last(module)
            trainer.fit(module, datamodule=datamodule, ckpt_path=self._resume_path(ckpt))
            return "trained"
        with store.lock(kind, key) if store.enabled else contextlib.nullcontext():
            state = store.load(kind, key)
            if state is not None:
                module.load_state_dict(state)
                self._record(kind, store.dir_for(kind, key), "loaded", **self._training_facts(store.dir_for(kind, key)))
                self.copy_curve(store.dir_for(kind, key) / "curve.csv", kind)
                print(f"[artifacts] {kind}: loaded {store.dir_for(kind, key)}")
                return "loaded"
            if not bool(self.cfg.get("train", True)):
                raise ConfigError(f"{kind}: no trained model in {store.root} for this config and train=false; "
                                  "run once with train=true (the default) to train it")
            resume = self._resume_path(ckpt)
            if resume is not None:
                import torch

                step = int(torch.load(resume, map_location="cpu", weights_only=False).get("global_step", 0))
                print(f"[artifacts] resuming {kind} from step {step} ({resume})", flush=True)
            else:
                print(f"[artifacts] {kind}: training ({max_steps} steps) -> {store.dir_for(kind, key)}", flush=True)
            from denoise_bench.measure import peak_memory, reset_peak_memory

            since = reset_peak_memory(trainer.strategy.root_device)
            channels_last(module)  # CPU: NHWC convolutions (speed.py)
            start = time.perf_counter()
            try:
                trainer.fit(module, datamodule=datamodule, ckpt_path=resume)
            except TrainingError as e:
                kept = f"; last good checkpoint (step {ckpt.saved_step}) kept in {ckpt.path}" if ckpt.path.exists() else ""
                raise TrainingError(f"{e}{kept}") from None
            seconds = time.perf_counter() - start
            memory = peak_memory(trainer.strategy.root_device, since)
            self.timings[f"train_{kind}"] = seconds
            module.cpu()
            steps = int(trainer.global_step)
            extra = {"steps": steps, "seconds": seconds, "training_seconds": curve.seconds,
                     "max_steps": int(max_steps), "budget_minutes": self.cfg.trainer.get("budget_minutes"),
                     "peak_memory": memory}
            d = store.save(kind, key, module.state_dict(), extra, side_files=[work / "curve.csv"])
            if store.enabled:
                shutil.rmtree(work, ignore_errors=True)
            self._record(kind, d, "trained", steps=steps, training_seconds=curve.seconds,
                         budget_minutes=extra["budget_minutes"])
            self.copy_curve((d if store.enabled else work) / "curve.csv", kind)
            return "trained"

    @staticmethod
    def _training_facts(folder: Path) -> dict:
        """Steps, training seconds and budget of a stored model (its meta.json), for the cell's record."""
        import json

        try:
            meta = json.loads((Path(folder) / "meta.json").read_text())
        except (OSError, ValueError):
            return {}
        return {k: meta[k] for k in ("steps", "training_seconds", "budget_minutes") if k in meta}

    @staticmethod
    def _resume_path(ckpt: Checkpointer) -> str | None:
        return str(ckpt.path) if ckpt.path.is_file() else None

    def copy_curve(self, src: Path, kind: str) -> None:
        """The training curve of every model a cell used, in the cell (``curve_<kind>.csv``)."""
        if src.is_file():
            from denoise_bench.atomic import atomic_write_bytes

            atomic_write_bytes(Path(self.out_dir) / f"curve_{kind}.csv", src.read_bytes())
