"""Hyperparameters have one home, the YAML (conf/method/<name>.yaml, conf/prior/<name>.yaml and their
per-scale files): code reads them with ``hp`` and has no fallback values, so a method built in a test
from the composed config is the method the benchmark runs."""
from __future__ import annotations

from denoise_bench.errors import ConfigError


def hp(cfg, key: str, group: str = "method"):
    """``cfg[key]`` (which may be null); a missing key is a one-line error naming where it belongs."""
    if cfg is None or key not in cfg:
        name = cfg.get("name", "<name>") if cfg is not None and hasattr(cfg, "get") else "<name>"
        raise ConfigError(f"{group}.{key} is missing: hyperparameters live in conf/{group}/{name}.yaml "
                          "(build methods from the composed config, e.g. tests/conftest.py method_cfg)")
    return cfg[key]


def method_config(name: str, overrides: dict | None = None, scale: str = "paper"):
    """``cfg.method`` of ``method=<name> scale=<scale>`` as ``run.py`` composes it, with ``overrides``
    merged in (benchmarks and notebooks build methods from the one home of their defaults)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from denoise_bench.identity import CONF_DIR

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"method={name}", f"scale={scale}", "logger=none"])
    return OmegaConf.merge(cfg.method, overrides or {})
