"""DDP for a Hydra-launched cell (``trainer=ddp``, or ``trainer.devices=N trainer.strategy=ddp``).

Lightning's DDP launcher starts ranks 1..N-1 by re-running the command line. For a Hydra app that is
wrong twice: in a multirun (``-m``) every rank would run the whole sweep, and each rank writes its
own Hydra output folder and log. So while a cell runs, rank 0 keeps its resolved config in a temp
file and the launcher starts ``child_main(<that file>)`` instead: the child runs the same cell
(same data, same model, same decisions about artifacts), outside Hydra, prints nothing and writes
nothing; rank 0 alone writes outputs and saves artifacts.

Evaluation under DDP: ``data.datamodule.SameShapeBatches`` gives each rank a contiguous block of
the test batches and ``DenoisingMethod.on_test_epoch_end`` gathers the rows in rank order, so each
image is measured once and the rows come out in the order of a one-process run.
"""
from __future__ import annotations

import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from denoise_bench.training.distributed import is_rank_zero

# environment variables Lightning's launcher sets in the main process when it starts the ranks
LAUNCH_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")

_cell_config: str | None = None  # resolved config file of the cell running in this process (rank 0)


def _child_command() -> list[str]:
    root = str(Path(__file__).resolve().parents[1])
    code = (f"import sys; sys.path.insert(0, {root!r}); "
            f"from denoise_bench.run.ddp_launch import child_main; child_main({_cell_config!r})")
    return [sys.executable, "-c", code]


def install_launcher() -> None:
    """Make Lightning's subprocess launcher start ``child_main`` for ranks > 0 while a cell runs."""
    try:
        from lightning.pytorch.strategies.launchers import subprocess_script as launcher
    except ImportError:  # pragma: no cover - a Lightning without the subprocess launcher
        return
    if getattr(launcher, "_denoise_bench_patched", False):
        return
    if not hasattr(launcher, "_hydra_subprocess_cmd") or not hasattr(launcher, "_basic_subprocess_cmd"):
        print("[ddp] warning: this Lightning version's launcher is not the one denoise_bench knows; "
              "ranks > 0 will re-run the command line", file=sys.stderr)
        return
    hydra_cmd, basic_cmd = launcher._hydra_subprocess_cmd, launcher._basic_subprocess_cmd

    def _hydra(local_rank):
        return (_child_command(), None) if _cell_config else hydra_cmd(local_rank)

    def _basic():
        return _child_command() if _cell_config else basic_cmd()

    launcher._hydra_subprocess_cmd, launcher._basic_subprocess_cmd = _hydra, _basic
    launcher._denoise_bench_patched = True


@contextmanager
def cell_scope(cfg, out_dir: Path):
    """Around one cell on rank 0: publish its config to DDP children; afterwards close the process
    group and restore the launcher's environment, so the next cell of a sweep (same process:
    basic or joblib launcher) starts its own ranks instead of waiting for finished ones."""
    global _cell_config
    if not is_rank_zero():
        yield
        return
    from omegaconf import OmegaConf

    saved = {k: os.environ.get(k) for k in LAUNCH_ENV}
    resolved = OmegaConf.to_container(cfg, resolve=True)
    resolved.setdefault("paths", {})["output_dir"] = str(out_dir)
    fd, path = tempfile.mkstemp(prefix="denoise-bench-cell-", suffix=".yaml")
    with os.fdopen(fd, "w") as f:
        f.write(OmegaConf.to_yaml(OmegaConf.create(resolved)))
    install_launcher()
    previous, _cell_config = _cell_config, path
    try:
        yield
    finally:
        _cell_config = previous
        os.unlink(path)
        if os.environ.get("LOCAL_RANK") != saved["LOCAL_RANK"]:  # this cell launched ranks
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                dist.destroy_process_group()
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def child_main(config_path: str) -> None:
    """Entry of ranks > 0: the same cell as rank 0, silent (rank 0 prints and writes)."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(config_path)
    sys.stdout = open(os.devnull, "w")  # errors still reach stderr
    from denoise_bench.run.cell import run_cell
    from denoise_bench.errors import BenchError

    try:
        run_cell(cfg)
    except BenchError as e:
        print(f"error (rank {os.environ.get('LOCAL_RANK')}): {e}", file=sys.stderr)
        sys.exit(2)
