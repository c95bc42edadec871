"""Figures from stored cell outputs (PNG + PDF, written next to the tables in ``figures/``).

- ``psnr_vs_sigma``: PSNR (± std over images) against sigma, one line per method (and variant).
- ``beta_tradeoff``: β-MAP PSNR / SSIM against β, one line per noise level, the noisy input dashed and
  the Glow paper's Tables 1–2 as hollow markers (the paper's Fig. 3 trade-off, as numbers).
- ``comparison_<data>_sigma<s>``: the same test image noisy / each method / clean, from the PNGs a
  cell keeps in ``examples/`` (a centre crop of at most ``EXAMPLE_CROP`` px, as stored under results/).
- ``training_curves``: train/val metrics against step for the cells that trained a model.
- ``psnr_vs_lambda``: the flow_prior λ sweep (figures_flow_prior.py, which reuses _plt/_save/_color).

Files carry no timestamps (PNG/PDF metadata cleared), so the same cells give the same bytes.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from denoise_bench.errors import DataError
from denoise_bench.report.cells import METHOD_ORDER, Cell, method_rank

EXAMPLE_CROP = 128


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 150, "font.size": 9, "axes.grid": True,
                         "grid.alpha": 0.3, "pdf.compression": 6})
    return plt


def _save(fig, out_dir: Path, stem: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.pdf"]
    fig.savefig(paths[0], metadata={"Software": None}, bbox_inches="tight")
    fig.savefig(paths[1], metadata={"Creator": None, "Producer": None, "CreationDate": None}, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return paths


def _color(method: str):
    import matplotlib

    i = method_rank(method)
    if i == len(METHOD_ORDER):  # an unregistered method: a colour of its own, stable across runs
        i += sum(map(ord, method)) % 4
    return matplotlib.colormaps["tab10"](i % 10)


def labels(cells: list[Cell]) -> dict[int, str]:
    """{id(cell): 'method' or 'method (override=...)'}: only overrides that differ between cells of a method."""
    out = {}
    for m in sorted({c.method for c in cells}):
        group = [c for c in cells if c.method == m]
        keys = {k for c in group for k in c.variant}
        varying = sorted(k for k in keys if len({c.variant.get(k) for c in group}) > 1)
        for c in group:
            v = ", ".join(f"{k.split('.')[-1]}={c.variant[k]}" for k in varying if k in c.variant)
            out[id(c)] = f"{m} ({v})" if v else m
    return out


def _method_key(label: str):
    return (method_rank(label.split(" ")[0]), label)


def _numeric(s: str) -> float | None:
    try:
        return float(s)
    except ValueError:
        return None


# -- PSNR vs sigma ---------------------------------------------------------------------------------
def psnr_vs_sigma(cells: list[Cell], out_dir: Path) -> list[Path]:
    cells = [c for c in cells if _numeric(c.sigma) is not None]
    if len({c.sigma for c in cells}) < 2:
        return []
    plt = _plt()
    datasets = sorted({c.dataset for c in cells})
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 3.4), squeeze=False)
    names = labels(cells)
    for ax, d in zip(axes[0], datasets):
        group = [c for c in cells if c.dataset == d]
        for label in sorted({names[id(c)] for c in group}, key=_method_key):
            pts = sorted((float(c.sigma), *c.value("psnr")) for c in group if names[id(c)] == label)
            x, y, e = (np.array(v, dtype=float) for v in zip(*pts))
            ax.errorbar(x, y, yerr=e, marker="o", ms=4, capsize=2, label=label, color=_color(label.split(" ")[0]),
                        linestyle="--" if "(" in label else "-")
        ax.set_title(d)
        ax.set_xlabel("σ (0–255 scale)")
        ax.set_ylabel("PSNR (dB), mean ± std over images")
    axes[0][-1].legend(fontsize=7, loc="best")
    scale = ", ".join(sorted({str(c.m.get("scale")) for c in cells}))
    fig.suptitle(f"PSNR vs noise level (scale: {scale})")
    fig.tight_layout()
    return _save(fig, out_dir, "psnr_vs_sigma")


# -- beta trade-off (Glow-prior beta-MAP) ----------------------------------------------------------
def beta_tradeoff(cells: list[Cell], out_dir: Path) -> list[Path]:
    from denoise_bench.report.paper_tables import sigma_paper
    from denoise_bench.report.reference import values

    glow = [c for c in cells if c.method == "glow_map" and c.get("method.beta") is not None and sigma_paper(c)]
    if not glow:
        return []
    noisy = {sigma_paper(c): c for c in sorted(cells, key=lambda c: c.rel) if c.method == "noisy" and sigma_paper(c)}
    ref = values("glow_map_tables")
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.4))
    sigmas = sorted({sigma_paper(c) for c in glow}, key=float)
    cmap = plt.get_cmap("viridis")
    for metric, ax in zip(("psnr", "ssim"), axes):
        for i, s in enumerate(sigmas):
            color = cmap(i / max(1, len(sigmas) - 1) * 0.85)
            pts = sorted((float(c.get("method.beta")), *c.value(metric)) for c in glow if sigma_paper(c) == s)
            x, y, e = (np.array(v, dtype=float) for v in zip(*pts))
            ax.errorbar(x, y, yerr=e, marker="o", ms=4, capsize=2, color=color, label=f"σ={s} ours")
            if s in noisy:
                ax.axhline(noisy[s].value(metric)[0], color=color, linestyle="--", linewidth=0.8)
            paper = sorted((float(k[2]), r.mean) for k, r in ref.items() if k[0] == metric and k[1] == s and k[2] != "noisy")
            if paper:
                px, py = zip(*paper)
                ax.plot(px, py, linestyle=":", marker="o", mfc="none", color=color, label=f"σ={s} paper")
        ax.set_xscale("log", base=2)
        betas = sorted({float(c.get("method.beta")) for c in glow} | {float(k[2]) for k in ref if k[2] != "noisy"})
        ax.set_xticks(betas, [f"{b:g}" for b in betas])
        ax.set_xlabel("β (weight of the data term)")
        ax.set_ylabel("PSNR (dB)" if metric == "psnr" else "SSIM")
    axes[1].legend(fontsize=7, loc="best")
    fig.suptitle("β-MAP trade-off (dashed: noisy input; hollow: Glow paper Tables 1–2)")
    fig.tight_layout()
    return _save(fig, out_dir, "beta_tradeoff")


# -- visual comparison -----------------------------------------------------------------------------
def example_files(cell_dir: Path) -> dict[str, dict[str, Path]]:
    """{'<k>_<image>': {'noisy': path, 'denoised': path, 'clean': path}} from a cell's examples/."""
    out: dict[str, dict[str, Path]] = {}
    for p in sorted(Path(cell_dir).glob("examples/*.png")):
        stem, _, kind = p.stem.rpartition("_")
        out.setdefault(stem, {})[kind] = p
    return out


def centre_crop(a: np.ndarray, size: int = EXAMPLE_CROP) -> np.ndarray:
    h, w = a.shape[:2]
    t, l = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return a[t:t + size, l:l + size]


def _image_psnr(cell: Cell, safe_id: str) -> float | None:
    try:
        df = cell.per_image()
    except DataError:
        return None
    safe = df["image"].map(lambda s: "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in s))
    hit = df[safe == safe_id]
    return float(hit["psnr"].iloc[0]) if len(hit) else None


def comparisons(cells: list[Cell], out_dir: Path, max_groups: int = 8) -> list[Path]:
    from PIL import Image

    with_examples = [c for c in cells if example_files(c.path)]
    groups = sorted({(c.dataset, c.sigma) for c in with_examples})[:max_groups]
    names = labels(cells)
    paths = []
    for d, s in groups:
        group = sorted((c for c in with_examples if (c.dataset, c.sigma) == (d, s)),
                       key=lambda c: (_method_key(names[id(c)]), c.rel))
        first = sorted(set.intersection(*(set(example_files(c.path)) for c in group)) or {""})[0]
        if not first:
            continue
        safe_id = first.split("_", 1)[1]
        ref = example_files(group[0].path)[first]
        noisy_cell = next((c for c in group if c.method == "noisy"), None)
        panels = [("noisy", ref.get("noisy"), _image_psnr(noisy_cell, safe_id) if noisy_cell else None)]
        panels += [(names[id(c)], example_files(c.path)[first].get("denoised"), _image_psnr(c, safe_id))
                   for c in group if c.method != "noisy"]
        panels.append(("clean", ref.get("clean"), None))
        panels = [p for p in panels if p[1] is not None]
        plt = _plt()
        fig, axes = plt.subplots(1, len(panels), figsize=(1.9 * len(panels), 2.3), squeeze=False)
        for ax, (label, path, psnr) in zip(axes[0], panels):
            a = centre_crop(np.asarray(Image.open(path)))
            ax.imshow(a, cmap="gray" if a.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
            ax.set_title(label + ("" if psnr is None or math.isnan(psnr) else f"\n{psnr:.2f} dB"), fontsize=7)
            ax.axis("off")
        fig.suptitle(f"{d}, σ={s}: {safe_id} (centre crop ≤{EXAMPLE_CROP} px)", fontsize=8)
        fig.tight_layout()
        paths += _save(fig, out_dir, f"comparison_{d}_sigma{s}")
    return paths


# -- training curves -------------------------------------------------------------------------------
def training_curves(cells: list[Cell], out_dir: Path, max_panels: int = 4) -> list[Path]:
    from denoise_bench.report.curves import read_curve, segments

    names = labels(cells)
    curves = []
    for c in cells:
        for i, seg in enumerate(segments(read_curve(c.path))):
            suffix = f" σ={c.sigma}" + (f" run {i + 1}" if i else "")
            curves.append((names[id(c)] + suffix, c.method, seg))
    if not curves:
        return []
    keys = sorted({k for _, _, seg in curves for k in seg.columns if k != "step" and seg[k].notna().any()},
                  key=lambda k: (not k.endswith("loss"), k))[:max_panels]
    plt = _plt()
    fig, axes = plt.subplots(1, len(keys), figsize=(4.0 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys):
        seen: dict[str, int] = {}
        for label, method, seg in curves:
            if key in seg.columns and seg[key].notna().any():
                part = seg[["step", key]].dropna()
                style = ["-", "--", ":", "-."][seen.get(method, 0) % 4]  # same method: colour; cells: dashes
                seen[method] = seen.get(method, 0) + 1
                ax.plot(part["step"], part[key], label=label, color=_color(method), linewidth=1, linestyle=style,
                        marker="o" if len(part) < 4 else None, ms=3)
        ax.set_title(key)
        ax.set_xlabel("step")
    axes[0][-1].legend(fontsize=6, loc="best")
    fig.tight_layout()
    return _save(fig, out_dir, "training_curves")


def psnr_vs_seconds(cells: list[Cell], out_dir: Path) -> list[Path]:
    """Validation PSNR against training wall-clock seconds, one line per trained model of each method and
    sigma: learned methods compared at equal compute (their curves come from ``curve_<kind>.csv``)."""
    from denoise_bench.report.curves import learning_curves

    names = labels(cells)
    lines, seen_models = [], set()
    for c in cells:
        for kind, df in learning_curves(c.path).items():
            part = df[["seconds", "val_psnr"]].dropna()
            key = (kind, tuple(part["seconds"]), tuple(part["val_psnr"]))
            if part.empty or key in seen_models:  # cells that loaded the same model show it once
                continue
            seen_models.add(key)
            lines.append((f"{names[id(c)]} σ={c.sigma}" + ("" if kind == c.method else f" ({kind})"), c.method, part))
    if not lines:
        return []
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for label, method, part in lines:
        ax.plot(part["seconds"], part["val_psnr"], label=label, color=_color(method), linewidth=1,
                marker="o" if len(part) < 6 else None, ms=3)
    ax.set_xlabel("training seconds (validation excluded)")
    ax.set_ylabel("validation PSNR (dB)")
    ax.set_title("learning curves at equal compute")
    ax.legend(fontsize=6, loc="best")
    fig.tight_layout()
    return _save(fig, out_dir, "psnr_vs_training_seconds")


def build_figures(cells: list[Cell], out_dir: str | Path) -> list[Path]:
    """Every figure the cells allow, under ``out_dir``; returns the files written."""
    from denoise_bench.report.figures_flow_prior import psnr_vs_lambda  # the flow_prior λ sweep

    out_dir = Path(out_dir)
    paths = []
    for fn in (psnr_vs_sigma, beta_tradeoff, psnr_vs_lambda, comparisons, training_curves, psnr_vs_seconds):
        paths += fn(cells, out_dir)
    return paths
