"""Specification tests for the paired statistics behind the tables' bold marks (report/stats.py,
report/comparisons.py) and for the sweep table's options (timing / memory, Y channel)."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from denoise_bench.errors import DataError
from denoise_bench.report import layout, stats
from denoise_bench.report.cells import METHOD_ORDER, load_cells
from denoise_bench.report.paper_tables import build, build_table
from denoise_bench.report.sweep_table import sweep_table, write_table_files


def fake_cell(root: Path, rel: str, method: str, psnr, *, ssim=None, sigma=25, dataset="celeba", seed=0,
              images=None, metrics: dict | None = None, psnr_y=None) -> Path:
    """A finished cell with the given per-image PSNR (and SSIM, Y-channel) values; metrics.json means match."""
    psnr = np.asarray(psnr, dtype=float)
    ssim = np.full(len(psnr), 0.8) if ssim is None else np.asarray(ssim, dtype=float)
    images = images or [f"{dataset}/{i:03d}" for i in range(len(psnr))]
    d = root / rel
    d.mkdir(parents=True, exist_ok=True)
    cols = {"image": images, "sigma": [sigma] * len(psnr), "psnr": psnr, "ssim": ssim, "mse": 10 ** (-psnr / 10)}
    if psnr_y is not None:
        cols |= {"psnr_y": np.asarray(psnr_y, dtype=float), "ssim_y": ssim - 0.01}
    lines = [",".join(cols)] + [",".join(repr(float(v)) if not isinstance(v, str) else v for v in row)
                                for row in zip(*cols.values())]
    (d / "per_image.csv").write_text("\n".join(lines) + "\n")
    summary = lambda v: {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1))}  # noqa: E731
    m = {"method": method, "dataset": dataset, "sigma": str(sigma), "n_images": len(psnr), "scale": "smoke",
         "psnr": summary(psnr), "ssim": summary(ssim), "mse": summary(cols["mse"]), "noise": "AWGN",
         "metric_protocol": "PSNR peak 1", "test_set": f"{dataset} test", "overrides": f"method={method},sigma={sigma}",
         "provenance": {"commit": "abc1234"}, **(metrics or {}),
         "config": {"data": {"name": dataset, "source": dataset}, "method": {"name": method}, "sigma": sigma,
                    "seed": seed, "report": {"tables": []}}}
    if psnr_y is not None:
        m |= {"psnr_y": summary(psnr_y), "ssim_y": summary(ssim - 0.01)}
    (d / "metrics.json").write_text(json.dumps(m))
    return d


def md_cells(md: str, first: str) -> dict[str, str]:
    """{header: cell} of the markdown table row whose first cell is ``first``."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in md.splitlines() if line.startswith("|")]
    return dict(zip(rows[0], next(r for r in rows if r[0] == first)))


RNG = np.random.default_rng(7)
BASE = 28 + 2 * RNG.standard_normal(12)  # 12 images of varying difficulty


# -- bootstrap CI ------------------------------------------------------------------------------------
def test_constant_difference_gives_a_zero_width_ci_at_that_value():
    lo, hi = stats.bootstrap_ci(np.full(9, 0.25))
    assert lo == hi == 0.25


def test_bootstrap_ci_of_hand_computable_samples():
    # d = [0, 1]: a resample's mean is 0, 0.5 or 1 with probability 1/4, 1/2, 1/4 -> percentiles 2.5 / 97.5 = 0 / 1
    assert stats.bootstrap_ci([0.0, 1.0]) == (0.0, 1.0)
    # d = [0, 0, 0, 1]: mean k/4, k ~ Binomial(4, 1/4); P(k = 0) = 0.32 > 0.025, P(k ≤ 2) = 0.949 < 0.975 ≤ P(k ≤ 3)
    assert stats.bootstrap_ci([0.0, 0.0, 0.0, 1.0]) == (0.0, 0.75)


def test_ci_brackets_the_mean_and_narrows_with_more_images():
    d = np.array([0.3, -0.1, 0.5, 0.2, 0.9, 0.0, 0.4, -0.2, 0.6, 0.1])
    lo, hi = stats.bootstrap_ci(d)
    assert lo < d.mean() < hi
    lo4, hi4 = stats.bootstrap_ci(np.tile(d, 4))  # same mean and spread, four times the images
    assert lo4 < d.mean() < hi4
    assert 0.4 < (hi4 - lo4) / (hi - lo) < 0.6  # the standard error shrinks as 1/sqrt(n): about 1/2


def test_bootstrap_is_reproducible_and_chunking_does_not_change_it():
    d = RNG.standard_normal(50)
    assert stats.bootstrap_ci(d) == stats.bootstrap_ci(d)
    assert stats.bootstrap_ci(d, chunk_elems=50 * 7) == stats.bootstrap_ci(d)  # 7 resamples per chunk


# -- Wilcoxon ------------------------------------------------------------------------------------------
def test_wilcoxon_p_is_scipys_two_sided_signed_rank_test():
    d = np.random.default_rng(3).normal(0.1, 0.5, 20)
    p, note = stats.wilcoxon_p(d)
    assert p == scipy.stats.wilcoxon(d).pvalue and note == ""
    d[:3] = 0.0  # zeros are dropped (zero_method="wilcox", scipy's default)
    assert stats.wilcoxon_p(d)[0] == scipy.stats.wilcoxon(d).pvalue


def test_wilcoxon_all_zero_is_p_one_and_few_pairs_are_nan():
    p, note = stats.wilcoxon_p(np.zeros(10))
    assert p == 1.0 and "identical" in note
    # 5 non-zero differences, all positive: the smallest exact two-sided p is 2/2^5 = 0.0625 > 0.05
    assert scipy.stats.wilcoxon([1.0, 2, 3, 4, 5]).pvalue == 0.0625
    p, note = stats.wilcoxon_p([1.0, 2, 3, 4, 5, 0, 0])
    assert np.isnan(p) and "p = NaN" in note
    assert stats.wilcoxon_p([1.0, 2, 3, 4, 5, 6])[0] == 0.03125  # 6 all positive: 2/2^6


# -- paired cells --------------------------------------------------------------------------------------
def test_paired_diff_joins_on_the_image_id(tmp_path):
    fake_cell(tmp_path, "a", "fdn", BASE + 1.0)
    order = list(range(12))[::-1]  # b lists the same images in reverse order
    fake_cell(tmp_path, "b", "bm3d", BASE[order], images=[f"celeba/{i:03d}" for i in order])
    a, b = sorted(load_cells(tmp_path), key=lambda c: c.rel)
    d = stats.paired_diff(a, b, "psnr")
    assert d.n == 12 and d.mean == pytest.approx(1.0) and d.ci == pytest.approx((1.0, 1.0))
    assert d.p == pytest.approx(2 / 2**12) and d.significant


def test_cells_with_different_images_or_seeds_are_not_compared(tmp_path):
    fake_cell(tmp_path, "a", "fdn", BASE)
    fake_cell(tmp_path, "b", "bm3d", BASE[:10])
    fake_cell(tmp_path, "c", "dncnn", BASE, seed=1)
    a, b, c = sorted(load_cells(tmp_path), key=lambda c: c.rel)
    with pytest.raises(DataError, match=r"image ids differ \(12 vs 10 images, 10 shared\); not paired"):
        stats.paired_diff(a, b)
    with pytest.raises(DataError, match=r"noise seeds differ \(0 vs 1\)"):
        stats.paired_diff(a, c)


# -- marks and comparisons files ------------------------------------------------------------------------
@pytest.fixture
def sweep(tmp_path) -> Path:
    """noisy ≪ bm3d < fdn on every image; dncnn and fdn differ by ±0.05 dB in alternating sign (a tie)."""
    root = tmp_path / "sweep"
    wobble = 0.05 * np.array([1, -1] * 6) + 0.002
    fake_cell(root, "method=noisy,sigma=25", "noisy", BASE - 8)
    fake_cell(root, "method=bm3d,sigma=25", "bm3d", BASE)
    fake_cell(root, "method=fdn,sigma=25", "fdn", BASE + 1.0, ssim=np.full(12, 0.9))
    fake_cell(root, "method=dncnn,sigma=25", "dncnn", BASE + 1.0 + wobble, ssim=np.full(12, 0.85))
    return root


def test_a_clearly_better_method_is_bold_and_a_statistical_tie_is_not(sweep, tmp_path):
    t = sweep_table(load_cells(sweep))
    md = write_table_files(t, tmp_path / "out", stem="sweep_table")
    psnr = {row: md_cells(md, row)["σ=25 PSNR"] for row in ("noisy", "bm3d", "dncnn", "fdn")}
    # dncnn has the highest mean PSNR (+0.002 dB over fdn) but is not significantly better: a tie, not bold
    v = BASE + 1.0 + 0.05 * np.array([1, -1] * 6) + 0.002
    assert psnr["dncnn"] == f"{v.mean():.2f} ± {v.std(ddof=1):.2f} (≈ fdn)"
    assert not any(v.startswith("**") for v in psnr.values())
    ssim = {row: md_cells(md, row)["σ=25 SSIM"] for row in ("noisy", "bm3d", "dncnn", "fdn")}
    assert ssim["fdn"] == "**0.9000 ± 0.0000**" and not ssim["dncnn"].startswith("**")  # 0.05 better on every image
    assert "CI of the per-image difference excludes 0 AND the Wilcoxon signed-rank p < 0.05" in t.caption
    tex = (tmp_path / "out" / "sweep_table.tex").read_text()
    assert r"\textbf{0.9000 $\pm$ 0.0000}" in tex and r"(≈ fdn)" not in tex and r"($\approx$ fdn)" in tex


def test_comparisons_list_every_pair_with_ci_and_p(sweep, tmp_path):
    t = sweep_table(load_cells(sweep))
    write_table_files(t, tmp_path, stem="sweep_table")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "sweep_table.comparisons.csv").read_text())))
    assert len(rows) == 4 * 3 // 2
    assert {frozenset((r["method_a"], r["method_b"])) for r in rows} == {
        frozenset(p) for p in [("noisy", "bm3d"), ("noisy", "dncnn"), ("noisy", "fdn"), ("bm3d", "dncnn"),
                               ("bm3d", "fdn"), ("dncnn", "fdn")]}
    fdn_bm3d = next(r for r in rows if {r["method_a"], r["method_b"]} == {"fdn", "bm3d"})
    sign = 1 if fdn_bm3d["method_a"] == "fdn" else -1
    assert sign * float(fdn_bm3d["d_psnr"]) == pytest.approx(1.0) and fdn_bm3d["significant_psnr"] == "1"
    assert float(fdn_bm3d["p_psnr"]) == pytest.approx(2 / 2**12) and fdn_bm3d["n"] == "12"
    tie = next(r for r in rows if {r["method_a"], r["method_b"]} == {"fdn", "dncnn"})
    d = (0.05 * np.array([1, -1] * 6) + 0.002) * (1 if tie["method_a"] == "dncnn" else -1)
    assert float(tie["p_psnr"]) == pytest.approx(scipy.stats.wilcoxon(d).pvalue) and tie["significant_psnr"] == "0"
    lo, hi = float(tie["d_psnr_ci_low"]), float(tie["d_psnr_ci_high"])
    assert lo < 0 < hi
    md = (tmp_path / "sweep_table.comparisons.md").read_text()
    assert sum(1 for line in md.splitlines() if line.startswith("| celeba | 25 |")) == 6
    assert "10,000 resamples" in md and "Wilcoxon signed-rank" in md


def test_pairs_that_cannot_be_paired_get_no_mark_and_a_reason(tmp_path):
    root = tmp_path / "s"
    fake_cell(root, "fdn_seed0", "fdn", BASE + 1, seed=0)
    fake_cell(root, "bm3d_seed1", "bm3d", BASE, seed=1)
    t = sweep_table(load_cells(root))
    assert not t.marks or all(v.kind == "untested" for v in t.marks.values())
    md = write_table_files(t, tmp_path, stem="x")
    assert "**" not in md.split("\n\n")[0] and "≈" not in md.split("\n\n")[0]
    assert "noise seeds differ" in (tmp_path / "x.comparisons.md").read_text()


def test_paper_table_bolds_only_a_significant_best_and_writes_its_comparisons(tmp_path):
    root = tmp_path / "t3"
    for method, p in (("noisy", BASE - 8), ("bm3d", BASE), ("dncnn", BASE + 0.5), ("fdn", BASE + 1)):
        fake_cell(root, method, method, p, sigma=50)
    fake_cell(root, "fdn15", "fdn", BASE + 5, sigma=15)
    fake_cell(root, "dncnn15", "dncnn", BASE + 5 + 0.05 * np.array([1, -1] * 6) - 0.002, sigma=15)
    paths = build_table("fdn_table3", root, tmp_path / "out", quiet=True)
    md = paths[0].read_text()
    assert f"**{np.mean(BASE + 1):.2f}**" in md  # σ=50: FDN beats DnCNN on every image
    assert f"{np.mean(BASE + 5):.2f} (≈ DnCNN)" in md  # σ=15: FDN = DnCNN on average, alternating ±0.05 dB
    comp = {p.name for p in paths}
    assert {"fdn_table3.comparisons.md", "fdn_table3.comparisons.csv"} <= comp
    lines = list(csv.DictReader(io.StringIO((tmp_path / "out" / "fdn_table3.comparisons.csv").read_text())))
    assert len([r for r in lines if r["σ"] == "50"]) == 4 * 3 // 2 and len([r for r in lines if r["σ"] == "15"]) == 1


# -- timing / memory and the Y channel ------------------------------------------------------------------
def test_timing_and_memory_columns_when_present_dash_for_old_cells(tmp_path):
    root = tmp_path / "s"
    cost = {"timing": {"seconds_per_image_median": 0.0123, "seconds_per_image_mean": 0.02, "warmup_images_excluded": 1},
            "peak_memory": {"bytes": 300 * 2**20, "kind": "rss"}}
    fake_cell(root, "fdn", "fdn", BASE + 1, metrics=cost)
    fake_cell(root, "bm3d", "bm3d", BASE)  # an old cell: neither key
    t = sweep_table(load_cells(root))
    md = write_table_files(t, tmp_path, stem="st")
    assert md_cells(md, "fdn")["σ=25 s/img (median)"] == "0.0123" and md_cells(md, "fdn")["σ=25 peak MB"] == "300"
    assert md_cells(md, "bm3d")["σ=25 s/img (median)"] == "—" and md_cells(md, "bm3d")["σ=25 peak MB"] == "—"
    assert "first 1 warm-up" in t.caption and "rss" in t.caption
    assert "σ=25 peak MB" not in sweep_table(load_cells(root), timing=False).frame.columns
    # without any recorded cost the columns appear only when asked for
    fake_cell(tmp_path / "old", "bm3d", "bm3d", BASE)
    assert "σ=25 peak MB" not in sweep_table(load_cells(tmp_path / "old")).frame.columns
    assert "σ=25 peak MB" in sweep_table(load_cells(tmp_path / "old"), timing=True).frame.columns
    # the paper tables' long csv carries both numbers per entry
    build_table("fdn_table3", root, tmp_path / "p", quiet=True)
    long = list(csv.DictReader(io.StringIO((tmp_path / "p" / "fdn_table3.long.csv").read_text())))
    fdn = next(r for r in long if r["column"] == "FDN" and r["ours_mean"])
    assert (fdn["s_per_img_median"], fdn["peak_mb"]) == ("0.0123", "300")


def test_y_channel_option_reads_psnr_y_and_says_so(tmp_path):
    root = tmp_path / "rgb"
    fake_cell(root, "fdn", "fdn", BASE + 1, psnr_y=BASE + 3)
    fake_cell(root, "bm3d", "bm3d", BASE, psnr_y=BASE + 2.5)
    cells = load_cells(root)
    y = sweep_table(cells, channels="y")
    assert list(y.frame.columns) == ["σ=25 PSNR-Y", "σ=25 SSIM-Y"]
    assert y.frame.loc["fdn", "σ=25 PSNR-Y"] == f"{np.mean(BASE + 3):.2f} ± {np.std(BASE, ddof=1):.2f}"
    assert "Y (luma) channel" in y.caption
    pair = y.comparisons[0]  # A = bm3d (first in the table), B = fdn; the paired test reads psnr_y too
    assert (pair.a, pair.b, pair.diffs["psnr_y"].mean) == ("bm3d", "fdn", pytest.approx(-0.5))
    md = write_table_files(y, tmp_path, stem="y")
    assert md_cells(md, "fdn")["σ=25 PSNR-Y"].startswith("**")  # 0.5 dB better in Y on every image
    assert md_cells(md, "bm3d")["σ=25 SSIM-Y"].endswith("(≈ fdn)")  # equal SSIM-Y on every image: a tie
    assert "ΔPSNR-Y [95% CI]" in (tmp_path / "y.comparisons.md").read_text()
    both = sweep_table(cells, channels="both")
    assert list(both.frame.columns) == ["σ=25 PSNR", "σ=25 SSIM", "σ=25 PSNR-Y", "σ=25 SSIM-Y"]
    assert set(both.comparisons[0].diffs) == {"psnr", "ssim", "psnr_y", "ssim_y"}
    t = build("fdn_table3", cells, channels="y")
    row = next(r for r in t.blocks[0].rows if r.key == ("CelebA", "25"))
    fdn = next(c for c in t.blocks[0].columns if c.key == "FDN")
    assert t.blocks[0].entry(row, fdn).ours == pytest.approx(np.mean(BASE + 3)) and "Y (luma) channel" in t.caption
    assert "Y (luma)" not in build("fdn_table3", cells).caption


def test_one_method_order_from_the_registry(tmp_path):
    from denoise_bench.methods import METHODS

    assert METHOD_ORDER == tuple(METHODS)
    for i, m in enumerate(reversed(METHOD_ORDER)):
        fake_cell(tmp_path, m, m, BASE + i)
    assert list(sweep_table(load_cells(tmp_path)).frame.index) == list(METHOD_ORDER)


def test_layout_bold_marks_come_from_the_paired_test(tmp_path):
    fake_cell(tmp_path, "fdn", "fdn", BASE + 1, sigma=50)
    fake_cell(tmp_path, "bm3d", "bm3d", BASE, sigma=50)
    t = build("fdn_table3", load_cells(tmp_path))
    marks = layout.bold_marks(t.blocks[0])
    assert marks == {(("CelebA", "50"), "psnr", "FDN", "ours")}
    v = t.blocks[0].marks[(("CelebA", "50"), "psnr", "FDN")]
    assert v.kind == "significant" and v.runner_up == "BM3D" and v.diff.mean == pytest.approx(1.0)


def test_cells_of_different_datasets_are_never_ranked_together(tmp_path):
    fake_cell(tmp_path, "a/fdn", "fdn", BASE + 1)
    fake_cell(tmp_path, "a/bm3d", "bm3d", BASE + 1.002 + 0.05 * np.array([1, -1] * 6))
    fake_cell(tmp_path, "b/fdn", "fdn", BASE - 3, dataset="flowers102")
    fake_cell(tmp_path, "b/bm3d", "bm3d", BASE - 4, dataset="flowers102")
    t = sweep_table(load_cells(tmp_path))
    assert list(t.frame.index) == ["celeba / bm3d", "celeba / fdn", "flowers102 / bm3d", "flowers102 / fdn"]
    assert [(p.group.values, p.a, p.b) for p in t.comparisons] == [(("celeba", "25"), "bm3d", "fdn"),
                                                                   (("flowers102", "25"), "bm3d", "fdn")]
    md = write_table_files(t, tmp_path / "out", stem="st")
    assert md_cells(md, "flowers102 / fdn")["σ=25 PSNR"].startswith("**")  # 1 dB on every image
    assert md_cells(md, "celeba / bm3d")["σ=25 PSNR"].endswith("(≈ fdn)")  # ±0.05 dB: a tie
