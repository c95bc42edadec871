"""Experiment loggers: W&B (offline unless the user is logged in), CSV, or none."""
from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf


def wandb_logged_in() -> bool:
    """True when an API key is available locally (env or ~/.netrc); never touches the network."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return "api.wandb.ai" in netrc.read_text()
    except OSError:
        return False


def wandb_mode(cfg) -> str:
    mode = str(cfg.get("mode", "auto"))
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if mode == "auto":
        mode = "online" if wandb_logged_in() else "offline"
    if mode == "online" and not wandb_reachable():
        import sys

        print("[wandb] warning: logger.mode=online but api.wandb.ai is unreachable; logging offline "
              "(push later with `wandb sync`)", file=sys.stderr, flush=True)
        return "offline"
    return mode


def wandb_reachable(host: str = "api.wandb.ai", timeout: float = 3.0) -> bool:
    """A TCP connection to W&B's API succeeds (online logging would otherwise hang or fail)."""
    import socket

    try:
        with socket.create_connection((os.environ.get("WANDB_BASE_HOST", host), 443), timeout=timeout):
            return True
    except OSError:
        return False


def make_logger(cfg: DictConfig, out_dir: Path, group: str | None, run_name: str):
    kind = cfg.logger.get("kind", "none")
    if kind == "none":
        return False
    if kind == "csv":
        from lightning.pytorch.loggers import CSVLogger

        return CSVLogger(save_dir=str(out_dir), name="csv", version="")
    if kind == "wandb":
        from lightning.pytorch.loggers import WandbLogger

        os.environ.setdefault("WANDB_SILENT", "true")
        os.environ.setdefault("WANDB_CONSOLE", "off")
        return WandbLogger(
            project=cfg.logger.get("project", "denoise-bench"),
            entity=cfg.logger.get("entity"),
            group=group,
            name=run_name,
            save_dir=str(out_dir),
            mode=wandb_mode(cfg.logger),
            job_type=cfg.logger.get("job_type", "cell"),
            tags=list(cfg.logger.get("tags") or []),
            config=OmegaConf.to_container(cfg, resolve=True),
            log_model=False,
        )
    raise ValueError(f"logger.kind={kind!r}")


def log_cell(logger, summary: dict, rows: list[dict], grid_path: Path | None) -> None:
    """Send the cell's summary, per-image table and sample grid to the logger."""
    if not logger:
        return
    flat = {f"test/{k}_{stat}": summary[k][stat] for k in ("psnr", "ssim", "mse") for stat in ("mean", "std")}
    flat["test/n_images"] = summary["n_images"]
    flat["test/seconds"] = summary["seconds"]
    if logger.__class__.__name__ == "WandbLogger":
        import pandas as pd
        import wandb

        run = logger.experiment
        payload = dict(flat)
        payload["test/per_image"] = wandb.Table(dataframe=pd.DataFrame(rows))
        if grid_path is not None and grid_path.exists():
            payload["test/samples"] = wandb.Image(str(grid_path), caption="noisy | denoised | clean")
            examples = example_images(grid_path.parent, rows)
            if examples:
                payload["test/examples"] = [wandb.Image(str(p), caption=c) for p, c in examples]
        run.log(payload)
        for k, v in flat.items():
            run.summary[k] = v
        from denoise_bench.report.provenance import git_commit

        commit = git_commit()
        if commit:
            run.summary["commit"] = commit
    else:
        logger.log_metrics(flat)
        logger.save()


def example_images(out_dir: Path, rows: list[dict]) -> list[tuple[Path, str]]:
    """The cell's ``examples/*_denoised.png`` (outputs.py) with 'image id: PSNR' captions."""
    psnr = {"".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in str(r["image"])): r["psnr"] for r in rows}
    out = []
    for p in sorted(Path(out_dir).glob("examples/*_denoised.png")):
        image = p.stem[: -len("_denoised")].split("_", 1)[-1]
        out.append((p, f"{image}: {psnr[image]:.2f} dB" if image in psnr else image))
    return out


def finish(logger) -> None:
    if logger and logger.__class__.__name__ == "WandbLogger":
        import wandb

        if wandb.run is not None:
            wandb.finish()
