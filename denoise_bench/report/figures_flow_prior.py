"""Figure of the flow_prior λ sweep: PSNR against the multiplier c of λ = c·2σ²‖b‖₂².

c = 1 is the MAP weight; the curve shows how far the best c is from it, and where the unpaired
denoiser stands against the noisy input, BM3D and the supervised DnCNN (horizontal lines, same σ).
One line per noise level that has at least two c values; the no-blur ablation (B = identity) as
hollow markers. Reads the cells' stored configs (``method.lambda_mult``, ``method.blur``), so it does
not depend on how the sweep named its cells.

    python -m denoise_bench.report.figures_flow_prior multirun/flow_prior_table [OUT_DIR]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from denoise_bench.report.cells import Cell, load_cells
from denoise_bench.report.figures import _color, _plt, _save

REFERENCES = (("noisy", ":"), ("bm3d", "--"), ("dncnn", "-."))


def _blur(c: Cell) -> bool:
    return str(c.get("method.blur", True)).lower() not in ("false", "0", "none")


def _mult(c: Cell) -> float:
    return float(c.get("method.lambda_mult", 1.0))


def psnr_vs_lambda(cells: list[Cell], out_dir: Path, metric: str = "psnr") -> list[Path]:
    """``<metric>_vs_lambda.png`` (+ .pdf) in ``out_dir``: one panel per σ that has two or more c
    values; [] when there is none."""
    fp = [c for c in cells if c.method == "flow_prior"]

    def sigma_order(s: str):
        try:
            return (0, float(s))
        except ValueError:
            return (1, 0.0)

    sigmas = sorted({c.sigma for c in fp if _blur(c)}, key=sigma_order)
    sigmas = [s for s in sigmas if len({_mult(c) for c in fp if c.sigma == s and _blur(c)}) >= 2]
    if not sigmas:
        return []
    plt = _plt()
    fig, axes = plt.subplots(1, len(sigmas), figsize=(3.3 * len(sigmas) + 0.6, 3.4), squeeze=False)
    for ax, s in zip(axes[0], sigmas):
        pts = sorted({_mult(c): c.value(metric)[0] for c in fp if c.sigma == s and _blur(c)}.items())
        x, y = np.array([p[0] for p in pts]), np.array([p[1] for p in pts])
        color = _color("flow_prior")
        ax.plot(x, y, marker="o", ms=4, color=color, label="flow_prior (blur)")
        best = int(np.argmax(y))
        ax.annotate(f"{y[best]:.2f}", (x[best], y[best]), textcoords="offset points", xytext=(0, 5),
                    ha="center", fontsize=7, color=color)
        mults = set(x.tolist())
        for c in fp:
            if c.sigma == s and not _blur(c):
                ax.plot([_mult(c)], [c.value(metric)[0]], marker="s", mfc="none", ms=6, color=color,
                        linestyle="none", label="flow_prior, no blur (B = I)")
                mults.add(_mult(c))
        for method, style in REFERENCES:
            ref = [c for c in sorted(cells, key=lambda c: (len(c.variant), c.rel)) if c.method == method and c.sigma == s]
            if ref:
                ax.axhline(ref[0].value(metric)[0], color=_color(method), linestyle=style, linewidth=0.9, label=method)
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(mults), [f"{m:g}" for m in sorted(mults)])
        ax.set_xlabel("c in λ = c·2σ²‖b‖²")
        ax.set_title(f"σ = {s}", fontsize=9)
    axes[0][0].set_ylabel("PSNR (dB)" if metric == "psnr" else metric.upper())
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, fontsize=7, loc="lower center", ncol=len(names), frameon=False)
    scale = ", ".join(sorted({str(c.m.get("scale")) for c in fp}))
    data = ", ".join(sorted({c.dataset for c in fp}))
    fig.suptitle(f"Unpaired flow prior: {metric.upper()} vs the λ multiplier c (1 = MAP weight; {data}, "
                 f"scale {scale})", fontsize=9)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return _save(fig, Path(out_dir), f"{metric}_vs_lambda")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        raise SystemExit("usage: python -m denoise_bench.report.figures_flow_prior SWEEP_DIR [OUT_DIR]")
    sweep = Path(argv[0])
    out = Path(argv[1]) if len(argv) > 1 else sweep / "figures"
    for p in psnr_vs_lambda(load_cells(sweep), out):
        print(p)


if __name__ == "__main__":
    main()
