"""Geometry Score (Khrulkov & Oseledets, ICML 2018).

For one random choice of L0 landmarks among the points X, build the witness complex of (witnesses X,
landmarks L) filtered by the relaxation parameter alpha up to alpha_max = gamma * max_{w, l} d(w, l), and
take the persistence intervals of 1-dimensional homology (coefficients in Z/2). The relative living time
RLT(i) is the fraction of [0, alpha_max] during which exactly i one-dimensional holes exist (i < i_max;
intervals still alive at alpha_max end there). Averaging RLTs over n landmark draws gives the mean RLT
(mRLT); the Geometry Score of two point clouds is the squared L2 distance between their mRLTs.

As in the authors' code, the witness table holds plain Euclidean distances (gudhi calls its entries
"squared" distances; what matters is that alpha_max is in the same unit). Landmarks are drawn without
replacement, from a numpy generator seeded per repetition, so results are reproducible.
Defaults follow METHODS.md: L0 = 64, gamma = 1/128, i_max = 100, n = 100.
"""

from __future__ import annotations

import numpy as np

from metrics import metric_utils


def witness_intervals(X: np.ndarray, L0: int = 64, gamma: float = 1.0 / 128, rng=None):
    """1-D persistence intervals of the witness complex for one landmark draw, and alpha_max."""
    import gudhi
    X = np.asarray(X, np.float64)
    if X.ndim != 2:
        raise ValueError(f'Geometry Score needs a 2-D array of points, got shape {X.shape}')
    if not 3 <= L0 <= X.shape[0]:
        raise ValueError(f'Geometry Score needs 3 <= L0 <= number of points, got L0={L0} with {X.shape[0]} points')
    rng = rng if rng is not None else np.random.default_rng()
    landmarks = X[rng.choice(X.shape[0], L0, replace=False)]
    sq = (X * X).sum(1)[:, None] + (landmarks * landmarks).sum(1)[None, :] - 2 * X @ landmarks.T
    dist = np.sqrt(np.maximum(sq, 0))
    order = np.argsort(dist, axis=1, kind='stable')
    sorted_dist = np.take_along_axis(dist, order, axis=1)
    table = [list(zip(o.tolist(), d.tolist())) for o, d in zip(order, sorted_dist)]
    alpha_max = float(gamma * dist.max())
    st = gudhi.WitnessComplex(nearest_landmark_table=table).create_simplex_tree(max_alpha_square=alpha_max, limit_dimension=2)
    st.compute_persistence(homology_coeff_field=2)
    intervals = np.asarray(st.persistence_intervals_in_dimension(1), np.float64).reshape(-1, 2)
    return intervals, alpha_max


def relative_living_times(intervals: np.ndarray, alpha_max: float, i_max: int = 100) -> np.ndarray:
    """RLT(i), i = 0 .. i_max-1: share of [0, alpha_max] with exactly i alive intervals."""
    rlt = np.zeros(i_max)
    intervals = np.asarray(intervals, np.float64).reshape(-1, 2).copy()
    if intervals.shape[0] == 0 or alpha_max <= 0:
        rlt[0] = 1.0
        return rlt
    intervals[:, 1] = np.minimum(intervals[:, 1], alpha_max)  # includes death = inf
    edges = np.unique(np.concatenate([intervals.ravel(), [0.0, alpha_max]]))
    edges = edges[(edges >= 0) & (edges <= alpha_max)]
    mids = (edges[:-1] + edges[1:]) / 2
    alive = ((intervals[None, :, 0] <= mids[:, None]) & (mids[:, None] < intervals[None, :, 1])).sum(1)
    lengths = np.diff(edges)
    keep = alive < i_max
    np.add.at(rlt, alive[keep], lengths[keep])
    return rlt / alpha_max


def rlts(X, L0: int = 64, gamma: float = 1.0 / 128, i_max: int = 100, n: int = 100, seed: int = 0) -> np.ndarray:
    """[n, i_max] relative living times for n landmark draws."""
    out = np.zeros([n, i_max])
    for k in range(n):
        intervals, alpha_max = witness_intervals(X, L0, gamma, np.random.default_rng([seed, k]))
        out[k] = relative_living_times(intervals, alpha_max, i_max)
    return out


def geometry_score(rlts1: np.ndarray, rlts2: np.ndarray) -> float:
    """Squared L2 distance between the mean RLTs."""
    return float(((np.mean(rlts1, axis=0) - np.mean(rlts2, axis=0)) ** 2).sum())


def compute_gs(opts: metric_utils.MetricOptions, num_samples: int, L0: int, gamma: float, i_max: int, n: int, detector=None):
    """Geometry Score between num_samples generated and num_samples real images (pixels in [-1, 1] unless
    another detector is given)."""
    detector = detector if detector is not None else metric_utils.get_pixel_detector(opts)
    metric_utils.note_detector(opts, detector)
    if num_samples < L0:
        raise metric_utils.MetricError(f'the Geometry Score with L0={L0} landmarks needs at least {L0} samples, got {num_samples}')
    real = metric_utils.compute_feature_stats_for_dataset(opts, detector, capture_all=True, max_items=num_samples).get_all()
    if real.shape[0] < L0:
        raise metric_utils.MetricError(f'the Geometry Score with L0={L0} landmarks needs at least {L0} real images, '
                                       f'the data set has {real.shape[0]}')
    gen = metric_utils.compute_feature_stats_for_generator(opts, detector, num_items=num_samples, capture_all=True).get_all()
    return geometry_score(rlts(real, L0, gamma, i_max, n, seed=opts.seed), rlts(gen, L0, gamma, i_max, n, seed=opts.seed + 1))
