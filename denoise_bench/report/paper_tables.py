"""The papers' tables rebuilt from stored cell outputs: paper / ours / Δ in each paper's layout.

``build_table(name, sweep_dir, out_dir)`` is what a sweep calls for each name in its config's
``report.tables`` (see sweep_table.SweepTableCallback) and what ``python -m denoise_bench.report``
calls. Each builder says where a cell lands (row key, column key) from the cell's stored config;
published numbers come from reference_numbers.yaml. Several cells landing on one entry: the one with
the fewest extra overrides wins (then the first by path), so the choice is deterministic.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from denoise_bench.errors import ConfigError
from denoise_bench.report import comparisons, layout
from denoise_bench.report.caption import caption
from denoise_bench.report.cells import (CHANNELS, METHOD_ORDER, Cell, fraction_label, load_cells, number_label,
                                        sigma_label)
from denoise_bench.report.layout import Block, Column, Entry, PaperTable, Row
from denoise_bench.report.reference import table_info, values

TABLES: dict[str, Callable[[list[Cell]], PaperTable]] = {}


def register(name: str):
    def deco(fn):
        TABLES[name] = fn
        return fn

    return deco


# -- placing cells ---------------------------------------------------------------------------------
def place(cells: list[Cell], locate: Callable[[Cell], tuple | None], prefer=None) -> dict[tuple, Cell]:
    """{(row key, column key): cell}; ties broken by ``prefer(cell)`` then fewest overrides, then path."""
    found: dict[tuple, list[Cell]] = {}
    for c in cells:
        pos = locate(c)
        if pos is not None:
            found.setdefault(pos, []).append(c)
    return {pos: sorted(cs, key=lambda c: ((prefer(c) if prefer else 0), len(c.variant), c.rel))[0]
            for pos, cs in found.items()}


def fill(block: Block, chosen: dict, ref: dict, ref_key: Callable[[Row, Column], tuple]) -> list[Cell]:
    """Put the published number and our cell's value into every (row, column); returns the cells used."""
    used = []
    for r in block.rows:
        for c in block.columns:
            e = Entry()
            if c.paper:
                e.paper = ref.get(ref_key(r, c))
            if c.ours:
                cell = chosen.get((r.key, c.key))
                if cell is not None:
                    e.ours, e.ours_std = cell.value(r.metric)
                    e.n, e.cell, e.source = cell.m.get("n_images"), cell.rel, cell
                    if e.ours is not None and cell not in used:
                        used.append(cell)
            block.entries[(r.key, r.metric, c.key)] = e
    return used


def _title(name: str) -> str:
    info = table_info(name)
    return f"{info['table']}: {info['title']}" if info.get("table") else info["title"]


def protocol_offsets(block: Block, training_free: str = "BM3D", learned=("DnCNN", "FDN")) -> str:
    """Split Δ into the protocol offset (what the training-free method loses or gains on our data and
    protocol: ours − paper for the same data and σ) and the remaining, scale-related gap of each learned
    method (its Δ minus that offset). Empty when no row has both."""
    cols = {c.key: c for c in block.columns}
    if training_free not in cols:
        return ""
    parts = []
    for row in block.rows:
        offset = block.entry(row, cols[training_free]).delta
        if offset is None:
            continue
        gaps = [f"{m} {block.entry(row, cols[m]).delta - offset:+.2f}" for m in learned
                if m in cols and block.entry(row, cols[m]).delta is not None]
        where = " σ=".join(str(x) for x in row.labels)
        parts.append(f"{where}: offset {offset:+.2f} dB" + (f", scale-related gap {', '.join(gaps)} dB" if gaps else ""))
    if not parts:
        return ""
    return (f" Δ split: protocol offset = {training_free} ours − paper (training-free, same data and σ: what our "
            f"data and protocol change), scale-related gap = a learned method's Δ − that offset: " + "; ".join(parts) + ".")


# -- FDN Tables III and IV: rows dataset × sigma, columns methods -----------------------------------
def _dataset_sigma_table(name: str, cells: list[Cell], datasets: dict[str, str], method_cols: dict[str, str],
                         paper_methods: list[str], ours_only: list[str], note: str = "") -> PaperTable:
    ref = values(name)
    paper_rows = list(dict.fromkeys(k[:2] for k in ref))
    ours_methods = set(method_cols.values())
    columns = [Column(m, m, paper=False, ours=True) for m in ours_only]
    columns += [Column(m, m, paper=True, ours=m in ours_methods) for m in paper_methods]
    rows = [Row(key=(d, s), labels=(d, "Blind" if s == "blind" else s)) for d, s in paper_rows]

    def locate(c: Cell):
        d = datasets.get(c.dataset) or datasets.get(str(c.m.get("dataset")))
        col = method_cols.get(c.method)
        return ((d, c.sigma), col) if d and col else None

    block = Block(row_header=("Dataset", "σ"), rows=rows, columns=columns)
    used = fill(block, place(cells, locate), ref, lambda r, c: r.key + (c.key,))
    return PaperTable(name, _title(name), caption(name, used, note) + protocol_offsets(block), [block])


@register("fdn_table3")
def fdn_table3(cells: list[Cell]) -> PaperTable:
    return _dataset_sigma_table(
        "fdn_table3", cells,
        datasets={"celeba": "CelebA", "flowers102": "Flower", "cub200": "CUB-200"},
        method_cols={"noisy": "Noisy", "bm3d": "BM3D", "dncnn": "DnCNN", "fdn": "FDN"},
        paper_methods=["BM3D", "EPLL", "IRCNN", "REDNet", "DnCNN", "FFDNet", "FDN"], ours_only=["Noisy"],
        note="Blind: one model for sigma in [0, 55]; our blind cells draw sigma ~ U[0,55] per test image.")


@register("fdn_table4")
def fdn_table4(cells: list[Cell]) -> PaperTable:
    return _dataset_sigma_table(
        "fdn_table4", cells,
        datasets={"rice1": "RICE1", "rice2": "RICE2"},
        method_cols={"noisy": "Noisy", "bm3d": "BM3D", "dncnn": "DnCNN", "fdn": "FDN"},
        paper_methods=["EPLL", "MemNet", "IRCNN", "REDNet", "DnCNN", "FFDNet", "FDN"], ours_only=["Noisy", "BM3D"])


# -- FDN Table V: SIDD, rows metrics, columns methods ---------------------------------------------
@register("fdn_table5")
def fdn_table5(cells: list[Cell]) -> PaperTable:
    name = "fdn_table5"
    ref = values(name)
    ours = {"noisy": "Noisy", "dncnn": "DnCNN", "bm3d": "BM3D", "fdn": "FDN"}
    paper_methods = ["DnCNN", "TNRD", "BM3D", "CBDNet", "GradNet", "AINDNet", "VDN", "FDN"]
    columns = [Column("Noisy", "Noisy", ours=True)] + [
        Column(m, m, paper=True, ours=m in ours.values()) for m in paper_methods]
    rows = [Row((), ("PSNR (dB)",), "psnr", 2, True), Row((), ("SSIM",), "ssim", 3, True),
            Row((), ("Param (M)",), "params_m", 2, None), Row((), ("GFLOPs (256×256)",), "gflops", 2, None)]

    def locate(c: Cell):
        real = c.sigma == "real" or bool(c.get("data.paired"))
        return ((), ours[c.method]) if c.method in ours and real and c.dataset.lower().startswith("sidd") else None

    block = Block(row_header=("Metric",), rows=rows, columns=columns)
    used = fill(block, place(cells, locate), ref, lambda r, c: (r.metric, c.key))
    return PaperTable(name, _title(name), caption(
        name, used, "Param (M): our trainable parameters; GFLOPs: one denoising pass of a 256×256 image, counted "
                    "by torch's FlopCounterMode (multiply-add = 2, convolutions and matrix products; "
                    "denoise_bench/complexity.py), — for methods that are not PyTorch networks (noisy, BM3D). "
                    "FDN's denoising pass is a forward and an inverse pass of its flow, so ours counts both; "
                    "the paper's 76.80 is one pass (ours: half the printed value)."),
        [block])


# -- FDN Tables I and II: ablations ----------------------------------------------------------------
# the paper's setting, held fixed while the other ablation varies (cells at it are preferred)
FDN_DEFAULTS = {"flow_blocks": "2", "sof_blocks": "8", "zc_ratio": "3/4"}


def _fdn_ablation_cells(cells: list[Cell]) -> list[Cell]:
    """FDN cells at the ablations' sigma = 50 (all FDN cells when none is at 50)."""
    fdn = [c for c in cells if c.method == "fdn"]
    at50 = [c for c in fdn if c.sigma == "50"]
    return at50 or fdn


@register("fdn_ablation_blocks")
def fdn_ablation_blocks(cells: list[Cell]) -> PaperTable:
    name = "fdn_ablation_blocks"
    ref = values(name)
    fdn = _fdn_ablation_cells(cells)
    flows = sorted({k[0] for k in ref} | {number_label(c.get("method.flow_blocks")) for c in fdn
                                          if c.get("method.flow_blocks") is not None}, key=float)
    sofs = sorted({k[1] for k in ref} | {number_label(c.get("method.sof_blocks")) for c in fdn
                                         if c.get("method.sof_blocks") is not None}, key=float)
    paper_sofs = {k[1] for k in ref}
    columns = [Column(s, f"SoF = {s}", paper=s in paper_sofs, ours=True) for s in sofs]
    rows = [Row((f,), (f"Flow blocks = {f}",)) for f in flows]

    def locate(c: Cell):
        f, s = c.get("method.flow_blocks"), c.get("method.sof_blocks")
        return ((number_label(f),), number_label(s)) if f is not None and s is not None else None

    block = Block(row_header=("PSNR (dB)",), rows=rows, columns=columns, bold="block")
    prefer = lambda c: fraction_label(c.get("method.zc_ratio")) != FDN_DEFAULTS["zc_ratio"]  # noqa: E731
    used = fill(block, place(fdn, locate, prefer), ref, lambda r, c: r.key + (c.key,))
    return PaperTable(name, _title(name), caption(
        name, used, "Cells: method=fdn at sigma=50 with method.flow_blocks × method.sof_blocks; the paper "
                    "reports the validation set after 50K iterations, ours the test split after our scale's steps."),
        [block])


@register("fdn_ablation_zc")
def fdn_ablation_zc(cells: list[Cell]) -> PaperTable:
    name = "fdn_ablation_zc"
    ref = values(name)
    fdn = _fdn_ablation_cells(cells)
    ratios = {k[0] for k in ref} | {fraction_label(c.get("method.zc_ratio")) for c in fdn
                                    if c.get("method.zc_ratio") is not None}
    from fractions import Fraction

    ratios = sorted(ratios, key=Fraction)
    columns = [Column(z, z, paper=(z,) in ref, ours=True) for z in ratios]
    rows = [Row((), ("PSNR (dB)",))]

    def locate(c: Cell):
        z = c.get("method.zc_ratio")
        return ((), fraction_label(z)) if z is not None else None

    block = Block(row_header=("dim(z_C) / dim(z)",), rows=rows, columns=columns, bold="block")
    prefer = lambda c: (number_label(c.get("method.flow_blocks")), number_label(c.get("method.sof_blocks"))) != (  # noqa: E731
        FDN_DEFAULTS["flow_blocks"], FDN_DEFAULTS["sof_blocks"])
    used = fill(block, place(fdn, locate, prefer), ref, lambda r, c: (c.key,))
    return PaperTable(name, _title(name), caption(
        name, used, "Cells: method=fdn at sigma=50 with method.zc_ratio; the paper reports the validation set "
                    "after 50K iterations, ours the test split after our scale's steps."), [block])


# -- Glow-prior beta-MAP: Tables 1-3 -------------------------------------------------------------
GLOW_SIGMA_FACTOR = 1.5  # the paper's noisy column implies an effective noise std of sigma/1.5


def sigma_paper(c: Cell) -> str | None:
    """The Glow paper's σ label of a cell ('0.05'): its stored ``sigma_paper``; without one, σ = sigma·1.5/255
    when that is one of the paper's σ values (so unrelated cells of a mixed sweep stay out)."""
    for key in ("sigma_paper", "experiment.sigma_paper", "method.sigma_paper"):
        v = c.get(key)
        if v is not None:
            return number_label(v)
    try:
        s = float(c.m.get("sigma")) * GLOW_SIGMA_FACTOR / 255.0
    except (TypeError, ValueError):
        return None
    paper = {k[1] for k in values("glow_map_tables")}
    return next((p for p in sorted(paper) if abs(float(p) - s) < 1e-6), None)


NOMINAL = " nominal"  # column-key suffix of cells with method.likelihood_sigma=nominal


@register("glow_map_tables")
def glow_map_tables(cells: list[Cell]) -> PaperTable:
    name = "glow_map_tables"
    ref = values(name)
    mine = [c for c in cells if c.method in ("glow_map", "noisy")]

    def locate(c: Cell):
        s = sigma_paper(c)
        if s is None:
            return None
        if c.method == "noisy":
            return ((s,), "noisy")
        beta = c.get("method.beta")
        if beta is None:
            return None
        nominal = c.get("method.likelihood_sigma") == "nominal"  # likelihood at the paper's nominal σ
        return ((s,), number_label(beta) + (NOMINAL if nominal else ""))

    chosen = place(mine, locate)
    sigmas = sorted({k[1] for k in ref} | {pos[0][0] for pos in chosen}, key=float)
    paper_betas = {k[2] for k in ref} - {"noisy"}
    betas = sorted(paper_betas | {pos[1] for pos in chosen} - {"noisy"},
                   key=lambda b: (b.endswith(NOMINAL), float(b.removesuffix(NOMINAL))))
    columns = [Column(b, f"β={b.removesuffix(NOMINAL)}" + (" (nominal σ)" if b.endswith(NOMINAL) else ""),
                      paper=b in paper_betas, ours=True, optional=b not in paper_betas) for b in betas]
    columns.append(Column("noisy", "noisy", paper=True, ours=True))
    blocks, used = [], []
    for metric, label, digits, higher in (("ssim", "Table 1. SSIM", 3, True), ("psnr", "Table 2. PSNR (dB)", 2, True),
                                          ("mse100", "Table 3. MSE × 100", 3, False)):
        rows = [Row((s,), (s,), metric, digits, higher) for s in sigmas]
        block = Block(row_header=("σ",), rows=rows, columns=columns, title=label, show_std=True)
        used += [c for c in fill(block, chosen, ref, lambda r, c, m=metric: (m,) + r.key + (c.key,)) if c not in used]
        blocks.append(block)
    pairs = sorted({(sigma_paper(c), sigma_label(c.m.get("sigma"))) for c in used}, key=lambda p: float(p[0]))
    conversion = (
        "σ is the paper's noise gain on [0,1] images; its noisy column (PSNR 35.5/29.5/23.5/17.5 dB) implies an "
        f"effective noise std of σ/{GLOW_SIGMA_FACTOR:g}, so our cells add AWGN with sigma = σ·255/{GLOW_SIGMA_FACTOR:g} "
        "on the 0-255 scale" + (": " + ", ".join(f"σ={s} → sigma={x}" for s, x in pairs) if pairs else "")
        + ". Entries: mean ± std over images; ours in the noisy column are method=noisy cells. The likelihood "
        "uses the std of the noise actually added (method.likelihood_sigma=noise); columns marked (nominal σ) use "
        "the paper's nominal σ (1.5× larger), under which the paper's β equals ours × 2.25.")
    return PaperTable(name, _title(name), caption(name, used, conversion), blocks)


# -- flow_prior: ours only --------------------------------------------------------------------------
FLOW_PRIOR_METHODS = [m for m in METHOD_ORDER if m in ("noisy", "bm3d", "dncnn", "flow_prior")]


ROW_GROUPS = ("flow_prior_row",)  # config groups that only pick a row (their effect is in method.*)


def _flow_prior_label(c: Cell) -> list[str]:
    """The flow_prior ablations read off the stored config: 'no blur' (method.blur=false), 'λ×c'."""
    if c.method != "flow_prior":
        return []
    parts = []
    if str(c.get("method.blur", True)).lower() in ("false", "0", "none"):
        parts.append("no blur")
    mult = c.get("method.lambda_mult", 1.0)
    if mult is not None and float(mult) != 1.0:
        parts.append(f"λ×{float(mult):g}")
    return parts


@register("flow_prior_table")
def flow_prior_table(cells: list[Cell]) -> PaperTable:
    name = "flow_prior_table"
    mine = [c for c in cells if c.method in FLOW_PRIOR_METHODS]
    # other variants: the overrides (besides method/sigma/data, the row group and the two ablation keys)
    # that differ between the cells of one method
    skip = set(ROW_GROUPS) | {"method.blur", "method.lambda_mult"}
    keys_by_method: dict[str, set] = {}
    for m in FLOW_PRIOR_METHODS:
        vs = [c.variant for c in mine if c.method == m]
        keys = {k for v in vs for k in v} - skip
        keys_by_method[m] = {k for k in keys if len({v.get(k) for v in vs}) > 1}

    def variant(c: Cell) -> str:
        others = [f"{k.removeprefix('method.')}={c.variant[k]}" for k in sorted(keys_by_method[c.method])
                  if k in c.variant]
        return ", ".join(_flow_prior_label(c) + others)

    def sigma_key(s: str):
        try:
            return (0, float(s), s)
        except ValueError:
            return (1, 0.0, s)

    sigmas = sorted({c.sigma for c in mine}, key=sigma_key) or ["15", "25", "50"]
    row_keys = sorted({(c.dataset, c.method, variant(c)) for c in mine},
                      key=lambda k: (k[0], FLOW_PRIOR_METHODS.index(k[1]), k[2]))
    row_keys = row_keys or [("—", m, "") for m in FLOW_PRIOR_METHODS]
    columns = [Column(s, f"σ={s}", ours=True) for s in sigmas]

    def locate(c: Cell):
        return ((c.dataset, c.method, variant(c)), c.sigma)

    chosen = place(mine, locate)
    blocks, used = [], []
    for metric, label, digits in (("psnr", "PSNR (dB)", 2), ("ssim", "SSIM", 3)):
        rows = [Row(k, (k[0], k[1], k[2] or "default"), metric, digits, True) for k in row_keys]
        block = Block(row_header=("Data", "Method", "Variant"), rows=rows, columns=columns, title=label,
                      bold="column", show_std=True)
        used += [c for c in fill(block, chosen, {}, lambda r, c: ()) if c not in used]
        blocks.append(block)
    return PaperTable(name, _title(name), caption(
        name, used, "Entries: mean ± std over images. Variants: the overrides that differ between cells of one "
                    "method (the no-blur ablation method.blur=false and the λ sweep method.lambda_mult of "
                    "flow_prior). flow_prior never sees a clean target; DnCNN is supervised.",
        has_paper=False), blocks)


# -- the equal-compute protocol: learned methods at one wall-clock training budget ---------------------
BUDGET_METHODS = {"noisy": "Noisy", "bm3d": "BM3D", "dncnn": "DnCNN", "fdn": "FDN", "flow_prior": "flow_prior",
                  "glow_map": "Glow-MAP"}


def budget_gaps(chosen: dict, reference: str = "BM3D") -> str:
    """'FDN − BM3D +0.12 dB [CI], p' for every learned column, from the paired per-image PSNRs."""
    from denoise_bench.report.stats import paired_diff

    parts = []
    for (key, col), cell in sorted(chosen.items(), key=lambda kv: str(kv[0])):
        ref = chosen.get((key, reference))
        if ref is None or col in (reference, "Noisy") or not cell.trainings():
            continue
        d = paired_diff(cell, ref, "psnr")
        curve = parity_budget(cell, d.mean if d.significant else 0.0)  # a tie needs no extrapolation
        parts.append(f"{col} − {reference} {d.mean:+.2f} dB (95 % CI [{d.ci[0]:+.2f}, {d.ci[1]:+.2f}], "
                     f"Wilcoxon p = {d.p:.2g}, {d.n} images)" + (f" [{curve}]" if curve else ""))
    return "; ".join(parts)


def parity_budget(cell: Cell, gap_db: float) -> str:
    """What the learning curve suggests for parity: the validation PSNR's rise per doubling of training
    time (least squares on log2 seconds over the last three quarters of the curve), and the budget at which
    that rate would close ``gap_db`` (the test gap to the reference; an extrapolation, said as one)."""
    import numpy as np
    import pandas as pd

    path = cell.path / f"curve_{cell.method}.csv"
    try:
        c = pd.read_csv(path).dropna(subset=["val_psnr"])
    except (OSError, ValueError, KeyError):
        return ""
    c = c[c.seconds >= c.seconds.max() / 4]
    if len(c) < 3:
        return ""
    slope = float(np.polyfit(np.log2(c.seconds.to_numpy()), c.val_psnr.to_numpy(), 1)[0])
    minutes = float(c.seconds.max()) / 60.0
    text = f"{cell.method}: validation PSNR +{slope:.2f} dB per doubling of training time" if slope > 0 else \
        f"{cell.method}: validation PSNR no longer rising ({slope:+.2f} dB per doubling)"
    if gap_db < 0 and slope > 0.01:
        text += f"; at that rate parity needs about {minutes * 2 ** (-gap_db / slope):.0f} min (an extrapolation)"
    return text


@register("budget_celeba50")
def budget_celeba50(cells: list[Cell]) -> PaperTable:
    name = "budget_celeba50"
    mine = [c for c in cells if c.method in BUDGET_METHODS]
    keys = sorted({(c.dataset, c.sigma) for c in mine}) or [("celeba", "50")]
    # the protocol's four columns always; flow_prior / Glow-MAP only when a cell landed there (optional)
    columns = [Column(label, label, ours=True, optional=label not in ("Noisy", "BM3D", "DnCNN", "FDN"))
               for label in BUDGET_METHODS.values()]
    chosen = place(mine, lambda c: ((c.dataset, c.sigma), BUDGET_METHODS[c.method]))
    with_prior = any(t.get("kind") == "glow_prior" for c in mine for t in c.trainings())
    rows = []
    for k in keys:
        rows += [Row(k, (k[0], k[1], "PSNR (dB)"), "psnr", 2, True), Row(k, (k[0], k[1], "SSIM"), "ssim", 4, True),
                 Row(k, (k[0], k[1], "training steps"), "train_steps", 0, None)]
        if with_prior:  # glow_map / flow_prior: the Glow prior is (part of) what trains
            rows.append(Row(k, (k[0], k[1], "prior training steps"), "prior_steps", 0, None))
        rows += [Row(k, (k[0], k[1], "training minutes"), "train_min", 1, None),
                 Row(k, (k[0], k[1], "parameters (M)"), "params_m", 3, None)]
    block = Block(row_header=("Data", "σ", ""), rows=rows, columns=columns, show_std=True)
    used = fill(block, chosen, {}, lambda r, c: ())
    budgets = sorted({t.get("budget_minutes") for c in used for t in c.trainings()} - {None})
    note = ("Equal compute: every learned method trained for the same wall-clock budget"
            + (f" ({', '.join(f'{b:g}' for b in budgets)} min)" if budgets else "")
            + " with one thread, two trainings side by side on the 2-core machine; steps = what the budget allowed. "
            "Model sizes and schedules: conf/method_scale/*_budget.yaml, chosen by benchmarks/budget_pilot.sh on "
            "the validation images. "
            + ("Glow-MAP / flow_prior: their Glow prior trains for the budget at the quick sizes (not piloted), "
               "flow_prior's ResNet then its quick steps; training minutes count every model. " if with_prior else "")
            + "Gap to BM3D (paired, per image): " + (budget_gaps(chosen) or "—") + ".")
    return PaperTable(name, _title(name), caption(name, used, note, has_paper=False), [block])


# -- DnCNN paper: Set12 / BSD68 --------------------------------------------------------------------
@register("dncnn_set12")
def dncnn_set12(cells: list[Cell]) -> PaperTable:
    name = "dncnn_set12"
    ref = values(name)
    datasets = {"set12": "Set12", "bsd68": "BSD68"}

    def column(c: Cell) -> str | None:
        if c.method == "noisy":
            return "Noisy"
        if c.method == "bm3d":
            return "BM3D"
        if c.method == "dncnn":
            blind = c.get("method.train_sigma") == "blind" or c.get("method.depth") == 20
            if blind:
                return "DnCNN-B"
            return "DnCNN-S" if c.get("method.weights") else "DnCNN-S (trained here)"
        return None

    def locate(c: Cell):
        d, col = datasets.get(c.dataset.lower()), column(c)
        return ((d, c.sigma), col) if d and col else None

    columns = [Column("Noisy", "Noisy", ours=True), Column("BM3D", "BM3D", paper=True, ours=True),
               Column("DnCNN-S", "DnCNN-S", paper=True, ours=True),
               Column("DnCNN-S (trained here)", "DnCNN-S (trained here)", ours=True, optional=True),
               Column("DnCNN-B", "DnCNN-B", ours=True, optional=True)]
    rows = [Row((d, s), (d, s)) for d, s in dict.fromkeys(k[:2] for k in ref)]
    block = Block(row_header=("Dataset", "σ"), rows=rows, columns=columns)
    used = fill(block, place(cells, locate), ref, lambda r, c: r.key + (c.key,))
    return PaperTable(name, _title(name), caption(
        name, used, "DnCNN-S: our cells load the published weights DnCNN-S-{15,25,50}.pth (method.weights); "
                    "cells from data=folder data.root=.../Set12 or .../BSD68."), [block])


# -- entry points -----------------------------------------------------------------------------------
Y_NOTE = ("PSNR and SSIM on the Y (luma) channel of the RGB images (the cells' psnr_y/ssim_y; — where a cell "
          "has none, e.g. gray data); the paper columns are as published.")


def build(name: str, cells: list[Cell], channels: str = "rgb") -> PaperTable:
    """Table ``name`` from ``cells``, its marks and paired comparisons; ``channels="y"``: Y-channel PSNR/SSIM."""
    if name not in TABLES:
        raise KeyError(f"unknown table {name!r}; known: {', '.join(sorted(TABLES))}")
    if channels not in CHANNELS:
        raise ConfigError(f"channels {channels!r}: paper tables show one of {', '.join(CHANNELS)}")
    table = TABLES[name]([c.with_channels(channels) for c in cells])
    table.channels = channels
    if channels == "y":
        table.caption += " " + Y_NOTE
    comparisons.mark_table(table)
    return table


def build_table(name: str, sweep_dir, out_dir=None, quiet: bool = False, channels: str = "rgb") -> list[Path]:
    """Rebuild table ``name`` from the cells under ``sweep_dir`` (a dir or a list of dirs) into ``out_dir``."""
    dirs = [sweep_dir] if isinstance(sweep_dir, (str, Path)) else list(sweep_dir)
    table = build(name, load_cells(*dirs), channels)
    paths = layout.write(table, Path(out_dir) if out_dir else Path(dirs[0]))
    if not quiet:
        print(f"[report] {name}: {paths[0]} (.tex, .csv, .long.csv, .comparisons.md/.csv)")
    return paths
