"""``method=glow_map``: β-MAP denoising with a Glow prior ("Image Denoising with a Normalizing-Flow
Prior", seed 001).

Eq. 5:  Ĉ = argmax_C  β·log p(N|C) + log p(C),  and with Gaussian noise of std σ
        −log p(N|C) = ‖N − C‖² / (2σ²) + const,
so each image minimises  J(C) = β·‖N − C‖²/(2σ²) − log p(C)  (σ = sigma/255, the std actually
used for that image). Adam starts from C = N and C is kept in [0, 1] by clamping after every step
(projected Adam). Adam runs on u with C = N + σ·u, so its step (about ``lr`` per iteration) is in
units of each image's own noise std and one setting suits every noise level. log p is the frozen
prior's density at y = C − ½ without dequantisation noise (``log_prob(x, dequantize=False)``), so
the objective is deterministic. Each image stops by the discrepancy principle (``method.map_stop``):
once ‖C − N‖² reaches map_stop · D·σ², the noise energy a faithful estimate leaves in its residual;
``map_steps`` bounds the iterations (benchmarks/RESULTS.md: above the best fixed count at every σ).

A batch of B images is B independent optimisations in one pass: the loss is the SUM of the
per-image objectives, so the gradient w.r.t. image i is that image's own (the Glow has no
batch-coupled layer in eval()), and Adam's moments are element-wise. β = 1 is the true MAP; a
larger β stays closer to the noisy image (the paper's fix for prior deficiencies).

``space=latent`` optimises the standardised latents z instead (C = f⁻¹(z), one extra forward for
log p(C)); images whose side is not a multiple of 2^L are reflect-padded for the prior term.
"""
from __future__ import annotations

import torch
from omegaconf import OmegaConf

from denoise_bench.errors import ConfigError, TrainingError
from denoise_bench.methods.base import DenoisingMethod
from denoise_bench.tensor_images import pad_to_multiple
from denoise_bench.hparams import hp


def residual_ratio(estimate: torch.Tensor, noisy: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """‖C − N‖² / (D·σ²) per image, [B]: the discrepancy ``method.map_stop`` watches (1 = the residual holds
    the expected noise energy). ``sigma``: each image's noise std on the [0, 1] scale, [B]."""
    return (estimate - noisy).pow(2).flatten(1).mean(1) / sigma.reshape(-1) ** 2


def beta_map(prior, noisy: torch.Tensor, sigma: torch.Tensor, beta: float = 1.0, steps: int = 500,
             lr: float = 1e-3, space: str = "pixel", progress: bool = False,
             likelihood_sigma: torch.Tensor | None = None, trace=None,
             stop_ratio: float | None = None) -> torch.Tensor:
    """β-MAP estimate of the clean batch (eq. 5), one independent Adam problem per image.

    Args:
        prior: a Glow (frozen, eval()) with ``log_prob(x, dequantize=False)`` in nats per image.
        noisy: N, [B,C,H,W] on the [0,1] scale (not clipped).
        sigma: noise std per image on the [0,1] scale, [B].
        lr: Adam step size; pixel space: in units of each image's noise std; latent: latent units.
        likelihood_sigma: the σ of the Gaussian likelihood, [B] (default: ``sigma``). The Glow-MAP
            paper's nominal σ is 1.5× the std its noisy images show: with it, β/(2σ²) weighs the data
            term 2.25× less, i.e. the paper's β equals ours × 2.25.
        trace: optional ``trace(step, estimate)``, called before the first and after every Adam step with
            the current estimate in [0, 1] (the convergence study, benchmarks/bench_glow_map_convergence.py).
        stop_ratio: the discrepancy principle (Morozov): image i stops after the first iteration at which
            its residual ‖C − N‖² / (D·σ_i²) reaches ``stop_ratio`` (D values per image, σ_i its noise
            std), i.e. once C explains the observation only up to the expected noise energy; ``steps``
            is then the most any image gets. A stopped image leaves the batch (the others go on as they
            would have in it, at less cost); the loop ends when every image has stopped. None: every
            image runs ``steps`` iterations.
    """
    if space not in ("pixel", "latent"):
        raise ConfigError(f"method.space={space!r}: expected 'pixel' or 'latent'")
    from tqdm.auto import tqdm

    h, w = noisy.shape[-2:]
    factor = 2 ** prior.n_levels
    out = noisy.detach().clone()  # every image's estimate, written when it stops (or at the end)
    active = torch.arange(noisy.shape[0], device=noisy.device)  # the images still optimised
    noisy = noisy.detach()
    s = sigma.to(noisy).view(-1, 1, 1, 1)
    s_like = s.view(-1) if likelihood_sigma is None else likelihood_sigma.to(noisy).view(-1)
    weight = float(beta) / (2.0 * s_like ** 2)  # β/(2σ²) per image, σ of the likelihood
    with torch.enable_grad():
        if space == "pixel":  # C = N + σ·u, starting from C = N (in range)
            params = [((noisy.clamp(0.0, 1.0) - noisy) / s).requires_grad_(True)]
        else:
            zs, _ = prior.encode(pad_to_multiple(noisy.clamp(0.0, 1.0), factor), standardize=True)
            params = [z.detach().clone().requires_grad_(True) for z in zs]
        opt = torch.optim.Adam(params, lr=float(lr))

        def estimate():
            with torch.no_grad():
                if space == "pixel":
                    return (noisy + s * params[0]).clamp(0.0, 1.0)
                return prior.decode(params, standardized=True)[..., :h, :w].clamp(0.0, 1.0)

        def whole(current):
            """The full batch: the stopped images' kept estimates, the active ones' current."""
            full = out.clone()
            full[active] = current
            return full

        if trace is not None:
            trace(0, estimate())
        for step in tqdm(range(int(steps)), desc=f"beta-MAP x{noisy.shape[0]}", leave=False, disable=not progress):
            opt.zero_grad(set_to_none=True)
            if space == "pixel":
                c_img = noisy + s * params[0]
                full = pad_to_multiple(c_img, factor)
            else:
                full = prior.decode(params, standardized=True)
                c_img = full[..., :h, :w]
            data_term = weight * (noisy - c_img).pow(2).flatten(1).sum(1)
            objective = data_term - prior.log_prob(full, dequantize=False)  # J per image, [B]
            if not torch.isfinite(objective).all():
                raise TrainingError(f"glow_map: the MAP objective became non-finite at iteration {step}; "
                                    "lower method.map_lr")
            objective.sum().backward()  # a sum: image i's gradient is its own objective's
            opt.step()
            if space == "pixel":  # projection: keep C in [0, 1]
                with torch.no_grad():
                    params[0].copy_(((noisy + s * params[0]).clamp(0.0, 1.0) - noisy) / s)
            if trace is None and stop_ratio is None:
                continue
            current = estimate()
            if trace is not None:
                trace(step + 1, whole(current))
            if stop_ratio is not None:
                now = residual_ratio(current, noisy, s) >= float(stop_ratio)
                if not bool(now.any()):
                    continue
                out[active[now]] = current[now]
                go_on = ~now
                if not bool(go_on.any()):
                    return out
                # a stopped image leaves the batch: the others' problems, and their Adam moments, are their own
                active, noisy, s, weight = active[go_on], noisy[go_on], s[go_on], weight[go_on]
                params, opt = _keep_rows(opt, params, go_on)
        out[active] = estimate()
        return out


def _keep_rows(opt: torch.optim.Adam, params: list[torch.Tensor], keep: torch.Tensor):
    """The Adam problem restricted to the images ``keep`` (rows of every parameter): new leaf tensors
    and an Adam whose moments and step count are the old ones' rows, so each kept image continues
    exactly as it would have in the full batch."""
    kept = [p.detach()[keep].clone().requires_grad_(True) for p in params]
    new = torch.optim.Adam(kept, **{k: v for k, v in opt.defaults.items() if k in ("lr", "betas", "eps")})
    for old, p in zip(params, kept):
        state = opt.state.get(old)
        if state:
            new.state[p] = {k: (v[keep].clone() if torch.is_tensor(v) and v.shape == old.shape  # the moments
                                else v.clone() if torch.is_tensor(v) else v) for k, v in state.items()}  # the step
    return kept, new


def prior_run_config(cfg):
    """The run config the prior is trained from (``method.prior_data``).

    ``patches``: the prior learns ``prior.image_size`` crops of the training images (a patch prior,
    applied convolutionally to test images of any size). ``test``: when the test images are centre
    crops of one size (``data.test.crop``, aligned data such as faces), the prior learns the training
    images prepared exactly like them (centre crop ``data.test.crop``, resized to ``data.test.size``),
    so prior and test images agree in size and field of view; ``prior.image_size`` then follows, and a
    line says so. Without a test crop (whole images of several sizes) ``test`` falls back to ``patches``.
    """
    mode = str(OmegaConf.select(cfg, "method.prior_data", default="patches"))
    if mode not in ("patches", "test"):
        raise ConfigError(f"method.prior_data={mode!r}: expected 'patches' or 'test'")
    test = cfg.data.get("test") or {}
    crop, size = test.get("crop"), test.get("size")
    if mode == "patches" or not crop or cfg.prior.get("data") is not None:
        return cfg
    side = int(size or crop)
    factor = 2 ** int(cfg.prior.levels)
    if side % factor:
        raise ConfigError(f"method.prior_data=test: the test images are {side}x{side}, not a multiple of "
                          f"2^prior.levels = {factor}; set data.test.size or method.prior_data=patches")
    out = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    out.data.train_center_crop, out.data.train_size = int(crop), (int(size) if size else None)
    if cfg.prior.get("image_size") != side:
        print(f"[glow_map] the prior learns the training images prepared as the test images are "
              f"({int(crop)}x{int(crop)} centre crops{f' resized to {side}' if size else ''}), "
              f"not {cfg.prior.get('image_size')}x{cfg.prior.get('image_size')} patches (method.prior_data=test)",
              flush=True)
    out.prior.image_size = side
    return out


class GlowMAP(DenoisingMethod):
    """β-MAP with the Glow prior of ``cfg.prior`` (trained once, see ``priors.load_or_train_prior``)."""

    name = "glow_map"
    order = 30  # place in tables and figures (methods/__init__.py)
    trainable = False  # the method itself has no weights; the prior is fetched in prepare()
    grad_at_test = True  # Adam on the image inside test_step: the runner disables inference_mode

    def __init__(self, cfg=None, image_channels: int = 1):
        super().__init__(cfg, image_channels)
        self.prior = None
        self.show_progress = False

    def set_prior(self, glow) -> None:
        """Use ``glow`` (frozen here) as the prior; prepare() does this from the artifact store."""
        from denoise_bench.priors import freeze

        if glow.in_channels != self.image_channels:
            raise ConfigError(f"glow_map: the prior models {glow.in_channels}-channel images, the test images "
                              f"have {self.image_channels} (prior.data / data.channels)")
        self.prior = freeze(glow)

    def prepare(self, ctx) -> None:
        from denoise_bench.priors import load_or_train_prior

        self.show_progress = bool(ctx.cfg.get("progress", True))
        self.set_prior(load_or_train_prior(ctx, prior_run_config(ctx.cfg)))

    def denoise(self, noisy, sigma):
        if self.prior is None:
            raise ConfigError("glow_map: no prior; the runner calls prepare(ctx) before testing")
        s = sigma.to(noisy).view(-1) / 255.0
        if torch.isnan(s).any():
            raise ConfigError("glow_map needs the noise std of each image; sigma=real (unknown noise) is not supported")
        self.prior.eval()
        c = self.cfg
        return beta_map(self.prior, noisy, s.clamp_min(1e-6), beta=float(hp(c, "beta")),
                        steps=int(hp(c, "map_steps")), lr=float(hp(c, "map_lr")),
                        space=str(hp(c, "space")), progress=self.show_progress,
                        likelihood_sigma=self.likelihood_sigma(s), stop_ratio=self.stop_ratio())

    def stop_ratio(self) -> float | None:
        """``method.map_stop``: the discrepancy level at which an image stops (null: map_steps for all)."""
        stop = hp(self.cfg, "map_stop")
        if stop is None:
            return None
        if not float(stop) > 0:
            raise ConfigError(f"method.map_stop={stop}: expected a positive residual ratio (or null)")
        return float(stop)

    def likelihood_sigma(self, noise_std: torch.Tensor) -> torch.Tensor:
        """``method.likelihood_sigma``: ``noise`` = the std of the noise actually added (per image);
        ``nominal`` = ``method.nominal_sigma`` (on [0,1]; the glow_map_tables experiment sets it to the
        paper's σ label, 1.5× the effective std)."""
        mode = str(hp(self.cfg, "likelihood_sigma"))
        if mode == "noise":
            return noise_std.clamp_min(1e-6)
        if mode != "nominal":
            raise ConfigError(f"method.likelihood_sigma={mode!r}: expected 'noise' or 'nominal'")
        nominal = hp(self.cfg, "nominal_sigma")
        if nominal is None or not float(nominal) > 0:
            raise ConfigError("method.likelihood_sigma=nominal needs method.nominal_sigma (the nominal noise std on "
                              "[0,1]; experiment=glow_map_tables sets it to sigma_paper)")
        return torch.full_like(noise_std, float(nominal))

    def count_parameters(self) -> int:
        """The prior's size (its parameters are frozen, so the base count would be 0)."""
        return sum(p.numel() for p in self.prior.parameters()) if self.prior is not None else 0
