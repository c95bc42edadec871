"""Resume: a killed sweep re-run with the same command computes only the missing cells and ends
with the table of an uninterrupted run; force=true recomputes; a killed cell leaves no metrics.json;
two sweeps writing into one folder lose no rows."""
from __future__ import annotations

import os
import signal
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, compose
from denoise_bench.errors import ConfigError
from denoise_bench.run.cell import run_cell

SIGMAS = "5,10,15,20,25,30"


def sweep_cmd(multirun: Path, artifacts: Path, *extra: str) -> list[str]:
    return [sys.executable, str(REPO / "run.py"), "-m", "method=dncnn", f"sigma={SIGMAS}", "scale=smoke",
            "logger=none", "progress=false", "threads=1", "name=resume", f"paths.multirun={multirun}",
            f"paths.artifacts={artifacts}", *extra]


def env() -> dict:
    return {**os.environ, "PYTHONWARNINGS": "ignore", "WANDB_MODE": "offline"}


def finished(sweep: Path) -> list[Path]:
    return sorted(sweep.glob("*/metrics.json"))


def test_killed_sweep_resumes_only_the_missing_cells_and_gives_the_same_table(tmp_path):
    runs, art = tmp_path / "multirun", tmp_path / "artifacts"
    sweep = runs / "resume"
    proc = subprocess.Popen(sweep_cmd(runs, art), cwd=REPO, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 240
        while len(finished(sweep)) < 2 and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)  # like a cluster job hitting its time limit
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    done = {p: p.stat().st_mtime_ns for p in finished(sweep)}
    assert 2 <= len(done) < 6, f"kill landed after {len(done)} of 6 cells"
    assert not (sweep / "table.csv").exists()  # the sweep never reached its end

    rerun = subprocess.run(sweep_cmd(runs, art), cwd=REPO, env=env(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert rerun.stdout.count("[skip]") == len(done)
    assert rerun.stdout.count("[cell]") == 6 - len(done)
    assert {p: p.stat().st_mtime_ns for p in done} == done  # finished cells untouched
    assert len(finished(sweep)) == 6

    clean_runs = tmp_path / "clean"
    clean = subprocess.run(sweep_cmd(clean_runs, tmp_path / "clean_artifacts"), cwd=REPO, env=env(),
                           capture_output=True, text=True, timeout=300)
    assert clean.returncode == 0, clean.stderr[-2000:]
    assert (sweep / "table.csv").read_bytes() == (clean_runs / "resume" / "table.csv").read_bytes()


def test_resume_skips_force_recomputes_and_a_changed_config_is_refused(tmp_path, capsys):
    over = ["method=noisy", "sigma=25", "scale=smoke"]
    first = run_cell(compose(over, tmp_path))
    metrics = tmp_path / "cell" / "metrics.json"
    stamp = metrics.stat().st_mtime_ns
    assert first is not None
    assert run_cell(compose(over, tmp_path)) is None and "[skip]" in capsys.readouterr().out
    assert metrics.stat().st_mtime_ns == stamp
    # settings that do not change the result (how it runs, where it logs) keep the cell done
    assert run_cell(compose([*over, "threads=1", "logger=csv", "name=x", "reuse_artifacts=false"], tmp_path)) is None
    time.sleep(0.01)
    assert run_cell(compose([*over, "force=true"], tmp_path)) is not None
    assert metrics.stat().st_mtime_ns > stamp
    forced = metrics.read_text()
    # another result aimed at the finished folder (another protocol, a mistyped data.root): refused, naming
    # the differing key, and the finished result is untouched
    with pytest.raises(ConfigError, match=r"another config \(metrics.quantize: False there, True now\)"):
        run_cell(compose([*over, "metrics.quantize=true"], tmp_path))
    with pytest.raises(ConfigError, match=r"data.root"):
        run_cell(compose([*over, "data.root=/no/such/folder"], tmp_path))
    assert metrics.read_text() == forced
    changed = run_cell(compose([*over, "metrics.quantize=true", "force=true"], tmp_path))  # force replaces it
    assert changed is not None and changed["cell_key"] != first["cell_key"]
    assert json.loads(metrics.read_text())["cell_key"] == changed["cell_key"]


def test_a_recompute_that_dies_leaves_the_finished_result_intact(tmp_path, monkeypatch):
    over = ["method=noisy", "sigma=25", "scale=smoke"]
    run_cell(compose(over, tmp_path))
    before = {p.name: p.read_bytes() for p in (tmp_path / "cell").iterdir() if p.is_file() and p.suffix in (".json", ".csv")}
    assert "metrics.json" in before
    from denoise_bench.methods.noisy import NoisyInput

    def killed(self, noisy, sigma):
        raise RuntimeError("killed")  # the process dies in the middle of the cell

    monkeypatch.setattr(NoisyInput, "denoise", killed)
    with pytest.raises(RuntimeError, match="killed"):
        run_cell(compose([*over, "force=true"], tmp_path))
    after = {name: (tmp_path / "cell" / name).read_bytes() for name in before}
    assert after == before  # nothing of the new, unfinished result reached the folder


def test_metrics_json_is_written_last(tmp_path, monkeypatch):
    import denoise_bench.outputs as outputs

    order = []
    for name in ("atomic_write_text", "atomic_write_bytes"):
        real = getattr(outputs, name)
        monkeypatch.setattr(outputs, name, lambda path, data, _real=real: (order.append(Path(path).name),
                                                                           _real(path, data)))
    run_cell(compose(["method=noisy", "sigma=25", "scale=smoke"], tmp_path))
    assert "per_image.csv" in order and order[-1] == "metrics.json"


def test_two_sweeps_writing_into_one_folder_lose_no_rows(tmp_path):
    def cmd(method):
        return [sys.executable, str(REPO / "run.py"), "-m", f"method={method}", "sigma=15,25", "scale=smoke",
                "logger=none", "progress=false", "threads=1", "name=shared", f"paths.multirun={tmp_path}",
                f"paths.artifacts={tmp_path / 'artifacts'}"]

    procs = [subprocess.Popen(cmd(m), cwd=REPO, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for m in ("noisy", "bm3d")]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
    import pandas as pd

    table = pd.read_csv(tmp_path / "shared" / "table.csv", index_col=0)
    assert sorted(table.index) == ["bm3d", "noisy"]
    assert table.notna().all().all() and len(finished(tmp_path / "shared")) == 4
