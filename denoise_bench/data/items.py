"""What a dataset reader returns: image items with stable ids, and the one image loader.

A reader (see ``sources.py``) only lists items; pixels are read here, so every dataset shares the
same decoding, colour handling, value range and error messages. ``check_eval_memory`` stops a test
set that would not fit in memory before it is decoded.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from denoise_bench.data.decode import decode_file
from denoise_bench.errors import ConfigError, DataError

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


# Float pixels are taken as already in [0, 1] and kept as stored (a noisy float image may overshoot
# [0, 1]); outside this band they are in other units (0..255, 0..65535), which we refuse to guess.
FLOAT_RANGE = (-0.5, 1.5)
BYTES_PER_VALUE = 4  # float32


def _mat_entry(ref: ImageRef) -> tuple[np.ndarray, str]:
    data = _load_mat(ref.path)
    if ref.var not in data:
        found = sorted(k for k in data if not k.startswith("__"))
        raise DataError(f"{ref.path}: expected a variable '{ref.var}', found {found}")
    arr = data[ref.var]
    try:
        arr = arr[ref.index] if ref.index is not None else arr
    except IndexError:
        raise DataError(f"{ref.path}: '{ref.var}' has shape {arr.shape}, no entry {ref.index}") from None
    return np.asarray(arr), f"{ref.path}:{ref.var}{list(ref.index or ())}"


def _mat_range(arr: np.ndarray) -> int | None:
    """Container maximum of a .mat array: its dtype's, as for files (bool 1, uint8 255, uint16 65535)."""
    kind, size = arr.dtype.kind, arr.dtype.itemsize
    return 1 if kind == "b" else {1: 255, 2: 65535}.get(size) if kind == "u" else None


def _to_channels(arr: np.ndarray, channels: int | None, where: str) -> np.ndarray:
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise DataError(f"{where}: expected a gray or RGB image, got an array of shape {arr.shape}")
    if arr.shape[2] == 4:  # RGBA array in a .mat file: alpha dropped, as for image files
        arr = arr[:, :, :3]
    if channels == 1 and arr.shape[2] == 3:
        # ITU-R BT.601 luma, the conversion PIL's "L" mode uses; integers stay integers (rounded)
        f = arr.astype(np.float64)
        luma = 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]
        arr = (np.round(luma) if np.issubdtype(arr.dtype, np.integer) else luma)[..., None].astype(arr.dtype)
    elif channels == 3 and arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return arr


def _check_bit_depth(bit_depth) -> int | None:
    if bit_depth is None:
        return None
    if isinstance(bit_depth, bool) or not isinstance(bit_depth, (int, np.integer)) or not 1 <= bit_depth <= 32:
        raise ConfigError(f"data.bit_depth must be null or a number of bits 1..32, got {bit_depth!r}")
    return int(bit_depth)


def _to_unit_range(arr: np.ndarray, container_max: int | None, bit_depth: int | None, where: str) -> np.ndarray:
    """Stored values -> float32 in [0, 1]: integers / (2^bit_depth − 1), else / their container maximum."""
    if not np.issubdtype(arr.dtype, np.integer) and arr.dtype != bool:
        arr = arr.astype(np.float32)
        if not np.all(np.isfinite(arr)):
            raise DataError(f"{where}: float image holds NaN or infinite values")
        lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
        if lo < FLOAT_RANGE[0] or hi > FLOAT_RANGE[1]:
            raise DataError(f"{where}: float image values span [{lo:g}, {hi:g}]; float images must be in [0, 1] "
                            "(store 0..255 or 0..65535 data as uint8 / uint16, or divide it)")
        return arr
    lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
    if lo < 0:
        raise DataError(f"{where}: negative pixel value {lo} in an integer image")
    if bit_depth is not None:
        top = 2**bit_depth - 1
        if container_max is not None and top > container_max:
            raise DataError(f"{where}: data.bit_depth={bit_depth} is more than this image's container holds "
                            f"(values up to {container_max}); bit_depth is for N-bit data in deeper files")
        if hi > top:
            raise DataError(f"{where}: value {hi} exceeds the {bit_depth}-bit range 0..{top} (data.bit_depth={bit_depth})")
    elif container_max is None:
        raise DataError(f"{where}: {arr.dtype} pixels have no standard range; set data.bit_depth to the bits they use")
    else:
        top = container_max
        if hi > top:
            raise DataError(f"{where}: value {hi} exceeds the maximum {top} stated in the file header")
    return arr.astype(np.float32) / np.float32(top)


def read_image(ref: ImageRef, channels: int | None = None, bit_depth: int | None = None) -> np.ndarray:
    """Pixels of ``ref`` as float32 H×W×C in [0, 1] (C = ``channels`` or as stored).

    Value range, by the container, never by the content: integer pixels are divided by the largest
    value their container holds: 255 for 8-bit files and uint8 arrays, 65535 for 16-bit PNG / TIFF
    and uint16 arrays, the header's ``maxval`` for PGM / PPM, 1 for bilevel images. With
    ``bit_depth=N`` (``data.bit_depth``, e.g. 12 for 12-bit data in 16-bit files) they are divided by
    2^N − 1 instead, and a value above 2^N − 1 is an error. Other integer arrays (int32...) need
    ``bit_depth``. Float pixels (float TIFF, float .mat arrays) are taken as already in [0, 1], kept
    as stored; values outside [-0.5, 1.5] are an error (they are 0..255-style data).

    Colour modes, converted explicitly: RGBA / LA -> RGB / gray with the alpha dropped (colour values
    kept as stored, not composited); palette (P / PA) -> the palette colours, gray when every palette
    entry is gray, alpha / transparency dropped; bilevel -> gray 0 / 1; CMYK -> RGB by
    (1 − C)(1 − K) per channel (no colour profile); YCbCr -> RGB by full-range BT.601 (JFIF).
    ``channels=3`` repeats gray, ``channels=1`` takes BT.601 luma 0.299 R + 0.587 G + 0.114 B.
    """
    bit_depth = _check_bit_depth(bit_depth)
    if ref.var is not None:
        arr, where = _mat_entry(ref)
        container_max = _mat_range(arr)
    else:
        where = ref.path
        arr, container_max = decode_file(ref.path)
    arr = _to_channels(arr, channels, where)
    return _to_unit_range(arr, container_max, bit_depth, where)


def image_size(ref: ImageRef) -> tuple[int, int]:
    """(height, width) without decoding the pixels where the format allows it."""
    if ref.var is not None:
        arr, _ = _mat_entry(ref)
        return int(arr.shape[0]), int(arr.shape[1])
    try:
        with Image.open(ref.path) as im:
            w, h = im.size
    except FileNotFoundError:
        raise DataError(f"{ref.path}: image file not found") from None
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(f"{ref.path}: cannot decode image ({type(e).__name__}); expected a valid PNG/JPEG/TIFF/BMP") from None
    return h, w


# -- memory guard: the test set is decoded once and kept (clean + noisy float32 tensors) ------------
def eval_set_bytes(items: list[ImageItem], channels: int | None, crop: int | None, size: int | None) -> int:
    """Bytes the decoded test set holds: clean + noisy float32 C×H×W per item (``channels=None``
    counts 3). H×W is ``size``², else ``crop``², else read from the file headers."""
    c = int(channels or 3)
    total = 0
    for item in items:
        if size:
            hw = int(size) ** 2
        elif crop:
            hw = int(crop) ** 2
        else:
            h, w = image_size(item.clean)
            hw = h * w
        total += 2 * c * hw * BYTES_PER_VALUE
    return total


def available_memory_bytes() -> int | None:
    """RAM available now: psutil if installed, else /proc/meminfo, else sysconf; None if unknown."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _human(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def check_eval_memory(items: list[ImageItem], channels: int | None, crop: int | None, size: int | None,
                      limit_bytes: int | None = None) -> int:
    """Stop, in one line, a test set whose decoded size exceeds ``limit_bytes`` (default: half the
    available RAM; no check when that is unknown). Returns the estimate in bytes."""
    need = eval_set_bytes(items, channels, crop, size)
    what = "the limit"
    if limit_bytes is None:
        avail = available_memory_bytes()
        if avail is None:
            return need
        limit_bytes, what = avail // 2, "half the available RAM"
    if need > limit_bytes:
        raise DataError(f"the test set needs about {_human(need)} as float32 ({len(items)} images, clean + noisy), "
                        f"more than {what} ({_human(limit_bytes)}); evaluate fewer or smaller images: "
                        "set data.test.limit=N, data.test.crop=N or data.test.size=N")
    return need
