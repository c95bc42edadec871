"""Image files to stored pixel values plus the range their container holds, by an explicit rule per mode.

Nothing is guessed from pixel content and nothing is rescaled here: ``decode_file`` returns the
integers as stored (or floats) and the largest value the file format can hold (255 for 8 bits,
65535 for 16, ``maxval`` for PGM/PPM, 1 for bilevel). ``items.read_image`` divides by that range.

PIL decodes 16-bit colour PNG / TIFF / PPM to 8 bits and rescales PGM/PPM whose ``maxval`` is not
255 or 65535, so those files are read here (OpenCV, or our PNM reader) to keep every stored bit.
"""
from __future__ import annotations

import re

import numpy as np
from PIL import Image, UnidentifiedImageError

from denoise_bench.errors import DataError

# Conversion rule per PIL mode (documented in read_image and docs/datasets.md)
_GRAY_MODES = ("L",)
_DEEP_GRAY_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
_UNSUPPORTED_HINT = "expected gray, RGB, RGBA, LA, palette, bilevel, CMYK or YCbCr"


def _decode_error(path: str, e: Exception) -> DataError:
    return DataError(f"{path}: cannot decode image ({type(e).__name__}: {e}); expected a valid PNG/JPEG/TIFF/BMP")


def decode_file(path: str) -> tuple[np.ndarray, int | None]:
    """(pixels H×W or H×W×3 as stored, container maximum; None for float pixels and for integer
    containers without a standard range, e.g. 32-bit, which need ``data.bit_depth``)."""
    try:
        with Image.open(path) as im:
            if im.format == "PPM":
                pnm = _read_pnm(path)
                if pnm is not None:
                    return pnm
            if _is_deep_colour(im, path):
                return _read_deep_colour(im, path)
            im.load()
            return _from_pil(im, path)
    except FileNotFoundError:
        raise DataError(f"{path}: image file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise _decode_error(path, e) from None


def _from_pil(im: Image.Image, path: str) -> tuple[np.ndarray, int | None]:
    mode = im.mode
    if mode in _GRAY_MODES or mode == "RGB":
        return np.asarray(im), 255
    if mode == "1":  # bilevel: 0 black, 1 white
        return np.asarray(im).astype(np.uint8), 1
    if mode in ("RGBA", "RGBX"):  # alpha / padding dropped, colour values kept as stored
        return np.asarray(im)[..., :3], 255
    if mode == "LA":
        return np.asarray(im)[..., 0], 255
    if mode in ("P", "PA"):
        return _palette_colours(im, path), 255
    if mode == "CMYK":
        return _cmyk_to_rgb(np.asarray(im)), 255
    if mode == "YCbCr":
        return _ycbcr_to_rgb(np.asarray(im)), 255
    if mode in _DEEP_GRAY_MODES:
        return np.asarray(im).astype(np.uint16), 65535
    if mode == "I":  # 32-bit signed in PIL; the file may hold 16 (older Pillow, 16-bit PNG) or 32 bits
        bits = _png_header(path)[0] if im.format == "PNG" else _tiff_bits(im) if im.format == "TIFF" else 32
        arr = np.asarray(im)
        if arr.min(initial=0) < 0:
            raise DataError(f"{path}: negative pixel values in a {bits}-bit integer image")
        return (arr.astype(np.uint16), 65535) if bits <= 16 else (arr, None)
    if mode == "F":
        return np.asarray(im, dtype=np.float32), None
    raise DataError(f"{path}: image mode {mode} is not supported ({_UNSUPPORTED_HINT})")


def _palette_colours(im: Image.Image, path: str) -> np.ndarray:
    """Palette image -> its palette colours; gray (H×W) when every palette entry is gray."""
    idx = np.asarray(im)
    idx = idx[..., 0] if idx.ndim == 3 else idx  # PA: drop alpha
    palette = np.asarray(im.getpalette("RGB") or [], dtype=np.uint8).reshape(-1, 3)
    if idx.size and int(idx.max()) >= len(palette):
        raise DataError(f"{path}: palette index {int(idx.max())} beyond the {len(palette)}-colour palette")
    if np.all(palette == palette[:, :1]):
        return palette[idx, 0]
    return palette[idx]


def _cmyk_to_rgb(cmyk: np.ndarray) -> np.ndarray:
    """Naive CMYK -> RGB without a colour profile: R = 255·(1 − C/255)(1 − K/255), likewise G (M), B (Y)."""
    f = cmyk.astype(np.float64) / 255.0
    rgb = (1.0 - f[..., :3]) * (1.0 - f[..., 3:4]) * 255.0
    return np.round(rgb).astype(np.uint8)


def _ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """Full-range BT.601 (JFIF) YCbCr -> RGB, rounded and clipped to 8 bits."""
    y, cb, cr = (ycc[..., k].astype(np.float64) for k in range(3))
    cb, cr = cb - 128.0, cr - 128.0
    rgb = np.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], axis=-1)
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


# -- deep (16-bit) colour files, which PIL reduces to 8 bits ---------------------------------------
def _png_header(path: str) -> tuple[int, int]:
    """(bit depth, colour type) from the PNG IHDR chunk."""
    with open(path, "rb") as f:
        head = f.read(26)
    return head[24], head[25]


def _tiff_bits(im: Image.Image) -> int:
    bits = im.tag_v2.get(258, (1,))
    return max(bits) if isinstance(bits, tuple) else int(bits)


def _is_deep_colour(im: Image.Image, path: str) -> bool:
    if im.format == "PNG":
        depth, colour_type = _png_header(path)
        return depth == 16 and colour_type in (2, 4, 6)  # RGB, gray+alpha, RGBA
    if im.format == "TIFF":
        return _tiff_bits(im) > 8 and im.mode not in _DEEP_GRAY_MODES + ("I", "F")
    return False


def _read_deep_colour(im: Image.Image, path: str) -> tuple[np.ndarray, int]:
    import cv2

    if im.format == "TIFF" and im.tag_v2.get(262) != 2:  # PhotometricInterpretation: 2 = RGB
        raise DataError(f"{path}: {_tiff_bits(im)}-bit TIFF with photometric interpretation {im.tag_v2.get(262)} "
                        "is not supported; expected 16-bit gray or RGB(A)")
    arr = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16 or arr.ndim != 3:
        raise DataError(f"{path}: cannot decode 16-bit colour image; expected a valid 16-bit RGB(A) PNG/TIFF")
    if im.format == "PNG" and _png_header(path)[1] == 4:  # gray+alpha: OpenCV repeats the gray
        return arr[..., 0], 65535
    return arr[..., 2::-1], 65535  # BGR(A) -> RGB, alpha dropped


# -- PGM / PPM: the header's maxval is the range ---------------------------------------------------
_PNM_TOKEN = re.compile(rb"(?:\s|#[^\n]*\n?)*(\S+)")


def _pnm_header(data: bytes) -> tuple[list[bytes], int] | None:
    """(magic, width, height, maxval) tokens and the offset after them; None if not there."""
    pos, tokens = 0, []
    while len(tokens) < 4:
        m = _PNM_TOKEN.match(data, pos)
        if m is None or m.end() >= len(data):
            return None
        tokens.append(m.group(1))
        pos = m.end()
    return tokens, pos


def _read_pnm(path: str) -> tuple[np.ndarray, int] | None:
    """Gray / colour PNM whose maxval is not 255 (PIL would rescale it); None to let PIL read it."""
    with open(path, "rb") as f:
        data = f.read(4096)
        header = _pnm_header(data)
        if header is None or header[0][0] not in (b"P2", b"P3", b"P5", b"P6"):
            return None  # bilevel (P1 / P4) and PAM: PIL
        (magic, *dims), pos = header
        w, h, maxval = (int(t) for t in dims)
        if maxval == 255:
            return None
        data += f.read()
    if not 0 < maxval < 65536:
        raise DataError(f"{path}: PNM maxval {maxval} outside 1..65535")
    bands = 3 if magic in (b"P3", b"P6") else 1
    count = w * h * bands
    if magic in (b"P5", b"P6"):
        dtype = np.dtype(np.uint8) if maxval < 256 else np.dtype(">u2")
        arr = np.frombuffer(data, dtype=dtype, count=count, offset=pos + 1)  # one whitespace byte
    else:
        body = re.sub(rb"#[^\n]*", b"", data[pos:]).split()
        if len(body) < count:
            raise ValueError(f"{len(body)} of {count} sample values")
        arr = np.array([int(t) for t in body[:count]], dtype=np.int64)
    arr = arr.astype(np.uint16).reshape((h, w, 3) if bands == 3 else (h, w))
    return arr, maxval
