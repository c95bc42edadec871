"""What a number is the number of: cell and artifact identities read off the config's structure.

No key list decides what counts. The structure does (see the header of ``conf/config.yaml``):

- **run controls** change how a cell runs, never what it computes: the keys written in
  ``conf/run/default.yaml``, the groups that file composes (``logger``, ``paths``), ``hydra``, and a
  ``run:`` section inside any group (``data.run``, ``method.run``, ``prior.run``, ``trainer.run``);
- **evaluation-only** keys change a cell's result but never a trained model: a ``test:`` or ``eval:``
  section inside a group (``data.test``, ``method.eval``), and the groups a training never reads
  (``metrics``, the root ``eval``, the test ``sigma``);
- everything else determines the trained model *and* the result.

So a new key is classified where it is written. The **cell key** hashes every key that is not a run
control; the **artifact key** of a trained model hashes the model-determining part of the groups its
training reads (``training_identity``) plus what the training derives (noise, channels, world size).
"""
from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
RUN_SECTION = "run"  # inside a group: run controls
EVAL_SECTIONS = ("test", "eval")  # inside a group: evaluation only


def canonical(obj) -> str:
    """Key-order independent JSON (the text that is hashed)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def config_key(config) -> str:
    return hashlib.sha256(canonical(config).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def run_controls() -> frozenset[str]:
    """Root keys that are run controls: those written in conf/run/default.yaml, the groups its
    defaults list composes, and ``hydra``."""
    run = OmegaConf.load(CONF_DIR / "run" / "default.yaml")
    keys = {k for k in run.keys() if k != "defaults"}
    for entry in run.get("defaults") or []:
        if isinstance(entry, (dict, DictConfig)):
            keys.update(str(k).lstrip("/").split("@")[0] for k in entry.keys())
    return frozenset(keys | {"hydra"})


def _container(cfg) -> dict:
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)
    return dict(cfg)


def _drop_sections(group, sections) -> object:
    if not isinstance(group, dict):
        return group
    return {k: v for k, v in group.items() if k not in sections}


def result_config(cfg) -> dict:
    """Everything that determines a cell's result: the config minus run controls."""
    c = _container(cfg)
    controls = run_controls()
    return {k: _drop_sections(v, (RUN_SECTION,)) for k, v in c.items() if k not in controls}


def cell_key(cfg) -> str:
    return config_key(result_config(cfg))


def model_part(group) -> dict:
    """The part of one group that determines a trained model (no run / test / eval sections)."""
    g = _container(group) if isinstance(group, DictConfig) else group
    return _drop_sections(g, (RUN_SECTION, *EVAL_SECTIONS)) if isinstance(g, dict) else g


def training_identity(model_cfg, data_cfg, trainer_cfg, noise: dict, channels: int, seed: int,
                      world_size: int = 1) -> dict:
    """The artifact key of a model trained from ``model_cfg`` (a method or prior group) on ``data_cfg``."""
    return {"model": model_part(model_cfg), "data": model_part(data_cfg), "trainer": model_part(trainer_cfg),
            "noise": noise, "channels": int(channels), "seed": int(seed), "world_size": int(world_size)}


def first_difference(old, new, prefix: str = "") -> str | None:
    """The dotted key of the first difference between two nested dicts (None if equal)."""
    if isinstance(old, dict) and isinstance(new, dict):
        for k in sorted(set(old) | set(new), key=str):
            if k not in old or k not in new:
                return f"{prefix}{k}"
            d = first_difference(old[k], new[k], f"{prefix}{k}.")
            if d is not None:
                return d
        return None
    return None if canonical(old) == canonical(new) else prefix.rstrip(".")


def lookup(tree, dotted: str):
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return "<absent>"
        tree = tree[part]
    return tree


def is_run_control(override_key: str) -> bool:
    """True for a command-line key that never changes a result (``force``, ``paths.artifacts``,
    ``logger``, ``data.run.num_workers`` ...): such keys do not name a cell folder."""
    parts = override_key.lstrip("+~").split(".")
    return parts[0] in run_controls() or parts[0] == "experiment" or (len(parts) > 2 and parts[1] == RUN_SECTION)


def cell_dirname(overrides) -> str:
    """A sweep cell's folder name: its overrides that name a result, ``key=value`` joined by commas.
    Run controls are left out, and path values (which would nest folders) too: cells that differ only
    in a path share a folder name, and the runner refuses to put a second config into a finished
    folder (``run/folder.py``), naming the differing key."""
    parts = []
    for o in overrides or []:
        key, _, value = str(o).partition("=")
        if is_run_control(key) or "/" in value or "\\" in value:
            continue
        parts.append(f"{key.lstrip('+~')}={value}")
    return ",".join(sorted(parts))
