"""``data=builtin``: the photographs bundled inside scikit-image (no download, always there).

The split is by image and written in the config (``data.splits``); the gray variant converts every
photograph to luma, the colour variant uses only the colour photographs.
"""
from __future__ import annotations

import os
from pathlib import Path

from denoise_bench.data.items import IMAGE_SUFFIXES, ImageItem, ImageRef
from denoise_bench.data.sources import register_source
from denoise_bench.errors import ConfigError, DataError


def builtin_dir() -> Path:
    import skimage

    return Path(os.path.dirname(skimage.__file__)) / "data"


@register_source("builtin")
def read_builtin(cfg, split: str) -> list[ImageItem]:
    folder = builtin_dir()
    names = list((cfg.get("splits") or {}).get(split) or [])
    if not names and split != "val":
        raise ConfigError(f"data.splits.{split} is empty: list scikit-image photograph names for it")
    items = []
    for name in names:
        path = next((folder / f"{name}{s}" for s in IMAGE_SUFFIXES if (folder / f"{name}{s}").exists()), None)
        if path is None:
            raise DataError(f"{folder}/{name}.*: scikit-image has no bundled photograph '{name}'")
        items.append(ImageItem(id=f"builtin/{name}", clean=ImageRef(str(path))))
    return items
