"""Method registry: ``method.name`` in the config → the LightningModule class."""
from __future__ import annotations

import importlib

from denoise_bench.errors import ConfigError

# name -> "module:Class"; modules are imported only when their method is used
METHODS = {
    "noisy": "denoise_bench.methods.noisy:NoisyInput",
    "bm3d": "denoise_bench.methods.bm3d:BM3D",
    "dncnn": "denoise_bench.methods.dncnn:DnCNN",
    "glow_map": "denoise_bench.methods.glow_map:GlowMAP",
    "fdn": "denoise_bench.methods.fdn:FDN",
    "flow_prior": "denoise_bench.methods.flow_prior:FlowPriorDenoiser",
}


def method_class(name: str):
    if name not in METHODS:
        raise ConfigError(f"method {name!r}: unknown; choose one of {sorted(METHODS)}")
    module, cls = METHODS[name].split(":")
    return getattr(importlib.import_module(module), cls)
