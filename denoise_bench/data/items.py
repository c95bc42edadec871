"""What a dataset reader returns: image items with stable ids, and the one image loader.

A reader (see ``sources.py``) only lists items; pixels are read here, so every dataset shares the
same decoding, colour handling and error messages.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from denoise_bench.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".webp")


@dataclass(frozen=True)
class ImageRef:
    """Where one image's pixels live: an image file, or entry ``index`` of array ``var`` in a .mat file."""

    path: str
    var: str | None = None
    index: tuple[int, ...] | None = None


@dataclass(frozen=True)
class ImageItem:
    """One image of a dataset. ``id`` is stable across runs: it seeds the synthetic noise."""

    id: str
    clean: ImageRef
    noisy: ImageRef | None = None  # set for real-noise (paired) datasets


def list_image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


@functools.lru_cache(maxsize=4)
def _load_mat(path: str) -> dict:
    import scipy.io

    try:
        return scipy.io.loadmat(path)
    except NotImplementedError:  # MATLAB v7.3 files are HDF5
        raise DataError(f"{path}: MATLAB v7.3 (HDF5) .mat files are not supported; save it with -v7") from None
    except Exception as e:  # noqa: BLE001 - scipy raises many kinds
        raise DataError(f"{path}: cannot read .mat file ({e})") from None


def _to_channels(arr: np.ndarray, channels: int | None, where: str) -> np.ndarray:
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise DataError(f"{where}: expected a gray or RGB image, got an array of shape {arr.shape}")
    if arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if channels == 1 and arr.shape[2] == 3:
        # ITU-R BT.601 luma, the conversion PIL's "L" mode uses
        f = arr.astype(np.float64)
        arr = np.round(0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2])[..., None].astype(arr.dtype)
    elif channels == 3 and arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return arr


def read_image(ref: ImageRef, channels: int | None = None, bit_depth: int | None = None) -> np.ndarray:
    """Pixels of ``ref`` as float32 H×W×C in [0, 1] (C = ``channels`` or as stored)."""
    if ref.var is not None:
        data = _load_mat(ref.path)
        if ref.var not in data:
            found = sorted(k for k in data if not k.startswith("__"))
            raise DataError(f"{ref.path}: expected a variable '{ref.var}', found {found}")
        arr = data[ref.var]
        try:
            arr = arr[ref.index] if ref.index is not None else arr
        except IndexError:
            raise DataError(f"{ref.path}: '{ref.var}' has shape {arr.shape}, no entry {ref.index}") from None
        where = f"{ref.path}:{ref.var}{list(ref.index or ())}"
    else:
        where = ref.path
        try:
            with Image.open(ref.path) as im:
                im.load()
                if im.mode in ("I;16", "I;16B", "I", "F"):
                    arr = np.asarray(im, dtype=np.float64)
                    arr = (arr / (65535.0 if arr.max() > 255 else 255.0) * 255.0)
                elif im.mode in ("L", "RGB"):
                    arr = np.asarray(im)
                else:
                    arr = np.asarray(im.convert("RGB"))
        except FileNotFoundError:
            raise DataError(f"{ref.path}: image file not found") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise DataError(f"{ref.path}: cannot decode image ({type(e).__name__}: {e}); expected a valid PNG/JPEG/TIFF/BMP") from None
    arr = _to_channels(np.asarray(arr), channels, where)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    arr = arr.astype(np.float32)
    return arr / 255.0 if arr.max() > 1.0 + 1e-6 else arr


def image_size(ref: ImageRef) -> tuple[int, int]:
    """(height, width) without decoding the pixels where the format allows it."""
    if ref.var is not None:
        h, w = read_image(ref).shape[:2]
        return h, w
    try:
        with Image.open(ref.path) as im:
            w, h = im.size
    except FileNotFoundError:
        raise DataError(f"{ref.path}: image file not found") from None
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(f"{ref.path}: cannot decode image ({type(e).__name__}); expected a valid PNG/JPEG/TIFF/BMP") from None
    return h, w


def check_eval_memory(items, channels, crop, size, limit_bytes=None) -> None:
    """Placeholder until the image-reading work lands (memory guard for decoded test sets)."""
