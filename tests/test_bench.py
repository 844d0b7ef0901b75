"""Mode-coverage benchmarks: scores against hand-computed cases and naive loops, stacked-MNIST mode
counting with a stub classifier, determinism of a run, and a tiny end-to-end run of the command."""

import itertools
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import stylegan2_softgan  # noqa: F401  (registers the objectives)
from stylegan2_softgan.bench import data2d, protocols, report, runner, scoring
from stylegan2_softgan.bench.stacked_mnist import StackedDigits, label_channels

SHARED_MNIST = Path(__file__).resolve().parents[1].parent / 'shared' / 'data' / 'mnist.npz'
RING = data2d.get_dataset('ring8')
SIGMA = RING.sigma


def _at(angle, radius=1.0):
    return [radius * math.cos(angle), radius * math.sin(angle)]

# ----------------------------------------------------------------------------
# Data sets.


def test_ring8_has_eight_distinct_modes_45_degrees_apart():
    means = RING.means
    assert means.shape == (8, 2)
    for i in range(8):
        np.testing.assert_allclose(means[i], _at(2 * math.pi * i / 8), atol=1e-12)
    dist = np.linalg.norm(means[:, None] - means[None], axis=-1) + np.eye(8) * 10
    np.testing.assert_allclose(dist.min(), 2 * math.sin(math.pi / 8), rtol=1e-12)
    assert RING.sigma == 0.01


def test_grid25_means_and_sigma():
    grid = data2d.get_dataset('grid25')
    expected = {(x, y) for x, y in itertools.product([-4, -2, 0, 2, 4], repeat=2)}
    assert {tuple(np.round(m).astype(int)) for m in grid.means} == expected
    np.testing.assert_allclose(np.abs(grid.means - np.round(grid.means)).max(), 0, atol=1e-12)
    assert grid.sigma == 0.05


def test_mixture_samples_have_the_declared_spread():
    rng = np.random.default_rng(0)
    x = RING.sample_true(20000, rng)
    idx, dist = scoring.nearest_modes(x, RING.means)
    # Distances from the mean of a 2-D isotropic Gaussian are Rayleigh(σ): mean σ·sqrt(π/2).
    np.testing.assert_allclose(dist.mean(), SIGMA * math.sqrt(math.pi / 2), rtol=0.02)
    np.testing.assert_allclose(np.bincount(idx, minlength=8) / 20000, np.full(8, 1 / 8), atol=0.01)


def test_train_set_is_a_function_of_the_seed():
    a = data2d.get_dataset('gaussian').train_set(3)
    assert a.shape == (100, 2) and a.dtype == np.float32
    np.testing.assert_array_equal(a, data2d.get_dataset('gaussian').train_set(3))
    assert not np.array_equal(a, data2d.get_dataset('gaussian').train_set(4))


def test_unknown_dataset_is_refused():
    with pytest.raises(ValueError, match='unknown 2-D data set'):
        data2d.get_dataset('ring7')

# ----------------------------------------------------------------------------
# 2-D scores, hand-computed.


def test_scores_on_mode_at_3_01_sigma_and_empty_modes():
    m = RING.means
    samples = np.array([
        m[0],                                   # exactly on mode 0: high quality
        m[1] + 3.01 * SIGMA * np.array([1, 0]),  # 3.01σ from mode 1: not high quality
        m[2] + 2.0 * SIGMA * np.array([0.6, 0.8]),  # 2σ from mode 2: high quality
        m[2],                                   # mode 2 again
    ])
    s = scoring.mode_scores(samples, m, SIGMA)
    assert s['num_samples'] == 4 and s['num_modes'] == 8
    assert s['hq_fraction'] == pytest.approx(3 / 4)
    assert s['modes_captured'] == 2                       # modes 0 and 2; 1 and 3..7 have no HQ sample
    assert s['hq_counts'] == [1, 0, 2, 0, 0, 0, 0, 0]
    p = np.array([1 / 3, 2 / 3])
    assert s['reverse_kl'] == pytest.approx(float((p * np.log(p * 8)).sum()), abs=1e-12)


def test_uniform_coverage_has_zero_reverse_kl_and_no_hq_gives_none():
    m = RING.means
    s = scoring.mode_scores(np.repeat(m, 3, axis=0), m, SIGMA)
    assert s['modes_captured'] == 8 and s['hq_fraction'] == 1.0
    assert s['reverse_kl'] == pytest.approx(0.0, abs=1e-12)
    far = scoring.mode_scores(np.zeros((5, 2)), m, SIGMA)        # the centre is 1 away from every mode
    assert far['modes_captured'] == 0 and far['hq_fraction'] == 0.0 and far['reverse_kl'] is None


def test_linspace_ring_bug():
    buggy = np.stack([np.cos(np.linspace(0, 2 * np.pi, 8)), np.sin(np.linspace(0, 2 * np.pi, 8))], axis=1)
    assert len(np.unique(np.round(buggy, 9), axis=0)) == 7
    with pytest.raises(ValueError, match='linspace'):
        scoring.mode_scores(buggy, buggy, SIGMA)
    # A generator that learned the buggy ring (7 modes at 2πk/7) hits only the mode at angle 0 of the true
    # ring: every other buggy mean is at least 6.4° (0.11) from a true mean, far beyond 3σ = 0.03.
    s = scoring.mode_scores(np.repeat(buggy[:7], 10, axis=0), RING.means, SIGMA)
    assert s['modes_captured'] == 1
    assert s['hq_fraction'] == pytest.approx(1 / 7)


def test_mode_scores_match_a_naive_loop():
    grid = data2d.get_dataset('grid25')
    rng = np.random.default_rng(1)
    samples = grid.sample_true(400, rng) + rng.normal(0, 0.1, (400, 2)) * (rng.random((400, 1)) < 0.5)
    s = scoring.mode_scores(samples, grid.means, grid.sigma)
    counts = [0] * 25
    hq = 0
    for x in samples:
        best, best_d = None, float('inf')
        for k, mu in enumerate(grid.means):
            d = math.hypot(x[0] - mu[0], x[1] - mu[1])
            if d < best_d:
                best, best_d = k, d
        if best_d <= 3 * grid.sigma:
            hq += 1
            counts[best] += 1
    assert s['hq_counts'] == counts
    assert s['hq_fraction'] == hq / 400
    assert s['modes_captured'] == sum(c > 0 for c in counts)
    kl = sum(c / hq * math.log(c / hq * 25) for c in counts if c)
    assert s['reverse_kl'] == pytest.approx(kl, abs=1e-12)


def test_scores_reject_bad_input():
    with pytest.raises(ValueError, match='non-finite'):
        scoring.mode_scores(np.array([[np.nan, 0.0]]), RING.means, SIGMA)
    with pytest.raises(ValueError, match='dimensions'):
        scoring.mode_scores(np.zeros((3, 3)), RING.means, SIGMA)
    with pytest.raises(ValueError, match='sigma'):
        scoring.mode_scores(np.zeros((3, 2)), RING.means, 0.0)


def test_finite_sample_scores_by_hand():
    train = np.array([[0.0, 0.0], [1.0, 0.0]])
    samples = np.array([[0.0, 0.029], [1.031, 0.0], [0.5, 0.5], [1.0, 0.0]])
    # radius 3·0.01 = 0.03: the first and last are within it, the second is 0.031 away.
    assert scoring.near_training_fraction(samples, train, 0.03) == pytest.approx(0.5)
    out = scoring.emd_to_true(samples, samples[::-1].copy(), samples + np.array([0.1, 0.0]))
    assert out['emd_to_true'] == pytest.approx(0.0, abs=1e-12)        # the same set, permuted
    assert out['emd_floor'] == pytest.approx(0.1, abs=1e-12)          # every point shifted by 0.1

# ----------------------------------------------------------------------------
# Stacked MNIST and digit balance.


def _stub_images(digits):
    """Images whose channel k is filled with the grey level 20·digit + 10 (as [-1, 1] floats)."""
    digits = np.asarray(digits)
    levels = torch.from_numpy(20.0 * digits + 10.0).to(torch.float32)
    return (levels[:, :, None, None] / 127.5 - 1).expand(-1, -1, 28, 28).contiguous()


def _stub_predict(images_uint8):
    assert images_uint8.dtype == torch.uint8 and images_uint8.shape[1:] == (1, 28, 28)
    return torch.div(images_uint8.to(torch.int64)[:, 0, 0, 0], 20, rounding_mode='floor')


def test_stacked_mode_counting_with_a_stub_classifier():
    rng = np.random.default_rng(0)
    digits = np.concatenate([rng.integers(0, 10, (30, 3)), [[1, 2, 3]] * 10, [[9, 0, 0]] * 5])
    labels = label_channels(_stub_predict, _stub_images(digits), batch_size=7)
    np.testing.assert_array_equal(labels, digits)
    s = scoring.stacked_mode_scores(labels)
    modes = [100 * a + 10 * b + c for a, b, c in digits]
    counts = np.bincount(modes, minlength=1000)
    p = counts[counts > 0] / len(modes)
    assert s['modes_covered'] == len(set(modes)) and s['num_modes'] == 1000 and s['num_samples'] == 45
    assert s['kl_to_uniform'] == pytest.approx(float((p * np.log(p * 1000)).sum()), abs=1e-12)


def test_stacked_all_modes_once_is_uniform_and_one_mode_is_log_1000():
    every = np.array(list(itertools.product(range(10), repeat=3)))
    s = scoring.stacked_mode_scores(every)
    assert s['modes_covered'] == 1000 and s['kl_to_uniform'] == pytest.approx(0.0, abs=1e-12)
    one = scoring.stacked_mode_scores(np.tile([[4, 4, 4]], (26, 1)))
    assert one['modes_covered'] == 1 and one['kl_to_uniform'] == pytest.approx(math.log(1000))
    np.testing.assert_array_equal(scoring.stacked_modes([[1, 2, 3], [0, 0, 7]]), [123, 7])
    with pytest.raises(ValueError, match=r'\[0, 10\)'):
        scoring.stacked_modes([[1, 2, 10]])


def test_digit_balance_and_first_iteration():
    labels = [0] * 5 + [9] * 5 + [4] * 10
    b = scoring.digit_balance(labels)
    assert b['mean_digit'] == pytest.approx((0 * 5 + 9 * 5 + 4 * 10) / 20)
    counts = np.array([5, 0, 0, 0, 10, 0, 0, 0, 0, 5])
    assert b['count_std'] == pytest.approx(float(counts.std()))
    assert b['digits_present'] == 3
    curve = [dict(step=0, digits_present=3), dict(step=200, digits_present=10), dict(step=100, digits_present=9)]
    assert scoring.first_iteration_all_present(curve) == 200
    assert scoring.first_iteration_all_present(curve[:1] + curve[2:]) is None


def test_stacked_digits_source_draws_independent_channels():
    digits = np.stack([np.full((28, 28), 10 * k, dtype=np.uint8) for k in range(10)])
    src = StackedDigits(digits, labels=np.arange(10), channels=3, resolution=32)
    imgs, labels = src.sample(2000, torch.Generator().manual_seed(0), return_labels=True)
    assert imgs.shape == (2000, 3, 32, 32)
    assert float(imgs[:, :, 0, 0].max()) == -1.0                        # padding is black
    np.testing.assert_allclose(imgs[:, :, 16, 16].numpy(), (10.0 * labels) / 127.5 - 1, atol=1e-6)
    modes = scoring.stacked_modes(labels)
    assert len(np.unique(modes)) > 800                                 # 2000 draws over 1000 modes
    with pytest.raises(ValueError, match='uint8'):
        StackedDigits(digits.astype(np.float32))

# ----------------------------------------------------------------------------
# Report helpers.


def test_mean_std_and_cells():
    assert report.mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0, 3)
    assert report.format_cell([0.5, None, 0.7], scale=100, decimals=1) == '60.0 ± 14.1 (2/3)'
    assert report.format_cell([None, None]) == '–'

# ----------------------------------------------------------------------------
# Runs.


def _tiny_2d(objective, seed=0, steps=12):
    cfg = protocols.make_run_config('ring8', objective, seed, 'quick', steps=steps, eval_every=6, gs_curve=True,
                                    save_samples=True)
    cfg.train_size = 1000
    cfg.num_eval = cfg.num_curve = 300
    cfg.G_kwargs.hidden_features = cfg.D_kwargs.hidden_features = 16
    cfg.gs = dict(num_samples=100, L0=16, gamma=1 / 16, n=2)
    return cfg


def test_run_is_deterministic_and_matches_the_protocol():
    cfg = _tiny_2d('soft')
    assert cfg.loss_kwargs.r1_gamma == 0.0 and cfg.loss_kwargs.pl_weight == 0.0
    torch.set_num_threads(1)
    a = runner.run(cfg)
    b = runner.run(cfg)
    strip = lambda r: json.loads(runner.to_json({k: v for k, v in r.items() if k != 'timing'}))  # noqa: E731
    assert strip(a) == strip(b)
    np.testing.assert_array_equal(a['_samples'], b['_samples'])
    assert a['timing']['g_steps'] == 12 and a['timing']['d_steps'] == 12
    assert [p['step'] for p in a['curve']] == [0, 6, 12]
    assert all(p['beta'] is not None and 0 <= p['beta'] <= 0.7214 for p in a['curve'])
    assert a['curve'][0]['geometry_score'] >= 0
    assert set(a['final']) >= {'modes_captured', 'hq_fraction', 'reverse_kl', 'emd_to_true', 'geometry_score'}
    # Another seed gives another run.
    c = runner.run(_tiny_2d('soft', seed=1))
    assert strip(c)['final'] != strip(a)['final']


def test_stored_result_is_reused_only_for_the_same_config(tmp_path):
    cfg = _tiny_2d('stylegan2', steps=4)
    result = runner.run(cfg)
    path = runner.save_result(str(tmp_path), result)
    assert os.path.isfile(path) and os.path.isfile(runner.run_paths(str(tmp_path), cfg)[1])
    assert runner.existing_result(str(tmp_path), cfg)['final'] == json.loads(runner.to_json(result))['final']
    other = dict(cfg, steps=5)
    assert runner.existing_result(str(tmp_path), other) is None


def test_stacked_run_with_a_stub_classifier():
    if not SHARED_MNIST.is_file():
        pytest.skip(f'{SHARED_MNIST} is absent')

    class Stub:
        predict = staticmethod(_stub_predict)

    cfg = protocols.make_run_config('stacked-quarter', 'stylegan2', 0, 'quick', steps=3, eval_every=3,
                                    data_path=str(SHARED_MNIST), save_samples=True)
    assert cfg.D_kwargs.channels == [2, 4, 8] and cfg.G_kwargs.img_channels == 3
    cfg.num_eval = 64
    cfg.num_curve = 32
    result = runner.run(cfg, classifier=Stub())
    final = result['final']
    assert final['num_samples'] == 64 and 1 <= final['modes_covered'] <= 64
    assert result['_samples'].shape == (64, 3, 28, 28) and result['_samples'].dtype == np.uint8
    assert [p['step'] for p in result['curve']] == [0, 3]


def test_command_end_to_end(tmp_path, capsys):
    from stylegan2_softgan.bench.__main__ import main
    out = tmp_path / 'bench'
    args = ['--suite=2d', '--datasets=ring8', '--objectives=stylegan2,soft', '--seeds=1', '--steps=6',
            '--eval-every=3', '--no-gs', f'--outdir={out}']
    assert main.main(args, standalone_mode=False) in (None, 0)
    for obj in ('stylegan2', 'soft'):
        data = json.loads((out / 'runs' / 'quick' / 'ring8' / f'{obj}-seed0.json').read_text())
        assert data['config']['objective'] == obj and data['config']['steps'] == 6
    md = (out / 'results.md').read_text()
    assert '| stylegan2 |' in md and '| soft |' in md and 'PacGAN T1' in md
    ref = json.loads((out / 'runs' / 'quick' / 'ring8' / 'reference.json').read_text())
    # True ring samples: all 8 modes, P(r <= 3σ) = 1 − exp(−4.5) = 0.989 of them high quality.
    assert ref['final']['modes_captured'] == 8
    assert ref['final']['hq_fraction'] == pytest.approx(1 - math.exp(-4.5), abs=0.01)
    assert '| *real data* | 8.0 |' in md
    assert (out / 'figures' / 'quick-ring8_samples.png').is_file()
    assert (out / 'figures' / 'quick-ring8_curves.png').is_file()
    assert 'python -m stylegan2_softgan.bench --suite=2d' in (out / 'commands.txt').read_text()
    # A discussion kept in notes.md is carried into the report.
    (out / 'notes.md').write_text('Hand-written discussion.\n')
    assert main.main(['--report-only', f'--outdir={out}'], standalone_mode=False) in (None, 0)
    assert 'Hand-written discussion.' in (out / 'results.md').read_text()
    # A second invocation reuses the stored runs.
    capsys.readouterr()
    assert main.main(args, standalone_mode=False) in (None, 0)
    assert '2 already stored' in capsys.readouterr().out


def test_report_counts_the_stored_runs_of_each_command(tmp_path, capsys):
    """results.md says of every recorded command how many of its runs are stored with the configuration the
    present code gives its options: a run that is missing (unfinished) or was trained under other options
    is not counted, and a line the options no longer accept is named as such."""
    from stylegan2_softgan.bench.__main__ import main
    out = tmp_path / 'bench'
    base = ['--suite=2d', '--datasets=ring8', '--objectives=stylegan2', '--steps=4', '--eval-every=2', '--no-gs',
            f'--outdir={out}']
    assert main.main(base + ['--seeds=2'], standalone_mode=False) in (None, 0)
    two = f'python -m stylegan2_softgan.bench --suite=2d --protocol=quick --objectives=stylegan2 --seeds=2 ' \
          f'--datasets=ring8 --steps=4 --eval-every=2 --no-gs --outdir={out}'
    assert (out / 'commands.txt').read_text().splitlines() == [two]
    assert f'    {two}  # all 2 runs stored' in (out / 'results.md').read_text().splitlines()

    # Another seed count, a command that would train other runs (6 steps), and one no longer accepted.
    three = two.replace('--seeds=2', '--seeds=3')
    six = two.replace('--steps=4', '--steps=6')
    with open(out / 'commands.txt', 'a', encoding='utf-8') as f:
        f.write(f'{three}\n{six}\npython -m stylegan2_softgan.bench --suite=2d --no-such-option --outdir={out}\n'
                'python -m stylegan2_softgan.bench --suite=2d --help\n')
    (out / 'runs' / 'quick' / 'ring8' / 'stylegan2-seed1.json').unlink()
    capsys.readouterr()
    assert main.main(['--report-only', f'--outdir={out}'], standalone_mode=False) in (None, 0)
    assert 'Usage:' not in capsys.readouterr().out       # the recorded help request is not run
    lines = (out / 'results.md').read_text().splitlines()
    assert f'    {two}  # 1 of 2 runs stored' in lines
    assert f'    {three}  # 1 of 3 runs stored' in lines
    assert f'    {six}  # 0 of 2 runs stored' in lines
    assert f'    python -m stylegan2_softgan.bench --suite=2d --no-such-option --outdir={out}  ' \
           f'# options no longer accepted' in lines
    assert '    python -m stylegan2_softgan.bench --suite=2d --help  # options no longer accepted' in lines


@pytest.mark.parametrize('args, message', [
    (['--objectives=nope'], "--objectives: unknown objective 'nope'"),
    (['--suite=3d'], "--suite: unknown suite '3d'"),
    (['--suite=stacked'], '--data: the stacked and digits suites need MNIST'),
    (['--datasets=ring9'], "--datasets: 'ring9' is not in the chosen suites"),
])
def test_command_errors_are_one_line(tmp_path, capsys, args, message):
    from stylegan2_softgan.bench.__main__ import main
    code = main.main(args + [f'--outdir={tmp_path / "o"}'], standalone_mode=False)
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / 'o').exists()


def test_full_protocol_is_pacgans_setup():
    cfg = protocols.make_run_config('ring8', 'ns', 0, 'full')
    assert cfg.steps == 400_000 and cfg.batch == 100 and cfg.train_size == 100_000     # 400 epochs of 100k
    assert (cfg.G_kwargs.hidden_features, cfg.G_kwargs.num_layers, cfg.G_kwargs.batchnorm, cfg.G_kwargs.z_dim) == \
        (400, 4, True, 2)
    assert (cfg.D_kwargs.activation, cfg.D_kwargs.hidden_features, cfg.D_kwargs.maxout_pieces,
            cfg.D_kwargs.num_layers) == ('maxout', 200, 5, 3)
    assert cfg.G_opt == cfg.D_opt == dict(class_name='torch.optim.Adam', lr=1e-4, betas=[0.8, 0.999])
    veegan = protocols.make_run_config('stacked-full', 'ns', 0, 'full', data_path='x.npz')
    assert veegan.D_kwargs.channels == [64, 128, 256, 512] and veegan.steps == 100_000 and veegan.num_eval == 26_000
    quarter = protocols.make_run_config('stacked-quarter', 'ns', 0, 'full', data_path='x.npz')
    assert quarter.D_kwargs.channels == [2, 4, 8] and quarter.G_kwargs.z_dim == 256 and quarter.batch == 128


def test_objectives_keep_their_optimisers_unless_asked():
    wgan = protocols.make_run_config('ring8', 'wgan-gp', 0, 'quick')
    ns = protocols.make_run_config('ring8', 'ns', 0, 'quick')
    assert wgan.G_opt['betas'] == [0.0, 0.9] and wgan.loss_kwargs.n_critic == 5
    assert ns.G_opt['lr'] == 3e-4 and ns.loss_kwargs.r1_gamma == 0.0
    same = protocols.make_run_config('ring8', 'wgan-gp', 0, 'quick', optimizers='protocol')
    assert same.G_opt == ns.G_opt and runner.protocol_label(same) == 'quick-sameopt'
    for key in ('steps', 'batch', 'G_kwargs', 'D_kwargs', 'num_eval', 'train_size'):
        assert wgan[key] == ns[key]
