"""Density priors on clean images, trained once and shared by the methods that need one.

``load_or_train_prior(ctx, cfg) -> Glow`` (store.py) is the entry point; ``GlowPrior``
(glow_prior.py) is the LightningModule that trains the Glow by maximum likelihood.
"""
from denoise_bench.priors.glow_prior import GlowPrior, build_glow
from denoise_bench.priors.store import PRIOR_KIND, freeze, load_or_train_prior, prior_data_config, prior_key

__all__ = ["GlowPrior", "PRIOR_KIND", "build_glow", "freeze", "load_or_train_prior", "prior_data_config", "prior_key"]
