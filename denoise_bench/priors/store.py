"""The Glow prior of a run: trained once per (clean training data, prior config), then loaded.

``load_or_train_prior(ctx, cfg)`` is the one entry point for every method that needs a prior
(glow_map, flow_prior). The artifact key is ``identity.training_identity`` of the prior group: its
model part (architecture, n_bits, steps, lr, warm-up, batch, clipping, training data), the model part
of the clean training data (no ``test:`` / ``run:`` sections), the trainer, the channels and the seed.
It never contains the test sigma, β or MAP settings (they live in the method group), so every cell
of a sweep that shares the prior config loads the same file and only the first one trains.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from denoise_bench.errors import ConfigError, DataError
from denoise_bench.flows import Glow
from denoise_bench.priors.glow_prior import GlowPrior, build_glow
from denoise_bench.weights import read_state_dict

PRIOR_KIND = "glow_prior"
ARCHITECTURE = ("levels", "steps", "hidden", "n_bits", "lu", "learn_top")


def prior_data_config(cfg: DictConfig) -> DictConfig:
    """The data config of the prior's clean training images.

    ``cfg.prior.data`` if set, else the cell's ``cfg.data``; ``prior.image_size`` (the training
    image side) replaces ``patch_size`` and ``prior.batch_size`` replaces ``batch_size`` when set.
    For aligned faces set ``data.train_center_crop`` / ``data.train_size`` = ``prior.image_size``
    as ``data.test.crop`` / ``data.test.size``, so the prior sees whole images prepared exactly as the
    test images are.
    """
    base = cfg.prior.get("data") or cfg.data
    d = OmegaConf.to_container(base, resolve=True)
    if cfg.prior.get("image_size"):
        d["patch_size"] = int(cfg.prior.image_size)
    if cfg.prior.get("batch_size"):
        d["batch_size"] = int(cfg.prior.batch_size)
    return OmegaConf.create(d)


def prior_channels(data_cfg: DictConfig) -> int:
    """``data.channels``, or the channels of the first training image when it is null (as stored)."""
    if data_cfg.get("channels"):
        return int(data_cfg.channels)
    from denoise_bench.data.items import read_image
    from denoise_bench.data.sources import list_items

    items = list_items(data_cfg, "train")
    if not items:
        raise DataError(f"data={data_cfg.get('name')}: the training split is empty; the Glow prior needs clean images")
    return int(read_image(items[0].clean, None, data_cfg.get("bit_depth")).shape[2])


def prior_key(cfg: DictConfig, data_cfg: DictConfig, channels: int) -> dict:
    """The artifact key: the model part of the prior and of its clean training data (fit_or_load adds
    the world size). ``prior.data`` itself is replaced by the data config it resolves to."""
    from denoise_bench.identity import training_identity

    prior = OmegaConf.to_container(cfg.prior, resolve=True)
    prior.pop("data", None)
    return training_identity(prior, data_cfg, cfg.trainer, {"sigma": "0"}, channels, int(cfg.seed))


def freeze(glow: Glow) -> Glow:
    """eval() and requires_grad False: a prior is never updated by the method that uses it."""
    glow.eval()
    for p in glow.parameters():
        p.requires_grad_(False)
    return glow


def load_weights_file(glow: Glow, path: str, prior_cfg, channels: int) -> Path:
    """Load ``prior.weights`` (a Glow state dict, a stored ``model.pt`` or a ``last_good.pt``).

    A checkpoint of a different prior config is refused with the differing keys named.
    """
    p = Path(str(path)).expanduser()
    if not p.is_file():
        raise ConfigError(f"{p}: prior weights file not found (prior.weights)")
    meta_path = p.parent / "meta.json"
    if meta_path.is_file():  # a stored artifact: compare its architecture with ours first
        try:
            stored = json.loads(meta_path.read_text()).get("config", {})
        except json.JSONDecodeError:
            stored = {}
        ours = {k: prior_cfg.get(k) for k in ARCHITECTURE}
        ours["channels"] = int(channels)
        theirs = {**(stored.get("model") or stored.get("prior") or {}), "channels": stored.get("channels")}
        diff = [f"{k}={theirs.get(k)} (wanted {v})" for k, v in ours.items() if k in theirs and theirs.get(k) != v]
        if stored and diff:
            raise ConfigError(f"{p}: a Glow prior of a different config ({', '.join(diff)}); "
                              "train one for this config or set prior.* to match it")
    state = read_state_dict(p, "prior.weights")
    state = {k.removeprefix("glow."): v for k, v in state.items()}
    own = glow.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in state if k in own and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        arch = ", ".join(f"{k}={prior_cfg.get(k)}" for k in ARCHITECTURE[:3])
        raise ConfigError(f"{p}: not a Glow prior for this config ({arch}, channels={channels}): "
                          f"missing {missing[:2]}, unexpected {unexpected[:2]}, shape mismatch {wrong[:2]}")
    glow.load_state_dict(state)
    return p


def read_report(folder: Path) -> dict:
    try:
        return json.loads((Path(folder) / "report.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def load_or_train_prior(ctx, cfg: DictConfig) -> Glow:
    """The frozen Glow prior for ``cfg``: loaded from the artifact store, trained there if missing.

    Args:
        ctx: the cell's ``training.TrainingContext`` (artifact store, logger, ``fit_or_load``).
        cfg: the full run config. Uses ``cfg.prior`` (the Glow config, see ``conf/prior/glow.yaml``)
            and the clean training images of ``cfg.prior.data`` if set, else ``cfg.data``
            (see ``prior_data_config``); ``cfg.seed``; ``cfg.trainer`` for training.

    Returns:
        The Glow (on the CPU) in eval() with ``requires_grad`` False on every parameter.
        ``prior.weights=PATH`` loads that file instead (refused if it is for another config).
        Trains (through ``ctx.fit_or_load``, kind ``glow_prior``) only when no artifact matches;
        with ``train=false`` a missing prior is an error.
    """
    import lightning as L

    from denoise_bench.data.datamodule import DenoisingDataModule
    from denoise_bench.data.noise import NoiseSpec

    pcfg = cfg.prior
    data_cfg = prior_data_config(cfg)
    channels = prior_channels(data_cfg)
    seed = int(cfg.seed)
    L.seed_everything(seed, verbose=False)  # the untrained init is part of what the key names
    module = GlowPrior(pcfg, channels, image_size=int(data_cfg.patch_size))
    module.seed = seed
    if pcfg.get("weights"):
        path = load_weights_file(module.glow, pcfg.weights, pcfg, channels)
        print(f"[artifacts] {PRIOR_KIND}: loaded {path} (prior.weights)")
        ctx.artifacts_used.append({"kind": PRIOR_KIND, "path": str(path), "status": "given"})
        return freeze(module.glow)

    key = prior_key(cfg, data_cfg, channels)
    module.failure_dir = Path(ctx.out_dir)  # last_good.pt goes there if training diverges
    steps = int(pcfg.get("train_steps") or 0)
    if steps <= 0 and bool(cfg.get("train", True)):
        raise ConfigError(f"prior.train_steps={steps}: the Glow prior needs training steps (or prior.weights=PATH)")
    dm = DenoisingDataModule(data_cfg, NoiseSpec(0.0, seed=seed), train_steps=steps, seed=seed)  # clean images only
    overrides = {}
    if pcfg.get("gradient_clip_val") is not None:
        overrides["gradient_clip_val"] = float(pcfg.gradient_clip_val)
    status = ctx.fit_or_load(module, PRIOR_KIND, key, dm, steps, **overrides)
    entry = ctx.artifacts_used[-1]
    folder = Path(entry["path"])
    if status == "trained" and ctx.store.enabled:  # bits/dim and a sample grid next to the weights
        module.write_report(folder)
    entry.update({k: v for k, v in read_report(folder).items() if k.endswith("bits_per_dim")})
    return freeze(module.glow.cpu())
