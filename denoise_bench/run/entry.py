"""The Hydra entry (``run.py`` calls ``main``): one cell per job, errors as one line, sweeps go on.

A user error (``BenchError``), an unwritable folder or an unexpected exception inside a cell is
printed as one line and recorded in the cell's folder (``error.json``); in a multirun the next cell
runs and the sweep exits non-zero at the end (``sweep.py``), in a single run the process exits 2.
"""
from __future__ import annotations

import errno
import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from denoise_bench.identity import CONF_DIR, cell_dirname

# the folder of a sweep cell: its result-naming overrides (identity.cell_dirname); registered on import,
# which also happens in launcher workers (they unpickle ``task`` from this module)
OmegaConf.register_new_resolver("cell_dirname", lambda *, _root_: cell_dirname(_root_.hydra.overrides.task),
                                replace=True)


def one_line(e: BaseException) -> str:
    from omegaconf.errors import InterpolationResolutionError

    from denoise_bench.errors import BenchError

    if isinstance(e, BenchError):
        return str(e)
    if isinstance(e, InterpolationResolutionError):
        where = f" ({e.full_key})" if getattr(e, "full_key", None) else ""
        return f"the config does not resolve{where}: {str(e).splitlines()[0]}"
    if isinstance(e, OSError) and e.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT):
        return f"cannot write {e.filename or ''}: {e.strerror} (check paths.outputs / paths.artifacts / hydra.*.dir)"
    first = (str(e).splitlines() or [""])[0]
    return f"{type(e).__name__}: {first}"


def is_multirun() -> bool:
    try:
        from hydra.core.hydra_config import HydraConfig

        return HydraConfig.get().mode.name == "MULTIRUN"
    except ValueError:
        return False


def task(cfg: DictConfig) -> dict | None:
    """Hydra task function: run the cell; a failure is recorded and (in a sweep) does not stop it."""
    from denoise_bench.run import folder
    from denoise_bench.run.cell import output_dir, run_cell

    out_dir = None
    try:
        OmegaConf.to_container(cfg, resolve=True)  # a config that does not resolve is a user error
        out_dir = output_dir(cfg)
        return run_cell(cfg)
    except (Exception, SystemExit) as e:  # noqa: BLE001 - every failure becomes one line and error.json
        if isinstance(e, SystemExit) and type(e).__name__ != "SIGTERMException":
            raise
        message = "interrupted (SIGTERM); a re-run resumes its training from the last checkpoint" \
            if isinstance(e, SystemExit) else one_line(e)
        if out_dir is not None:
            folder.discard_staging(out_dir)
            folder.record_failure(out_dir, e, message)
        print(f"error: {message}", file=sys.stderr, flush=True)
        if isinstance(e, SystemExit) or not is_multirun():
            sys.exit(2)
        return None


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def hydra_main(cfg: DictConfig):
    return task(cfg)


def main() -> int:
    """``python run.py``: the cell (or sweep); the exit status is non-zero when a sweep cell failed."""
    from denoise_bench.run import sweep

    hydra_main()
    return sweep.exit_status
