"""Specification tests for the report: reference numbers, paper tables (paper / ours / Δ), figures,
the report command, the stored results, and the W&B offline run of a cell."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from denoise_bench.report import layout
from denoise_bench.report.caption import protocol
from denoise_bench.report.cells import load_cells
from denoise_bench.report.paper_tables import TABLES, build, build_table
from denoise_bench.report.reference import values
from denoise_bench.report.sweep_table import row_labels, sweep_table

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO.parent / "shared" / "seeds"
DESIGN = REPO.parent / "shared" / "DESIGN.md"
TABLE_FILES = (".md", ".tex", ".csv", ".long.csv")


# -- synthetic cells --------------------------------------------------------------------------------
def per_image_rows(dataset: str, sigma, psnr: float, ssim: float, mse: float, n: int) -> str:
    """per_image.csv of n images whose means are psnr / ssim / mse; every cell gets the same per-image
    offsets, so two cells differ by a constant on every image (a clear, significant difference at n ≥ 6)."""
    offsets = np.linspace(-1.0, 1.0, n) if n > 1 else np.zeros(1)
    lines = ["image,sigma,psnr,ssim,mse,seconds"]
    for i, o in enumerate(map(float, offsets)):
        lines.append(f"{dataset}/img{i},{sigma},{psnr + o!r},{ssim + o / 100!r},{mse * (1 + o / 10)!r},0.1")
    return "\n".join(lines) + "\n"


def write_cell(root: Path, rel: str, method: str, sigma, *, dataset="celeba", psnr=30.0, ssim=0.9, mse=1e-3,
               n=8, method_cfg=None, extra=None, data=None, overrides=None, scale="smoke", params=1000,
               examples: bool = False, curve: bool = False, metrics: dict | None = None) -> Path:
    """A finished cell as the runner leaves it: metrics.json (+ per_image.csv, examples/, csv/metrics.csv);
    ``metrics``: extra metrics.json keys (timing, peak_memory, psnr_y...)."""
    d = root / rel
    d.mkdir(parents=True, exist_ok=True)
    cfg = {"data": {"name": dataset, "source": dataset, "test_crop": 64, "test_size": None, **(data or {})},
           "method": {"name": method, **(method_cfg or {})}, "sigma": sigma, "name": root.name,
           "report": {"tables": []}, **(extra or {})}
    m = {"method": method, "dataset": dataset, "sigma": str(sigma), "n_images": n,
         "psnr": {"mean": psnr, "std": 0.5}, "ssim": {"mean": ssim, "std": 0.01}, "mse": {"mean": mse, "std": mse / 10},
         "parameters": params, "scale": scale, "noise": "AWGN (0-255 scale), not clipped",
         "metric_protocol": "PSNR peak 1 per image", "test_set": f"{dataset} test split (centre crop 64)",
         "overrides": overrides or f"method={method},sigma={sigma}", "provenance": {"commit": "abc1234"},
         "config": cfg, **(metrics or {})}
    (d / "metrics.json").write_text(json.dumps(m))
    (d / "per_image.csv").write_text(per_image_rows(dataset, sigma, psnr, ssim, mse, n))
    if examples:
        rng = np.random.default_rng(sum(map(ord, method)))
        for kind in ("noisy", "denoised", "clean"):
            (d / "examples").mkdir(exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (40, 40), dtype=np.uint8)).save(d / "examples" / f"00_{dataset}-img0_{kind}.png")
    if curve:
        (d / "csv").mkdir(exist_ok=True)
        (d / "csv" / "metrics.csv").write_text("epoch,step,train/loss,val/psnr\n0,9,0.5,\n0,19,0.3,\n0,19,,24.0\n0,29,0.2,\n")
    return d


@pytest.fixture
def fdn_sweep(tmp_path) -> Path:
    root = tmp_path / "fdn_sweep"
    write_cell(root, "method=noisy,sigma=50", "noisy", 50, psnr=14.20)
    write_cell(root, "method=bm3d,sigma=50", "bm3d", 50, psnr=29.00)
    write_cell(root, "method=fdn,sigma=50", "fdn", 50, psnr=30.50, method_cfg={"flow_blocks": 2, "sof_blocks": 8, "zc_ratio": 0.75})
    write_cell(root, "method=fdn,sigma=15", "fdn", 15, psnr=35.00, method_cfg={"flow_blocks": 2, "sof_blocks": 8, "zc_ratio": 0.75})
    return root


def md_row(md: str, *labels: str) -> list[str]:
    """The cells of the markdown row whose first cells are ``labels`` (a blank leading label repeats
    the one above, as the paper layout prints a dataset once per group)."""
    previous: list[str] = []
    for line in md.splitlines():
        if not line.startswith("|"):
            previous = []
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        full = [p if c == "" and i < len(labels) - 1 and i < len(previous) else c
                for i, (c, p) in enumerate(zip(cells, previous + [""] * len(cells)))]
        previous = full
        if full[: len(labels)] == list(labels):
            return cells
    raise AssertionError(f"no row {labels} in\n{md}")


# -- reference numbers ------------------------------------------------------------------------------
def _seed(name: str) -> str:
    p = SEEDS / name
    if not p.exists():
        pytest.skip(f"{p} not available")
    return p.read_text()


def _num(s: str):
    s = re.sub(r"<[^>]+>", "", s).replace("$", "").strip()
    return None if s in ("—", "-", "") else float(s)


def _seed_block(text: str, header: str) -> list[list[str]]:
    lines = text[text.index(header):].splitlines()
    out = []
    for line in lines[1:]:
        if not line.strip():
            break
        out.append(line.split("\t"))
    return out


@pytest.mark.parametrize("table,header,names", [
    ("fdn_table3", "Dataset\tσ\tBM3D [5]", {"CelebA [33]": "CelebA", "Flower [35]": "Flower", "CUB-200 [8]": "CUB-200"}),
    ("fdn_table4", "Dataset\tσ\tEPLL [39]", {"RICE1 [36]": "RICE1", "RICE2 [36]": "RICE2"}),
])
def test_fdn_dataset_tables_match_the_seed_text_entry_by_entry(table, header, names):
    text = _seed("002_ec5ef201e83bb821.txt")
    methods = [re.sub(r" \[\d+\]| \(Ours\)", "", h) for h in text[text.index(header):].splitlines()[0].split("\t")[2:]]
    ref, dataset, checked = values(table), None, 0
    for cells in _seed_block(text, header):
        dataset = names.get(cells[0].strip(), dataset)
        sigma = cells[1].strip().lower()
        for method, raw in zip(methods, cells[2:]):
            expected = _num(raw)
            got = ref.get((dataset, sigma, method))
            assert (got.mean if got else None) == expected, (dataset, sigma, method)
            checked += 1
    assert checked == len(ref) + sum(1 for c in _seed_block(text, header) for v in c[2:] if _num(v) is None)


def test_fdn_table5_and_ablations_match_the_seed_text():
    text = _seed("002_ec5ef201e83bb821.txt")
    methods = ["DnCNN", "TNRD", "BM3D", "CBDNet", "GradNet", "AINDNet", "VDN", "FDN"]
    assert "Method\t" + "\t".join(f"{m} [" for m in methods[:1])[:-2] in text
    rows = {l.split("\t")[0]: l.split("\t")[1:] for l in text.splitlines()
            if l.startswith(("PSNR (dB)\t", "SSIM\t", "Param (M)\t", "Inference time (GFlops)\t"))}
    assert len(rows) == 4
    ref5 = values("fdn_table5")
    for metric, label in zip(["psnr", "ssim", "params_m", "gflops"], rows):
        assert len(rows[label]) == len(methods)
        for method, raw in zip(methods, rows[label]):
            got = ref5.get((metric, method))
            assert (got.mean if got else None) == _num(raw), (metric, method)
    assert values("fdn_ablation_blocks")[("2", "8")].mean == 30.00
    assert "\tnum = 1\t29.59\t29.86" in text and values("fdn_ablation_blocks")[("1", "4")].mean == 29.59
    assert "num = 3\t29.89\t29.90" in text and values("fdn_ablation_blocks")[("3", "8")].mean == 29.90
    assert "PSNR\t29.81\t30.00\t30.00\t30.19\t30.18" in text
    assert [values("fdn_ablation_zc")[(z,)].mean for z in ("1/8", "1/4", "1/2", "3/4", "7/8")] == [29.81, 30.00, 30.00, 30.19, 30.18]


def test_glow_tables_match_the_seed_text_mean_and_std():
    text = _seed("001_2e63b5ddf10547d4.txt")
    rows = [l.split("\t") for l in text.splitlines() if re.match(r"^\.(025|05|1|2)\t", l)]
    assert len(rows) == 12  # 4 sigmas x (SSIM, PSNR, MSE)
    ref = values("glow_map_tables")
    for i, cells in enumerate(rows):
        metric = ["ssim", "psnr", "mse100"][i // 4]
        sigma = f"{float(cells[0]):g}"
        for col, raw in zip(["1", "2", "4", "8", "noisy"], cells[1:]):
            raw = re.sub(r"<[^>]+>", "", raw).replace("$\\pm$", "±").replace("\\pm", "±").replace("$", "")
            got = ref.get((metric, sigma, col))
            if raw.strip() == "-":
                assert got is None, (metric, sigma, col)
                continue
            mean, std = (float(x) for x in raw.split("±"))
            assert (got.mean, got.std) == (mean, std), (metric, sigma, col)


def test_dncnn_numbers_match_the_design_brief():
    if not DESIGN.exists():
        pytest.skip("DESIGN.md not available")
    text = DESIGN.read_text()
    ref = values("dncnn_set12")
    assert "Set12 32.86 / 30.44 / 27.18; BSD68 31.73 / 29.23 / 26.23" in text
    assert "Published Set12 32.37 / 29.97 / 26.72" in text and "BSD68 31.07 / 28.57 / 25.62" in text
    assert [ref[("Set12", s, "DnCNN-S")].mean for s in ("15", "25", "50")] == [32.86, 30.44, 27.18]
    assert [ref[("BSD68", s, "DnCNN-S")].mean for s in ("15", "25", "50")] == [31.73, 29.23, 26.23]
    assert [ref[("Set12", s, "BM3D")].mean for s in ("15", "25", "50")] == [32.37, 29.97, 26.72]
    assert [ref[("BSD68", s, "BM3D")].mean for s in ("15", "25", "50")] == [31.07, 28.57, 25.62]


def test_every_table_names_its_source():
    from denoise_bench.report.reference import paper_info, table_info

    for name in TABLES:
        info = table_info(name)
        assert info["title"] and info["sigma"] and info["metric"]
        if info["paper"]:
            assert paper_info(name)["cite"] and info["table"]


# -- paper tables --------------------------------------------------------------------------------------
def test_table3_puts_paper_ours_and_delta_side_by_side(fdn_sweep):
    t = build("fdn_table3", load_cells(fdn_sweep))
    block = t.blocks[0]
    row = next(r for r in block.rows if r.key == ("CelebA", "50"))
    fdn = next(c for c in block.columns if c.key == "FDN")
    e = block.entry(row, fdn)
    assert e.paper.mean == 30.29 and e.ours == 30.50 and e.delta == pytest.approx(0.21)
    md = layout.to_markdown(t)
    header = md_row(md, "Dataset", "σ")
    assert "FDN paper" in header and "FDN ours" in header and "FDN Δ" in header
    assert "EPLL paper" in header and "EPLL ours" not in header  # paper-only method: paper numbers only
    assert "Noisy ours" in header and "Noisy paper" not in header  # ours-only reference row
    cells = dict(zip(header, md_row(md, "CelebA", "50")))
    # ours: FDN beats BM3D (runner-up) on every image -> bold; the paper's numbers are never bold
    assert cells["FDN paper"] == "30.29" and cells["FDN ours"] == "**30.50**" and cells["FDN Δ"] == "+0.21"
    assert cells["BM3D paper"] == "29.46" and cells["BM3D ours"] == "29.00" and cells["BM3D Δ"] == "-0.46"
    assert cells["EPLL paper"] == "27.65"
    # missing cells of ours show a dash; Flower was not run at all
    flower = dict(zip(header, md_row(md, "Flower", "15")))
    assert flower["FDN paper"] == "37.38" and flower["FDN ours"] == "—" and flower["FDN Δ"] == "—"
    blind = dict(zip(header, md_row(md, "CelebA", "Blind")))
    assert blind["BM3D paper"] == "—"  # the paper prints no blind BM3D


def test_caption_states_protocol_units_and_source(fdn_sweep):
    cap = build("fdn_table3", load_cells(fdn_sweep)).caption
    for needle in ("celeba", "n = 8 images", "centre crop 64×64", "scale: smoke", "AWGN", "PSNR peak 1",
                   "commit abc1234", "Δ = ours − paper", "Table III", "Sensors", "0-255"):
        assert needle in cap, needle
    assert "not the papers' scale" not in cap  # nothing in these cells was trained here


def test_caption_noise_is_read_off_each_cells_config_not_its_stored_text(tmp_path):
    """Cells stored before the wording was fixed say "blind: U[0,55]" for a fixed sigma; a rebuilt
    table's caption states the noise the cell's config set."""
    root = tmp_path / "s"
    old_text = "AWGN (0-255 scale, blind: U[0,55] per image), not clipped, not quantised, seeded per (seed 0, image, sigma)"
    noise = {"kind": "awgn", "clip": False, "quantize": False, "blind_max": 55}
    write_cell(root, "fixed", "fdn", 50, extra={"noise": noise, "seed": 0}, metrics={"noise": old_text})
    write_cell(root, "blind", "fdn", "blind", extra={"noise": {**noise, "clip": True}, "seed": 3},
               metrics={"noise": old_text})
    write_cell(root, "paired", "bm3d", 25, data={"paired": True}, extra={"noise": noise, "seed": 0},
               metrics={"noise": old_text})
    by = {c.rel: c for c in load_cells(root)}
    assert by["fixed"].noise == "AWGN (0-255 scale), not clipped, not quantised, seeded per (seed 0, image, sigma)"
    assert by["blind"].noise == ("AWGN (0-255 scale, blind: sigma ~ U[0,55] per image), clipped to [0,1], "
                                 "not quantised, seeded per (seed 3, image, sigma)")
    assert by["paired"].noise.startswith("real noise")
    ours = protocol([by["fixed"]])
    assert "noise: AWGN (0-255 scale), not clipped" in ours and "blind" not in ours
    assert "noise: AWGN (0-255 scale), not clipped" in build("fdn_table3", [by["fixed"]]).caption
    swept = sweep_table([by["fixed"]]).caption
    assert "Noise: AWGN (0-255 scale), not clipped" in swept and "blind" not in swept


def test_caption_warns_about_scale_only_for_models_trained_here(tmp_path):
    root = tmp_path / "s"
    write_cell(root, "trained", "fdn", 50, method_cfg={"train_steps": 300, "weights": None}, scale="quick")
    write_cell(root, "published", "dncnn", 50, method_cfg={"train_steps": 300, "weights": "/w/DnCNN-S-50.pth"},
               scale="quick")
    cells = load_cells(root)
    assert "Scale quick is not the papers' scale" in build("fdn_table3", cells).caption
    assert "fdn: 300 training steps" in build("fdn_table3", cells).caption
    published = [c for c in cells if c.rel == "published"]
    cap = build("fdn_table3", published).caption
    assert "not the papers' scale" not in cap and "dncnn: weights DnCNN-S-50.pth" in cap


def test_latex_bolds_only_our_significant_best(fdn_sweep):
    tex = layout.to_latex(build("fdn_table3", load_cells(fdn_sweep)))
    line = next(l for l in tex.splitlines() if l.startswith(" & 50 &") or l.startswith("CelebA & 50"))
    assert r"\textbf{30.29}" not in line and r"\textbf{30.50}" in line
    assert r"\textbf{29.00}" not in line and r"\textbf{29.46}" not in line and "14.20" in line
    assert r"\begin{tabular}" in tex and r"\toprule" in tex and r"$\Delta$" in tex and "---" in tex


def test_lower_is_better_for_mse_and_an_exact_tie_is_not_bold(tmp_path):
    root = tmp_path / "glow"
    for beta, mse in ((1, 0.0010), (2, 0.0004), (4, 0.0004)):
        write_cell(root, f"b{beta}", "glow_map", 8.5, psnr=30 + beta, mse=mse, method_cfg={"beta": beta},
                   extra={"sigma_paper": 0.05}, overrides=f"glow_map_column=beta{beta},sigma=8.5")
    write_cell(root, "noisy", "noisy", 8.5, psnr=29.4, mse=0.00112, extra={"sigma_paper": 0.05})
    t = build("glow_map_tables", load_cells(root))
    assert [b.title for b in t.blocks] == ["Table 1. SSIM", "Table 2. PSNR (dB)", "Table 3. MSE × 100"]
    mse = t.blocks[2]
    assert layout.bold_marks(mse) == set()  # MSE×100 0.040 twice (identical per image): the lowest, a tie
    tie = mse.marks[(("0.05",), "mse100", "2")]
    assert (tie.kind, tie.runner_up, tie.diff.p) == ("tie", "β=4", 1.0)
    psnr = layout.bold_marks(t.blocks[1])  # PSNR rises with β: β=4 beats β=2 on every image
    assert psnr == {(("0.05",), "psnr", "4", "ours")}
    md = layout.to_markdown(t)
    mse_md = md.split("**Table 3. MSE × 100**")[1]
    assert dict(zip(md_row(mse_md, "σ"), md_row(mse_md, "0.05")))["β=2 ours"] == "0.040 ± 0.004 (≈ β=4)"
    cells = dict(zip(md_row(md, "σ"), md_row(md, "0.05")))  # first block (SSIM) header and row
    assert cells["noisy paper"] == "0.894 ± 0.040"
    assert "σ·255/1.5" in t.caption and "σ=0.05 → sigma=8.5" in t.caption


def test_glow_cells_without_sigma_paper_are_placed_only_at_the_papers_levels(tmp_path):
    root = tmp_path / "mixed"
    write_cell(root, "a", "glow_map", 17, method_cfg={"beta": 4}, psnr=28.0)  # 17 = 0.1·255/1.5
    write_cell(root, "b", "noisy", 50, psnr=14.2)  # not a Glow-paper level: stays out
    t = build("glow_map_tables", load_cells(root))
    psnr = t.blocks[1]
    assert [r.key for r in psnr.rows] == [("0.025",), ("0.05",), ("0.1",), ("0.2",)]
    assert psnr.entry(psnr.rows[2], next(c for c in psnr.columns if c.key == "4")).ours == 28.0


def test_fdn_ablations_read_the_method_config(tmp_path):
    root = tmp_path / "abl"
    for f in (1, 2, 3):
        for s in (4, 8):
            write_cell(root, f"fb{f}_sof{s}", "fdn", 50, psnr=29 + f / 10 + s / 100,
                       method_cfg={"flow_blocks": f, "sof_blocks": s, "zc_ratio": 0.75},
                       overrides=f"method=fdn,method.flow_blocks={f},method.sof_blocks={s},sigma=50")
    for z in (0.125, 0.875):
        write_cell(root, f"zc{z}", "fdn", 50, psnr=29.5 + z, method_cfg={"flow_blocks": 2, "sof_blocks": 8, "zc_ratio": z},
                   overrides=f"method=fdn,method.zc_ratio={z},sigma=50")
    blocks = build("fdn_ablation_blocks", load_cells(root))
    md = layout.to_markdown(blocks)
    cells = dict(zip(md_row(md, "PSNR (dB)"), md_row(md, "Flow blocks = 3")))
    assert cells["SoF = 8 paper"] == "29.90" and cells["SoF = 8 ours"] == "**29.38**" and cells["SoF = 8 Δ"] == "-0.52"
    assert cells["SoF = 4 ours"] == "29.34"
    zc = build("fdn_ablation_zc", load_cells(root))
    md = layout.to_markdown(zc)
    cells = dict(zip(md_row(md, "dim(z_C) / dim(z)"), md_row(md, "PSNR (dB)")))
    assert cells["1/8 ours"] == "29.62" and cells["7/8 ours"] == "**30.38**"
    assert cells["3/4 ours"] == "29.28"  # of the six zc=3/4 cells, the one at the paper's 2 flow blocks x 8 SoF
    assert cells["3/4 paper"] == "30.19"  # the paper's best: never bold (nothing to test it with)


def test_dncnn_set12_uses_the_folder_name_and_published_weights(tmp_path):
    root = tmp_path / "set12"
    for s, p in ((15, 32.84), (25, 30.40)):
        write_cell(root, f"dncnn{s}", "dncnn", s, dataset="folder", psnr=p, data={"source": "folder", "root": "/x/Set12/"},
                   method_cfg={"weights": f"/w/DnCNN-S-{s}.pth", "depth": 17})
    write_cell(root, "bm3d25", "bm3d", 25, dataset="folder", psnr=29.99, data={"source": "folder", "root": "/x/Set12"})
    write_cell(root, "trained25", "dncnn", 25, dataset="folder", psnr=29.0, data={"source": "folder", "root": "/x/Set12"},
               method_cfg={"weights": None, "depth": 17, "train_steps": 100})
    md = layout.to_markdown(build("dncnn_set12", load_cells(root)))
    header = md_row(md, "Dataset", "σ")
    cells = dict(zip(header, md_row(md, "Set12", "25")))
    assert cells["DnCNN-S paper"] == "30.44" and cells["DnCNN-S ours"] == "**30.40**" and cells["DnCNN-S Δ"] == "-0.04"
    assert cells["BM3D ours"] == "29.99" and cells["DnCNN-S (trained here) ours"] == "29.00"
    assert "DnCNN-B ours" not in header  # optional column without cells is dropped
    bsd = dict(zip(header, md_row(md, "BSD68", "15")))
    assert bsd["BM3D paper"] == "31.07" and bsd["BM3D ours"] == "—"


def test_fdn_table5_reports_parameters_in_millions(tmp_path):
    root = tmp_path / "sidd"
    write_cell(root, "fdn", "fdn", "real", dataset="sidd", psnr=35.0, ssim=0.9, params=4_375_680)
    write_cell(root, "bm3d", "bm3d", "real", dataset="sidd", psnr=30.0, ssim=0.8, params=0)
    m = json.loads((root / "fdn" / "metrics.json").read_text())
    (root / "fdn" / "metrics.json").write_text(json.dumps({**m, "gflops_256": 76.123}))
    md = layout.to_markdown(build("fdn_table5", load_cells(root)))
    header = md_row(md, "Metric")
    params = dict(zip(header, md_row(md, "Param (M)")))
    assert params["FDN paper"] == "4.38" and params["FDN ours"] == "4.38" and params["FDN Δ"] == "±0.00"
    gflops = dict(zip(header, md_row(md, "GFLOPs (256×256)")))
    assert gflops["FDN paper"] == "76.80" and gflops["FDN ours"] == "76.12" and gflops["FDN Δ"] == "-0.68"
    assert gflops["BM3D paper"] == "—" and gflops["BM3D ours"] == "—"  # BM3D is not a network: not counted
    assert dict(zip(header, md_row(md, "PSNR (dB)")))["BM3D ours"] == "30.00"


def test_flow_prior_table_lists_variants_as_rows(tmp_path):
    root = tmp_path / "fp"
    write_cell(root, "n", "noisy", 25, dataset="builtin", psnr=20.2)
    fp = {"blur": True, "lambda_mult": 1.0}
    # rows picked by a config group (conf/flow_prior_row) or by plain overrides: labels come from the config
    write_cell(root, "fp", "flow_prior", 25, dataset="builtin", psnr=26.0, method_cfg=fp,
               overrides="flow_prior_row=flow_prior,sigma=25")
    write_cell(root, "fp_noblur", "flow_prior", 25, dataset="builtin", psnr=25.0, method_cfg={**fp, "blur": False},
               overrides="flow_prior_row=no_blur,sigma=25")
    write_cell(root, "fp_l", "flow_prior", 25, dataset="builtin", psnr=25.5, method_cfg={**fp, "lambda_mult": 0.5},
               overrides="method=flow_prior,method.lambda_mult=0.5,sigma=25")
    t = build("flow_prior_table", load_cells(root))
    md = layout.to_markdown(t)
    assert md_row(md, "builtin", "flow_prior", "no blur")[3] == "25.00 ± 0.50"
    assert md_row(md, "builtin", "flow_prior", "λ×0.5")[3] == "25.50 ± 0.50"
    assert md_row(md, "builtin", "flow_prior", "default")[3] == "**26.00 ± 0.50**"
    assert "paper" not in " ".join(md_row(md, "Data", "Method"))


def test_unknown_table_and_empty_sweep(tmp_path):
    with pytest.raises(KeyError, match="unknown table"):
        build("no_such_table", [])
    t = build("fdn_table4", [])
    assert "no finished cells" in t.caption
    assert all(e.ours is None for e in t.blocks[0].entries.values())


# -- determinism, files, command ---------------------------------------------------------------------------
def _table_bytes(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())
            if p.name.endswith(TABLE_FILES) and p.name not in ("PROVENANCE.md", "README.md")}  # README: a note beside the tables


def test_tables_are_byte_for_byte_reproducible_and_location_independent(fdn_sweep, tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    moved = tmp_path / "elsewhere" / "copy"
    shutil.copytree(fdn_sweep, moved)
    for name in TABLES:
        build_table(name, fdn_sweep, a, quiet=True)
        build_table(name, fdn_sweep, b, quiet=True)
        build_table(name, moved, c, quiet=True)
    assert len(_table_bytes(a)) == 6 * len(TABLES)  # md, tex, csv, long.csv, comparisons.md/.csv
    assert _table_bytes(a) == _table_bytes(b) == _table_bytes(c)


def test_sweep_callback_builds_the_experiments_tables(fdn_sweep):
    from omegaconf import OmegaConf

    from denoise_bench.report.sweep_table import SweepTableCallback

    cfg = OmegaConf.create({"hydra": {"sweep": {"dir": str(fdn_sweep)}}, "report": {"tables": ["fdn_table3"]}})
    SweepTableCallback().on_multirun_end(cfg)
    assert (fdn_sweep / "table.md").exists() and (fdn_sweep / "fdn_table3.tex").exists()
    assert "30.29" in (fdn_sweep / "fdn_table3.md").read_text()


def run_report(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "denoise_bench.report", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env=env)


def test_report_command_writes_tables_figures_and_provenance(tmp_path):
    root = tmp_path / "sw"
    for m, p in (("noisy", 20.0), ("bm3d", 28.0), ("fdn", 29.0)):
        for s in (15, 50):
            write_cell(root, f"method={m},sigma={s}", m, s, psnr=p - s / 10, examples=True, curve=(m == "fdn"),
                       extra={"report": {"tables": ["fdn_table3"]}})
    out, stored = tmp_path / "results" / "sw", tmp_path / "results" / "cells" / "sw"
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "README.md").write_text("# r\n<!-- report-index:start -->\n<!-- report-index:end -->\n")
    r = run_report(str(root), "--out", str(out), "--store-cells", str(stored))
    assert r.returncode == 0, r.stderr
    names = {p.name for p in out.iterdir()}
    # the tables the cells' experiment asks for (report.tables), plus the generic sweep table
    assert {"fdn_table3.md", "fdn_table3.tex", "fdn_table3.csv", "sweep_table.md", "PROVENANCE.md"} <= names
    assert "fdn_table4.md" not in names
    figs = {p.name for p in (out / "figures").iterdir()}
    assert {"psnr_vs_sigma.png", "psnr_vs_sigma.pdf", "comparison_celeba_sigma15.png", "training_curves.png"} <= figs
    prov = (out / "PROVENANCE.md").read_text()
    assert "python -m denoise_bench.report" in prov and "abc1234" in prov and "smoke" in prov
    assert "[sw](sw/PROVENANCE.md)" in (tmp_path / "results" / "README.md").read_text()
    # the stored copy: small files only, and it rebuilds the same bytes (tables and figures)
    cell = stored / "method=fdn,sigma=15"
    assert {p.name for p in cell.iterdir()} == {"metrics.json", "per_image.csv", "examples", "train_curve.csv"}
    again = tmp_path / "again"
    r = run_report(str(stored), "--out", str(again))
    assert r.returncode == 0, r.stderr
    assert _table_bytes(again) == _table_bytes(out)
    assert {p.name: p.read_bytes() for p in (again / "figures").iterdir()} == \
           {p.name: p.read_bytes() for p in (out / "figures").iterdir()}


def test_report_command_errors_in_one_line(tmp_path):
    r = run_report(str(tmp_path / "missing"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and r.stderr.strip().startswith("error: not a directory")


def test_report_on_a_dir_without_cells_says_so(tmp_path, capsys):
    from denoise_bench.report.__main__ import main

    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "no finished cells" in capsys.readouterr().err


def test_figures_are_deterministic(tmp_path):
    from denoise_bench.report.figures import build_figures

    root = tmp_path / "g"
    for beta in (1, 2, 4):
        write_cell(root, f"b{beta}", "glow_map", 8.5, psnr=30 + beta, method_cfg={"beta": beta}, extra={"sigma_paper": 0.05})
    write_cell(root, "n", "noisy", 8.5, psnr=29.4, extra={"sigma_paper": 0.05})
    cells = load_cells(root)
    a = build_figures(cells, tmp_path / "fa")
    b = build_figures(cells, tmp_path / "fb")
    assert {p.name for p in a} == {"beta_tradeoff.png", "beta_tradeoff.pdf"}
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]


def test_committed_results_regenerate_byte_for_byte(tmp_path):
    """results/<name>/ was built from results/cells/<name>/: rebuilding gives the same table bytes."""
    pairs = [(REPO / "results" / "cells" / p.parent.name, p.parent) for p in sorted((REPO / "results").glob("*/provenance.json"))
             if (REPO / "results" / "cells" / p.parent.name).is_dir()]
    if not pairs:
        pytest.skip("no committed results yet")
    for cells, committed in pairs:
        info = json.loads((committed / "provenance.json").read_text())
        tables = [t.removesuffix(".md") for t in info["tables"] if t != "sweep_table.md"]
        out = tmp_path / committed.name
        args = [str(cells), "--out", str(out), "--no-figures"] + [a for t in tables for a in ("--table", t)]
        from denoise_bench.report.__main__ import main

        assert main(args) == 0
        assert _table_bytes(out) == _table_bytes(committed), committed.name


# -- what a real cell leaves ---------------------------------------------------------------------------
def test_a_cell_keeps_example_pngs_and_its_provenance(cfg_factory):
    from denoise_bench.run.cell import run_cell

    cfg = cfg_factory(["method=noisy", "sigma=25", "scale=smoke"])
    run_cell(cfg)
    out = Path(cfg.paths.output_dir)
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["provenance"]) == {"commit", "dirty", "finished", "machine", "versions", "weights", "cpu", "gpu",
                                    "threads"}
    ex = sorted(p.name for p in (out / "examples").iterdir())
    assert len(ex) == 6 and ex[0].startswith("00_") and ex[0].endswith("_clean.png")
    noisy = np.asarray(Image.open(out / "examples" / ex[2]))
    assert noisy.ndim == 2 and noisy.shape == (48, 48)  # gray stays gray; smoke crops the test images to 48


def test_wandb_offline_run_has_config_metrics_table_and_images(tmp_path):
    """logger=wandb, offline: one run per cell under the cell dir, grouped by the sweep name."""
    from denoise_bench.report.wandb_offline import read_run, run_files

    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONWARNINGS": "ignore"}
    r = subprocess.run([sys.executable, str(REPO / "run.py"), "-m", "method=noisy", "sigma=15", "scale=smoke",
                        "name=wb_sweep", "logger=wandb", "progress=false", f"paths.multirun={tmp_path}",
                        f"paths.artifacts={tmp_path / 'art'}"], cwd=REPO, capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    cell = next(p.parent for p in (tmp_path / "wb_sweep").rglob("metrics.json"))
    runs = list(cell.glob("wandb/offline-run-*"))
    assert len(runs) == 1
    media = runs[0] / "files" / "media"
    tables = list(media.glob("table/test/per_image_*.table.json"))
    assert len(tables) == 1 and len(json.loads(tables[0].read_text())["data"]) == 2  # smoke: 2 test images
    assert list(media.glob("images/test/samples_*.png")) and len(list(media.glob("images/test/examples_*.png"))) == 2
    run = read_run(run_files(cell)[0])
    metrics = json.loads((cell / "metrics.json").read_text())
    assert run["group"] == "wb_sweep" and run["name"] == metrics["overrides"]
    assert run["config"]["method"]["name"] == "noisy" and run["config"]["scale"]["name"] == "smoke"
    assert run["summary"]["test/psnr_mean"] == pytest.approx(metrics["psnr"]["mean"])
    assert any("test/per_image/_type" in h for h in run["history"])


def test_a_list_valued_override_stays_whole_in_the_cell_and_its_row_label(tmp_path):
    """``method.lambda_sure=[0.5,1,2,4]`` holds commas: only the commas joining overrides split them."""
    from denoise_bench.report.cells import split_overrides

    joined = "data=celeba,method.lambda_sure=[0.5,1,2,4],method=flow_prior,seed=0,sigma=25,x='a,b',y={p: 1, q: 2}"
    assert split_overrides(joined) == ["data=celeba", "method.lambda_sure=[0.5,1,2,4]", "method=flow_prior", "seed=0",
                                       "sigma=25", "x='a,b'", "y={p: 1, q: 2}"]
    for name, overrides in (("sure", joined.split(",x=")[0]), ("plain", "data=celeba,method=flow_prior,seed=0,sigma=25")):
        d = tmp_path / "sweep" / name
        d.mkdir(parents=True)
        (d / "metrics.json").write_text(json.dumps({
            "method": "flow_prior", "sigma": "25", "dataset": "celeba", "n_images": 2, "scale": "quick",
            "psnr": {"mean": 26.0, "std": 1.0}, "ssim": {"mean": 0.8, "std": 0.1}, "mse": {"mean": 0.01, "std": 0.0},
            "overrides": overrides, "config": {"method": {"name": "flow_prior"}}}))
    plain, sure = load_cells(tmp_path / "sweep")
    assert sure.overrides["method.lambda_sure"] == "[0.5,1,2,4]" and sure.overrides["seed"] == "0"
    labels = row_labels([plain, sure])
    assert labels[id(sure)] == "flow_prior (method.lambda_sure=[0.5,1,2,4])", labels
