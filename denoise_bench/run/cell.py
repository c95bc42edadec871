"""One cell, in the order it happens: config -> data -> method -> fit or load -> test -> write.

``run_cell(cfg)`` is the whole run path; ``entry.py`` wraps it for Hydra (one-line errors, failed
cells recorded, sweeps going on). Results never mix or get lost (``folder.py``): the cell holds a
per-folder lock, skips a finished result of the same identity, refuses one of another identity, and
writes into ``.staging/`` until its result is complete.
"""
from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from denoise_bench.errors import ConfigError, TrainingError
from denoise_bench.identity import cell_dirname, cell_key
from denoise_bench.run import folder
from denoise_bench.run.ddp_launch import cell_scope
from denoise_bench.training.distributed import is_rank_zero
from denoise_bench.training.speed import channels_last, keep_freed_memory


def output_dir(cfg: DictConfig) -> Path:
    try:
        from hydra.core.hydra_config import HydraConfig

        return Path(HydraConfig.get().runtime.output_dir)
    except ValueError:  # not under Hydra (tests call run_cell directly)
        return Path(cfg.paths.output_dir)


def run_names() -> tuple[str | None, str]:
    """(W&B group = the sweep, run name = the cell's folder name)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        hc = HydraConfig.get()
        group = Path(hc.sweep.dir).name if hc.mode.name == "MULTIRUN" else None
        return group, cell_dirname(hc.overrides.task) or "default"
    except ValueError:
        return None, "default"


def run_cell(cfg: DictConfig) -> dict | None:
    """Run one cell; returns its summary (None when skipped: already done for this config)."""
    out_dir = output_dir(cfg)
    key = cell_key(cfg)
    if not is_rank_zero():  # a DDP rank > 0: the same computation as rank 0, which alone decides and writes
        return evaluate(cfg, out_dir, key, stage=None)
    with folder.claim(out_dir):
        if folder.decide(out_dir, cfg, key) == "skip":
            print(f"[skip] {out_dir}: already done (metrics.json for this config); force=true recomputes", flush=True)
            folder.record_outcome(out_dir, "skipped")
            return None
        stage = folder.staging(out_dir)
        summary = evaluate(cfg, out_dir, key, stage)
        folder.commit(out_dir)
        folder.clear_failure(out_dir)
        folder.record_outcome(out_dir, "done")
        print(f"[cell] {summary['method']} sigma={summary['sigma']} on {summary['dataset']}: "
              f"PSNR {summary['psnr']['mean']:.2f} dB, SSIM {summary['ssim']['mean']:.4f} "
              f"({summary['n_images']} images, {summary['seconds']:.1f} s) -> {out_dir}")
        return summary


def evaluate(cfg: DictConfig, out_dir: Path, key: str, stage: Path | None) -> dict | None:
    """The computation of a cell; writes its result into ``stage`` (rank 0) and returns the summary."""
    import lightning as L
    import torch

    from denoise_bench.complexity import denoise_gflops
    from denoise_bench.data.datamodule import DenoisingDataModule
    from denoise_bench.data.noise import NoiseSpec, evaluation_noise
    from denoise_bench.loggers import finish, log_cell, make_logger
    from denoise_bench.measure import current_memory, peak_memory, reset_peak_memory, timing_summary
    from denoise_bench.methods import method_class
    from denoise_bench.methods.ensemble import CAPTION, use_self_ensemble
    from denoise_bench.metrics import MetricProtocol
    from denoise_bench.outputs import summarise, write_cell
    from denoise_bench.report.provenance import cell_provenance
    from denoise_bench.training import TrainingContext, make_trainer

    _quiet_libraries()
    start = time.perf_counter()
    torch.set_num_threads(int(cfg.get("threads") or torch.get_num_threads()))
    keep_freed_memory()  # large activations reuse their pages (training/speed.py)

    # 1. config: the noise of the test and of the training, the method class
    spec = evaluation_noise(cfg)
    train_sigma = cfg.method.get("train_sigma")
    train_spec = NoiseSpec.from_cfg(train_sigma, cfg.noise, cfg.seed) if train_sigma is not None else spec
    cls = method_class(cfg.method.name)
    if cfg.method.get("weights") and not getattr(cls, "loads_weights", False):
        hint = " (its prior: prior.weights=PATH)" if cfg.method.name in ("glow_map",) else ""
        raise ConfigError(f"method.weights: method={cfg.method.name} has no trained weights to load{hint}")
    L.seed_everything(int(cfg.seed), verbose=False)

    # 2. data: the test images are read and checked before any training
    steps = int(cfg.method.get("train_steps") or 0)
    dm = DenoisingDataModule(cfg.data, spec, train_steps=steps, unpaired=bool(getattr(cls, "unpaired", False)),
                             train_spec=train_spec, seed=int(cfg.seed))
    dm.test_set()

    # 3. method
    method = cls(cfg.method, image_channels=dm.channels)
    method.protocol = MetricProtocol.from_cfg(cfg.metrics)
    use_self_ensemble(method, bool(cfg.eval.self_ensemble))

    group, run_name = run_names()
    logger = make_logger(cfg, stage, group, run_name) if stage is not None else False
    noise = {"sigma": train_spec.label(), "clip": train_spec.clip, "quantize": train_spec.quantize,
             "blind_max": train_spec.blind_max}
    ctx = TrainingContext(cfg, stage if stage is not None else out_dir, logger, datamodule=dm, train_noise=noise)
    try:
        with cell_scope(cfg, out_dir):  # DDP: ranks > 0 run this same cell (ddp_launch.py)
            # 4. fit or load: what the method needs (a prior), then the method itself
            method.prepare(ctx)
            if method.trainable and not method.has_weights:
                ctx.fit_method(method)

            # 5. test: one evaluation path for every method (DenoisingMethod.test_step)
            channels_last(method)  # CPU: NHWC convolutions (training/speed.py)
            tester = make_trainer(cfg, logger=False, inference_mode=not method.grad_at_test)
            since = reset_peak_memory(method.device)
            start_bytes = current_memory(method.device)
            test_start = time.perf_counter()
            tester.test(method, datamodule=dm, verbose=False)
            ctx.timings["test"] = time.perf_counter() - test_start
            memory = peak_memory(tester.strategy.root_device, since, start_bytes)
            rows = method.rows
            if tester.global_rank != 0 or stage is None:
                return None
            bad = [r["image"] for r in rows if not all(map(_finite, (r["psnr"], r["ssim"], r["mse"])))]
            if bad:
                raise TrainingError(f"{cfg.method.name}: the denoised output is NaN or infinite for {len(bad)} of "
                                    f"{len(rows)} test images (first: {bad[0]}); no result written")

            # 6. write: metrics.json (summary, identity, provenance), per_image.csv, samples
            first_batch = len(dm.test_dataloader().batch_sampler.batches[0])  # the warm-up batch
            summary = {
                "method": cfg.method.name,
                "dataset": cfg.data.name,
                "sigma": spec.label(),
                "n_images": len(rows),
                **summarise(rows),
                "seconds": time.perf_counter() - start,
                "seconds_per_image": ctx.timings["test"] / max(1, len(rows)),
                "timing": timing_summary(rows, first_batch),
                "peak_memory": memory,
                "timings": ctx.timings,
                "parameters": method.count_parameters(),
                "gflops_256": denoise_gflops(method, dm.channels),  # per 256x256 image (complexity.py)
                "scale": cfg.scale.name,
                "noise": spec.describe(),
                "protocol": OmegaConf.to_container(cfg.metrics, resolve=True),
                "metric_protocol": method.protocol.describe(),
                "self_ensemble": CAPTION if method.self_ensemble else None,
                "test_set": dm.describe(),
                "artifacts": ctx.artifacts_used,
                "overrides": run_name,
                "cell_key": key,
                "config": OmegaConf.to_container(cfg, resolve=True),
                "provenance": cell_provenance(weights_files=weights_read(cfg, ctx.artifacts_used),
                                              threads=torch.get_num_threads()),
            }
            write_cell(stage, rows, method.examples, summary)
            log_cell(logger, summary, rows, stage / "samples.png" if method.examples else None)
            return summary
    finally:
        finish(logger)


def weights_read(cfg: DictConfig, artifacts_used: list[dict]) -> dict[str, str]:
    """Every weights file the cell read, by role: method.weights, prior.weights, stored artifacts."""
    files = {}
    if cfg.method.get("weights"):
        files["method.weights"] = str(Path(str(cfg.method.weights)).expanduser())
    for a in artifacts_used:
        p = Path(a["path"])
        files[f"{a['status']}:{a['kind']}"] = str(p / "model.pt" if p.is_dir() else p)
    return files


def _finite(x) -> bool:
    import math

    return x is not None and math.isfinite(float(x))


def _quiet_libraries() -> None:
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*resuming from a checkpoint that ended before the epoch ended.*")
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
