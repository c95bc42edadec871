"""``data=rice1`` / ``data=rice2``: the RICE remote-sensing release folders.

Layouts: RICE1 ``ROOT/RICE1/{cloud,label}/N.png`` (500 pairs); RICE2
``ROOT/RICE2/{cloudy_image,label,mask}/N.png`` (736 triples). ``data.root`` may be the parent
folder or the RICE1 / RICE2 folder itself. Only the cloud-free ``label/`` images are read: they are
the clean images, synthetic AWGN is added to them (FDN Table IV: sigma 30 / 50 / 70).

RICE has no official split. Ours is deterministic: the ``label/`` files sorted by their numeric
name; the last ``data.test_fraction`` (20%) are the test split, the ``data.val_fraction`` (5%)
before them the validation split, the rest training (counts rounded half up: RICE1 375 / 25 / 100,
RICE2 552 / 37 / 147). Ids are ``rice1/<stem>`` / ``rice2/<stem>``.
"""
from __future__ import annotations

import math
from pathlib import Path

from denoise_bench.data.items import ImageItem, ImageRef, list_image_files
from denoise_bench.data.sources import register_source, require_dir
from denoise_bench.data.sources.paired_folder import natural_key
from denoise_bench.errors import ConfigError, DataError

FOLDERS = {"rice1": ("RICE1", "cloud"), "rice2": ("RICE2", "cloudy_image")}


def rice_layout(name: str) -> str:
    top, cloudy = FOLDERS[name]
    extra = ",mask" if name == "rice2" else ""
    return f"ROOT/{top}/{{{cloudy},label{extra}}}/N.png (ROOT may be the {top} folder itself)"


def rice_label_dir(root: Path, name: str) -> Path:
    top, cloudy = FOLDERS[name]
    layout = rice_layout(name)
    base = root / top if (root / top).is_dir() else root
    label = base / "label"
    if not label.is_dir():
        raise DataError(f"{label}: folder of cloud-free images not found; expected {layout}")
    other = "rice2" if name == "rice1" else "rice1"
    if not (base / cloudy).is_dir() and (base / FOLDERS[other][1]).is_dir():
        raise DataError(f"{base}: this looks like {FOLDERS[other][0]} (has {FOLDERS[other][1]}/), not "
                        f"{top}; use data={other} or expected {layout}")
    return label


def split_counts(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """(train, val, test) counts; fractions rounded half up."""
    if not (0 <= val_fraction and 0 <= test_fraction and val_fraction + test_fraction <= 1):
        raise ConfigError(f"data.val_fraction={val_fraction}, data.test_fraction={test_fraction}: "
                          "expected fractions >= 0 that sum to at most 1")
    n_test = min(n, math.floor(n * test_fraction + 0.5))
    n_val = min(n - n_test, math.floor(n * val_fraction + 0.5))
    return n - n_val - n_test, n_val, n_test


def read_rice(cfg, split: str, name: str) -> list[ImageItem]:
    layout = rice_layout(name)
    root = require_dir(cfg.get("root"), f"data.root ({FOLDERS[name][0]})", layout)
    label = rice_label_dir(root, name)
    files = sorted(list_image_files(label), key=lambda p: natural_key(p.stem))
    if not files:
        raise DataError(f"{label}: no image files found; expected {layout}")
    n_train, n_val, _ = split_counts(len(files), float(cfg.get("val_fraction", 0.05)),
                                     float(cfg.get("test_fraction", 0.2)))
    chosen = {
        "train": files[:n_train],
        "val": files[n_train : n_train + n_val],
        "test": files[n_train + n_val :],
    }[split]
    return [ImageItem(id=f"{name}/{f.stem}", clean=ImageRef(str(f))) for f in chosen]


@register_source("rice1")
def read_rice1(cfg, split: str) -> list[ImageItem]:
    return read_rice(cfg, split, "rice1")


@register_source("rice2")
def read_rice2(cfg, split: str) -> list[ImageItem]:
    return read_rice(cfg, split, "rice2")
