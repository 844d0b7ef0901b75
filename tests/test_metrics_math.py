"""The formulas of the metrics against independent computations (closed forms, naive loops, scipy)."""

import itertools
import warnings

import numpy as np
import pytest
import scipy.linalg
import scipy.optimize
import torch

from metrics import category_coverage, emd, frechet_inception_distance as fid_mod, geometry_score as gs
from metrics import inception_score, kernel_inception_distance as kid_mod, precision_recall as pr

# ----------------------------------------------------------------------------
# FID


def _random_spd(rng, d):
    a = rng.standard_normal([d, d])
    return a @ a.T / d + 0.1 * np.eye(d)


def test_frechet_distance_commuting_closed_form():
    # Diagonal covariances commute: FID = |dmu|^2 + sum (sqrt(a) - sqrt(b))^2.
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.1, 3, 7), rng.uniform(0.1, 3, 7)
    mu1, mu2 = rng.standard_normal(7), rng.standard_normal(7)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert fid_mod.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_general_matches_scipy_formula():
    # Independent formula: tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2), the symmetric form of the same trace.
    rng = np.random.default_rng(1)
    s1, s2 = _random_spd(rng, 12), _random_spd(rng, 12)
    mu1, mu2 = rng.standard_normal(12), rng.standard_normal(12)
    r1 = scipy.linalg.sqrtm(s1).real
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(r1 @ s2 @ r1).real)
    assert fid_mod.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_fid_of_gaussian_samples_approaches_closed_form():
    # Samples from two known Gaussians: the estimate converges to the population value.
    rng = np.random.default_rng(2)
    d = 4
    s1, s2 = _random_spd(rng, d), _random_spd(rng, d)
    mu1, mu2 = np.zeros(d), np.full(d, 0.5)
    x = rng.multivariate_normal(mu1, s1, size=200000)
    y = rng.multivariate_normal(mu2, s2, size=200000)
    truth = fid_mod.frechet_distance(mu1, s1, mu2, s2)
    assert fid_mod.fid_from_features(x, y) == pytest.approx(truth, rel=0.02)


def test_fid_of_a_feature_set_with_itself_is_zero():
    x = np.random.default_rng(3).standard_normal([500, 32])
    assert abs(fid_mod.fid_from_features(x, x)) < 1e-8


def test_sqrtm_route_handles_singular_covariances():
    # Fewer samples than dimensions through scipy's sqrtm: rank-deficient product, possibly complex
    # square root; the result stays finite and real, and close to the exact small-sample route.
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal([10, 40]), rng.standard_normal([10, 40]) + 1
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)  # the imaginary-part warning may fire here; that is its job
        value = fid_mod.frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    assert isinstance(value, float) and np.isfinite(value)
    assert value == pytest.approx(fid_mod.fid_from_features(x, y), rel=0.05)


@pytest.mark.parametrize('n,d', [(9, 30), (29, 30), (200, 6)])
def test_small_sample_route_equals_independent_trace_formula(n, d):
    # Independent: tr((S1 S2)^1/2) = sum sqrt(eig(S1^1/2 S2 S1^1/2)) with symmetric square roots (eigh);
    # square roots of the zero eigenvalues' round-off limit its accuracy to about 1e-7 here.
    rng = np.random.default_rng(n)
    big = rng.standard_normal([300, d]) @ rng.standard_normal([d, d]) / np.sqrt(d)
    small = rng.standard_normal([n, d]) + 0.3
    s1, s2 = np.cov(big, rowvar=False), np.cov(small, rowvar=False)
    w, v = np.linalg.eigh(s1)
    r1 = v @ np.diag(np.sqrt(np.clip(w, 0, None))) @ v.T
    tr = np.sqrt(np.clip(np.linalg.eigvalsh(r1 @ s2 @ r1), 0, None)).sum()
    diff = big.mean(0) - small.mean(0)
    expected = diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr
    got = fid_mod.frechet_distance_from_samples(big.mean(0), s1, small)
    assert got == pytest.approx(expected, rel=1e-6)
    assert fid_mod.fid_from_features(big, small) == pytest.approx(got, rel=1e-12)
    if n > d:  # well-conditioned: scipy's sqrtm agrees closely
        assert fid_mod.frechet_distance(big.mean(0), s1, small.mean(0), s2) == pytest.approx(got, rel=1e-10)


def test_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match='mismatched'):
        fid_mod.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


# ----------------------------------------------------------------------------
# KID


def _kid_naive(x, y):
    m, d = x.shape
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_equals_naive_unbiased_mmd_when_subset_is_everything():
    rng = np.random.default_rng(5)
    real, gen = rng.standard_normal([15, 6]), rng.standard_normal([15, 6]) + 0.3
    # subset size = all samples: every subset is a permutation, the estimate is exactly the naive MMD^2.
    expected = _kid_naive(gen, real)
    assert kid_mod.kid_from_features(real, gen, num_subsets=3, max_subset_size=15) == pytest.approx(expected, rel=1e-10)


def test_kid_is_unbiased_near_zero_for_same_distribution_and_positive_otherwise():
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal([400, 8]), rng.standard_normal([400, 8])
    same = kid_mod.kid_from_features(a, b, num_subsets=50, max_subset_size=100)
    diff = kid_mod.kid_from_features(a, b + 1.0, num_subsets=50, max_subset_size=100)
    assert abs(same) < 0.05 and diff > 1.0


def test_kid_is_seeded():
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal([50, 4]), rng.standard_normal([60, 4])
    v1 = kid_mod.kid_from_features(a, b, num_subsets=5, max_subset_size=20, seed=3)
    v2 = kid_mod.kid_from_features(a, b, num_subsets=5, max_subset_size=20, seed=3)
    assert v1 == v2


# ----------------------------------------------------------------------------
# Precision / recall, density / coverage


def _knn_radius_naive(x, k):
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    return np.sort(d, axis=1)[:, k]  # column 0 is the point itself


def _pr_naive(real, gen, k):
    rr, rg = _knn_radius_naive(real, k), _knn_radius_naive(gen, k)
    d = np.sqrt(((gen[:, None] - real[None]) ** 2).sum(-1))  # [G, R]
    precision = np.mean([(d[j] <= rr).any() for j in range(len(gen))])
    recall = np.mean([(d[:, i] <= rg).any() for i in range(len(real))])
    return precision, recall


def _dc_naive(real, gen, k):
    rr = _knn_radius_naive(real, k)
    d = np.sqrt(((gen[:, None] - real[None]) ** 2).sum(-1))
    density = sum((d[j] < rr).sum() for j in range(len(gen))) / (k * len(gen))
    coverage = np.mean([(d[:, i] < rr[i]).any() for i in range(len(real))])
    return density, coverage


@pytest.mark.parametrize('row,col', [(1024, 8192), (7, 5), (1, 3)])
def test_precision_recall_match_brute_force_for_any_block_size(row, col):
    rng = np.random.default_rng(8)
    real = rng.standard_normal([60, 2])
    gen = rng.standard_normal([45, 2]) * 0.5 + np.array([2.0, 0.0])
    expected = _pr_naive(real, gen, 3)
    got = pr.precision_recall_from_features(real, gen, nhood_size=3, row_batch_size=row, col_batch_size=col)
    assert got == pytest.approx(expected, abs=1e-12)
    assert 0 < got[0] < 1 and 0 < got[1] < 1  # a non-trivial case


@pytest.mark.parametrize('row,col', [(1024, 8192), (4, 9)])
def test_density_coverage_match_brute_force(row, col):
    rng = np.random.default_rng(9)
    real = rng.standard_normal([70, 4])
    gen = rng.standard_normal([50, 4]) * 0.7 + 0.3
    expected = _dc_naive(real, gen, 5)
    got = pr.density_coverage_from_features(real, gen, nhood_size=5, row_batch_size=row, col_batch_size=col)
    assert got == pytest.approx(expected, abs=1e-12)


def test_density_is_about_one_for_same_distribution():
    rng = np.random.default_rng(10)
    real, gen = rng.standard_normal([2000, 3]), rng.standard_normal([2000, 3])
    density, coverage = pr.density_coverage_from_features(real, gen, nhood_size=5)
    assert density == pytest.approx(1.0, abs=0.1) and coverage > 0.9


def test_knn_radii_rejects_bad_k():
    with pytest.raises(ValueError, match='k-NN'):
        pr.knn_radii(torch.zeros([3, 2]), k=3)


# ----------------------------------------------------------------------------
# Inception Score


def test_inception_score_constant_classifier_is_one():
    probs = np.tile(np.array([[0.1, 0.2, 0.7]]), [100, 1])
    mean, std = inception_score.inception_score_from_probs(probs, num_splits=10)
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)


def test_inception_score_confident_even_predictions_equal_num_classes():
    c = 7
    probs = np.eye(c)[np.arange(700) % c]  # each split of 70 holds every class 10 times
    mean, std = inception_score.inception_score_from_probs(probs, num_splits=10)
    assert mean == pytest.approx(c, rel=1e-12) and std == pytest.approx(0.0, abs=1e-9)


def test_inception_score_matches_naive_kl():
    rng = np.random.default_rng(11)
    logits = rng.standard_normal([40, 5]) * 2
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    scores = []
    for i in range(4):
        part = probs[i * 10:(i + 1) * 10]
        py = part.mean(0)
        kls = [sum(p[j] * np.log(p[j] / py[j]) for j in range(5)) for p in part]
        scores.append(np.exp(np.mean(kls)))
    mean, std = inception_score.inception_score_from_probs(probs, num_splits=4)
    assert (mean, std) == pytest.approx((np.mean(scores), np.std(scores)), rel=1e-12)


# ----------------------------------------------------------------------------
# Category coverage (SoftGAN eq. 11)


def test_category_entropy_balanced_is_log_c():
    stats = category_coverage.category_stats(np.arange(1000) % 10, 10)
    assert stats['entropy'] == pytest.approx(np.log(10), rel=1e-12)
    assert stats['coverage'] == 1.0 and stats['mean_label'] == pytest.approx(4.5) and stats['count_std'] == 0


def test_category_stats_with_missing_classes():
    labels = np.array([0, 0, 0, 1, 3, 3])
    stats = category_coverage.category_stats(labels, 5)
    p = np.array([3, 1, 2]) / 6
    assert stats['coverage'] == pytest.approx(3 / 5)
    assert stats['entropy'] == pytest.approx(-(p * np.log(p)).sum())
    assert stats['counts'] == [3, 1, 0, 2, 0]
    with pytest.raises(ValueError, match='labels must lie'):
        category_coverage.category_stats(np.array([5]), 5)


# ----------------------------------------------------------------------------
# Batch EMD


@pytest.mark.parametrize('m,shape', [(1, (3,)), (6, (2, 3)), (12, (3, 4, 4))])
def test_batch_emd_equals_optimal_assignment_mean_cost(m, shape):
    gen = torch.Generator().manual_seed(m)
    x = torch.randn((m, *shape), generator=gen)
    y = torch.randn((m, *shape), generator=gen) + 0.5
    xf, yf = x.reshape(m, -1).double().numpy(), y.reshape(m, -1).double().numpy()
    cost = np.sqrt(((xf[:, None] - yf[None]) ** 2).sum(-1))
    rows, cols = scipy.optimize.linear_sum_assignment(cost)
    assert emd.batch_emd(x, y) == pytest.approx(cost[rows, cols].mean(), rel=1e-9)


def test_batch_emd_properties():
    x = torch.randn(8, 5, dtype=torch.float64)
    assert emd.batch_emd(x, x) == pytest.approx(0.0, abs=1e-6)
    assert emd.batch_emd(x, x[torch.randperm(8)]) == pytest.approx(0.0, abs=1e-6)
    # Unequal sizes: uniform weights; a 2-point batch against itself doubled is still 0.
    assert emd.batch_emd(x[:2], torch.cat([x[:2], x[:2]])) == pytest.approx(0.0, abs=1e-6)
    # A constant shift moves every point by |shift|.
    assert emd.batch_emd(x, x + torch.tensor([3.0, 0, 0, 0, 4.0], dtype=torch.float64)) == pytest.approx(5.0, rel=1e-9)
    with pytest.raises(ValueError, match='equal size'):
        emd.batch_emd(torch.zeros(2, 3), torch.zeros(2, 4))


def test_batch_emd_float16_input_and_gradients_untouched():
    x = torch.randn(4, 3, requires_grad=True)
    y = torch.randn(4, 3).half()
    v = emd.batch_emd(x, y)
    assert isinstance(v, float) and x.grad is None


# ----------------------------------------------------------------------------
# Geometry Score


def _rlt_naive(intervals, alpha_max, i_max):
    # Fine grid integration of "number of alive intervals == i".
    grid = (np.arange(200000) + 0.5) / 200000 * alpha_max
    ends = np.minimum(np.asarray(intervals)[:, 1], alpha_max) if len(intervals) else np.zeros(0)
    starts = np.asarray(intervals)[:, 0] if len(intervals) else np.zeros(0)
    alive = ((starts[None] <= grid[:, None]) & (grid[:, None] < ends[None])).sum(1)
    return np.array([(alive == i).mean() for i in range(i_max)])


def test_relative_living_times_match_grid_integration():
    intervals = np.array([[0.0, 0.3], [0.1, np.inf], [0.2, 0.25], [0.5, 0.9]])
    got = gs.relative_living_times(intervals, alpha_max=0.8, i_max=5)
    assert got == pytest.approx(_rlt_naive(intervals, 0.8, 5), abs=1e-4)
    assert got.sum() == pytest.approx(1.0)
    empty = gs.relative_living_times(np.zeros([0, 2]), 1.0, 4)
    assert empty.tolist() == [1.0, 0, 0, 0]


def _circle(rng, n, center=(0.0, 0.0), r=1.0):
    t = rng.uniform(0, 2 * np.pi, n)
    return np.stack([center[0] + r * np.cos(t), center[1] + r * np.sin(t)], 1) + rng.normal(0, 0.02, (n, 2))


def test_geometry_score_tells_one_circle_from_two():
    rng = np.random.default_rng(12)
    a, b = _circle(rng, 400), _circle(rng, 400)
    two = np.concatenate([_circle(rng, 200, (-1.5, 0)), _circle(rng, 200, (1.5, 0))])
    kw = dict(L0=32, gamma=1 / 32, i_max=10, n=10)
    ra, rb, r2 = gs.rlts(a, seed=0, **kw), gs.rlts(b, seed=1, **kw), gs.rlts(two, seed=2, **kw)
    assert np.argmax(ra.mean(0)) == 1 and np.argmax(r2.mean(0)) == 2  # one hole vs two holes
    same, different = gs.geometry_score(ra, rb), gs.geometry_score(ra, r2)
    assert same < 0.05 and different > 1.0


def test_geometry_score_is_reproducible_and_validates():
    x = np.random.default_rng(13).standard_normal([50, 3])
    assert np.array_equal(gs.rlts(x, L0=10, n=3, i_max=5), gs.rlts(x, L0=10, n=3, i_max=5))
    with pytest.raises(ValueError, match='L0'):
        gs.rlts(x, L0=51, n=1)


def test_witness_intervals_uses_distances_scaled_by_gamma():
    x = np.random.default_rng(14).standard_normal([40, 2])
    _, alpha_max = gs.witness_intervals(x, L0=8, gamma=0.5, rng=np.random.default_rng(0))
    dmax = max(np.linalg.norm(p - q) for p, q in itertools.product(x, x))
    assert 0 < alpha_max <= 0.5 * dmax + 1e-12
