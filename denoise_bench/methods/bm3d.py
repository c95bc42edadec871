"""``method=bm3d``: BM3D (Dabov et al. 2007) through the ``bm3d`` package (non-commercial licence).

Gray images use ``bm3d.bm3d``, colour images ``bm3d.bm3d_rgb``, both with ``sigma_psd = sigma/255``.
Each image runs single-threaded inside the library (its ``num_threads=1``) and the images of a batch
are denoised in parallel worker processes (``method.run.workers``, default: every core). On our 2-core
CPU that is 1.3x the throughput of the library's own threads, and the result of an image does not
depend on the worker count or the batching: the library's multi-threaded aggregation adds in a
varying order (differences of ~5e-7). With real noise the level is estimated per image.
"""
from __future__ import annotations

import math
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from omegaconf import OmegaConf

from denoise_bench.errors import ConfigError
from denoise_bench.methods.base import DenoisingMethod
from denoise_bench.hparams import hp


def _single_thread() -> None:
    """Worker initializer: one BLAS / OpenMP thread per worker process.

    The library's own threads are off per image (``single_threaded_profile``); numpy's and scipy's
    OpenBLAS would still start a thread per core in every worker and contend (here 7-10 % of the
    throughput of two workers). A forked worker has those libraries loaded already, so environment
    variables come too late; threadpoolctl sets the limit in the loaded libraries."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


def single_threaded_profile(name: str):
    """The ``bm3d`` package's named profile ('np', 'refilter', 'vn', 'high', 'vn_old', 'deb') with
    ``num_threads = 1`` (its default 0 uses every core for one image)."""
    import bm3d

    classes = {"np": bm3d.BM3DProfile, "refilter": bm3d.BM3DProfileRefilter, "vn": bm3d.BM3DProfileVN,
               "high": bm3d.BM3DProfileHigh, "vn_old": bm3d.BM3DProfileVNOld, "deb": bm3d.BM3DProfileDeb}
    if name not in classes:
        raise ConfigError(f"method.profile={name!r}: expected one of {', '.join(classes)}")
    profile = classes[name]()
    profile.num_threads = 1
    return profile


def bm3d_one(image: np.ndarray, sigma255: float, profile: str = "np") -> np.ndarray:
    """Denoise one H×W×C float image in [0,1]-ish; returns the same shape."""
    import bm3d

    profile = single_threaded_profile(profile)

    if math.isnan(sigma255):  # real noise: estimate the level
        from skimage.restoration import estimate_sigma

        sigma = float(estimate_sigma(image, channel_axis=-1, average_sigmas=True))
    else:
        sigma = sigma255 / 255.0
    if sigma <= 0:
        return image
    if image.shape[2] == 3:
        out = bm3d.bm3d_rgb(image, sigma_psd=sigma, profile=profile)
    else:
        out = bm3d.bm3d(image[:, :, 0], sigma_psd=sigma, profile=profile)[:, :, None]
    return np.asarray(out, dtype=np.float32)


class BM3D(DenoisingMethod):
    name = "bm3d"
    order = 10  # place in tables and figures (methods/__init__.py)

    def __init__(self, cfg=None, image_channels: int = 1):
        super().__init__(cfg, image_channels)
        self.workers = int(OmegaConf.select(self.cfg, "run.workers", default=None) or os.cpu_count() or 1)
        self.profile = str(hp(self.cfg, "profile"))
        single_threaded_profile(self.profile)  # an unknown name fails here, before any image
        self._pool: ProcessPoolExecutor | None = None
        self.show_progress = False  # per-image bar (a batch of 16 images takes about a minute here)

    def prepare(self, ctx) -> None:
        self.show_progress = bool(ctx.cfg.get("progress", True))

    def pool(self) -> ProcessPoolExecutor | None:
        if self.workers <= 1:
            return None
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers, initializer=_single_thread)
        return self._pool

    def denoise(self, noisy: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        images = [x.permute(1, 2, 0).cpu().numpy().astype(np.float64) for x in noisy]
        sigmas = [float(s) for s in sigma]
        pool = self.pool()
        from tqdm.auto import tqdm

        if pool is None or len(images) == 1:
            outs = (bm3d_one(im, s, self.profile) for im, s in zip(images, sigmas))
        else:
            outs = pool.map(bm3d_one, images, sigmas, [self.profile] * len(images))
        outs = list(tqdm(outs, total=len(images), desc="BM3D", leave=False, disable=not self.show_progress))
        return torch.stack([torch.from_numpy(o).permute(2, 0, 1) for o in outs]).to(noisy)

    def on_test_end(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
