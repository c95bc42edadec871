"""β-MAP convergence: PSNR of the estimate against the MAP iteration, per σ, on a run's test images.

    python benchmarks/bench_glow_map_convergence.py [--sigmas 15,25,50] [--max-steps 300] [HYDRA OVERRIDES...]
    python benchmarks/bench_glow_map_convergence.py data=celeba data.root=../shared/data/CelebA_subset \
        data.test.limit=32 --sigmas 25.5

Every test image is denoised exactly as a ``method=glow_map`` cell does (same prior from
``paths.artifacts``, same seeded noise, same β, lr and space), but ``beta_map``'s trace records the
mean PSNR (the cells' metric protocol) after every iteration. The table shows the mean PSNR at a few
iteration counts and, per σ, the first iteration from which the PSNR stays within 0.02 / 0.05 dB of
its value at ``--max-steps``: the evidence for ``method.map_steps``.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SHOW = (0, 10, 20, 30, 40, 50, 60, 75, 100, 125, 150, 200, 250, 300, 400, 500)


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return hydra_compose("config", overrides=["logger=none", "progress=false", "method=glow_map", *overrides])


def curve(cfg, glow, max_steps: int) -> tuple[list[float], float, int, list[list[float]], list[list[float]]]:
    """Mean PSNR after each iteration 0..max_steps over the run's test images; seconds; images; and per image,
    its PSNR and its residual ratio ‖C − N‖² / (D·σ²) after each iteration (the discrepancy a stopping rule
    without the clean image can watch)."""
    import torch

    from denoise_bench.data.datamodule import DenoisingDataModule
    from denoise_bench.data.noise import NoiseSpec
    from denoise_bench.methods.glow_map import GlowMAP, beta_map, residual_ratio
    from denoise_bench.metrics import MetricProtocol, prepare, psnr_per_image

    protocol = MetricProtocol.from_cfg(cfg.metrics)
    dm = DenoisingDataModule(cfg.data, NoiseSpec.from_cfg(cfg.sigma, cfg.noise, cfg.seed))
    ds = dm.test_set()
    method = GlowMAP(cfg.method, image_channels=dm.channels)
    method.set_prior(glow)
    groups: dict[tuple, list[int]] = {}
    for i in range(len(ds)):
        groups.setdefault(ds.shape(i), []).append(i)
    batch = int(cfg.data.test.batch_size)
    sums = [0.0] * (max_steps + 1)
    per_psnr: list[list[float]] = []
    per_ratio: list[list[float]] = []
    n, start = 0, time.perf_counter()
    for idx in groups.values():
        for k in range(0, len(idx), batch):
            pick = [ds[i] for i in idx[k : k + batch]]
            noisy, clean = torch.stack([p["noisy"] for p in pick]), torch.stack([p["clean"] for p in pick])
            sigma = torch.stack([p["sigma"] for p in pick])
            ref = prepare(clean, protocol)
            m = method.cfg
            s = sigma.to(noisy) / 255.0
            first = len(per_psnr)
            per_psnr.extend([] for _ in pick)
            per_ratio.extend([] for _ in pick)

            def trace(step, est):
                p = psnr_per_image(prepare(est, protocol), ref)
                r = residual_ratio(est, noisy, s)
                sums[step] += float(p.sum())
                for j in range(len(pick)):
                    per_psnr[first + j].append(float(p[j]))
                    per_ratio[first + j].append(float(r[j]))

            beta_map(glow, noisy, s.clamp_min(1e-6), beta=float(m.beta), steps=max_steps, lr=float(m.map_lr),
                     space=str(m.space), likelihood_sigma=method.likelihood_sigma(s), trace=trace)
            n += len(pick)
    return [x / n for x in sums], time.perf_counter() - start, n, per_psnr, per_ratio


def discrepancy_stop(ratio: list[float], tau: float) -> int:
    """Where ``beta_map(stop_ratio=tau)`` stops: the first iteration after the start whose residual ratio
    reaches ``tau`` (the last one if none does)."""
    for i in range(1, len(ratio)):
        if ratio[i] >= tau:
            return i
    return len(ratio) - 1


def settled(psnr: list[float], tol: float) -> int:
    """First iteration from which the PSNR stays within ``tol`` dB of the last one."""
    final = psnr[-1]
    step = len(psnr) - 1
    while step > 0 and abs(psnr[step - 1] - final) <= tol:
        step -= 1
    return step


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sigmas", default="15,25,50")
    ap.add_argument("--max-steps", type=int, default=300)
    ap.add_argument("--betas", default=None, help="comma-separated method.beta values (default: the config's)")
    ap.add_argument("--taus", default="0.6,0.7,0.8,0.9,1.0",
                    help="discrepancy thresholds: each image stops when ‖C − N‖² / (D·σ²) reaches τ")
    args, overrides = ap.parse_known_args(argv)

    import torch

    from denoise_bench.methods.glow_map import prior_run_config
    from denoise_bench.priors import load_or_train_prior
    from denoise_bench.training import TrainingContext
    from denoise_bench.training.speed import channels_last, keep_freed_memory

    keep_freed_memory()  # as a cell runs (run/cell.py)
    sigmas = args.sigmas.split(",")
    cfg0 = compose(overrides + [f"sigma={sigmas[0]}"])
    if cfg0.get("threads"):
        torch.set_num_threads(int(cfg0.threads))
    with tempfile.TemporaryDirectory() as tmp:
        pcfg = prior_run_config(cfg0)  # the prior a cell would use
        glow = load_or_train_prior(TrainingContext(cfg0, Path(tmp)), pcfg)
    glow = channels_last(glow.eval())  # as run_cell does before testing
    rows, notes = [], []
    shown = [s for s in SHOW if s <= args.max_steps]
    betas = args.betas.split(",") if args.betas else [None]
    taus = [float(t) for t in args.taus.split(",")]
    stop_rows = []
    for sg in sigmas:
        for beta in betas:
            cfg = compose(overrides + [f"sigma={sg}"] + ([f"method.beta={beta}"] if beta else []))
            psnr, secs, n, per_psnr, per_ratio = curve(cfg, glow, args.max_steps)
            print(f"σ={sg} β={cfg.method.beta}: {n} images, {secs:.0f} s", flush=True)
            m = cfg.method
            best_i = psnr.index(max(psnr))
            ratio_at_best = sum(r[best_i] for r in per_ratio) / n
            for tau in taus:
                stops = [discrepancy_stop(r, tau) for r in per_ratio]
                stop_rows.append([sg, m.beta, tau, f"{sum(stops) / n:.0f}", min(stops), max(stops),
                                  f"{sum(p[i] for p, i in zip(per_psnr, stops)) / n:.2f}", f"{max(psnr):.2f}",
                                  best_i, f"{ratio_at_best:.3f}"])
            rows.append([sg, m.beta] + [f"{psnr[s]:.2f}" for s in shown]
                        + [settled(psnr, 0.02), settled(psnr, 0.05), f"{secs / args.max_steps:.2f}"])
            notes.append(f"σ={sg} β={m.beta}: best {max(psnr):.2f} dB at iteration {psnr.index(max(psnr))}; "
                         f"configured map_steps={int(m.map_steps)} gives {psnr[min(int(m.map_steps), args.max_steps)]:.2f}")
    from tabulate import tabulate

    print(f"\nβ-MAP convergence: {cfg0.data.name}, {n} test images, lr={cfg0.method.map_lr}, "
          f"space={cfg0.method.space}, prior L={pcfg.prior.levels} K={pcfg.prior.steps} hidden={pcfg.prior.hidden} "
          f"{pcfg.prior.image_size}² ({pcfg.prior.train_steps} steps), torch threads {torch.get_num_threads()}; mean PSNR (dB) after N iterations\n")
    print(tabulate(rows, headers=["σ", "β"] + [str(s) for s in shown] + ["within 0.02 dB from", "within 0.05 dB from",
                                                                    "s/iteration"], tablefmt="github"))
    print()
    for line in notes:
        print(line)
    print("\nDiscrepancy stop: each image stops at the first iteration where ‖C − N‖² / (D·σ²) ≥ τ "
          f"(else at {args.max_steps}); mean PSNR at those stops vs the best fixed count\n")
    print(tabulate(stop_rows, headers=["σ", "β", "τ", "mean stop", "min", "max", "PSNR at stop", "best fixed",
                                       "best fixed at", "ratio there"], tablefmt="github"))


if __name__ == "__main__":
    main()
