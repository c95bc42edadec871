"""FDN vs DnCNN: inference images/second and peak memory at 256×256, training steps/second.

    python benchmarks/bench_fdn.py [--config paper|quick] [--size 256 --images 2] [--crop 64 --batch 16]
                                   [--train-steps 3] [--channels 3] [--threads 1]

Each (method, phase) runs in its own subprocess, so memory numbers do not mix. Memory on a CPU is
the peak resident set size (``resource.getrusage(...).ru_maxrss``) minus the resident set size
after building the model and its inputs, before any pass (read from /proc/self/statm): the extra
memory the phase (warm-up included; training: with Adam's state) needed at its peak; on a GPU it is ``torch.cuda.max_memory_allocated``. FDN denoises with one forward pass
(y → z) and one inverse pass ([z_C, 0] → x̂); a training step adds the backward of both.
Compare ratios within one run: the machines are shared and noisy.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch

CONFIGS = {  # (fdn, dncnn) method configs
    "paper": ({"flow_blocks": 2, "sof_blocks": 8, "growth": 32}, {"depth": 17, "features": 64}),
    "quick": ({"flow_blocks": 2, "sof_blocks": 4, "growth": 16}, {"depth": 8, "features": 32}),
}


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def build(method: str, config: str, channels: int, device):
    from denoise_bench.hparams import method_config
    from denoise_bench.methods.dncnn import DnCNN
    from denoise_bench.methods.fdn import FDN

    torch.manual_seed(0)
    fdn_cfg, dncnn_cfg = CONFIGS[config]
    m = (FDN(method_config("fdn", fdn_cfg), channels) if method == "fdn"
         else DnCNN(method_config("dncnn", dncnn_cfg), channels))
    m.log = lambda *a, **k: None  # training_step outside a Trainer
    return m.to(device)


def worker(args) -> dict:
    """One (method, phase) measurement in this process; returns a JSON-able dict."""
    dev = torch.device(args.device)
    gpu = dev.type == "cuda"
    sync = torch.cuda.synchronize if gpu else (lambda: None)
    from denoise_bench.flows import ActNorm

    m = build(args.worker, args.config, args.channels, dev)
    out = {"parameters": m.count_parameters()}
    g = torch.Generator().manual_seed(0)
    if args.phase == "infer":
        noisy = torch.rand(args.images, args.channels, args.size, args.size, generator=g).to(dev)
        sigma = torch.full((args.images,), 25.0, device=dev)
        for layer in m.modules():  # as after training: no ActNorm data-dependent init pass
            if isinstance(layer, ActNorm):
                layer.initialized.fill_(True)
        m.eval()
        base = rss_mib()  # before any pass: the peak covers the warm-up too
        if gpu:
            torch.cuda.reset_peak_memory_stats()
        with torch.inference_mode():
            m.denoise(noisy[:1], sigma[:1])  # warm-up
            sync()
            start = time.perf_counter()
            for _ in range(args.repeat):
                for k in range(args.images):
                    m.denoise(noisy[k : k + 1], sigma[k : k + 1])
            sync()
        secs = time.perf_counter() - start
        out["images_per_s"] = args.repeat * args.images / secs
    else:
        clean = torch.rand(args.batch, args.channels, args.crop, args.crop, generator=g)
        batch = {"clean": clean.to(dev), "noisy": (clean + 0.2 * torch.randn(clean.shape, generator=g)).to(dev),
                 "sigma": torch.full((args.batch,), 50.0, device=dev)}
        opt = torch.optim.Adam(m.parameters(), lr=1e-4)

        def step():
            opt.zero_grad()
            m.training_step(batch, 0).backward()
            opt.step()

        m.train()
        base = rss_mib()  # before any step: the peak covers the warm-up and Adam's state
        if gpu:
            torch.cuda.reset_peak_memory_stats()
        step()  # warm-up (and ActNorm init)
        sync()
        start = time.perf_counter()
        for _ in range(args.train_steps):
            step()
        sync()
        out["steps_per_s"] = args.train_steps / (time.perf_counter() - start)
    out["peak_mib"] = torch.cuda.max_memory_allocated() / 2**20 if gpu else max(0.0, peak_rss_mib() - base)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=sorted(CONFIGS), default="paper")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--images", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--train-steps", type=int, default=3)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (1 is fastest on a busy 2-core CPU)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--worker", choices=["fdn", "dncnn"], help=argparse.SUPPRESS)
    ap.add_argument("--phase", choices=["infer", "train"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        print(json.dumps(worker(args)))
        return

    from denoise_bench.complexity import denoise_gflops
    from tabulate import tabulate

    rows = []
    for method in ("fdn", "dncnn"):
        res = {}
        for phase in ("infer", "train"):
            cmd = [sys.executable, __file__, *sys.argv[1:], "--worker", method, "--phase", phase]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
            res[phase] = json.loads(proc.stdout.strip().splitlines()[-1])
        gflops = denoise_gflops(build(method, args.config, args.channels, "cpu"), args.channels, args.size)
        rows.append([method, f"{res['infer']['parameters'] / 1e6:.3f}", f"{gflops:.1f}",
                     f"{res['infer']['images_per_s']:.3f}", f"{res['infer']['peak_mib']:.0f}",
                     f"{res['train']['steps_per_s']:.3f}", f"{res['train']['peak_mib']:.0f}"])
    mem = "peak CUDA memory allocated" if args.device.startswith("cuda") else "peak RSS increase (ru_maxrss − RSS before)"
    print(f"config={args.config}, {args.channels} channels, device={args.device}, torch threads="
          f"{torch.get_num_threads()}; inference on {args.size}×{args.size}, one image per call; "
          f"training steps on a batch of {args.batch} {args.crop}×{args.crop} crops; memory: {mem}")
    print(tabulate(rows, headers=["method", "params (M)", f"GFLOPs/{args.size}²", "infer img/s", "infer MiB",
                                  "train steps/s", "train MiB"], tablefmt="github"))


if __name__ == "__main__":
    main()
