"""Learning curves: every training leaves curve.csv next to its model and in its cells, and the report
draws validation PSNR against training seconds, one line per trained model."""
from __future__ import annotations

import json

import pandas as pd

from conftest import compose
from denoise_bench.report.cells import load_cells
from denoise_bench.report.figures import psnr_vs_seconds
from denoise_bench.run.cell import run_cell


def test_a_training_records_its_curve_next_to_the_model_and_in_the_cell(tmp_path):
    summary = run_cell(compose(["method=dncnn", "sigma=25", "scale=smoke", "threads=1", "method.train_steps=6",
                                "trainer.run.log_every_n_steps=2"], tmp_path))
    (art,) = [a for a in summary["artifacts"] if a["kind"] == "dncnn"]
    stored = pd.read_csv(f"{art['path']}/curve.csv")
    in_cell = pd.read_csv(tmp_path / "cell" / "curve_dncnn.csv")
    assert list(stored.columns) == ["step", "seconds", "train_loss", "val_psnr"]
    assert stored.equals(in_cell)
    assert list(stored["step"].dropna().unique())[-1] == 6
    assert stored["train_loss"].notna().sum() == 3  # steps 2, 4, 6
    assert stored["val_psnr"].notna().any() and stored["seconds"].is_monotonic_increasing
    meta = json.loads((tmp_path / "artifacts" / (art["path"].split("/")[-1]) / "meta.json").read_text())
    assert meta["steps"] == 6 and meta["training_seconds"] > 0


def test_the_report_draws_validation_psnr_against_training_seconds(tmp_path):
    for method, psnrs in (("dncnn", [20.0, 24.0]), ("fdn", [19.0, 25.0])):
        d = tmp_path / "sweep" / f"method={method}"
        d.mkdir(parents=True)
        (d / "metrics.json").write_text(json.dumps({
            "method": method, "dataset": "builtin", "sigma": "25", "n_images": 1, "scale": "smoke",
            "psnr": {"mean": 1.0, "std": 0.0}, "ssim": {"mean": 0.5, "std": 0.0}, "mse": {"mean": 0.1, "std": 0.0},
            "config": {"seed": 0}}))
        pd.DataFrame({"step": [10, 20], "seconds": [1.0, 2.0], "train_loss": [None, None],
                      "val_psnr": psnrs}).to_csv(d / f"curve_{method}.csv", index=False)
    files = psnr_vs_seconds(load_cells(tmp_path / "sweep"), tmp_path / "figures")
    assert sorted(p.name for p in files) == ["psnr_vs_training_seconds.pdf", "psnr_vs_training_seconds.png"]
    assert (tmp_path / "figures" / "psnr_vs_training_seconds.png").stat().st_size > 1000
    assert psnr_vs_seconds([], tmp_path / "none") == []
