"""``data=flowers102``: Oxford 102 Flowers as distributed (``jpg/`` + ``setid.mat``).

Layout: ``ROOT/jpg/image_00001.jpg ...``, ``ROOT/setid.mat`` with 1-based image numbers in
``trnid`` (1020), ``valid`` (1020) and ``tstid`` (6149); ``ROOT/imagelabels.mat`` (class labels)
belongs to the release but is not needed for denoising and is not read.

FDN swaps the official split: it trains on the 6149 ``tstid`` images and tests on the 2040
``trnid`` + ``valid`` images. Validation: ``data.val_count`` images taken out of the training
images, evenly spaced over them in image-number order (positions ``floor(k*N/val_count)``,
k = 0..val_count-1, of the N sorted ``tstid`` numbers); ``val_count: 0`` trains on all 6149.
Ids are ``flowers102/image_XXXXX``.
"""
from __future__ import annotations

import numpy as np

from denoise_bench.data.items import ImageItem, ImageRef
from denoise_bench.data.sources import register_source, require_dir
from denoise_bench.data.sources.celeba import check_listed_files
from denoise_bench.errors import DataError

LAYOUT = ("ROOT/jpg/image_XXXXX.jpg, ROOT/setid.mat (trnid, valid, tstid: 1-based image numbers) "
          "and ROOT/imagelabels.mat")
SPLIT_VARS = ("trnid", "valid", "tstid")


def evenly_spaced(n_total: int, count: int) -> list[int]:
    """Positions ``floor(k*n_total/count)`` for k < count: a deterministic spread-out subset."""
    count = max(0, min(int(count), n_total))
    return [k * n_total // count for k in range(count)]


def read_mat_vars(path, names: tuple[str, ...], layout: str) -> dict:
    """The named variables of a small .mat file, or a one-line DataError naming what is missing."""
    import scipy.io

    if not path.is_file():
        raise DataError(f"{path}: index file not found; expected {layout}")
    try:
        data = scipy.io.loadmat(str(path))
    except NotImplementedError:
        raise DataError(f"{path}: MATLAB v7.3 (HDF5) .mat files are not supported; expected {layout}") from None
    except Exception as e:  # noqa: BLE001 - scipy raises many kinds
        raise DataError(f"{path}: cannot read .mat file ({type(e).__name__}); expected {layout}") from None
    missing = [n for n in names if n not in data]
    if missing:
        found = sorted(k for k in data if not k.startswith("__"))
        raise DataError(f"{path}: no variable {', '.join(repr(m) for m in missing)} (found {found}); expected {layout}")
    return {n: data[n] for n in names}


def _ids(arr, path, var: str) -> list[int]:
    a = np.asarray(arr).ravel()
    if a.size == 0:
        raise DataError(f"{path}: variable '{var}' is empty; expected {LAYOUT}")
    if not np.issubdtype(a.dtype, np.number) or np.any(a < 1) or np.any(a != np.round(a)):
        raise DataError(f"{path}: variable '{var}' must hold 1-based image numbers; expected {LAYOUT}")
    return sorted({int(v) for v in a})


@register_source("flowers102")
def read_flowers102(cfg, split: str) -> list[ImageItem]:
    root = require_dir(cfg.get("root"), "data.root (Oxford 102 Flowers)", LAYOUT)
    images = root / "jpg"
    if not images.is_dir():
        raise DataError(f"{images}: image folder not found; expected {LAYOUT}")
    setid = root / "setid.mat"
    ids = {v: _ids(a, setid, v) for v, a in read_mat_vars(setid, SPLIT_VARS, LAYOUT).items()}
    train = ids["tstid"]  # FDN's swap: the official test images are the training set
    val_pos = set(evenly_spaced(len(train), cfg.get("val_count", 32) or 0))
    numbers = {
        "train": [n for k, n in enumerate(train) if k not in val_pos],
        "val": [n for k, n in enumerate(train) if k in val_pos],
        "test": sorted(set(ids["trnid"]) | set(ids["valid"])),
    }[split]
    names = [f"image_{n:05d}.jpg" for n in numbers]
    check_listed_files(images, names, setid, LAYOUT)
    return [ImageItem(id=f"flowers102/{name[:-4]}", clean=ImageRef(str(images / name))) for name in names]
