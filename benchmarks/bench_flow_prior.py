"""flow_prior speed: training steps/second (ResNet + frozen Glow prior, backward, Adam) and
inference images/second (the ResNet alone: the prior is not used at test time).

    python benchmarks/bench_flow_prior.py [--blocks 64 --hidden 8] [--levels 3 --steps 8 --glow-hidden 64]
                                          [--crop 32 --batch 16] [--size 256 --images 4] [--channels 1] [--threads 1]

The Glow is randomly initialised (speed does not depend on its training). Compare ratios within one
run: the machines are shared and noisy.
"""
from __future__ import annotations

import argparse

import torch
from tabulate import tabulate
from timing import timed

from denoise_bench.flows import Glow
from denoise_bench.hparams import method_config
from denoise_bench.methods.flow_prior import FlowPriorDenoiser


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--blocks", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=8)
    ap.add_argument("--levels", type=int, default=3)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--glow-hidden", type=int, default=64)
    ap.add_argument("--crop", type=int, default=32)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (1 is fastest on a busy 2-core CPU)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    glow = Glow(args.channels, args.levels, args.steps, args.glow_hidden, n_bits=8)
    glow.log_prob(torch.rand(args.batch, args.channels, args.crop, args.crop))  # ActNorm init
    glow.eval().requires_grad_(False)
    method = FlowPriorDenoiser(method_config("flow_prior", {"resnet": {"blocks": args.blocks, "hidden": args.hidden}}),
                               args.channels).to(dev)
    method.use_prior(glow.to(dev), args.crop)
    opt = torch.optim.Adam(method.net.parameters(), lr=1e-4)
    noisy = (torch.rand(args.batch, args.channels, args.crop, args.crop) + 0.1 * torch.randn(
        args.batch, args.channels, args.crop, args.crop)).to(dev)
    sigma = torch.full((args.batch,), 25.0, device=dev)

    def train_step():
        terms = method.objective(method.net(noisy), noisy, sigma)
        opt.zero_grad()
        (terms["loss"].mean() / noisy[0].numel()).backward()
        opt.step()
        sync()

    def resnet_only():  # the same step without the prior term: what the prior costs
        d = method.net(noisy)
        opt.zero_grad()
        ((method.blur(d) - method.blur(noisy)) ** 2).mean().backward()
        opt.step()
        sync()

    train_step(), resnet_only()  # warm-up
    step_s = timed(train_step, args.repeat)
    net_s = timed(resnet_only, args.repeat)

    test = torch.rand(args.images, args.channels, args.size, args.size, device=dev)
    with torch.inference_mode():
        method.denoise(test[:1], None)
        sync()
        infer_s = timed(lambda: (method.denoise(test, None), sync()), max(1, args.repeat // 2))

    params = sum(p.numel() for p in method.net.parameters())
    print(f"ResNet {args.blocks} blocks x {args.hidden} hidden ({params} parameters), Glow L={args.levels} "
          f"K={args.steps} width {args.glow_hidden}; {args.channels}-channel {args.crop}x{args.crop} crops, "
          f"batch {args.batch}; device {dev}, {torch.get_num_threads()} threads")
    print(tabulate([
        ["training steps / s (ResNet + prior)", f"{1 / step_s:.2f}", f"{step_s * 1000:.0f} ms"],
        ["training steps / s (ResNet, no prior term)", f"{1 / net_s:.2f}", f"{net_s * 1000:.0f} ms"],
        [f"inference images / s ({args.size}x{args.size})", f"{args.images / infer_s:.2f}",
         f"{infer_s / args.images * 1000:.0f} ms/image"],
    ], headers=["", "rate", "time"]))


if __name__ == "__main__":
    main()
