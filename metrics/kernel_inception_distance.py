"""Kernel Inception Distance (Bińkowski et al. 2018).

Unbiased estimate of the squared MMD with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged
over `num_subsets` random subsets of m = min(max_subset_size, n_real, n_gen) samples from each side:

    MMD^2_u = 1/(m(m-1)) sum_{i != j} [k(x_i, x_j) + k(y_i, y_j)] - 2/m^2 sum_{i, j} k(x_i, y_j)

Subsets are drawn without replacement from a numpy generator seeded with opts.seed, so the value is
reproducible.
"""

from __future__ import annotations

import numpy as np

from metrics import metric_utils


def kid_from_features(real: np.ndarray, gen: np.ndarray, num_subsets: int = 100, max_subset_size: int = 1000,
                      seed: int = 0) -> float:
    """KID between two feature sets (rows are samples)."""
    real, gen = np.asarray(real, np.float64), np.asarray(gen, np.float64)
    if real.ndim != 2 or gen.ndim != 2 or real.shape[1] != gen.shape[1]:
        raise ValueError(f'KID needs two [N, D] feature sets of equal D, got {real.shape} and {gen.shape}')
    d = real.shape[1]
    m = min(real.shape[0], gen.shape[0], max_subset_size)
    if m < 2:
        raise ValueError(f'KID needs at least 2 samples on each side, got {real.shape[0]} real and {gen.shape[0]} generated')
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(num_subsets):
        x = gen[rng.choice(gen.shape[0], m, replace=False)]
        y = real[rng.choice(real.shape[0], m, replace=False)]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        total += within - 2 * kxy.sum() / (m * m)
    return float(total / num_subsets)


def compute_kid(opts: metric_utils.MetricOptions, max_real: int | None, num_gen: int, num_subsets: int,
                max_subset_size: int, detector=None) -> float:
    if num_gen < 2 or (max_real is not None and max_real < 2):
        raise metric_utils.MetricError(f'KID needs at least 2 real and 2 generated samples (got num_gen={num_gen}, max_real={max_real})')
    detector = detector if detector is not None else metric_utils.inception(opts)
    real, gen = metric_utils.real_and_generated_features(opts, detector, max_real, num_gen)
    return kid_from_features(real, gen, num_subsets=num_subsets, max_subset_size=max_subset_size, seed=opts.seed)
