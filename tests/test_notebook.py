"""notebooks/results.ipynb runs top to bottom on a results dir (so it never rots) and shows its
tables, figures and cells."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from test_report import write_cell  # tests/ is on sys.path (pytest rootdir conftest)

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "results.ipynb"


def outputs_of(nb) -> tuple[str, int]:
    """(all text/markdown/plain output joined, number of PNG outputs)."""
    texts, pngs = [], 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.output_type != "error", out
            texts.append(out.get("text", ""))
            data = out.get("data", {})
            texts += [data.get("text/markdown", ""), data.get("text/plain", ""), data.get("text/html", "")]
            pngs += "image/png" in data
    return "\n".join(texts), pngs


def test_results_notebook_executes_and_shows_tables_figures_and_cells(tmp_path, monkeypatch):
    import nbclient  # the [test] extra installs both
    import nbformat
    from denoise_bench.report.__main__ import main

    sweep = tmp_path / "multirun" / "nb_sweep"
    for m, p in (("noisy", 20.0), ("bm3d", 28.0), ("fdn", 29.5)):
        for s in (15, 50):
            write_cell(sweep, f"method={m},sigma={s}", m, s, psnr=p - s / 10, examples=True,
                       extra={"report": {"tables": ["fdn_table3"]}})
    results = tmp_path / "results"
    assert main([str(sweep), "--out", str(results / "nb_sweep"), "--store-cells", str(results / "cells" / "nb_sweep")]) == 0

    nb = nbformat.read(NOTEBOOK, as_version=4)
    monkeypatch.setenv("DENOISE_BENCH_RESULTS", str(results))
    start = time.perf_counter()
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
    seconds = time.perf_counter() - start
    text, pngs = outputs_of(nb)
    assert "1 results dir(s)" in text and "nb_sweep" in text
    assert "Table III" in text and "| FDN paper |" in text and "30.29" in text  # the paper table
    assert "Provenance of `nb_sweep`" in text
    assert pngs >= 2  # psnr_vs_sigma and the comparison grids
    assert "method=bm3d,sigma=15" in text  # the per-cell DataFrame, read from results/cells
    assert seconds < 60, f"notebook took {seconds:.0f} s"
