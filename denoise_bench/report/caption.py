"""Table captions: the protocol of *our* cells (data, split, n, resolution, scale, noise, metrics,
training, commit) next to the paper's source. Everything comes from the cells' stored metrics.json,
so a caption is as reproducible as the numbers."""
from __future__ import annotations

from pathlib import Path

from denoise_bench.report.cells import Cell
from denoise_bench.report.reference import source_line
from denoise_bench.report.stats import RULE



def significance(comparisons_file: str, paper: bool = True) -> str:
    """What bold and '(≈ X)' mean: the paired test of our best against our runner-up (report/stats.py)."""
    return (f"bold = our best, only where it is significantly better than our runner-up: {RULE} (same images, "
            f"same noise); (≈ X) = our best but not significantly better than X (a tie); every pair: "
            f"{comparisons_file}." + (" The paper's numbers are never bold (no per-image values to test)."
                                      if paper else ""))


def _join(values) -> str:
    vals = sorted({str(v) for v in values if v is not None and str(v) != ""})
    return ", ".join(vals) if vals else "unrecorded"


def resolution(cell: Cell) -> str:
    # data.test.{crop,size}; cells written before the data config had a test section: data.test_{crop,size}
    crop = cell.get("data.test.crop", cell.get("data.test_crop"))
    size = cell.get("data.test.size", cell.get("data.test_size"))
    if not crop and not size:
        return "full-size test images"
    parts = []
    if crop:
        parts.append(f"centre crop {crop}×{crop}")
    if size:
        parts.append(f"resized to {size}×{size}")
    return ", ".join(parts)


PRIOR_METHODS = ("glow_map", "flow_prior")  # methods that use the Glow prior (cfg.prior)


def training(cell: Cell) -> str | None:
    """'fdn: 2000 training steps' / 'dncnn: weights DnCNN-S-25.pth' / 'glow prior: ...' / None.

    Trainable methods carry ``method.train_steps``; others (noisy, bm3d) are never trained, whatever
    keys an experiment puts into their config."""
    parts = []
    if cell.get("method.train_steps") is not None:
        weights = cell.get("method.weights")
        budget = cell.get("trainer.budget_minutes")
        done = cell.training().get("steps")
        if weights:
            parts.append(f"{cell.method}: weights {Path(str(weights)).name}")
        elif budget:  # the budget stopped training; train_steps was only a bound
            parts.append(f"{cell.method}: {budget:g} min budget" + (f", {done} steps" if done is not None else "")
                         + f" (bound {cell.get('method.train_steps')})")
        else:
            parts.append(f"{cell.method}: {cell.get('method.train_steps')} training steps")
    if cell.method in PRIOR_METHODS and cell.get("prior.name"):
        pw = cell.get("prior.weights")
        budget = cell.get("trainer.budget_minutes")
        done = cell.training("glow_prior").get("steps")
        steps = (f"{budget:g} min budget" + (f", {done} steps" if done is not None else "")
                 + f" (bound {cell.get('prior.train_steps')})") if budget else \
            f"{cell.get('prior.train_steps')} training steps"
        parts.append(f"{cell.get('prior.name')} prior: " + (f"weights {Path(str(pw)).name}" if pw else
                     f"{cell.get('prior.levels')} levels × {cell.get('prior.steps')} steps, {steps}"))
    return "; ".join(parts) or None


def commit(cell: Cell) -> str | None:
    from denoise_bench.report.provenance import commit_label

    return commit_label(cell.m.get("provenance") or {})


def protocol(cells: list[Cell]) -> str:
    """One paragraph describing how our numbers were measured (empty cells: says so)."""
    if not cells:
        return "Ours: no finished cells of ours were found for this table (every 'ours' entry is —)."
    return (
        f"Ours: {_join(c.dataset for c in cells)} ({_join(c.m.get('test_set') for c in cells)}); "
        f"n = {_join(c.m.get('n_images') for c in cells)} images per cell; {_join(resolution(c) for c in cells)}; "
        f"scale: {_join(c.m.get('scale') for c in cells)}; "
        f"noise: {_join(c.noise for c in cells)}; "
        f"metrics: {_join(c.m.get('metric_protocol') for c in cells)}; "
        f"training: {_join(training(c) for c in cells)}; "
        f"{len(cells)} cell{'s' if len(cells) != 1 else ''}, run at commit {_join(commit(c) for c in cells)}."
    )


def trained_here(cell: Cell) -> bool:
    """The cell's model was trained by us (so its size and schedule follow the scale)."""
    own = cell.get("method.train_steps") is not None and not cell.get("method.weights")
    prior = cell.method in PRIOR_METHODS and bool(cell.get("prior.name")) and not cell.get("prior.weights")
    return own or prior


def scale_warning(cells: list[Cell]) -> str | None:
    """Smoke/quick scale shrinks the models we train, not the test protocol: warn when it matters."""
    small = sorted({str(c.m.get("scale")) for c in cells if trained_here(c)} & {"smoke", "quick"})
    if not small:
        return None
    return (f"Scale {'/'.join(small)} is not the papers' scale (models trained here are small and briefly "
            "trained on a CPU): compare trends, not values.")


def caption(name: str, cells: list[Cell], *notes: str, has_paper: bool = True) -> str:
    """Protocol of ours, the convention of Δ and '—', the paper's source, then table-specific notes."""
    parts = [protocol(cells)]
    warning = scale_warning(cells)
    if warning:
        parts.append(warning)
    parts.append(("Δ = ours − paper (same units); — = not run here / not published; " if has_paper else
                  "— = not run here; ") + significance(f"{name}.comparisons.md", has_paper))
    parts.append(source_line(name))
    parts += [n for n in notes if n]
    return " ".join(parts)
