"""run.py as a user runs it: one cell, a sweep with its table, and one-line errors for bad input."""
import json

import pandas as pd
import pytest

from conftest import run_cli, shared_data, write_images


def test_a_sweep_writes_every_cell_and_ends_with_its_table(tmp_path):
    r = run_cli(["-m", "method=noisy,dncnn", "sigma=15,50", "scale=smoke", "logger=csv", "progress=false",
                 "name=t", f"paths.multirun={tmp_path}", f"paths.artifacts={tmp_path / 'art'}"])
    assert r.returncode == 0, r.stderr[-2000:]
    sweep = tmp_path / "t"
    cells = sorted(p.parent.name for p in sweep.glob("*/metrics.json"))
    # one folder per cell, named by its overrides (deterministic: a re-run finds finished cells)
    assert cells == [f"method={m},scale=smoke,sigma={s}" for m in ("dncnn", "noisy") for s in (15, 50)]
    noisy15, dncnn50 = sweep / "method=noisy,scale=smoke,sigma=15", sweep / "method=dncnn,scale=smoke,sigma=50"
    m = json.loads((noisy15 / "metrics.json").read_text())
    for key in ("psnr", "ssim", "mse", "n_images", "method", "sigma", "dataset", "seconds", "parameters"):
        assert key in m
    assert set(m["psnr"]) == {"mean", "std"} and m["n_images"] == 2 and m["sigma"] == "15"
    per_image = pd.read_csv(noisy15 / "per_image.csv")
    assert list(per_image.columns) == ["image", "sigma", "psnr", "ssim", "mse", "seconds"] and len(per_image) == 2
    assert m["psnr"]["mean"] == pytest.approx(per_image["psnr"].mean())
    assert (dncnn50 / "samples.png").stat().st_size > 0
    # the table: rows = method, columns = sigma; printed and written as md / csv / tex
    table = pd.read_csv(sweep / "table.csv", index_col=0)
    assert list(table.index) == ["noisy", "dncnn"]
    assert list(table.columns) == ["σ=15 PSNR", "σ=15 SSIM", "σ=50 PSNR", "σ=50 SSIM"]
    assert table.loc["noisy", "σ=15 PSNR"].startswith(f"{m['psnr']['mean']:.2f} ±")
    assert "| noisy" in r.stdout and (sweep / "table.tex").exists() and "n images: 2" in (sweep / "table.md").read_text()
    # the DnCNN cells trained one model per sigma through the artifact store
    assert r.stdout.count("[artifacts] dncnn: training") == 2


def _fails_with_one_line(args, *needles, tmp_path=None):
    out = [f"hydra.run.dir={tmp_path / 'cell'}"] if tmp_path else []
    r = run_cli(["scale=smoke", "logger=none", "progress=false", *out, *args])
    assert r.returncode != 0
    err = [line for line in r.stderr.strip().splitlines() if line.strip()]
    for n in needles:
        assert n in r.stderr, r.stderr[-1500:]
    assert "Traceback" not in r.stderr
    if tmp_path:
        assert not (tmp_path / "cell" / "metrics.json").exists()
    return err


def test_unknown_method_or_dataset_lists_the_choices():
    err = _fails_with_one_line(["method=nope"], "Could not find 'method/nope'", "Available options")
    assert any("dncnn" in line for line in err)
    _fails_with_one_line(["data=nope"], "Could not find 'data/nope'", "builtin")


def test_negative_sigma_is_one_line(tmp_path):
    err = _fails_with_one_line(["method=noisy", "sigma=-5"], "error: sigma=-5", tmp_path=tmp_path)
    assert len(err) == 1


def test_a_config_that_does_not_resolve_is_one_line(tmp_path):
    # glow_map_tables maps only the paper's four noise levels to their labels
    err = _fails_with_one_line(["experiment=glow_map_tables", "sigma=20"], "error: the config does not resolve",
                               "sigma_paper", tmp_path=tmp_path)
    assert len(err) == 1


def test_missing_or_empty_data_root_is_one_line(tmp_path):
    err = _fails_with_one_line(["method=noisy", "data=folder"], "data.root is not set", tmp_path=tmp_path)
    assert len(err) == 1
    (tmp_path / "empty").mkdir()
    _fails_with_one_line(["method=noisy", "data=folder", f"data.root={tmp_path / 'empty'}"], "no image files",
                         tmp_path=tmp_path)


def test_corrupt_image_and_oversized_crop_are_one_line(tmp_path):
    folder = tmp_path / "imgs"
    write_images(folder, 2, size=(64, 64))
    (folder / "zz.png").write_bytes(b"not an image at all")
    err = _fails_with_one_line(["method=noisy", "data=folder", f"data.root={folder}", "data.test.limit=null"],
                               "zz.png", "cannot decode",
                               tmp_path=tmp_path)
    assert len(err) == 1
    (folder / "zz.png").unlink()
    _fails_with_one_line(["method=noisy", "data=folder", f"data.root={folder}", "data.test.crop=128"],
                         "smaller than the crop", tmp_path=tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("method,sigma,low,high", [("dncnn", 25, 30.35, 30.45), ("bm3d", 25, 29.9, 30.1)])
def test_set12_reproduces_the_published_numbers(tmp_path, method, sigma, low, high):
    """DnCNN-S-25 weights and the bm3d package on Set12 (DnCNN paper: 30.44 and 29.97 dB)."""
    args = [f"method={method}", "data=folder", f"data.root={shared_data('Set12')}", f"sigma={sigma}",
            "logger=none", "progress=false", f"hydra.run.dir={tmp_path}"]
    if method == "dncnn":
        args.append(f"method.weights={shared_data('weights', 'dncnn', f'DnCNN-S-{sigma}.pth')}")
    r = run_cli(args)
    assert r.returncode == 0, r.stderr[-2000:]
    psnr = json.loads((tmp_path / "metrics.json").read_text())["psnr"]["mean"]
    assert low <= psnr <= high
