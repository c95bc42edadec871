"""The equal-compute protocol: schedules that follow the fraction of training (steps or wall-clock
budget) and the budget table (PSNR/SSIM, steps, minutes, the paired gap to BM3D)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch.callbacks import Timer

from conftest import method_cfg
from denoise_bench.report import layout
from denoise_bench.report.cells import load_cells
from denoise_bench.report.paper_tables import build
from denoise_bench.training.schedule import budget_fraction, step_drop
from test_report import md_row, write_cell


def _module(max_steps: int, elapsed_s: float | None = None, budget_min: float = 1.0):
    callbacks = []
    if elapsed_s is not None:
        timer = Timer(duration={"minutes": budget_min})
        timer._offset = elapsed_s  # as a resumed training restores it: seconds already trained
        callbacks.append(timer)
    m = torch.nn.Linear(1, 1)
    m._trainer = SimpleNamespace(max_steps=max_steps, callbacks=callbacks)
    return m


def _lrs(module, steps: int, drop_at=0.6, factor=0.1) -> list[float]:
    opt = torch.optim.SGD(module.parameters(), lr=1.0)
    sched = step_drop(module, opt, drop_at, factor)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_without_a_budget_the_lr_drops_at_its_fraction_of_the_steps():
    assert _lrs(_module(10), 10) == [1.0] * 6 + [pytest.approx(0.1)] * 4


def test_under_a_budget_the_lr_drops_at_its_fraction_of_the_minutes_when_that_comes_first():
    assert budget_fraction(_module(1000, elapsed_s=45.0)) == pytest.approx(0.75)
    assert _lrs(_module(1000, elapsed_s=45.0), 3) == [pytest.approx(0.1)] * 3  # 75 % of 1 min spent: dropped
    assert _lrs(_module(1000, elapsed_s=20.0), 3) == [1.0] * 3  # 33 %: not yet


def test_fdn_lr_drop_combines_with_the_papers_halving():
    from denoise_bench.methods.fdn import FDN

    fdn = FDN(method_cfg("fdn", {"lr": 1.0, "lr_halve_every": 4, "lr_drop_at": 0.5, "lr_drop": 0.1}), 1)
    fdn._trainer = SimpleNamespace(max_steps=12, callbacks=[])
    conf = fdn.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    lrs = []
    for _ in range(12):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    want = [1, 1, 1, 1, .5, .5, .05, .05, .025, .025, .025, .025]
    assert lrs == [pytest.approx(w) for w in want]


def test_budget_table_lists_steps_minutes_and_the_paired_gap_to_bm3d(tmp_path):
    root = tmp_path / "budget"
    write_cell(root, "n", "noisy", 50, psnr=14.9, n=10)
    write_cell(root, "b", "bm3d", 50, psnr=26.4, n=10)
    trained = lambda kind, steps, secs: {"artifacts": [{"kind": kind, "status": "trained", "steps": steps,  # noqa: E731
                                                        "training_seconds": secs, "budget_minutes": 45}]}
    write_cell(root, "d", "dncnn", 50, psnr=25.9, n=10, metrics=trained("dncnn", 30000, 2700.0))
    write_cell(root, "f", "fdn", 50, psnr=26.1, n=10, metrics=trained("fdn", 9000, 2694.0))
    t = build("budget_celeba50", load_cells(root))
    md = layout.to_markdown(t)
    header = md_row(md, "Data", "σ")
    steps = md_row(md, "celeba", "50", "training steps")
    assert steps[header.index("FDN ours")] == "9000" and steps[header.index("DnCNN ours")] == "30000"
    assert md_row(md, "celeba", "50", "training minutes")[header.index("FDN ours")] == "44.9"
    assert md_row(md, "celeba", "50", "PSNR (dB)")[header.index("BM3D ours")].startswith("**26.40")
    # every image differs by the same amount (write_cell): FDN − BM3D = −0.30 dB exactly, CI on it
    assert "FDN − BM3D -0.30 dB (95 % CI [-0.30, -0.30]" in t.caption
    assert "DnCNN − BM3D -0.50 dB" in t.caption and "(45 min)" in t.caption


def test_budget_table_counts_a_glow_prior_as_part_of_the_methods_training(tmp_path):
    """glow_map trains only its prior; flow_prior its prior and then its ResNet: the table shows the prior's
    steps on their own row and counts every model's minutes, and both get their paired gap to BM3D."""
    root = tmp_path / "budget"
    write_cell(root, "b", "bm3d", 50, psnr=26.4, n=10)
    prior = lambda steps, secs: {"kind": "glow_prior", "status": "trained", "steps": steps,  # noqa: E731
                                 "training_seconds": secs, "budget_minutes": 45}
    write_cell(root, "g", "glow_map", 50, psnr=26.0, n=10, metrics={"artifacts": [prior(7000, 2700.0)]})
    write_cell(root, "p", "flow_prior", 50, psnr=22.4, n=10, metrics={"artifacts": [
        prior(20000, 2694.0), {"kind": "flow_prior", "status": "trained", "steps": 400, "training_seconds": 120.0,
                               "budget_minutes": 45}]})
    t = build("budget_celeba50", load_cells(root))
    md = layout.to_markdown(t)
    header = md_row(md, "Data", "σ")
    g, p = header.index("Glow-MAP ours"), header.index("flow_prior ours")
    assert md_row(md, "celeba", "50", "prior training steps")[g] == "7000"
    assert md_row(md, "celeba", "50", "prior training steps")[p] == "20000"
    assert md_row(md, "celeba", "50", "training steps")[p] == "400"
    assert md_row(md, "celeba", "50", "training minutes")[g] == "45.0"
    assert md_row(md, "celeba", "50", "training minutes")[p] == "46.9"  # (2694 + 120) s
    assert "Glow-MAP − BM3D -0.40 dB" in t.caption and "flow_prior − BM3D -4.00 dB" in t.caption


def test_budget_table_without_a_prior_method_has_no_prior_row(tmp_path):
    root = tmp_path / "budget"
    write_cell(root, "b", "bm3d", 50, psnr=26.4, n=10)
    write_cell(root, "f", "fdn", 50, psnr=26.1, n=10, metrics={"artifacts": [{"kind": "fdn", "steps": 9000,
                                                                                "training_seconds": 2694.0}]})
    assert "prior training steps" not in layout.to_markdown(build("budget_celeba50", load_cells(root)))


def test_budget_table_extrapolates_the_budget_for_parity_from_the_curve(tmp_path):
    root = tmp_path / "budget"
    write_cell(root, "b", "bm3d", 50, psnr=26.4, n=10)
    d = write_cell(root, "f", "fdn", 50, psnr=26.0, n=10,
                   metrics={"artifacts": [{"kind": "fdn", "steps": 900, "training_seconds": 480.0}]})
    # validation PSNR +0.2 dB per doubling of time: 22.0 at 60 s ... 22.6 at 480 s
    rows = ["step,seconds,train_loss,val_psnr"] + [f"{i},{60 * 2 ** i},,{22.0 + 0.2 * i}" for i in range(4)]
    (d / "curve_fdn.csv").write_text("\n".join(rows) + "\n")
    t = build("budget_celeba50", load_cells(root))
    # gap −0.4 dB at 0.2 dB per doubling: two doublings of 8 min = 32 min
    assert "fdn: validation PSNR +0.20 dB per doubling of training time; at that rate parity needs about 32 min" in t.caption
