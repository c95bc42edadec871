"""One reader for every weights file a user can point a config key at (``method.weights``, ...).

A file may hold a plain state dict, a Lightning checkpoint (``{"state_dict": ...}``) or the
wrappers other training codes write (``model_state_dict``, ``model``, BasicSR's ``params``). Keys
lose the ``module.`` prefix that ``DataParallel`` adds; any other renaming (``net.``, ``glow.``)
is the caller's business, since only it knows its own module names. Files are read with
``weights_only=True``: no pickled code runs.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from denoise_bench.errors import ConfigError

# dictionaries that wrap a state dict, tried in this order
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "params", "params_ema")


def _is_state_dict(obj) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def read_state_dict(path, what: str) -> dict[str, torch.Tensor]:
    """The state dict (name -> tensor) in ``path``, ``module.`` prefixes removed.

    ``what`` is the config key the path came from; every refusal is one line naming it.
    """
    p = Path(str(path)).expanduser()
    if not p.is_file():
        raise ConfigError(f"{p}: weights file not found ({what})")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        if "unsupported global" in str(e).lower():  # pickled classes: a whole model saved with torch.save(model)
            raise ConfigError(
                f"{p}: holds pickled Python objects, not a state dict ({what}); a whole model saved with "
                "torch.save(model) must be re-saved as torch.save(model.state_dict(), PATH) where its "
                "class can be imported") from None
        raise ConfigError(f"{p}: cannot read weights ({type(e).__name__}; {what}); expected a PyTorch "
                          "state dict") from None
    if not _is_state_dict(obj) and isinstance(obj, dict):
        obj = next((obj[k] for k in WRAPPER_KEYS if _is_state_dict(obj.get(k))), obj)
    if not _is_state_dict(obj):
        raise ConfigError(f"{p}: not a state dict ({what}); expected parameter name -> tensor, "
                          f"or one under {'/'.join(WRAPPER_KEYS)}")
    out = {}
    for k, v in obj.items():
        while k.startswith("module."):
            k = k[len("module."):]
        out[k] = v
    return out


def sha256_file(path) -> str:
    """SHA-256 (hex) of a file's bytes: names exactly which weights a result was measured with."""
    h = hashlib.sha256()
    with open(Path(str(path)).expanduser(), "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_into_net(module, state: dict, path, hint: str) -> None:
    """Load a method's saved network (keys with or without the ``net.`` prefix) into ``module``; a file
    that does not fit is one line naming what to check (``hint``)."""
    state = {k if k.startswith("net.") else f"net.{k}": v for k, v in state.items()}
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        raise ConfigError(f"{path}: does not fit this {module.name} (check {hint}): "
                          f"{str(e).splitlines()[0]} (method.weights)") from None
