"""``data=paired_folder``: real noisy / clean pairs in two sub-folders of ``data.root``.

Layout: ``ROOT/<clean_dir>/`` and ``ROOT/<noisy_dir>/`` (defaults ``GT`` and ``NOISY``). A clean
and a noisy file pair up when their names are identical (up to the extension), or when they are
identical once the folder name is stripped from the front or back of the name:
``GT/GT_5.png`` <-> ``NOISY/NOISY_5.png`` (the SIDD sample layout), ``GT/5_gt.png`` <->
``NOISY/5_noisy.png``. Every file must have a partner. Pairs are sorted naturally (``2`` before
``10``); image ids are ``<ROOT name>/<key>``.

All pairs of ``data.root`` are the test split; ``data.train_root`` / ``data.val_root`` (other
paired folders with the same sub-folder names) give the training / validation splits. With
``data.paired=false`` the noisy files are ignored and synthetic noise is added to the clean ones.
"""
from __future__ import annotations

import re
from pathlib import Path

from denoise_bench.data.items import ImageItem, ImageRef, list_image_files
from denoise_bench.data.sources import register_source, require_dir, split_root
from denoise_bench.errors import DataError

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple:
    """Sort key that orders embedded numbers numerically: ``img2`` < ``img10``."""
    return tuple((0, int(t), t) if t.isdigit() else (1, 0, t.lower()) for t in _DIGITS.split(name) if t != "")


def paired_layout(clean_dir: str = "GT", noisy_dir: str = "NOISY") -> str:
    return (
        f"ROOT/{clean_dir}/ (clean) and ROOT/{noisy_dir}/ (noisy) image folders whose files pair up by "
        f"name ({clean_dir}/x.png <-> {noisy_dir}/x.png, or {clean_dir}/{clean_dir}_5.png <-> {noisy_dir}/{noisy_dir}_5.png)"
    )


def _strip_folder_name(stem: str, folder: str) -> str:
    """``GT_5`` in folder ``GT`` -> ``5``; ``5-noisy`` in folder ``NOISY`` -> ``5``; otherwise unchanged."""
    f = re.escape(folder)
    for pattern in (rf"^{f}[_\-. ]*(.+)$", rf"^(.+?)[_\-. ]*{f}$"):
        m = re.match(pattern, stem, flags=re.IGNORECASE)
        if m and m.group(1):
            return m.group(1)
    return stem


def _by_key(files: list[Path], key, folder: Path, layout: str) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for f in files:
        k = key(f)
        if k in out:
            raise DataError(f"{folder}: files {out[k].name} and {f.name} both pair as '{k}'; expected {layout}")
        out[k] = f
    return out


def pair_files(clean_files: list[Path], noisy_files: list[Path], clean_dir: Path, noisy_dir: Path,
               root: Path, layout: str) -> list[tuple[str, Path, Path]]:
    """(key, clean, noisy) for every pair, naturally sorted; a DataError names unmatched files."""
    clean = _by_key(clean_files, lambda p: p.stem, clean_dir, layout)
    noisy = _by_key(noisy_files, lambda p: p.stem, noisy_dir, layout)
    pairs = {k: (clean[k], noisy[k]) for k in clean.keys() & noisy.keys()}  # identical names
    rest_c = _by_key([f for k, f in clean.items() if k not in pairs],
                     lambda p: _strip_folder_name(p.stem, clean_dir.name), clean_dir, layout)
    rest_n = _by_key([f for k, f in noisy.items() if k not in pairs],
                     lambda p: _strip_folder_name(p.stem, noisy_dir.name), noisy_dir, layout)
    for k in rest_c.keys() & rest_n.keys():
        if k in pairs:
            raise DataError(f"{root}: '{rest_c[k].name}' / '{rest_n[k].name}' pair as '{k}', which is already a pair; expected {layout}")
        pairs[k] = (rest_c[k], rest_n[k])
    unmatched = sorted(
        [f"{clean_dir.name}/{f.name}" for k, f in rest_c.items() if k not in rest_n]
        + [f"{noisy_dir.name}/{f.name}" for k, f in rest_n.items() if k not in rest_c],
        key=natural_key,
    )
    if unmatched:
        shown = ", ".join(unmatched[:5]) + (f", ... ({len(unmatched) - 5} more)" if len(unmatched) > 5 else "")
        raise DataError(f"{root}: {len(unmatched)} unpaired file(s) with no partner: {shown}; expected {layout}")
    return [(k, *pairs[k]) for k in sorted(pairs, key=natural_key)]


def read_paired_folder(path, what: str, clean_dir: str = "GT", noisy_dir: str = "NOISY",
                       paired: bool = True, id_prefix: str | None = None) -> list[ImageItem]:
    """The pairs of one paired folder as items (``noisy`` set only when ``paired``)."""
    layout = paired_layout(clean_dir, noisy_dir)
    root = require_dir(path, what, layout)
    dirs = []
    for sub in (clean_dir, noisy_dir):
        d = root / sub
        if not d.is_dir():
            raise DataError(f"{d}: folder not found; expected {layout}")
        files = list_image_files(d)
        if not files:
            raise DataError(f"{d}: no image files found; expected {layout}")
        dirs.append((d, files))
    (cdir, cfiles), (ndir, nfiles) = dirs
    prefix = id_prefix or root.name
    return [
        ImageItem(id=f"{prefix}/{key}", clean=ImageRef(str(c)), noisy=ImageRef(str(n)) if paired else None)
        for key, c, n in pair_files(cfiles, nfiles, cdir, ndir, root, layout)
    ]


@register_source("paired_folder")
def read_paired(cfg, split: str) -> list[ImageItem]:
    path, key = split_root(cfg, split, (
        "data=paired_folder has no training pairs: set data.train_root=FOLDER (a paired folder with "
        f"{cfg.get('clean_dir', 'GT')}/ and {cfg.get('noisy_dir', 'NOISY')}/), or give the method pretrained weights"))
    if not path and split == "val":
        return []
    return read_paired_folder(path, key, str(cfg.get("clean_dir", "GT")), str(cfg.get("noisy_dir", "NOISY")),
                              bool(cfg.get("paired", True)))
