"""The late-training statistics of the benchmark report: late mean, 95 % interval and Welch's test against
independent computations, and the table they make."""

import math

import numpy as np
import pytest

from stylegan2_softgan.bench import report


def test_late_mean_uses_the_last_points_that_define_the_key():
    curve = [dict(step=s, modes_captured=m) for s, m in [(0, 1), (500, 9), (1000, 5), (1500, 7), (2000, None),
                                                         (2500, 8), (3000, 6), (3500, 4)]]
    curve = curve[::-1]                                   # order of the list does not matter, steps do
    assert report.late_mean(curve, 'modes_captured', points=5) == pytest.approx((5 + 7 + 8 + 6 + 4) / 5)
    assert report.late_mean(curve, 'modes_captured', points=2) == pytest.approx(5.0)
    assert report.late_mean(curve, 'absent') is None
    # Only points at or after from_step count: a short run's first points are never "late".
    assert report.late_mean(curve, 'modes_captured', points=5, from_step=2500) == pytest.approx((8 + 6 + 4) / 3)


def test_interval_and_welch_against_hand_formulas():
    a = [21.0, 22.4, 19.8, 23.1, 20.6]
    b = [18.2, 19.9, 17.5, 20.3]
    n, m = len(a), len(b)
    ma, mb = sum(a) / n, sum(b) / m
    va = sum((x - ma) ** 2 for x in a) / (n - 1)
    vb = sum((x - mb) ** 2 for x in b) / (m - 1)
    lo, hi = report.interval95(a)
    half = 2.7764451051977987 * math.sqrt(va / n)          # t_{0.975, 4}
    assert lo == pytest.approx(ma - half, rel=1e-12) and hi == pytest.approx(ma + half, rel=1e-12)
    t, p = report.welch(a, b)
    t_hand = (ma - mb) / math.sqrt(va / n + vb / m)
    dof = (va / n + vb / m) ** 2 / ((va / n) ** 2 / (n - 1) + (vb / m) ** 2 / (m - 1))
    assert t == pytest.approx(t_hand, rel=1e-12)
    # Two-sided p from the t distribution's tail, integrated numerically (independent of scipy's test).
    xs = np.linspace(abs(t_hand), 60.0, 400001)
    dens = math.gamma((dof + 1) / 2) / (math.sqrt(dof * math.pi) * math.gamma(dof / 2)) * (1 + xs ** 2 / dof) ** (-(dof + 1) / 2)
    tail = float(np.sum((dens[1:] + dens[:-1]) / 2 * np.diff(xs)))
    assert p == pytest.approx(2 * tail, rel=1e-4)
    assert report.interval95([3.0]) is None and report.welch([1.0], b) is None
    assert report.welch([2.0, 2.0], [2.0, 2.0]) is None


def _run(obj, seed, modes, hq=0.5):
    curve = [dict(step=500 * k, modes_captured=v, hq_fraction=hq) for k, v in enumerate(modes)]
    return dict(config=dict(objective=obj, seed=seed, num_curve=2500, steps=500 * (len(modes) - 1)), curve=curve,
                final={}, timing={})


def test_late_table_rows_and_the_baseline_test():
    objs = {'ns': [_run('ns', s, [0, 10, 12, 14 + s, 13, 15, 14]) for s in range(3)],
            'soft': [_run('soft', s, [0, 20, 22, 24, 23 + s, 25, 24]) for s in range(3)]}
    lines = report.make_late_table('grid25', objs)
    assert lines[0].startswith('Late training') and '2,500 samples' in lines[0]
    ns_row = next(line for line in lines if line.startswith('| ns |'))
    soft_row = next(line for line in lines if line.startswith('| soft |'))
    # 7 points over 3,000 steps: the second half is steps 1,500-3,000 (4 points), so the step-1,000 point
    # (12 for ns, 22 for soft) is left out although it is among the last 5.
    ns_late = [np.mean([14 + s, 13, 15, 14]) for s in range(3)]
    assert f'{np.mean(ns_late):.1f} ± {np.std(ns_late, ddof=1):.1f}' in ns_row
    soft_late = [np.mean([24, 23 + s, 25, 24]) for s in range(3)]
    t, p = report.welch(soft_late, ns_late)
    assert f'{t:+.2f}' in soft_row and f'{p:.3f}' in soft_row
    assert report.make_late_table('swissroll', objs) == []


def test_environments_name_machines_and_unrecorded_runs():
    runs = [dict(environment=dict(machine='x86_64', cpu_count=2, torch='2.13.0+cpu', python='3.11.7')), dict()]
    lines = report.environments(runs)
    assert 'x86_64, 2 CPU cores, torch 2.13.0+cpu, Python 3.11.7: 1 runs' in lines
    assert any(line.startswith('unrecorded') for line in lines)


def test_summary_table_against_the_late_table_numbers():
    grid = {'ns': [_run('ns', s, [0, 10, 12, 14 + s, 13, 15, 14]) for s in range(3)],
            'soft': [_run('soft', s, [0, 20, 22, 24, 23 + s, 25, 24]) for s in range(3)]}
    for objs in grid.values():
        for r in objs:
            r['config']['dataset'] = 'grid25'
    ring = {'ns': [_run('ns', s, [0, 5, 6, 7, 7 - s % 2]) for s in range(4)]}
    for r in ring['ns']:
        r['config']['dataset'] = 'ring8'
    lines = report.make_summary_table({('quick', 'grid25'): grid, ('quick', 'ring8'): ring}, 'quick')
    assert lines[0] == '## Summary (quick protocol): late-training mode count'
    assert '| objective | ring8 | grid25 |' in lines
    ns_row = next(line for line in lines if line.startswith('| ns |'))
    soft_row = next(line for line in lines if line.startswith('| soft |'))
    ring_late = [np.mean([6, 7, 7 - s % 2]) for s in range(4)]      # 5 points over 2,000 steps: steps ≥ 1,000
    ns_late = [np.mean([14 + s, 13, 15, 14]) for s in range(3)]
    soft_late = [np.mean([24, 23 + s, 25, 24]) for s in range(3)]
    assert ns_row == (f'| ns | {np.mean(ring_late):.1f} ± {np.std(ring_late, ddof=1):.1f} (4) | '
                      f'{np.mean(ns_late):.1f} ± {np.std(ns_late, ddof=1):.1f} (3) |')
    t, p = report.welch(soft_late, ns_late)
    assert t > 0 and p < 0.05
    assert soft_row == f'| soft | – | {np.mean(soft_late):.1f} ± {np.std(soft_late, ddof=1):.1f} (3), p = {p:.3f} ▲ |'
    assert report.make_summary_table({('quick', 'swissroll'): grid}, 'quick') == []


def test_questions_table_differences_and_tests():
    def runs(obj, tails):
        out = [_run(obj, s, [0, 3, 4] + tail) for s, tail in enumerate(tails)]
        for r in out:
            r['config']['dataset'] = 'grid25'
        return out
    eb = runs('rpgan-eb', [[20, 21, 22], [22, 22, 23], [21, 21, 21]])
    rp = runs('rpgan', [[19, 20, 20], [20, 20, 20], [18, 19, 21]])
    lines = report.make_questions_table({('quick', 'grid25'): {'rpgan-eb': eb, 'rpgan': rp, 'ns': rp}}, 'quick')
    row = next(line for line in lines if '`rpgan-eb` − `rpgan`' in line)
    # 6 points over 2,500 steps: the second half holds the last three (the "4" at step 1,000 is left out).
    a = [np.mean(t) for t in ([20, 21, 22], [22, 22, 23], [21, 21, 21])]
    b = [np.mean(t) for t in ([19, 20, 20], [20, 20, 20], [18, 19, 21])]
    t, p = report.welch(a, b)
    assert row.endswith(f'| {np.mean(a) - np.mean(b):+.1f}, p = {p:.3f} |')
    assert not any('soft-floor-single' in line for line in lines)       # questions without runs are left out
    assert report.make_questions_table({('quick', 'grid25'): {'ns': rp}}, 'quick') == []


def test_welch_against_a_published_mean_and_standard_error():
    import scipy.stats
    vals = [6.0, 8.0, 7.0, 6.0, 7.0]
    diff, ci, p = report.welch_vs_published(vals, 6.3, 0.5, 10)
    # scipy's test from summary statistics: the published side's std is its standard error times sqrt(n).
    ref = scipy.stats.ttest_ind_from_stats(np.mean(vals), np.std(vals, ddof=1), len(vals),
                                           6.3, 0.5 * math.sqrt(10), 10, equal_var=False)
    assert diff == pytest.approx(np.mean(vals) - 6.3, rel=1e-12)
    assert p == pytest.approx(ref.pvalue, rel=1e-10)
    # The interval's half width is the t quantile at the Welch-Satterthwaite degrees of freedom times the
    # standard error of the difference, so its end points give p = 0.05 exactly.
    va, vb = np.var(vals, ddof=1) / 5, 0.25
    se = math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va ** 2 / 4 + vb ** 2 / 9)
    assert ci[0] + ci[1] == pytest.approx(2 * diff, rel=1e-12)
    assert 2 * scipy.stats.t.sf((ci[1] - ci[0]) / 2 / se, dof) == pytest.approx(0.05, rel=1e-9)
    assert report.welch_vs_published([7.0], 6.3, 0.5, 10) == (pytest.approx(0.7), None, None)


def _final_run(dataset, seed, modes, hq, rkl, protocol='standard'):
    return dict(config=dict(objective='ns', seed=seed, dataset=dataset, protocol=protocol),
                final=dict(modes_captured=modes, hq_fraction=hq, reverse_kl=rkl), curve=[], timing={})


def test_calibration_table_verdicts():
    like_pacgan = [_final_run('ring8', s, m, h, k) for s, (m, h, k) in
                   enumerate([(6, 0.981, 0.5), (7, 0.985, 0.3), (5, 0.979, 0.6), (7, 0.983, 0.4), (6, 0.982, 0.45)])]
    lines = report.make_calibration_table({('standard', 'ring8'): {'ns': like_pacgan}}, 'standard')
    assert lines[0] == "## Calibration (standard protocol): `ns` against PacGAN's GAN row"
    row = next(line for line in lines if line.startswith('| ring8 | modes captured |'))
    diff, ci, p = report.welch_vs_published([6, 7, 5, 7, 6], 6.3, 0.5, 10)
    assert row == (f'| ring8 | modes captured | 6.2 ± 0.8 (5) | 6.3 ± 0.5 | {diff:+.1f} ({ci[0]:+.1f} to '
                   f'{ci[1]:+.1f}) | {p:.3f} |')
    hq_row = next(line for line in lines if line.startswith('| ring8 | high quality % |'))
    assert '98.2 ± 0.2 (5) | 98.2 ± 0.2 |' in hq_row
    assert lines[-1] == '* ring8: **calibrated** (5 seeds; no score differs at p < 0.05).'

    # Every seed keeping all modes, as alternating updates do: the mode count differs.
    kept_all = [_final_run('ring8', s, 8, 0.98, 0.08 + 0.01 * s) for s in range(5)]
    lines = report.make_calibration_table({('standard', 'ring8'): {'ns': kept_all}}, 'standard')
    assert lines[-1].startswith('* ring8: **not calibrated** (5 seeds; differs in modes captured (p = ')
    assert 'reverse KL (p = ' in lines[-1]

    # A score defined for one seed only (reverse KL without high-quality samples) leaves no verdict of
    # "calibrated", however well the others agree.
    no_kl = [dict(r, final=dict(r['final'], reverse_kl=None if r['config']['seed'] else 0.4)) for r in like_pacgan]
    lines = report.make_calibration_table({('standard', 'ring8'): {'ns': no_kl}}, 'standard')
    assert lines[-1] == '* ring8: **not calibrated** (5 seeds; no score differs at p < 0.05, 1 without a test).'
    assert '| ring8 | reverse KL | 0.40 (1) | 0.45 ± 0.09 | -0.05 | – |' in lines

    # Too few seeds: no verdict either way; a single seed gets no test at all.
    lines = report.make_calibration_table({('standard', 'grid25'): {'ns': kept_all[:1]}}, 'standard')
    assert lines[-1] == '* grid25: **not calibrated yet**: 1 of 5 seeds stored (too few seeds for a test).'
    assert '| grid25 | reverse KL | 0.08 (1) | 0.70 ± 0.07 | -0.62 | – |' in lines

    # Only the standard protocol has a published row to meet, and only ns is compared with it.
    quick = [_final_run('ring8', s, 8, 0.5, 0.1, protocol='quick') for s in range(5)]
    assert report.make_calibration_table({('quick', 'ring8'): {'ns': quick}}, 'quick') == []
    assert report.make_calibration_table({('standard', 'ring8'): {'soft': kept_all}}, 'standard') == []
