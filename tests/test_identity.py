"""Identity by structure: every key of every method, prior, data and trainer config is changed in turn,
and the cell key / artifact key change exactly when the key is declared to determine them.

Declared (conf/config.yaml header): a key under a group's ``run:`` section, or written in
conf/run/default.yaml, changes neither key; under ``test:`` / ``eval:`` it changes the cell key only;
anywhere else in a group it changes both (the model and therefore the result).
"""
from __future__ import annotations

import functools
from pathlib import Path

import pytest
from omegaconf import OmegaConf, open_dict

from conftest import REPO, compose
from denoise_bench.identity import (cell_dirname, cell_key, config_key, first_difference, run_controls,
                                    training_identity)

CONF = REPO / "conf"


def leaves(tree, prefix=""):
    """Dotted paths of every leaf (lists count as leaves)."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from leaves(v, f"{prefix}{k}.")
    else:
        yield prefix.rstrip(".")


@functools.lru_cache(maxsize=None)
def composed(overrides: tuple[str, ...]):
    """The composed config (unresolved container), once per override set: the walk changes copies."""
    return OmegaConf.to_container(compose(list(overrides)), resolve=False)


def config(overrides) -> "DictConfig":
    return OmegaConf.create(composed(tuple(overrides)))


def changed_value(v):
    """A value of the same kind that differs from ``v``."""
    if isinstance(v, bool):
        return not v
    if isinstance(v, int):
        return v + 1
    if isinstance(v, float):
        return v * 2 + 1
    if isinstance(v, list):
        return [*v, v[-1]] if v else [1]
    if v is None:
        return 7
    return f"{v}_changed"


def declared(group: str, dotted: str) -> str:
    """'none' (run control), 'eval' (cell only) or 'model' (cell and artifact), read off the path."""
    parts = dotted.split(".")
    if len(parts) > 1 and parts[1] == "run":
        return "none"
    if len(parts) > 1 and parts[1] in ("test", "eval"):
        return "eval"
    return "model"


def artifact_key(cfg, group: str) -> str:
    model = cfg.prior if group == "prior" else cfg.method
    return config_key(training_identity(OmegaConf.to_container(model, resolve=True), cfg.data, cfg.trainer,
                                        {"sigma": str(cfg.sigma)}, 1, int(cfg.seed)))


def cases():
    """(overrides, group, dotted key) for every leaf of every method / prior / data / trainer file."""
    out = []
    for method in sorted(p.stem for p in (CONF / "method").glob("*.yaml")):
        for scale in ("smoke", "paper"):
            out.append(([f"method={method}", f"scale={scale}"], "method"))
    for data in sorted(p.stem for p in (CONF / "data").glob("*.yaml")):
        out.append(([f"data={data}"], "data"))
    for trainer in sorted(p.stem for p in (CONF / "trainer").glob("*.yaml")):
        out.append(([f"trainer={trainer}"], "trainer"))
    out.append((["method=glow_map"], "prior"))
    params = []
    for overrides, group in out:
        cfg = composed(tuple(overrides))
        for dotted in leaves({group: cfg[group]}):
            params.append(pytest.param(overrides, group, dotted, id=f"{','.join(overrides)}:{dotted}"))
    return params


@pytest.mark.parametrize("overrides,group,dotted", cases())
def test_each_key_changes_exactly_the_identities_it_is_declared_to_determine(overrides, group, dotted):
    cfg = config(overrides)
    value = OmegaConf.select(cfg, dotted)
    other = config(overrides)
    with open_dict(other):
        OmegaConf.update(other, dotted, changed_value(value), force_add=True)
    kind = declared(group, dotted)
    trained = "prior" if group == "prior" else "method"
    cell_changed = cell_key(other) != cell_key(cfg)
    artifact_changed = artifact_key(other, trained) != artifact_key(cfg, trained)
    assert cell_changed == (kind != "none"), f"{dotted} ({kind}): cell key changed={cell_changed}"
    if group == "method" and trained == "method" or group in ("data", "trainer", "prior"):
        assert artifact_changed == (kind == "model"), f"{dotted} ({kind}): artifact key changed={artifact_changed}"


@pytest.mark.parametrize("key", sorted(OmegaConf.load(CONF / "run" / "default.yaml").keys() - {"defaults"}))
def test_run_controls_written_in_the_run_group_change_no_identity(key):
    cfg = compose(["method=dncnn"])
    other = compose(["method=dncnn"])
    with open_dict(other):
        OmegaConf.update(other, key, changed_value(OmegaConf.select(cfg, key)), force_add=True)
    assert cell_key(other) == cell_key(cfg)
    assert key in run_controls()


@pytest.mark.parametrize("override", ["logger=csv", "paths.artifacts=/elsewhere", "paths.multirun=/x/y"])
def test_groups_composed_by_the_run_group_change_no_identity(override):
    assert cell_key(compose(["method=dncnn", override])) == cell_key(compose(["method=dncnn"]))


@pytest.mark.parametrize("override", ["sigma=15", "seed=3", "eval.self_ensemble=true", "metrics.quantize=true",
                                      "noise=clipped", "data.root=/some/where"])
def test_root_result_keys_and_evaluation_groups_change_the_cell_key(override):
    assert cell_key(compose(["method=dncnn", override])) != cell_key(compose(["method=dncnn"]))


def test_first_difference_names_the_dotted_key():
    old = {"data": {"root": "/a", "test": {"crop": 64}}, "sigma": 25}
    assert first_difference(old, {"data": {"root": "/b", "test": {"crop": 64}}, "sigma": 25}) == "data.root"
    assert first_difference(old, {**old, "sigma": 50}) == "sigma"
    assert first_difference(old, old) is None


def test_cell_folder_names_leave_out_run_controls_and_paths():
    name = cell_dirname(["method=dncnn", "sigma=25", "force=true", "paths.artifacts=/a/b", "data.root=/x/y",
                         "data.run.num_workers=2", "logger=csv", "method.lr=0.01"])
    assert name == "method.lr=0.01,method=dncnn,sigma=25"


def test_no_hand_kept_key_lists_remain():
    names = ("NON_RESULT_KEYS", "TRAINING_TRAINER_KEYS", "train_data_key", "EVAL_ONLY_KEYS", "MAP_KEYS",
             "NOT_IN_KEY", "exclude_keys")
    sources = [p for p in (REPO / "denoise_bench").rglob("*.py")] + list((REPO / "conf").rglob("*.yaml"))
    hits = [f"{p.relative_to(REPO)}: {n}" for p in sources for n in names if n in Path(p).read_text()]
    assert hits == []
