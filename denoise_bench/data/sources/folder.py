"""``data=folder``: any folder of images (Set12, BSD68, Kodak24, McMaster, ...).

``data.root`` holds the test images; training reads ``data.train_root`` (e.g. DnCNN's Train400) and
validation ``data.val_root`` (optional). Image ids are ``<folder name>/<file stem>``.
"""
from __future__ import annotations

from denoise_bench.data.items import ImageItem, ImageRef, list_image_files
from denoise_bench.data.sources import register_source, require_dir, split_root
from denoise_bench.errors import DataError

LAYOUT = "a folder of image files (png/jpg/bmp/tif)"


def read_image_folder(path, what: str) -> list[ImageItem]:
    root = require_dir(path, what, LAYOUT)
    files = list_image_files(root)
    if not files:
        raise DataError(f"{root}: no image files found; expected {LAYOUT}")
    return [ImageItem(id=f"{root.name}/{f.stem}", clean=ImageRef(str(f))) for f in files]


@register_source("folder")
def read_folder(cfg, split: str) -> list[ImageItem]:
    path, key = split_root(cfg, split, "data=folder has no training images: set data.train_root=FOLDER (or give "
                                       "the method pretrained weights, e.g. method.weights=PATH)")
    if not path and split == "val":
        return []
    return read_image_folder(path, key)
