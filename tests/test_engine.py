"""No result lost, mixed or abandoned: a failing cell does not stop a sweep, a killed training resumes,
two processes on one cell give one result, and unusable settings are one line."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO, compose, run_cli
from denoise_bench.errors import ConfigError
from denoise_bench.run.cell import run_cell

QUIET = ["logger=none", "progress=false", "threads=1"]


def env() -> dict:
    return {**os.environ, "PYTHONWARNINGS": "ignore", "WANDB_MODE": "offline"}


def test_a_failing_cell_is_recorded_and_the_sweep_goes_on_to_its_table_and_a_nonzero_exit(tmp_path):
    r = run_cli(["-m", "method=noisy", "sigma=15,-5,25", "scale=smoke", *QUIET, "name=bad",
                 f"paths.multirun={tmp_path}", f"paths.artifacts={tmp_path / 'art'}"])
    sweep = tmp_path / "bad"
    assert r.returncode != 0
    assert "[sweep]" in r.stdout and "2 done, 0 skipped, 1 failed" in r.stdout
    assert sorted(p.parent.name for p in sweep.glob("*/metrics.json")) == [
        "method=noisy,scale=smoke,sigma=15", "method=noisy,scale=smoke,sigma=25"]
    error = json.loads((sweep / "method=noisy,scale=smoke,sigma=-5" / "error.json").read_text())
    assert "sigma=-5" in error["message"] and error["type"] == "ConfigError" and Path(error["traceback"]).is_file()
    assert [line for line in r.stderr.splitlines() if line.startswith("error:")] == [f"error: {error['message']}"]
    table = (sweep / "table.md").read_text()
    assert "| noisy" in table and "FAILED" in table and "sigma=-5" in table
    # a re-run of the same sweep skips the two finished cells and fails the bad one again
    again = run_cli(["-m", "method=noisy", "sigma=15,-5,25", "scale=smoke", *QUIET, "name=bad",
                     f"paths.multirun={tmp_path}", f"paths.artifacts={tmp_path / 'art'}"])
    assert again.returncode != 0 and "0 done, 2 skipped, 1 failed" in again.stdout


def _train_cmd(out: Path, art: Path, steps: int, *extra: str) -> list[str]:
    return [sys.executable, str(REPO / "run.py"), "method=dncnn", "sigma=25", "scale=smoke", *QUIET,
            f"method.train_steps={steps}", "trainer.run.checkpoint_every=5", f"hydra.run.dir={out}",
            f"paths.artifacts={art}", "data.limit.val=0", *extra]


def _model(art: Path) -> dict:
    (path,) = art.glob("dncnn-*/model.pt")
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.mark.parametrize("extra", [[], ["trainer.ema_decay=0.9"]], ids=["last weights", "moving average"])
def test_sigterm_during_training_checkpoints_and_a_rerun_resumes_to_the_uninterrupted_model(extra, tmp_path):
    """With trainer.ema_decay the checkpoint carries the average too: the resumed average equals the straight one."""
    steps = 400
    straight = subprocess.run(_train_cmd(tmp_path / "a", tmp_path / "art_a", steps, *extra), cwd=REPO, env=env(),
                              capture_output=True, text=True, timeout=600)
    assert straight.returncode == 0, straight.stderr[-2000:]

    art = tmp_path / "art_b"
    proc = subprocess.Popen(_train_cmd(tmp_path / "b", art, steps, *extra), cwd=REPO, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not list(art.glob(".partial-dncnn-*/last.ckpt")) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode != 0, "the training finished before SIGTERM reached it; raise `steps`"
    assert "interrupted (SIGTERM)" in err
    assert not list(art.glob("dncnn-*/model.pt")) and not (tmp_path / "b" / "metrics.json").exists()
    (ckpt,) = art.glob(".partial-dncnn-*/last.ckpt")
    stopped_at = torch.load(ckpt, map_location="cpu", weights_only=False)["global_step"]
    assert 0 < stopped_at < steps

    resumed = subprocess.run(_train_cmd(tmp_path / "b", art, steps, *extra), cwd=REPO, env=env(),
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming dncnn from step {stopped_at}" in resumed.stdout
    a, b = _model(tmp_path / "art_a"), _model(art)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6, msg=k)
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["psnr"] == \
        json.loads((tmp_path / "a" / "metrics.json").read_text())["psnr"]
    curve = (tmp_path / "b" / "curve_dncnn.csv").read_text().splitlines()
    assert curve[0] == "step,seconds,train_loss,val_psnr" and curve[-1].startswith(f"{steps},")


def test_two_processes_on_one_cell_give_one_result(tmp_path):
    cmd = [sys.executable, str(REPO / "run.py"), "method=bm3d", "sigma=25", "scale=smoke", *QUIET,
           f"hydra.run.dir={tmp_path / 'cell'}", "method.run.workers=1"]
    procs = [subprocess.Popen(cmd, cwd=REPO, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-1000:] for o in outs]
    stdout = "".join(o[0] for o in outs)
    assert stdout.count("[cell] bm3d") == 1 and stdout.count("[skip]") == 1
    assert json.loads((tmp_path / "cell" / "outcome.json").read_text())["status"] in ("done", "skipped")


@pytest.mark.parametrize("method", ["noisy", "bm3d", "glow_map"])
def test_weights_on_a_method_that_cannot_use_them_is_one_line(method, tmp_path):
    with pytest.raises(ConfigError, match=f"method.weights: method={method} has no trained weights"):
        run_cell(compose([f"method={method}", "scale=smoke", f"+method.weights={tmp_path / 'w.pt'}"], tmp_path))


def test_an_unwritable_output_folder_is_one_line(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    target = ro / "cell"
    if os.access(ro, os.W_OK):  # root ignores permissions; /sys refuses everyone (EPERM)
        target = Path("/sys/denoise-bench-test/cell")
    r = run_cli(["method=noisy", "scale=smoke", *QUIET, f"hydra.run.dir={target}"])
    assert r.returncode != 0 and "Traceback" not in r.stderr and "cannot write" in r.stderr


def test_online_wandb_without_network_falls_back_to_offline_with_a_warning(monkeypatch, capsys):
    from denoise_bench.loggers import wandb_mode

    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_BASE_HOST", "127.0.0.1")  # nothing listens on 443 here: refused at once
    assert wandb_mode({"mode": "online"}) == "offline"
    assert "unreachable" in capsys.readouterr().err
