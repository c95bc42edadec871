"""Dataset readers: one per published folder layout, each listing the items of a split.

A reader is ``fn(cfg, split) -> list[ImageItem]`` where ``cfg`` is the ``data`` config and split is
``"train"``, ``"val"`` or ``"test"``. Readers never decode pixels (``items.read_image`` does) and
raise ``DataError`` with the path and the expected layout when a folder is not what they expect.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from denoise_bench.data.items import ImageItem
from denoise_bench.errors import ConfigError, DataError

Reader = Callable[[object, str], list[ImageItem]]
SOURCES: dict[str, Reader] = {}


def register_source(name: str):
    def wrap(fn: Reader) -> Reader:
        SOURCES[name] = fn
        return fn

    return wrap


def require_dir(path, what: str, layout: str) -> Path:
    """``path`` as a Path, or a one-line DataError naming it and the expected layout."""
    if path is None or str(path) in ("", "None", "???"):
        raise DataError(f"{what}: data.root is not set; expected {layout}")
    p = Path(str(path)).expanduser()
    if not p.is_dir():
        raise DataError(f"{p}: {what} folder not found; expected {layout}")
    return p


SPLIT_ROOT_KEYS = {"train": "train_root", "val": "val_root", "test": "root"}


def split_root(cfg, split: str, no_train: str) -> tuple[str | None, str]:
    """(folder, its config key) of a split of the folder-like sources: ``data.root`` is the test set,
    ``data.train_root`` / ``data.val_root`` the others. No validation folder: (None, key); no training
    folder: a DataError whose message is ``no_train``."""
    key = SPLIT_ROOT_KEYS[split]
    path = cfg.get(key)
    if split == "train" and not path:
        raise DataError(no_train)
    return (path or None), f"data.{key}"


def list_items(cfg, split: str) -> list[ImageItem]:
    """The items of ``split`` for the dataset named ``cfg.source``: at most ``data.limit.<train|val>``
    training / validation images, ``data.test.limit`` test images (the last ones with ``data.test.from_end``)."""
    name = cfg.get("source", cfg.get("name"))
    if name not in SOURCES:
        raise ConfigError(f"data.source={name!r}: unknown dataset reader; choose one of {sorted(SOURCES)}")
    items = SOURCES[name](cfg, split)
    test = cfg.get("test") or {}
    limit = test.get("limit") if split == "test" else (cfg.get("limit") or {}).get(split)
    if limit is not None and int(limit) >= 0:
        items = items[-int(limit):] if split == "test" and test.get("from_end", False) else items[: int(limit)]
    if split == "train" and cfg.get("train_part") is not None:
        items = take_part(items, cfg.get("train_part"))
    return items


def take_part(items: list, part) -> list:
    """The slice [start, end) (fractions) of the training items, ``data.train_part``: adjacent parts
    such as [0, 0.5] and [0.5, 1] are disjoint and together cover the split (unpaired methods train
    a prior on one part and a denoiser on the other)."""
    try:
        start, end = (float(p) for p in part)
    except (TypeError, ValueError):
        raise ConfigError(f"data.train_part={part!r}: expected [start, end] fractions, e.g. [0.5, 1.0]") from None
    if not 0.0 <= start < end <= 1.0:
        raise ConfigError(f"data.train_part={list(part)}: expected 0 <= start < end <= 1")
    n = len(items)
    return items[int(start * n + 0.5) : int(end * n + 0.5)]


# the readers register themselves on import
from denoise_bench.data.sources import builtin, folder  # noqa: E402,F401

for _optional in ("celeba", "flowers102", "cub200", "rice", "sidd", "paired_folder"):
    try:  # readers for the papers' datasets live in their own modules
        __import__(f"denoise_bench.data.sources.{_optional}")
    except ModuleNotFoundError as _e:
        if _e.name != f"denoise_bench.data.sources.{_optional}":
            raise
