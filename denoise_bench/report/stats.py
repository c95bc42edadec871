"""Paired statistics between two cells on the same images.

Every method sees the identical noisy image (noise seeded per (seed, image id, sigma)), so two cells
at the same data, sigma and seed are compared image by image: d_i = a_i − b_i. We report the mean
d̄, a percentile bootstrap 95% CI of d̄ (resampling images with replacement, fixed seed) and the
two-sided Wilcoxon signed-rank p-value of the d_i (scipy, zeros dropped: ``zero_method="wilcox"``).

A difference is *significant* when the CI excludes 0 AND p < 0.05. Two honest exceptions:
- every d_i = 0 (identical outputs): p = 1 (no evidence of a difference), note "identical";
- fewer than 6 non-zero d_i: p = NaN, since the smallest two-sided exact p of n ≤ 5 pairs is
  2/2⁵ = 0.0625 — the test cannot reach 0.05, so never significant.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from denoise_bench.errors import DataError
from denoise_bench.report.cells import Cell

N_RESAMPLES = 10_000
SEED = 0
LEVEL = 0.95
ALPHA = 0.05
MIN_WILCOXON_N = 6  # below this many non-zero differences the two-sided test cannot give p < 0.05
RULE = "the paired bootstrap 95% CI of the per-image difference excludes 0 AND the Wilcoxon signed-rank p < 0.05"


def bootstrap_ci(d, n_resamples: int = N_RESAMPLES, seed: int = SEED, level: float = LEVEL,
                 chunk_elems: int = 2_000_000) -> tuple[float, float]:
    """Percentile bootstrap CI of mean(d): resample the images (rows of d) with replacement.

    Vectorised in chunks of resamples so that memory stays near ``chunk_elems`` indices. The same
    seed gives the same resamples for every pair of the same n, so tables are reproducible.
    """
    d = np.asarray(d, dtype=np.float64)
    n = len(d)
    if n == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    step = max(1, chunk_elems // n)
    for start in range(0, n_resamples, step):
        k = min(step, n_resamples - start)
        means[start:start + k] = d[rng.integers(0, n, size=(k, n))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(lo), float(hi)


def wilcoxon_p(d) -> tuple[float, str]:
    """(two-sided Wilcoxon signed-rank p, note); see the module docstring for p = 1 and p = NaN."""
    from scipy.stats import wilcoxon

    d = np.asarray(d, dtype=np.float64)
    nonzero = int(np.count_nonzero(d))
    if len(d) == 0:
        return math.nan, "no images"
    if nonzero == 0:
        return 1.0, "identical on every image: p = 1"
    if nonzero < MIN_WILCOXON_N:
        return math.nan, f"{nonzero} non-zero differences < {MIN_WILCOXON_N}: p = NaN (cannot reach 0.05)"
    return float(wilcoxon(d).pvalue), ""


@dataclass(frozen=True)
class Diff:
    """The paired difference a − b of one metric."""

    metric: str
    n: int
    mean: float
    ci: tuple[float, float]
    p: float
    note: str = ""

    @property
    def significant(self) -> bool:
        lo, hi = self.ci
        return bool(self.p < ALPHA and (lo > 0 or hi < 0))  # NaN p or CI: False


def paired_values(a: Cell, b: Cell, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-image values of a and b on the same images (a's order); DataError when they are not paired."""
    if a.sigma != b.sigma or a.dataset != b.dataset:
        raise DataError(f"cells {a.rel} and {b.rel}: different data or sigma ({a.dataset} σ={a.sigma} vs "
                        f"{b.dataset} σ={b.sigma}); not paired")
    if str(a.seed) != str(b.seed):
        raise DataError(f"cells {a.rel} and {b.rel}: noise seeds differ ({a.seed} vs {b.seed}); not paired")
    va, vb = a.per_image_values(metric), b.per_image_values(metric)
    if set(va.index) != set(vb.index):
        shared = len(set(va.index) & set(vb.index))
        raise DataError(f"cells {a.rel} and {b.rel}: image ids differ ({len(va)} vs {len(vb)} images, "
                        f"{shared} shared); not paired")
    return va.to_numpy(), vb.reindex(va.index).to_numpy()


_memo: dict[tuple, Diff] = {}


def _stamp(c: Cell) -> tuple:
    try:
        st = (c.path / "per_image.csv").stat()
        return str(c.path), c.channels, st.st_mtime_ns, st.st_size
    except OSError:
        return str(c.path), c.channels, None, None


def paired_diff(a: Cell, b: Cell, metric: str = "psnr", n_resamples: int = N_RESAMPLES) -> Diff:
    """Mean per-image a − b with its bootstrap CI and Wilcoxon p (DataError when not paired).

    Memoised per (cells' per_image.csv as stored, metric): a table's marks and its comparisons file
    ask for the same pairs."""
    key = (_stamp(a), _stamp(b), metric, n_resamples)
    if key not in _memo:
        _memo[key] = _paired_diff(a, b, metric, n_resamples)
    return _memo[key]


def _paired_diff(a: Cell, b: Cell, metric: str, n_resamples: int) -> Diff:
    va, vb = paired_values(a, b, metric)
    d = va - vb
    if not np.isfinite(d).all():
        raise DataError(f"cells {a.rel} and {b.rel}: non-finite per-image {metric}")
    p, note = wilcoxon_p(d)
    return Diff(metric, len(d), float(d.mean()) if len(d) else math.nan, bootstrap_ci(d, n_resamples), p, note)
