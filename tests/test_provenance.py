"""Specification tests for what a cell records about where its numbers came from (report/provenance.py)
and how the report shows it (PROVENANCE.md, report/readme.py)."""
from __future__ import annotations

import hashlib
import json
import subprocess
from importlib import metadata
from pathlib import Path

import numpy as np

from denoise_bench.report import provenance
from denoise_bench.report.cells import load_cells
from denoise_bench.report.readme import write_provenance


def test_weights_are_recorded_with_their_sha256(tmp_path):
    w = tmp_path / "DnCNN-S-25.pth"
    w.write_bytes(b"\x00weights\x01" * 1000)
    prior = tmp_path / "glow" / "model.pt"
    prior.parent.mkdir()
    prior.write_bytes(b"prior")
    p = provenance.cell_provenance({"method.weights": str(w), "artifact:glow_prior": str(prior),
                                    "prior.weights": str(tmp_path / "missing.pt")})
    assert p["weights"] == {
        "method.weights": {"path": str(w), "sha256": hashlib.sha256(w.read_bytes()).hexdigest()},
        "artifact:glow_prior": {"path": str(prior), "sha256": hashlib.sha256(b"prior").hexdigest()},
        "prior.weights": {"path": str(tmp_path / "missing.pt"), "sha256": None},
    }
    prior.write_bytes(b"retrained prior")  # a changed file is hashed again, not served from the memo
    assert provenance.cell_provenance({"p": str(prior)})["weights"]["p"]["sha256"] == \
        hashlib.sha256(b"retrained prior").hexdigest()
    assert provenance.cell_provenance()["weights"] == {}


def test_versions_of_the_libraries_that_make_a_number(monkeypatch):
    v = provenance.cell_provenance()["versions"]
    assert set(v) == {"python", "torch", "lightning", "hydra-core", "omegaconf", "torchmetrics", "numpy", "scipy",
                      "scikit-image", "bm3d", "wandb"}
    assert v["numpy"] == np.__version__ and v["scipy"] == metadata.version("scipy")
    monkeypatch.setattr(provenance, "PACKAGES", ("numpy", "surely-not-an-installed-dist"))
    assert provenance.versions()["surely-not-an-installed-dist"] is None


def test_machine_cpu_gpu_and_threads():
    import torch

    p = provenance.cell_provenance(threads=3)
    assert p["threads"] == 3
    assert provenance.cell_provenance()["threads"] == torch.get_num_threads()
    cpuinfo = Path("/proc/cpuinfo")
    names = [l.split(":", 1)[1].strip() for l in cpuinfo.read_text().splitlines()
             if l.startswith("model name")] if cpuinfo.exists() else []
    if names:
        assert p["cpu"] == names[0]
    expected_gpu = (", ".join(sorted({torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())}))
                    if torch.cuda.is_available() else None)
    assert p["gpu"] == expected_gpu


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True,
                   capture_output=True)


def test_commit_and_dirty_flag_are_separate(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "f.py").write_text("a = 1\n")
    _git(repo, "add", "f.py")
    _git(repo, "commit", "-q", "-m", "x")
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    monkeypatch.setattr(provenance, "REPO", repo)
    provenance.git_state.cache_clear()
    p = provenance.cell_provenance()
    assert (p["commit"], p["dirty"]) == (head, False)
    (repo / "f.py").write_text("a = 2\n")
    provenance.git_state.cache_clear()
    p = provenance.cell_provenance()
    assert (p["commit"], p["dirty"]) == (head, True) and provenance.git_commit() == head + "+dirty"
    provenance.git_state.cache_clear()


def test_old_cells_commit_suffix_reads_as_the_dirty_flag():
    assert provenance.commit_of({"commit": "ab9fd1e+dirty"}) == ("ab9fd1e", True)
    assert provenance.commit_of({"commit": "ab9fd1e"}) == ("ab9fd1e", False)
    assert provenance.commit_of({"commit": "ab9fd1e", "dirty": True}) == ("ab9fd1e", True)
    assert provenance.commit_of({}) == (None, None)
    assert provenance.commit_label({"commit": "ab9fd1e", "dirty": True}) == "ab9fd1e+dirty"


def _cell(root: Path, rel: str, prov: dict) -> None:
    d = root / rel
    d.mkdir(parents=True)
    (d / "metrics.json").write_text(json.dumps({
        "method": "dncnn", "dataset": "builtin", "sigma": "25", "n_images": 2, "scale": "smoke",
        "psnr": {"mean": 30.0, "std": 0.1}, "provenance": prov, "overrides": "method=dncnn,sigma=25",
        "config": {"method": {"name": "dncnn"}}}))


def test_provenance_md_shows_versions_commits_weights_and_machines(tmp_path):
    root = tmp_path / "cells"
    new = {"commit": "1234abc", "dirty": False, "finished": "2026-01-01 00:00 UTC", "machine": "m",
           "versions": {"python": "3.12.3", "torch": "2.5.0", "bm3d": None},
           "weights": {"method.weights": {"path": "/w/DnCNN-S-25.pth", "sha256": "f" * 64}},
           "cpu": "AMD EPYC 9R14", "gpu": None, "threads": 2}
    _cell(root, "new", new)
    _cell(root, "old", {"commit": "ab9fd1e+dirty", "finished": "2025-12-01 00:00 UTC", "machine": "old machine"})
    out = tmp_path / "out"
    out.mkdir()
    write_provenance(out, "python -m denoise_bench.report cells --out out", [root], load_cells(root), [], [])
    md = (out / "PROVENANCE.md").read_text()
    assert "| torch | 2.5.0 (1 cell) |" in md and "| bm3d | not installed (1 cell) |" in md
    assert "| 1234abc | no | 1 |" in md and "| ab9fd1e | yes | 1 |" in md
    assert f"| method.weights | `/w/DnCNN-S-25.pth` | `{'f' * 64}` | 1 |" in md
    assert "| AMD EPYC 9R14 | no GPU | 2 | 1 |" in md
    info = json.loads((out / "provenance.json").read_text())
    assert info["cells_commit"] == ["1234abc", "ab9fd1e+dirty"]
    assert info["cells_weights"][0]["cells"] == ["new"]


def test_provenance_md_of_old_cells_says_unrecorded(tmp_path):
    root = tmp_path / "cells"
    _cell(root, "old", {"commit": "ab9fd1e", "finished": "2025-12-01 00:00 UTC", "machine": "old machine"})
    out = tmp_path / "out"
    out.mkdir()
    write_provenance(out, "cmd", [root], load_cells(root), [], [])
    md = (out / "PROVENANCE.md").read_text()
    assert "Unrecorded (cells written before versions were stored)." in md
    assert "| ab9fd1e | no | 1 |" in md and "None recorded" in md and "Machine: old machine" in md


def test_cell_provenance_survives_metrics_json(tmp_path):
    p = provenance.cell_provenance({"w": str(tmp_path / "none.pt")}, threads=1)
    assert json.loads(json.dumps(p)) == p
