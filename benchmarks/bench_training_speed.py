"""Training steps/second of every trained model and β-MAP iterations/second, this tree against another commit.

    python benchmarks/bench_training_speed.py [--base REV] [--threads 2] [--steps 20] [--rounds 5]

The other commit is checked out in a temporary ``git worktree``; each (model, tree) measurement runs in
its own subprocess importing that tree's package, and the two trees alternate within every round, so
each round's ratio new/base compares two measurements taken a few seconds apart. The table shows the
median rate of each tree and the median and range of the per-round ratios (a shared VM's speed drifts
by ±20 % over minutes: one round's ratio is not evidence, the median over rounds is). Inputs are synthetic batches of the quick
configs' shapes (FDN also at the paper configuration on 32×32 crops); every step is a full optimiser step
(zero_grad, forward, backward, Adam), with the fast paths a cell applies (channels-last, fused
Adam, kept memory; none in trees older than them). The loss after the timed steps is printed for both trees: equal
within float tolerance means the two trees compute the same thing.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

REPO = Path(__file__).resolve().parents[1]

# name: (builder kind, config overrides, batch, channels, crop)
MODELS = {
    "fdn quick": ("fdn", {"flow_blocks": 2, "sof_blocks": 4, "growth": 16}, 8, 3, 32),
    "fdn quick gray (the builtin cells)": ("fdn", {"flow_blocks": 2, "sof_blocks": 4, "growth": 16}, 8, 1, 32),
    "fdn paper": ("fdn", {"flow_blocks": 2, "sof_blocks": 8, "growth": 32}, 4, 3, 32),
    "glow prior quick": ("glow", {"levels": 3, "steps": 8, "hidden": 64}, 16, 3, 32),
    "dncnn quick": ("dncnn", {"depth": 8, "features": 32}, 16, 1, 40),
    "flow_prior resnet quick": ("flow_prior", {"resnet": {"blocks": 8, "hidden": 16}}, 16, 3, 32),
    "beta-MAP quick (1 image 256²)": ("map", {"levels": 3, "steps": 8, "hidden": 64}, 1, 1, 256),
}


def fast_paths():
    """The tree's CPU fast paths as a cell applies them (training/speed.py), or no-ops in an older tree."""
    try:
        from denoise_bench.training.speed import channels_last, keep_freed_memory
    except ImportError:
        return lambda m: m
    keep_freed_memory()
    return channels_last


def optimizer(module):
    """Adam at lr 1e-4 over the trainable parameters, built as the tree's training builds it (the fused
    kernel of training/speed.py where the tree has it); the same lr in both trees, so the losses compare."""
    import torch

    params = [p for p in module.parameters() if p.requires_grad]
    try:
        from denoise_bench.training.speed import adam
    except ImportError:
        return torch.optim.Adam(params, lr=1e-4)
    return adam(params, lr=1e-4)


def smallest_input(name: str) -> tuple[int, int]:
    """(batch, crop) of the smallest input the model takes: 4 images of the side every level can halve.
    A step on it does ~1 % of the arithmetic but every call of a real step, so its time is the step's
    per-call cost (dispatch, autograd, oneDNN's setup of each convolution), which no arithmetic saving
    removes."""
    kind, over, _, _, _ = MODELS[name]
    levels = {"fdn": over.get("flow_blocks"), "glow": over.get("levels"), "map": over.get("levels"),
              "flow_prior": 3}.get(kind)  # flow_prior: the worker's Glow prior has 3 levels; dncnn: none
    return 4, (2 ** int(levels) if levels else 4)


def worker(name: str, steps: int, threads: int, smallest: bool = False) -> dict:
    import torch

    to_fast = fast_paths()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    kind, over, batch, channels, crop = MODELS[name]
    if smallest:
        batch, crop = smallest_input(name)
    g = torch.Generator().manual_seed(0)
    clean = torch.rand(batch, channels, crop, crop, generator=g)
    noisy = clean + 0.2 * torch.randn(clean.shape, generator=g)
    sigma = torch.full((batch,), 50.0)
    if kind == "map":
        from omegaconf import OmegaConf

        from denoise_bench.methods.glow_map import beta_map
        from denoise_bench.priors.glow_prior import GlowPrior

        cfg = OmegaConf.merge(OmegaConf.load(REPO_UNDER_TEST / "conf/prior/glow.yaml"), over)
        glow = GlowPrior(cfg, channels, crop).glow
        with torch.no_grad():
            glow.log_prob(clean, dequantize=True)  # ActNorm init
        glow.eval()
        for p in glow.parameters():
            p.requires_grad_(False)
        glow = to_fast(glow)  # as run_cell does before testing
        run = lambda n: beta_map(glow, noisy, sigma / 255.0, steps=n, lr=0.15)  # noqa: E731
        run(2)
        start = time.perf_counter()
        out = run(steps)
        secs = time.perf_counter() - start
        return {"rate": steps / secs, "check": float(out.double().mean()), "gflop": gflop(lambda: run(1))}
    if kind == "glow":
        from omegaconf import OmegaConf

        from denoise_bench.priors.glow_prior import GlowPrior

        cfg = OmegaConf.merge(OmegaConf.load(REPO_UNDER_TEST / "conf/prior/glow.yaml"), over)
        module = GlowPrior(cfg, channels, crop)
        batch_d = {"clean": clean}
        module.on_train_batch_start(batch_d, 0)
    else:
        from denoise_bench.hparams import method_config
        from denoise_bench.methods import method_class

        module = method_class(kind)(method_config(kind, over), channels)
        batch_d = {"clean": clean, "noisy": noisy, "sigma": sigma}
        if kind == "flow_prior":
            from omegaconf import OmegaConf

            from denoise_bench.priors.glow_prior import GlowPrior

            pcfg = OmegaConf.merge(OmegaConf.load(REPO_UNDER_TEST / "conf/prior/glow.yaml"),
                                   {"levels": 3, "steps": 8, "hidden": 64})
            prior = GlowPrior(pcfg, channels, crop).glow
            with torch.no_grad():
                prior.log_prob(clean, dequantize=True)
            prior.eval()
            for p in prior.parameters():
                p.requires_grad_(False)
            module.use_prior(prior, crop)
            batch_d = {"noisy": noisy, "sigma": sigma}
    module.log = lambda *a, **k: None
    module.train()
    module = to_fast(module)  # as fit_or_load does before trainer.fit
    opt = optimizer(module)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = module.training_step(batch_d, 0)
        loss.backward()
        opt.step()
        return loss

    for _ in range(2):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        loss = step()
    secs = time.perf_counter() - start
    return {"rate": steps / secs, "check": float(loss), "gflop": gflop(step)}


def gflop(fn) -> float:
    """GFLOP of one call of ``fn`` (convolutions and matrix products, forward and backward)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / 1e9


def conv_peak(threads: int, reps: int = 10) -> float:
    """GFLOP/s of a large, well-shaped 3×3 convolution (64 → 64 channels, 8 × 64², channels-last) forward +
    backward: what this machine's convolution kernels sustain at best."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    x = torch.randn(8, 64, 64, 64).to(memory_format=torch.channels_last).requires_grad_()
    w = torch.randn(64, 64, 3, 3).to(memory_format=torch.channels_last).requires_grad_()
    for _ in range(3):
        F.conv2d(x, w, padding=1).sum().backward()
    start = time.perf_counter()
    for _ in range(reps):
        F.conv2d(x, w, padding=1).sum().backward()
    return 3 * 2 * 8 * 64**2 * 64 * 64 * 9 * reps / (time.perf_counter() - start) / 1e9


REPO_UNDER_TEST = REPO


def measure(tree: Path, name: str, steps: int, threads: int, smallest: bool = False) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": str(threads)}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--tree", str(tree),
           "--steps", str(steps), "--threads", str(threads)] + (["--smallest"] if smallest else [])
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tree)
    if out.returncode:
        return {"rate": float("nan"), "check": float("nan"), "error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    global REPO_UNDER_TEST
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="2078022", help="the commit to compare with (default: before issue 13's speed work)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", default=None, help="comma-separated model names")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--tree", help=argparse.SUPPRESS)
    ap.add_argument("--smallest", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        REPO_UNDER_TEST = Path(args.tree)
        print(json.dumps(worker(args.worker, args.steps, args.threads, args.smallest)))
        return
    names = [n for n in MODELS if not args.only or n in args.only.split(",")]
    from tabulate import tabulate

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(base), args.base],
                       check=True, capture_output=True)
        try:
            runs: dict[tuple[str, str], list[dict]] = {}
            for _ in range(args.rounds):
                for name in names:
                    for label, tree in (("base", base), ("new", REPO)):
                        runs.setdefault((name, label), []).append(measure(tree, name, args.steps, args.threads))
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(base)], capture_output=True)
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    peak = conv_peak(args.threads)
    floor = {name: measure(REPO, name, args.steps, args.threads, smallest=True) for name in names}
    rows = []
    for name in names:
        b, n = runs[(name, "base")], runs[(name, "new")]
        ratios = sorted(x["rate"] / y["rate"] for x, y in zip(n, b))
        new_rate, work = median([x["rate"] for x in n]), n[-1].get("gflop", float("nan"))
        rows.append([name, f"{median([x['rate'] for x in b]):.2f}", f"{new_rate:.2f}",
                     f"{median(ratios):.2f}x", f"{ratios[0]:.2f}–{ratios[-1]:.2f}",
                     f"{b[-1]['check']:.6g}", f"{n[-1]['check']:.6g}",
                     f"{work:.3g}", f"{work * new_rate:.0f}", f"{peak / work:.1f}",
                     f"{1000 / floor[name]['rate']:.0f} of {1000 / new_rate:.0f}"])
    unit = "steps/s (β-MAP: iterations/s)"
    print(f"torch threads {args.threads}, {args.steps} timed steps after 2 warm-up, {args.rounds} rounds (base and new "
          f"alternating); base = {args.base}, new = {head} + working tree; median {unit}")
    print(tabulate(rows, headers=["model", "base", "new", "new/base (median)", "range over rounds", "loss base",
                                  "loss new", "GFLOP/step", "new GFLOP/s", "floor steps/s",
                                  "per-call ms of a step"], tablefmt="github"))
    print(f"best-case convolution on this machine (3×3, 64 → 64 channels, 8 × 64², forward + backward, "
          f"{args.threads} threads): {peak:.0f} GFLOP/s; floor = the steps/s if every FLOP of a step ran at that rate")
    print("per-call ms of a step: a new-tree step on the smallest input (4 images of 2^levels px, ~1 % of the FLOPs; "
          "what every call costs regardless of its size) of the median new-tree step")


if __name__ == "__main__":
    main()
