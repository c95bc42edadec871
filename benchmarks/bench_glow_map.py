"""Benchmark of the Glow prior and β-MAP: prior training speed, test bits/dim, MAP cost per image by batch.

    python benchmarks/bench_glow_map.py [--train-steps 10] [--map-steps 20] [HYDRA OVERRIDES...]
    python benchmarks/bench_glow_map.py experiment=glow_map_tables data.root=/path/to/CelebA threads=1

The prior is the run's (``load_or_train_prior``: loaded from ``paths.artifacts`` when stored, else
trained there first). Batching matters for β-MAP because a batch of B images is B independent
problems solved in one pass: the per-image cost at batch 32 should be far below batch 1's.
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return hydra_compose("config", overrides=["logger=none", "progress=false", "method=glow_map", *overrides])


def test_batch(cfg, n: int = 32):
    """Up to n test images of one shape: (noisy, clean, sigma [0-255])."""
    import torch

    from denoise_bench.data.datamodule import DenoisingDataModule
    from denoise_bench.data.noise import NoiseSpec

    dm = DenoisingDataModule(cfg.data, NoiseSpec.from_cfg(cfg.sigma, cfg.noise, cfg.seed))
    ds = dm.test_set()
    shape = ds.shape(0)
    idx = [i for i in range(len(ds)) if ds.shape(i) == shape][:n]
    pick = [ds[i] for i in idx]
    return (torch.stack([s["noisy"] for s in pick]), torch.stack([s["clean"] for s in pick]),
            torch.stack([s["sigma"] for s in pick]))


def prior_training_speed(cfg, channels: int, steps: int) -> float:
    """Training steps per second of a fresh prior of this config (after one ActNorm-init step)."""
    import torch
    from torch.utils.data import DataLoader

    from denoise_bench.data.datamodule import DenoisingDataModule
    from denoise_bench.data.noise import NoiseSpec
    from denoise_bench.priors import GlowPrior, prior_data_config

    data_cfg = prior_data_config(cfg)
    dm = DenoisingDataModule(data_cfg, NoiseSpec(0.0), train_steps=steps + 1)
    batches = iter(DataLoader(dm.train_set(), batch_size=int(data_cfg.batch_size), shuffle=True))
    module = GlowPrior(cfg.prior, channels, int(data_cfg.patch_size))
    opt = torch.optim.Adam(module.parameters(), lr=float(cfg.prior.lr))

    def step(batch):
        opt.zero_grad(set_to_none=True)
        x = batch["clean"]
        bpd = -module.glow.log_prob(x, dequantize=True).mean() / (x[0].numel() * math.log(2.0))
        bpd.backward()
        opt.step()

    step(next(batches))  # data-dependent init
    data = [next(batches) for _ in range(steps)]
    start = time.perf_counter()
    for b in data:
        step(b)
    return steps / (time.perf_counter() - start)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-steps", type=int, default=10, help="timed prior training steps")
    ap.add_argument("--map-steps", type=int, default=20, help="MAP iterations per timing (same for every batch)")
    ap.add_argument("--batches", default="1,8,32")
    args, overrides = ap.parse_known_args(argv)

    import torch

    from denoise_bench.training import TrainingContext as RunContext
    from denoise_bench.methods.glow_map import beta_map
    from denoise_bench.priors import load_or_train_prior
    from denoise_bench.priors.glow_prior import crop_to_multiple

    cfg = compose(overrides)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    noisy, clean, sigma = test_batch(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        glow = load_or_train_prior(RunContext(cfg, Path(tmp)), cfg)
    torch.manual_seed(0)
    with torch.no_grad():
        bpd = glow.bits_per_dim(crop_to_multiple(clean, 2 ** glow.n_levels), dequantize=True).mean().item()
    steps_per_s = prior_training_speed(cfg, clean.shape[1], args.train_steps)

    m = cfg.method
    run = lambda b: beta_map(glow, noisy[:b], sigma[:b] / 255.0, beta=float(m.beta), steps=args.map_steps,  # noqa: E731
                             lr=float(m.map_lr), space=str(m.space))
    run(1)  # warm-up (allocations, oneDNN kernel choice)
    per_image = {}
    for b in [int(x) for x in args.batches.split(",") if int(x) <= noisy.shape[0]]:
        start = time.perf_counter()
        run(b)
        per_image[b] = (time.perf_counter() - start) / b

    c, h, w = clean.shape[1:]
    full = int(m.map_steps)
    print(f"\nGlow prior L={cfg.prior.levels} K={cfg.prior.steps} hidden={cfg.prior.hidden} "
          f"({sum(p.numel() for p in glow.parameters()) / 1e6:.2f} M params), {cfg.data.name} {c}x{h}x{w}, "
          f"torch threads {torch.get_num_threads()}, scale={cfg.scale.name}\n")
    print("| measure | value |\n|---|---|")
    print(f"| prior training, batch {int(cfg.prior.batch_size or cfg.data.batch_size)} | {steps_per_s:.2f} steps/s |")
    print(f"| test bits/dim ({clean.shape[0]} clean test images, dequantised) | {bpd:.3f} |")
    for b, t in per_image.items():
        print(f"| β-MAP s/image, batch {b}, {args.map_steps} iterations | {t:.3f} "
              f"(x{full / args.map_steps:g} for map_steps={full}: {t * full / args.map_steps:.1f} s) |")
    if 1 in per_image and len(per_image) > 1:
        big = max(per_image)
        print(f"| per-image cost batch {big} / batch 1 | {per_image[big] / per_image[1]:.3f} (target <= 0.25) |")


if __name__ == "__main__":
    main()
