"""``data=sidd``: SIDD-Medium sRGB (real noise) as distributed.

Training: ``ROOT/Data/<scene>/NNNN_GT_SRGB_010.PNG`` + ``NNNN_NOISY_SRGB_010.PNG`` pairs (the
``NNNN_`` scene-instance prefix is optional, as in SIDD-Small), 160 scenes x 2 = 320 pairs.
Test: the SIDD validation blocks, ``ROOT/ValidationGtBlocksSrgb.mat`` (variable
``ValidationGtBlocksSrgb``, uint8 [40, 32, 256, 256, 3]) and ``ROOT/ValidationNoisyBlocksSrgb.mat``
(``ValidationNoisyBlocksSrgb``) -> 1280 items ``sidd/val_III_JJ`` (image i, block j); the two .mat
files are also looked for in ``data.test_root``. Without them, ``data.test_root`` is read as a
paired folder (``data.clean_dir`` / ``data.noisy_dir``). Validation: the first ``data.val_blocks``
blocks of each validation image (40 with the default 1; the benchmark's own test ground truth is
withheld, so validation and test blocks come from the same 40 images, as is usual for SIDD).
Items carry the noisy image (real noise) unless ``data.paired=false``.
"""
from __future__ import annotations

import re
from pathlib import Path

from denoise_bench.data.items import ImageItem, ImageRef
from denoise_bench.data.sources import register_source, require_dir
from denoise_bench.data.sources.paired_folder import natural_key, read_paired_folder
from denoise_bench.errors import DataError

GT_MAT, NOISY_MAT = "ValidationGtBlocksSrgb", "ValidationNoisyBlocksSrgb"
LAYOUT = (f"ROOT/Data/<scene>/[NNNN_]{{GT,NOISY}}_SRGB_NNN.PNG pairs for training; ROOT/{GT_MAT}.mat "
          f"+ ROOT/{NOISY_MAT}.mat (uint8 [40,32,256,256,3]) for testing, or data.test_root = a paired folder")
_NAME = re.compile(r"^(?:(\d+)_)?(GT|NOISY)_SRGB_(\d+)$", re.IGNORECASE)


def sidd_train_pairs(root: Path, paired: bool) -> list[ImageItem]:
    data = root / "Data"
    if not data.is_dir():
        raise DataError(f"{data}: SIDD scene folder not found; expected {LAYOUT}")
    items, unpaired = [], []
    scenes = sorted((d for d in data.iterdir() if d.is_dir()), key=lambda d: d.name)
    for scene in scenes:
        found: dict[tuple[str, str], dict[str, Path]] = {}
        for f in scene.iterdir():
            m = _NAME.match(f.stem) if f.is_file() and f.suffix.lower() == ".png" else None
            if m:
                found.setdefault((m.group(1) or "", m.group(3)), {})[m.group(2).upper()] = f
        for (prefix, num), kinds in sorted(found.items(), key=lambda kv: natural_key(kv[0][1])):
            if set(kinds) != {"GT", "NOISY"}:
                unpaired.extend(f"{scene.name}/{p.name}" for p in kinds.values())
                continue
            items.append(ImageItem(id=f"sidd/{scene.name}/{num}", clean=ImageRef(str(kinds["GT"])),
                                   noisy=ImageRef(str(kinds["NOISY"])) if paired else None))
    if unpaired:
        shown = ", ".join(unpaired[:5]) + (f", ... ({len(unpaired) - 5} more)" if len(unpaired) > 5 else "")
        raise DataError(f"{data}: {len(unpaired)} file(s) without a GT/NOISY partner: {shown}; expected {LAYOUT}")
    if not items:
        raise DataError(f"{data}: no GT/NOISY_SRGB_*.PNG pairs found in any scene folder; expected {LAYOUT}")
    return items


def _mat_shape(path: Path, var: str) -> tuple[int, ...]:
    import scipy.io

    try:
        info = scipy.io.whosmat(str(path))
    except NotImplementedError:
        raise DataError(f"{path}: MATLAB v7.3 (HDF5) .mat files are not supported; expected {LAYOUT}") from None
    except Exception as e:  # noqa: BLE001 - scipy raises many kinds
        raise DataError(f"{path}: cannot read .mat file ({type(e).__name__}); expected {LAYOUT}") from None
    shapes = {name: tuple(shape) for name, shape, _ in info}
    if var not in shapes:
        raise DataError(f"{path}: no variable '{var}' (found {sorted(shapes)}); expected {LAYOUT}")
    shape = shapes[var]
    if len(shape) not in (4, 5) or (len(shape) == 5 and shape[4] not in (1, 3)):
        raise DataError(f"{path}: '{var}' has shape {list(shape)}; expected blocks [images, blocks, H, W(, 3)]")
    return shape


def find_blocks(*folders) -> tuple[Path, Path] | None:
    """The (GT, NOISY) validation-block .mat files from the first folder holding either."""
    for folder in folders:
        if not folder:
            continue
        gt, noisy = Path(str(folder)) / f"{GT_MAT}.mat", Path(str(folder)) / f"{NOISY_MAT}.mat"
        if gt.is_file() or noisy.is_file():
            for p in (gt, noisy):
                if not p.is_file():
                    raise DataError(f"{p}: file not found (its partner {gt if p is noisy else noisy} is there); expected {LAYOUT}")
            return gt, noisy
    return None


def sidd_blocks(gt: Path, noisy: Path, paired: bool, blocks_per_image: int | None) -> list[ImageItem]:
    shape = _mat_shape(gt, GT_MAT)
    if _mat_shape(noisy, NOISY_MAT) != shape:
        raise DataError(f"{noisy}: '{NOISY_MAT}' shape {list(_mat_shape(noisy, NOISY_MAT))} differs from "
                        f"'{GT_MAT}' {list(shape)} in {gt}")
    n_img, n_blk = shape[0], shape[1]
    if n_img == 0 or n_blk == 0:
        raise DataError(f"{gt}: '{GT_MAT}' holds no blocks (shape {list(shape)}); expected {LAYOUT}")
    per = n_blk if blocks_per_image is None else min(int(blocks_per_image), n_blk)
    return [
        ImageItem(id=f"sidd/val_{i:03d}_{j:02d}", clean=ImageRef(str(gt), GT_MAT, (i, j)),
                  noisy=ImageRef(str(noisy), NOISY_MAT, (i, j)) if paired else None)
        for i in range(n_img)
        for j in range(per)
    ]


@register_source("sidd")
def read_sidd(cfg, split: str) -> list[ImageItem]:
    root = require_dir(cfg.get("root"), "data.root (SIDD-Medium sRGB)", LAYOUT)
    paired = bool(cfg.get("paired", True))
    if split == "train":
        return sidd_train_pairs(root, paired)
    blocks = find_blocks(root, cfg.get("test_root"))
    if blocks is not None:
        return sidd_blocks(*blocks, paired, None if split == "test" else int(cfg.get("val_blocks", 1) or 0))
    key = "test_root" if split == "test" else "val_root"
    if not cfg.get(key):
        if split == "val":
            return []
        raise DataError(f"{root / (GT_MAT + '.mat')}: SIDD validation blocks not found and data.test_root is not set; "
                        f"expected {LAYOUT}")
    return read_paired_folder(cfg.get(key), f"data.{key}", str(cfg.get("clean_dir", "GT")),
                              str(cfg.get("noisy_dir", "NOISY")), paired)
