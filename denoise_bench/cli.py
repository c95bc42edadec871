"""One sweep cell: build data and method, train (or load) what is needed, test, write outputs.

``run.py`` is a thin Hydra entry that calls ``main``. Errors a user can fix (``BenchError``) are
printed as one line and end the process with status 2; finished cells are never touched.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from denoise_bench.errors import BenchError, ConfigError

# config keys that never change a cell's result (excluded from its resume key)
NON_RESULT_KEYS = ("logger", "paths", "force", "hydra", "name", "progress", "train", "reuse_artifacts", "threads",
                   "report")
# trainer settings that change trained weights (part of every artifact key, with the world size)
TRAINING_TRAINER_KEYS = ("precision", "gradient_clip_val", "gradient_clip_algorithm", "accumulate_grad_batches",
                         "val_check_interval", "sync_batchnorm")


def cell_key(cfg: DictConfig) -> str:
    from denoise_bench.artifacts import config_key

    c = OmegaConf.to_container(cfg, resolve=True)
    return config_key({k: v for k, v in c.items() if k not in NON_RESULT_KEYS})


def output_dir(cfg: DictConfig) -> Path:
    try:
        from hydra.core.hydra_config import HydraConfig

        return Path(HydraConfig.get().runtime.output_dir)
    except ValueError:  # not under Hydra (tests call run_cell directly)
        return Path(cfg.paths.output_dir)


def run_names() -> tuple[str | None, str]:
    """(W&B group = the sweep, run name = the cell's overrides)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        hc = HydraConfig.get()
        group = Path(hc.sweep.dir).name if hc.mode.name == "MULTIRUN" else None
        return group, hc.job.override_dirname or "default"
    except ValueError:
        return None, "default"


def make_trainer(cfg: DictConfig, logger=False, max_steps: int = -1, inference_mode: bool = True, **overrides):
    import lightning as L

    from denoise_bench import ddp

    t = OmegaConf.to_container(cfg.trainer, resolve=True)
    t.pop("_target_", None)
    t.update(overrides)
    t.setdefault("use_distributed_sampler", False)  # under DDP our loaders shard themselves (see ddp.py)
    t["callbacks"] = list(t.get("callbacks") or []) + ddp.callbacks()
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


def trainer_key(cfg: DictConfig, trainer, overrides: dict) -> dict:
    """The trainer settings that change the trained weights (DDP: world size x batch = the real batch)."""
    t = {**OmegaConf.to_container(cfg.trainer, resolve=True), **overrides}
    return {**{k: t[k] for k in TRAINING_TRAINER_KEYS if t.get(k) is not None}, "world_size": int(trainer.world_size)}


@dataclass
class RunContext:
    """What a method may use while it prepares: the config, the artifact store, a trainer factory."""

    cfg: DictConfig
    out_dir: Path
    logger: object = False
    timings: dict = field(default_factory=dict)
    artifacts_used: list = field(default_factory=list)

    @property
    def store(self):
        from denoise_bench.artifacts import ArtifactStore

        return ArtifactStore(self.cfg.paths.artifacts, enabled=bool(self.cfg.get("reuse_artifacts", True)))

    def fit_or_load(self, module, kind: str, key: dict, datamodule, max_steps: int, **trainer_overrides) -> str:
        """Load ``module``'s weights from the store, or train it and store them. Returns 'loaded'/'trained'.

        The key gets the trainer settings that change the weights. Under DDP only rank 0 locks and
        saves; ranks > 0 were started by rank 0 from inside this method (its fit, or its test after a
        load), so they find the artifact exactly when rank 0 loaded it, and train in step otherwise."""
        import contextlib

        from denoise_bench import ddp

        trainer = make_trainer(self.cfg, logger=self.logger, max_steps=max_steps, **trainer_overrides)
        key = {**key, "trainer": trainer_key(self.cfg, trainer, trainer_overrides)}
        store = self.store
        if not ddp.is_rank_zero():
            state = store.load(kind, key, repair=False)
            status = "loaded" if state is not None else "trained"
            if state is not None:
                module.load_state_dict(state)
            else:
                trainer.fit(module, datamodule=datamodule)
            self.artifacts_used.append({"kind": kind, "path": str(store.dir_for(kind, key)), "status": status})
            return status
        with store.lock(kind, key) if store.enabled else contextlib.nullcontext():
            state = store.load(kind, key)
            if state is not None:
                module.load_state_dict(state)
                self.artifacts_used.append({"kind": kind, "path": str(store.dir_for(kind, key)), "status": "loaded"})
                print(f"[artifacts] {kind}: loaded {store.dir_for(kind, key)}")
                return "loaded"
            if not bool(self.cfg.get("train", True)):
                raise ConfigError(f"{kind}: no trained model in {store.root} for this config and train=false; "
                                  "run once with train=true (the default) to train it")
            print(f"[artifacts] {kind}: training ({max_steps} steps) -> {store.dir_for(kind, key)}", flush=True)
            start = time.perf_counter()
            trainer.fit(module, datamodule=datamodule)
            self.timings[f"train_{kind}"] = time.perf_counter() - start
            module.cpu()
            store.save(kind, key, module.state_dict(), {"steps": int(trainer.global_step),
                                                        "seconds": self.timings[f"train_{kind}"]})
            self.artifacts_used.append({"kind": kind, "path": str(store.dir_for(kind, key)), "status": "trained"})
            return "trained"


def train_data_key(data_cfg) -> dict:
    """The part of the data config that determines a trained model (not the test handling)."""
    d = OmegaConf.to_container(data_cfg, resolve=True)
    for k in ("test_crop", "test_size", "test_batch_size", "num_workers", "limit_from_end", "cache_max_images",
              "val_root", "val_blocks"):
        d.pop(k, None)
    if isinstance(d.get("limit"), dict):
        d["limit"] = {k: v for k, v in d["limit"].items() if k != "test"}
    if isinstance(d.get("splits"), dict):
        d["splits"] = {k: v for k, v in d["splits"].items() if k != "test"}
    d.pop("test_root", None)
    if d.get("source") in ("folder", "paired_folder"):  # there data.root is the test set: eval-only
        d.pop("root", None)
    return d


def run_cell(cfg: DictConfig) -> dict | None:
    """Run one cell; returns its summary (None when skipped because it is already done)."""
    from denoise_bench.outputs import read_metrics

    from denoise_bench import ddp

    out_dir = output_dir(cfg)
    key = cell_key(cfg)
    done = read_metrics(out_dir) if ddp.is_rank_zero() else None  # DDP ranks > 0: rank 0 decided
    if done is not None and done.get("cell_key") == key and not cfg.get("force", False):
        print(f"[skip] {out_dir}: already done (metrics.json for this config); force=true recomputes", flush=True)
        return None
    if done is not None:  # recomputing: a run killed from here on must not leave the old result looking done
        (out_dir / "metrics.json").unlink(missing_ok=True)

    import lightning as L
    import torch

    from denoise_bench.complexity import denoise_gflops
    from denoise_bench.data.datamodule import DenoisingDataModule
    from denoise_bench.data.noise import NoiseSpec, parse_sigma
    from denoise_bench.loggers import finish, log_cell, make_logger
    from denoise_bench.methods import method_class
    from denoise_bench.metrics import MetricProtocol
    from denoise_bench.outputs import summarise, write_cell

    import logging
    import warnings

    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    for noisy_logger in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(noisy_logger).setLevel(logging.WARNING)
    start = time.perf_counter()
    torch.set_num_threads(int(cfg.get("threads") or torch.get_num_threads()))
    sigma = "real" if cfg.data.get("paired", False) else cfg.sigma
    spec = NoiseSpec.from_cfg(sigma, cfg.noise, cfg.seed)
    train_sigma = cfg.method.get("train_sigma")
    train_spec = NoiseSpec.from_cfg(train_sigma, cfg.noise, cfg.seed) if train_sigma is not None else spec
    cls = method_class(cfg.method.name)
    L.seed_everything(int(cfg.seed), verbose=False)

    steps = int(cfg.method.get("train_steps") or 0)
    dm = DenoisingDataModule(cfg.data, spec, train_steps=steps, unpaired=bool(getattr(cls, "unpaired", False)),
                             train_spec=train_spec)
    test_set = dm.test_set()  # reads and checks the test images before any training
    method = cls(cfg.method, image_channels=dm.channels)
    method.protocol = MetricProtocol.from_cfg(cfg.metrics)

    group, run_name = run_names()
    logger = make_logger(cfg, out_dir, group, run_name) if ddp.is_rank_zero() else False
    ctx = RunContext(cfg, out_dir, logger)
    scope = ddp.cell_scope(cfg, out_dir)  # DDP ranks > 0 run this same cell (ddp.py)
    scope.__enter__()
    try:
        method.prepare(ctx)  # before training: a method may train against a prior (flow_prior)
        if method.trainable and not method.has_weights:
            key_cfg = {"method": method.artifact_config(), "data": train_data_key(cfg.data),
                       "noise": {"sigma": train_spec.label(), "clip": train_spec.clip,
                                 "quantize": train_spec.quantize, "blind_max": train_spec.blind_max},
                       "channels": dm.channels, "seed": int(cfg.seed)}
            ctx.fit_or_load(method, cfg.method.name, key_cfg, dm, steps)
        test_start = time.perf_counter()
        tester = make_trainer(cfg, logger=False, inference_mode=not method.grad_at_test)
        tester.test(method, datamodule=dm, verbose=False)
        ctx.timings["test"] = time.perf_counter() - test_start
        rows = method.rows
        if tester.global_rank != 0:
            return None
        summary = {
            "method": cfg.method.name,
            "dataset": cfg.data.name,
            "sigma": spec.label(),
            "n_images": len(rows),
            **summarise(rows),
            "seconds": time.perf_counter() - start,
            "seconds_per_image": ctx.timings["test"] / max(1, len(rows)),
            "timings": ctx.timings,
            "parameters": method.count_parameters(),
            "gflops_256": denoise_gflops(method, dm.channels),  # per 256x256 image (complexity.py)
            "scale": cfg.scale.name,
            "noise": spec.describe(),
            "protocol": OmegaConf.to_container(cfg.metrics, resolve=True),
            "metric_protocol": method.protocol.describe(),
            "test_set": dm.describe(),
            "artifacts": ctx.artifacts_used,
            "overrides": run_name,
            "cell_key": key,
            "config": OmegaConf.to_container(cfg, resolve=True),
        }
        grid = out_dir / "samples.png"
        write_cell(out_dir, rows, method.examples, summary)
        log_cell(logger, summary, rows, grid if method.examples else None)
        print(f"[cell] {cfg.method.name} sigma={spec.label()} on {cfg.data.name}: "
              f"PSNR {summary['psnr']['mean']:.2f} dB, SSIM {summary['ssim']['mean']:.4f} "
              f"({len(rows)} images, {summary['seconds']:.1f} s) -> {out_dir}")
        return summary
    finally:
        finish(logger)
        scope.__exit__(None, None, None)
        del test_set


def main(cfg: DictConfig) -> dict | None:
    """Hydra task function: run the cell (or the report task), turn user errors into one line."""
    from omegaconf import OmegaConf
    from omegaconf.errors import InterpolationResolutionError

    try:
        OmegaConf.to_container(cfg, resolve=True)  # a config that does not resolve is a user error
    except InterpolationResolutionError as e:
        where = f" ({e.full_key})" if getattr(e, "full_key", None) else ""
        print(f"error: the config does not resolve{where}: {str(e).splitlines()[0]}", file=sys.stderr)
        sys.exit(2)
    try:
        return run_cell(cfg)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
