"""Scores of the mode-coverage benchmarks, exactly as BENCHMARKS.md defines them.

2-D mixtures (PacGAN / VEEGAN), on the generated samples:
    * each sample is assigned to its nearest mean; it is *high quality* when it lies within
      `hq_sigmas`·σ (3σ) of that mean (Euclidean distance, boundary included);
    * a mode is *captured* when at least one high-quality sample is assigned to it;
    * reverse KL = KL(p_gen ‖ uniform over the K modes), p_gen the histogram of the high-quality
      samples over the modes, i.e. log K − H(p_gen). Undefined (None) when no sample is high quality.

Finite-sample Gaussian (seed 002, Fig. 1): the Wasserstein-1 distance (exact EMD, POT) of the generated
samples to fresh samples of the true Gaussian, beside the same distance between two fresh true samples
(what a perfect generator gets at this sample size); the fraction of generated samples within 3σ_noise of
a training point, beside that fraction for fresh true samples.

Stacked MNIST: the mode of a sample is the triple of digits the classifier assigns to its R, G, B
channels (1000 modes); modes covered = modes with at least one sample; KL(p_gen ‖ uniform over 1000).
Digit balance (one channel): mean predicted digit (ideal 4.5), standard deviation of the 10 class counts,
number of distinct digits.

The histogram statistics (coverage, entropy) come from metrics.category_coverage.category_stats, so the
numbers agree with the project's category-coverage metric.
"""

from __future__ import annotations

import numpy as np
import torch

from metrics.category_coverage import category_stats
from metrics.emd import batch_emd

# ----------------------------------------------------------------------------
# 2-D mixtures.


def _as_points(x, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f'{what} must be a non-empty [N, D] array, got shape {x.shape}')
    if not np.all(np.isfinite(x)):
        raise ValueError(f'{what} contain non-finite values')
    return x


def check_modes(means, sigma: float, hq_sigmas: float = 3.0) -> np.ndarray:
    """Validate mixture means: distinct, and far enough apart that their high-quality balls are disjoint
    (else "nearest mean" would not tell which mode a sample belongs to). Returns them as float64."""
    means = _as_points(means, 'mode means')
    if not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f'sigma must be a positive number, got {sigma!r}')
    if not (np.isfinite(hq_sigmas) and hq_sigmas > 0):
        raise ValueError(f'hq_sigmas must be a positive number, got {hq_sigmas!r}')
    if len(means) > 1:
        dist = np.sqrt(((means[:, None, :] - means[None, :, :]) ** 2).sum(-1))
        dist[np.diag_indices(len(means))] = np.inf
        i, j = np.unravel_index(np.argmin(dist), dist.shape)
        if dist[i, j] <= 2 * hq_sigmas * sigma:
            raise ValueError(f'modes {min(i, j)} and {max(i, j)} are {dist[i, j]:.3g} apart, within 2·{hq_sigmas:g}σ = '
                             f'{2 * hq_sigmas * sigma:.3g}: duplicated or overlapping means (a ring built with '
                             f'linspace(0, 2π, K) repeats its first mean)')
    return means


def nearest_modes(samples, means) -> tuple[np.ndarray, np.ndarray]:
    """(index of the nearest mean, Euclidean distance to it) per sample."""
    samples = _as_points(samples, 'samples')
    means = np.asarray(means, dtype=np.float64)
    if samples.shape[1] != means.shape[1]:
        raise ValueError(f'samples have {samples.shape[1]} dimensions but the modes have {means.shape[1]}')
    dist = np.sqrt(((samples[:, None, :] - means[None, :, :]) ** 2).sum(-1))
    idx = dist.argmin(axis=1)
    return idx, dist[np.arange(len(samples)), idx]


def mode_scores(samples, means, sigma: float, hq_sigmas: float = 3.0) -> dict:
    """Modes captured, fraction of high-quality samples and reverse KL of generated 2-D samples."""
    means = check_modes(means, sigma, hq_sigmas)
    idx, dist = nearest_modes(samples, means)
    hq = dist <= hq_sigmas * sigma
    num_modes = len(means)
    counts = np.bincount(idx[hq], minlength=num_modes)
    reverse_kl = None
    if hq.any():
        stats = category_stats(idx[hq], num_modes)
        reverse_kl = max(stats['max_entropy'] - stats['entropy'], 0.0)   # log K − H, rounding kept at >= 0
    return dict(num_samples=int(len(dist)), num_modes=int(num_modes), modes_captured=int((counts > 0).sum()),
                hq_fraction=float(hq.mean()), reverse_kl=reverse_kl, hq_counts=counts.tolist())


# ----------------------------------------------------------------------------
# Distances to the true distribution (swiss roll, finite-sample Gaussian).


def emd_to_true(samples, true_a, true_b) -> dict:
    """Exact EMD of the samples to a fresh true sample `true_a`, and the floor EMD(true_b, true_a) that
    a perfect generator would get at this sample size (all three of equal size)."""
    samples = _as_points(samples, 'samples')
    true_a = _as_points(true_a, 'true samples')
    true_b = _as_points(true_b, 'true samples')
    if not (len(samples) == len(true_a) == len(true_b)):
        raise ValueError(f'EMD to the true distribution needs equal sample sizes, got {len(samples)}, {len(true_a)}, '
                         f'{len(true_b)}')
    a = torch.from_numpy(true_a)
    return dict(emd_to_true=batch_emd(torch.from_numpy(samples), a), emd_floor=batch_emd(torch.from_numpy(true_b), a))


def near_training_fraction(samples, train_points, radius: float) -> float:
    """Fraction of samples within `radius` (boundary included) of their nearest training point."""
    samples = _as_points(samples, 'samples')
    train_points = _as_points(train_points, 'training points')
    _idx, dist = nearest_modes(samples, train_points)
    return float((dist <= radius).mean())


def finite_sample_scores(samples, train_points, sigma_noise: float, true_a, true_b) -> dict:
    """The overfitting checks of the finite-sample Gaussian (see the module docstring)."""
    out = emd_to_true(samples, true_a, true_b)
    out['near_train_fraction'] = near_training_fraction(samples, train_points, 3 * sigma_noise)
    out['near_train_fraction_true'] = near_training_fraction(true_b, train_points, 3 * sigma_noise)
    return out


# ----------------------------------------------------------------------------
# Stacked MNIST and digit balance.


def _labels(labels, what: str, num_classes: int = 10) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.size == 0 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f'{what} must be a non-empty integer array, got dtype {labels.dtype} and shape {labels.shape}')
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f'{what} must lie in [0, {num_classes}), got range [{labels.min()}, {labels.max()}]')
    return labels.astype(np.int64)


def stacked_modes(digits) -> np.ndarray:
    """Mode index of each sample from its per-channel digits [N, C]: the base-10 number d_0 d_1 … d_{C−1}."""
    digits = _labels(digits, 'per-channel digits')
    if digits.ndim != 2:
        raise ValueError(f'per-channel digits must have shape [N, channels], got {digits.shape}')
    weights = 10 ** np.arange(digits.shape[1] - 1, -1, -1)
    return digits @ weights


def stacked_mode_scores(digits) -> dict:
    """Modes covered (of 10^C) and KL(p_gen ‖ uniform) of stacked samples labelled per channel."""
    digits = np.asarray(digits)
    modes = stacked_modes(digits)
    num_modes = 10 ** digits.shape[1]
    stats = category_stats(modes, num_modes)
    counts = np.asarray(stats['counts'])
    return dict(num_samples=int(len(modes)), num_modes=int(num_modes), modes_covered=int((counts > 0).sum()),
                kl_to_uniform=max(stats['max_entropy'] - stats['entropy'], 0.0))


def digit_balance(labels) -> dict:
    """Mean predicted digit, std of the class counts and the number of distinct digits of one-channel samples."""
    labels = _labels(labels, 'digit labels').reshape(-1)
    stats = category_stats(labels, 10)
    counts = np.asarray(stats['counts'])
    return dict(num_samples=int(labels.size), mean_digit=stats['mean_label'], count_std=stats['count_std'],
                digits_present=int((counts > 0).sum()), counts=counts.tolist())


def first_iteration_all_present(curve: list[dict], key: str = 'digits_present', target: int = 10):
    """The first `step` of a curve (list of dicts with 'step' and `key`) at which `key` reaches `target`;
    None when it never does."""
    for point in sorted(curve, key=lambda p: p['step']):
        if point.get(key) is not None and point[key] >= target:
            return int(point['step'])
    return None
