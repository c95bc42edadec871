"""``data=cub200``: Caltech-UCSD Birds-200-2011 as distributed (``CUB_200_2011/``).

Layout: ``ROOT/CUB_200_2011/images/<class>/<file>.jpg``, ``ROOT/CUB_200_2011/images.txt``
(``<id> <class>/<file>.jpg``) and ``ROOT/CUB_200_2011/train_test_split.txt`` (``<id> <1|0>``,
1 = train, 0 = test); ``data.root`` may also be the ``CUB_200_2011`` folder itself.

Splits: the official ones (5994 train / 5794 test). Validation: ``data.val_count`` training images
held out, evenly spaced over the training list in image-id order (positions
``floor(k*N/val_count)``). With ``data.skip_small_train`` (default true) training images smaller
than ``data.patch_size`` on a side are left out (their sizes are read from the file headers), so a
random crop never fails half-way through training. Ids are ``cub200/<class>/<file stem>``.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from denoise_bench.data.items import ImageItem, ImageRef, image_size
from denoise_bench.data.sources import register_source, require_dir
from denoise_bench.data.sources.celeba import read_two_columns
from denoise_bench.data.sources.flowers102 import evenly_spaced
from denoise_bench.errors import DataError

log = logging.getLogger(__name__)
LAYOUT = ("ROOT/CUB_200_2011/{images/<class>/<file>.jpg, images.txt ('<id> <class>/<file>.jpg'), "
          "train_test_split.txt ('<id> <1 train|0 test>')} (ROOT may be the CUB_200_2011 folder itself)")


def cub_base(root: Path) -> Path:
    """The ``CUB_200_2011`` folder, whether ROOT is it or its parent."""
    if (root / "CUB_200_2011").is_dir():
        return root / "CUB_200_2011"
    if (root / "images.txt").exists() or (root / "images").is_dir():
        return root
    raise DataError(f"{root / 'CUB_200_2011'}: folder not found; expected {LAYOUT}")


def _int_ids(rows, path) -> dict[int, str]:
    out = {}
    for a, b in rows:
        if not a.isdigit():
            raise DataError(f"{path}: image id {a!r} is not a number; expected {LAYOUT}")
        out[int(a)] = b
    return out


@register_source("cub200")
def read_cub200(cfg, split: str) -> list[ImageItem]:
    root = require_dir(cfg.get("root"), "data.root (CUB-200-2011)", LAYOUT)
    base = cub_base(root)
    images_dir = base / "images"
    if not images_dir.is_dir():
        raise DataError(f"{images_dir}: image folder not found; expected {LAYOUT}")
    paths = _int_ids(read_two_columns(base / "images.txt", LAYOUT), base / "images.txt")
    flags = _int_ids(read_two_columns(base / "train_test_split.txt", LAYOUT), base / "train_test_split.txt")
    unknown = sorted(set(flags) - set(paths))
    if unknown:
        raise DataError(f"{base / 'train_test_split.txt'}: image id {unknown[0]} is not in images.txt; expected {LAYOUT}")
    bad = next((i for i, f in flags.items() if f not in ("0", "1")), None)
    if bad is not None:
        raise DataError(f"{base / 'train_test_split.txt'}: image id {bad} has flag {flags[bad]!r}; expected {LAYOUT}")
    train_ids = sorted(i for i, f in flags.items() if f == "1")
    val_pos = set(evenly_spaced(len(train_ids), cfg.get("val_count", 32) or 0))
    ids = {
        "train": [i for k, i in enumerate(train_ids) if k not in val_pos],
        "val": [i for k, i in enumerate(train_ids) if k in val_pos],
        "test": sorted(i for i, f in flags.items() if f == "0"),
    }[split]
    listing: dict[str, set[str]] = {}
    items = []
    for i in ids:
        rel = paths[i]
        cls, _, name = rel.rpartition("/")
        if cls not in listing:
            try:
                listing[cls] = set(os.listdir(images_dir / cls))
            except OSError:
                listing[cls] = set()
        if name not in listing[cls]:
            raise DataError(f"{images_dir / rel}: listed in {base / 'images.txt'} but not found; expected {LAYOUT}")
        items.append(ImageItem(id=f"cub200/{Path(rel).with_suffix('').as_posix()}", clean=ImageRef(str(images_dir / rel))))
    # the smallest usable side: the training centre crop if any, else the random crop (none when
    # images are only resized to data.train_size first)
    need = cfg.get("train_center_crop") or (None if cfg.get("train_size") else cfg.get("patch_size"))
    if split == "train" and cfg.get("skip_small_train", True) and need:
        patch = int(need)
        kept = [it for it in items if min(image_size(it.clean)) >= patch]
        if items and not kept:
            raise DataError(f"{images_dir}: every training image is smaller than the training crop {patch} "
                            "(data.patch_size / data.train_center_crop); expected CUB images of at least that size")
        if len(kept) < len(items):
            log.warning("cub200: left out %d training image(s) smaller than the %d crop", len(items) - len(kept), patch)
        items = kept
    return items
