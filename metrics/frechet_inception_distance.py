"""Fréchet Inception Distance (Heusel et al. 2017).

FID = |mu_r - mu_g|^2 + tr(S_r + S_g - 2 (S_r S_g)^(1/2)) between Gaussians fitted to Inception-v3 pool3
features of real and generated images. Means and unbiased (N - 1) covariances are accumulated in float64;
the matrix square root is scipy.linalg.sqrtm. Round-off can give sqrtm a small imaginary part; as in the
reference implementations only the real part is used, and a warning is printed when it is not negligible.

With fewer samples than feature dimensions on one side (quick CPU evaluations: a few hundred images
against 2048 features), S_r S_g is singular, sqrtm is ill-conditioned and slow, and the trace term is
computed exactly instead: with B the centred samples of that side divided by sqrt(n - 1) (so S = B^T B),
the non-zero eigenvalues of S_other S equal those of B S_other B^T (n x n, symmetric positive
semi-definite), hence tr((S_other S)^(1/2)) = sum_i sqrt(lambda_i(B S_other B^T)) = the sum of the
singular values of B L with L L^T = S_other (symmetric eigendecomposition). This is the same number, not
an approximation; 50k-sample evaluations take the sqrtm route.
"""

from __future__ import annotations

import warnings

import numpy as np

from metrics import metric_utils


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), computed in float64."""
    import scipy.linalg
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.shape[0],) * 2:
        raise ValueError(f'mismatched Gaussian parameters: means {mu1.shape} {mu2.shape}, covariances {sigma1.shape} {sigma2.shape}')
    diff = mu1 - mu2
    with warnings.catch_warnings():
        # Singular products are expected with few samples; the result is checked below instead.
        warnings.simplefilter('ignore', scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():
            # Regularise both covariances slightly (as pytorch-fid and TTUR do).
            offset = np.eye(sigma1.shape[0]) * eps
            covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        imag = np.max(np.abs(covmean.imag))
        scale = max(np.max(np.abs(covmean.real)), 1e-12)
        if imag > 1e-3 * scale:
            warnings.warn(f'FID: sqrtm has a non-negligible imaginary part ({imag:.3g} against {scale:.3g}); '
                          f'too few samples for the feature dimension? Using the real part.')
        covmean = covmean.real
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)
    return float(value)


def frechet_distance_from_samples(mu1, sigma1, samples2) -> float:
    """Fréchet distance between N(mu1, sigma1) and the Gaussian fitted to samples2 (rows; unbiased
    covariance), with the trace term from the n x n eigenproblem (exact; fast when n is small)."""
    mu1, sigma1 = np.asarray(mu1, np.float64), np.asarray(sigma1, np.float64)
    x = np.asarray(samples2, np.float64)
    n = x.shape[0]
    if x.ndim != 2 or n < 2 or x.shape[1] != mu1.shape[0] or sigma1.shape != (mu1.shape[0],) * 2:
        raise ValueError(f'mismatched inputs: mean {mu1.shape}, covariance {sigma1.shape}, samples {x.shape} (need n >= 2)')
    mu2 = x.mean(0)
    b = (x - mu2) / np.sqrt(n - 1)
    # B S1 B^T = C C^T with C = B L, L L^T = S1; its eigenvalues' square roots are C's singular values,
    # which (unlike square roots of computed eigenvalues) stay accurate for the zero directions.
    w, v = np.linalg.eigh((sigma1 + sigma1.T) / 2)
    c = b @ (v * np.sqrt(np.clip(w, 0, None)))
    tr_covmean = np.linalg.svd(c, compute_uv=False).sum()
    diff = mu1 - mu2
    tr_sigma2 = (b * b).sum()
    return float(diff @ diff + np.trace(sigma1) + tr_sigma2 - 2 * tr_covmean)


def fid_from_features(real: np.ndarray, gen: np.ndarray) -> float:
    """FID between two feature sets (rows are samples), with unbiased covariances."""
    real, gen = np.asarray(real, np.float64), np.asarray(gen, np.float64)
    small, other = (real, gen) if real.shape[0] <= gen.shape[0] else (gen, real)
    if small.shape[0] < small.shape[1]:
        return frechet_distance_from_samples(other.mean(0), np.cov(other, rowvar=False), small)
    return frechet_distance(real.mean(0), np.cov(real, rowvar=False), gen.mean(0), np.cov(gen, rowvar=False))


# Below this many samples a side keeps its feature vectors, so the exact small-sample route is available.
SMALL_SAMPLE_LIMIT = 4096


def compute_fid(opts: metric_utils.MetricOptions, max_real: int | None, num_gen: int, detector=None) -> float:
    """FID of opts.G against opts.dataset_kwargs; `detector` defaults to Inception-v3."""
    if num_gen < 2 or (max_real is not None and max_real < 2):
        raise metric_utils.MetricError(f'FID needs at least 2 real and 2 generated samples (got num_gen={num_gen}, max_real={max_real})')
    detector = detector if detector is not None else metric_utils.inception(opts)
    metric_utils.note_detector(opts, detector)
    real = metric_utils.compute_feature_stats_for_dataset(
        opts, detector, capture_mean_cov=True, capture_all_below=SMALL_SAMPLE_LIMIT, max_items=max_real, rel_lo=0, rel_hi=0)
    gen = metric_utils.compute_feature_stats_for_generator(
        opts, detector, num_items=num_gen, capture_mean_cov=True, capture_all=num_gen < SMALL_SAMPLE_LIMIT,
        rel_lo=0, rel_hi=1)
    # The side with fewer samples than dimensions (if any, and if its samples were kept) takes the exact route.
    sides = sorted([s for s in (real, gen) if s.capture_all], key=lambda s: s.num_items)
    if sides and sides[0].num_items < sides[0].num_features:
        small = sides[0]
        other = gen if small is real else real
        mu_other, sigma_other = other.get_mean_cov()
        return frechet_distance_from_samples(mu_other, sigma_other, small.get_all())
    mu_real, sigma_real = real.get_mean_cov()
    mu_gen, sigma_gen = gen.get_mean_cov()
    return frechet_distance(mu_gen, sigma_gen, mu_real, sigma_real)
