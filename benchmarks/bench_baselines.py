"""BM3D images/second with 1 and 2 worker processes, DnCNN inference images/second.

    python benchmarks/bench_baselines.py [--images N] [--size S]

Compare ratios within one run: the machines are shared and noisy.
"""
from __future__ import annotations

import argparse
import os

import torch
from tabulate import tabulate
from timing import timed

from denoise_bench.data.noise import NoiseSpec, seeded_noisy
from denoise_bench.hparams import method_config
from denoise_bench.methods.bm3d import BM3D
from denoise_bench.methods.dncnn import DnCNN


def test_images(n: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    from skimage import data

    base = torch.from_numpy(data.camera()[:size, :size].astype("float32") / 255.0)[None]
    clean = torch.stack([torch.roll(base, shifts=7 * i, dims=2) for i in range(n)])
    noisy = torch.stack([seeded_noisy(c, f"bench{i}", NoiseSpec(25.0))[0] for i, c in enumerate(clean)])
    return clean, noisy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args()
    _, noisy = test_images(args.images, args.size)
    sigma = torch.full((args.images,), 25.0)
    rows = []
    base = None
    for workers in (1, 2):
        method = BM3D(method_config("bm3d", {"run": {"workers": workers}}))
        method.denoise(noisy[:1], sigma[:1])  # warm the pool / imports
        if method._pool is None and workers > 1:
            method.pool()
        secs = timed(lambda: method.denoise(noisy, sigma))
        method.on_test_end()
        ips = args.images / secs
        base = base or ips
        rows.append([f"bm3d, {workers} worker process(es)", f"{ips:.3f}", f"{ips / base:.2f}x"])
    dncnn = DnCNN(method_config("dncnn", {"depth": 17, "features": 64}), image_channels=1).eval()
    with torch.inference_mode():
        dncnn.denoise(noisy[:1], None)
        for batch in (1, args.images):
            secs = timed(lambda: [dncnn.denoise(noisy[k:k + batch], None) for k in range(0, args.images, batch)])
            rows.append([f"dncnn-S (17 layers), batch {batch}, {torch.get_num_threads()} threads",
                         f"{args.images / secs:.3f}", ""])
    print(f"{args.images} gray images {args.size}x{args.size}, sigma 25, {os.cpu_count()} cores")
    print(tabulate(rows, headers=["method", "images / second", "vs 1 worker"], tablefmt="github"))


if __name__ == "__main__":
    main()
