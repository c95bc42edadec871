"""``data=celeba``: aligned CelebA as distributed (``img_align_celeba/`` + ``list_eval_partition.txt``).

Layout: ``ROOT/img_align_celeba/000001.jpg ...`` and ``ROOT/list_eval_partition.txt`` with lines
``000001.jpg 0`` (0 train, 1 val, 2 test). The Kaggle re-packaging is accepted too
(``img_align_celeba/img_align_celeba/`` and ``list_eval_partition.csv`` with a header line).
Which partition numbers make each split is ``data.partitions`` (FDN tests on the official
validation partition: ``data.partitions.test=[1]``). Items keep the index file's order, so
``data.test.from_end`` takes the last images of the list. Ids are ``celeba/<stem>``.
"""
from __future__ import annotations

import os
from pathlib import Path

from denoise_bench.data.items import ImageItem, ImageRef
from denoise_bench.data.sources import register_source, require_dir
from denoise_bench.errors import ConfigError, DataError

LAYOUT = ("ROOT/img_align_celeba/*.jpg and ROOT/list_eval_partition.txt "
          "(lines '000001.jpg 0'; 0 train, 1 val, 2 test)")
DEFAULT_PARTITIONS = {"train": [0], "val": [1], "test": [2]}


def read_two_columns(path: Path, layout: str, header: str | None = None, sep: str | None = None) -> list[tuple[str, str]]:
    """Rows ``(first, second)`` of a whitespace (or ``sep``) separated index file; blank lines skipped."""
    if not path.is_file():
        raise DataError(f"{path}: index file not found; expected {layout}")
    rows = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if not line or (header is not None and lineno == 1 and line.lower().startswith(header)):
                continue
            parts = [p.strip() for p in line.split(sep)]
            if len(parts) != 2 or not parts[0] or not parts[1]:
                raise DataError(f"{path}:{lineno}: malformed line {line[:60]!r}; expected {layout}")
            rows.append((parts[0], parts[1]))
    if not rows:
        raise DataError(f"{path}: index file is empty; expected {layout}")
    return rows


def check_listed_files(folder: Path, names: list[str], index: Path, layout: str) -> None:
    """DataError naming the first indexed file that is not in ``folder`` (one directory listing)."""
    try:
        present = set(os.listdir(folder))
    except OSError as e:
        raise DataError(f"{folder}: cannot list the image folder ({e.strerror}); expected {layout}") from None
    if not present:
        raise DataError(f"{folder}: image folder is empty; expected {layout}")
    missing = [n for n in names if n not in present]
    if missing:
        raise DataError(f"{folder / missing[0]}: listed in {index} but not found "
                        f"({len(missing)} of {len(names)} listed images missing); expected {layout}")


def _partitions(cfg, split: str) -> set[int]:
    parts = (cfg.get("partitions") or {}).get(split, DEFAULT_PARTITIONS[split])
    if parts is None:
        return set()
    if isinstance(parts, (int, str)):
        parts = [parts]
    try:
        return {int(p) for p in parts}
    except (TypeError, ValueError):
        raise ConfigError(f"data.partitions.{split}={parts!r}: expected partition numbers (0 train, 1 val, 2 test)") from None


@register_source("celeba")
def read_celeba(cfg, split: str) -> list[ImageItem]:
    root = require_dir(cfg.get("root"), "data.root (CelebA)", LAYOUT)
    images = root / "img_align_celeba"
    if not images.is_dir():
        raise DataError(f"{images}: image folder not found; expected {LAYOUT}")
    if (images / "img_align_celeba").is_dir():  # Kaggle re-packaging nests the folder
        images = images / "img_align_celeba"
    index = root / "list_eval_partition.txt"
    if not index.is_file() and (root / "list_eval_partition.csv").is_file():
        index = root / "list_eval_partition.csv"
        rows = read_two_columns(index, LAYOUT, header="image_id", sep=",")
    else:
        rows = read_two_columns(index, LAYOUT)
    try:
        rows = [(name, int(part)) for name, part in rows]
    except ValueError:
        bad = next(p for _, p in rows if not p.lstrip("-").isdigit())
        raise DataError(f"{index}: partition {bad!r} is not a number; expected {LAYOUT}") from None
    check_listed_files(images, [name for name, _ in rows], index, LAYOUT)
    wanted = _partitions(cfg, split)
    return [
        ImageItem(id=f"celeba/{Path(name).stem}", clean=ImageRef(str(images / name)))
        for name, part in rows
        if part in wanted
    ]
