"""Improved precision and recall (Kynkäänniemi et al. 2019) and density and coverage (Naeem et al. 2020).

Both describe each set of feature vectors by the union of balls around its points, the radius of a ball
being the distance to the point's k-th nearest neighbour in its own set (the point itself excluded).

* precision = fraction of generated points inside some real ball; recall = fraction of real points inside
  some generated ball (ball membership with <=, as the reference implementation).
* density = (1 / (k M)) sum_j #{real balls containing generated point j};
  coverage = fraction of real points whose ball contains at least one generated point (strict <, as the
  reference implementation `prdc`). Naeem et al. recommend k = 5.

Distances are computed blockwise (row_batch_size x col_batch_size at a time, in float64 on opts.device)
with a running k-smallest selection, so memory stays bounded for any number of samples; each rank of a
distributed evaluation handles every num_gpus-th row block and the counts are summed.
"""

from __future__ import annotations

import numpy as np
import torch

from metrics import metric_utils


def _pairwise(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # float64 keeps |a|^2 + |b|^2 - 2 a.b accurate enough that ties cannot flip with the block layout.
    d2 = (a * a).sum(1, keepdim=True) + (b * b).sum(1).unsqueeze(0) - 2 * (a @ b.T)
    return d2.clamp_min_(0).sqrt_()


def _row_blocks(n: int, row_batch_size: int, opts):
    blocks = [(s, min(s + row_batch_size, n)) for s in range(0, n, row_batch_size)]
    rank, world = (opts.rank, opts.num_gpus) if opts is not None else (0, 1)
    return blocks[rank::world]


def _reduce(x: torch.Tensor, opts) -> torch.Tensor:
    return metric_utils.all_reduce_sum(x, opts).cpu() if opts is not None else x


def knn_radii(features: torch.Tensor, k: int, row_batch_size: int = 1024, col_batch_size: int = 8192,
              device='cpu', opts=None) -> torch.Tensor:
    """Distance from each row to its k-th nearest other row (float64, on CPU)."""
    n = features.shape[0]
    if not 1 <= k < n:
        raise ValueError(f'k-NN radii need 1 <= k < number of samples, got k={k} with {n} samples')
    x = features.to(device=device, dtype=torch.float64)
    radii = torch.zeros([n], dtype=torch.float64, device=device)
    for r0, r1 in _row_blocks(n, row_batch_size, opts):
        best = None
        for c0 in range(0, n, col_batch_size):
            d = _pairwise(x[r0:r1], x[c0:c0 + col_batch_size])
            cand = d if best is None else torch.cat([best, d], dim=1)
            best = torch.topk(cand, min(k + 1, cand.shape[1]), dim=1, largest=False).values
        # Column 0 is the point itself (distance 0); column k is the k-th neighbour.
        radii[r0:r1] = best[:, k]
    return _reduce(radii, opts)


def ball_membership(manifold: torch.Tensor, radii: torch.Tensor, probes: torch.Tensor, strict: bool = False,
                    row_batch_size: int = 1024, col_batch_size: int = 8192, device='cpu', opts=None):
    """For each probe: how many manifold balls contain it (int64 [P]); and for each manifold point whether
    its ball contains any probe (bool [M]). Membership is d <= r, or d < r when strict."""
    m = manifold.to(device=device, dtype=torch.float64)
    p = probes.to(device=device, dtype=torch.float64)
    r = radii.to(device=device, dtype=torch.float64)
    counts = torch.zeros([p.shape[0]], dtype=torch.int64, device=device)
    hit = torch.zeros([m.shape[0]], dtype=torch.int64, device=device)
    for r0, r1 in _row_blocks(p.shape[0], row_batch_size, opts):
        for c0 in range(0, m.shape[0], col_batch_size):
            d = _pairwise(p[r0:r1], m[c0:c0 + col_batch_size])
            rr = r[c0:c0 + col_batch_size].unsqueeze(0)
            inside = (d < rr) if strict else (d <= rr)
            counts[r0:r1] += inside.sum(1)
            hit[c0:c0 + col_batch_size] |= inside.any(0).to(torch.int64)
    counts = _reduce(counts, opts)
    hit = _reduce(hit, opts) > 0
    return counts, hit


def precision_recall_from_features(real, gen, nhood_size: int = 3, row_batch_size: int = 1024,
                                   col_batch_size: int = 8192, device='cpu', opts=None):
    """(precision, recall) of generated features against real features."""
    real, gen = torch.as_tensor(np.asarray(real)), torch.as_tensor(np.asarray(gen))
    kw = dict(row_batch_size=row_batch_size, col_batch_size=col_batch_size, device=device, opts=opts)
    if min(real.shape[0], gen.shape[0]) <= nhood_size:
        raise ValueError(f'precision/recall with k={nhood_size} need more than {nhood_size} samples per side, '
                         f'got {real.shape[0]} real and {gen.shape[0]} generated')
    r_real = knn_radii(real, nhood_size, **kw)
    r_gen = knn_radii(gen, nhood_size, **kw)
    in_real, _ = ball_membership(real, r_real, gen, **kw)
    in_gen, _ = ball_membership(gen, r_gen, real, **kw)
    return float((in_real > 0).double().mean()), float((in_gen > 0).double().mean())


def density_coverage_from_features(real, gen, nhood_size: int = 5, row_batch_size: int = 1024,
                                   col_batch_size: int = 8192, device='cpu', opts=None):
    """(density, coverage) of generated features against real features."""
    real, gen = torch.as_tensor(np.asarray(real)), torch.as_tensor(np.asarray(gen))
    kw = dict(row_batch_size=row_batch_size, col_batch_size=col_batch_size, device=device, opts=opts)
    r_real = knn_radii(real, nhood_size, **kw)
    counts, hit = ball_membership(real, r_real, gen, strict=True, **kw)
    density = counts.double().sum() / (nhood_size * gen.shape[0])
    return float(density), float(hit.double().mean())


def _features(opts, max_real, num_gen, detector):
    detector = detector if detector is not None else metric_utils.pr_features_detector(opts)
    return metric_utils.real_and_generated_features(opts, detector, max_real, num_gen)


def _check_counts(opts, max_real, num_gen, k):
    if num_gen <= k or (max_real is not None and max_real <= k):
        raise metric_utils.MetricError(f'k-NN radii with k={k} need more than {k} real and generated samples '
                                       f'(got num_gen={num_gen}, max_real={max_real})')


def compute_pr(opts, max_real, num_gen, nhood_size, row_batch_size=1024, col_batch_size=8192, detector=None):
    _check_counts(opts, max_real, num_gen, nhood_size)
    real, gen = _features(opts, max_real, num_gen, detector)
    return precision_recall_from_features(real, gen, nhood_size, row_batch_size, col_batch_size, opts.device, opts)


def compute_dc(opts, max_real, num_gen, nhood_size, row_batch_size=1024, col_batch_size=8192, detector=None):
    _check_counts(opts, max_real, num_gen, nhood_size)
    real, gen = _features(opts, max_real, num_gen, detector)
    return density_coverage_from_features(real, gen, nhood_size, row_batch_size, col_batch_size, opts.device, opts)
