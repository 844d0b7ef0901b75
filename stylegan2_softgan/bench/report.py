"""Tables and figures from the stored run results of an output folder.

    results.md                    for the standard protocol, the calibration (ns's final scores against
                                  PacGAN's GAN row, and per data set whether the benchmark is calibrated);
                                  a summary (per protocol: objectives × data sets, late-training mode count
                                  and its test against ns), then per data set: mean ± std over seeds per
                                  objective, published anchors beside (and, under its header, the discussion
                                  in notes.md when the folder has one)
    figures/<dataset>_samples.png samples of the first seed per objective (over the true modes for 2-D data)
    figures/<dataset>_curves.png  curves over training of the first seed: scores, batch EMD, β, Geometry Score

The standard deviation is the sample standard deviation over seeds (ddof = 1); a score that is undefined
for some seeds (reverse KL with no high-quality sample) is averaged over the seeds where it is defined and
the count is shown.

Single evaluations of the mode count move by several modes between neighbouring curve points, so each
data set also gets a late-training table: per seed, the mean of the mode count over the last
`LATE_POINTS` curve points of the second half of training (the final point included; a 2,000-step
stacked-MNIST run with a point every 500 steps has only three there, so its step-0 and step-500 points
never count as "late"); over seeds, mean ± sample std and a 95 % interval
for the mean (Student t with n − 1 degrees of freedom); each objective against `ns` with Welch's t test
(scipy.stats.ttest_ind, equal_var=False, two-sided).
"""

from __future__ import annotations

import glob
import json
import os
import platform
import time
import warnings

import numpy as np
import scipy.stats

import dnnlib

from stylegan2_softgan.bench import data2d, runner
from training import run_logging

# A hand-written discussion of the results, kept beside the runs and copied into results.md under the header.
NOTES_FILENAME = 'notes.md'

# PacGAN's Table 1, GAN row: the row the `standard` protocol's `ns` must reproduce before its comparisons mean
# anything. Per data set and score: (mean, standard error over PACGAN_TRIALS trials), as the table's caption
# states, each trial scored once at the end of training; high quality as a fraction.
PACGAN_TRIALS = 10
PACGAN_GAN_ROW = {
    'ring8': {'modes_captured': (6.3, 0.5), 'hq_fraction': (0.982, 0.002), 'reverse_kl': (0.45, 0.09)},
    'grid25': {'modes_captured': (17.3, 0.8), 'hq_fraction': (0.948, 0.007), 'reverse_kl': (0.70, 0.07)},
}
CALIBRATION_MIN_SEEDS = 5        # the "at least 5 seeds" before a data set can count as calibrated
_CALIBRATION_SCORES = (('modes captured', 'modes_captured', 1, 1), ('high quality %', 'hq_fraction', 100, 1),
                       ('reverse KL', 'reverse_kl', 1, 2))


def _pacgan_gan_text(dataset: str) -> str:
    row = PACGAN_GAN_ROW[dataset]
    return ' / '.join(f'{row[key][0] * scale:.{dec}f}±{row[key][1] * scale:.{dec}f}'
                      for _h, key, scale, dec in _CALIBRATION_SCORES)


# Published numbers (BENCHMARKS.md): full protocols, other code and budgets, printed as external anchors.
# PacGAN T1's "±" is the standard error over 10 trials; VEEGAN's are single numbers.
_PACGAN_ERRORS = f'PacGAN T1: mean ± standard error over {PACGAN_TRIALS} trials'
ANCHORS = {
    'ring8': (f'modes (of 8) / high quality % / reverse KL; {_PACGAN_ERRORS}', [
        ('GAN', _pacgan_gan_text('ring8'), 'PacGAN T1'),
        ('ALI', '6.6±0.3 / 97.6±0.4 / 0.36±0.04', 'PacGAN T1'),
        ('PacGAN2', '7.9±0.1 / 95.6±2.0 / 0.07±0.03', 'PacGAN T1'),
        ('PacGAN4', '7.8±0.1 / 95.9±1.4 / 0.07±0.02', 'PacGAN T1'),
        ('Unrolled GAN', '7.6 / 35.6 / –', 'VEEGAN T1'),
        ('VEEGAN', '8 / 52.9 / –', 'VEEGAN T1'),
    ]),
    'grid25': (f'modes (of 25) / high quality % / reverse KL; {_PACGAN_ERRORS}', [
        ('GAN', _pacgan_gan_text('grid25'), 'PacGAN T1'),
        ('ALI', '24.1±0.4 / 95.7±0.6 / 0.14±0.03', 'PacGAN T1'),
        ('PacGAN2', '23.8±0.7 / 91.3±0.8 / 0.13±0.04', 'PacGAN T1'),
        ('PacGAN4', '24.8±0.2 / 93.6±0.6 / 0.04±0.01', 'PacGAN T1'),
        ('Unrolled GAN', '23.6 / 16 / –', 'VEEGAN T1'),
        ('VEEGAN', '24.6 / 40 / –', 'VEEGAN T1'),
    ]),
    'stacked-full': ('modes (of 1000) / KL (VEEGAN setup: DCGAN, D = G)', [
        ('DCGAN', '99 / 3.4', 'PacGAN T2'),
        ('VEEGAN', '150 / 2.95', 'PacGAN T2'),
        ('PacDCGAN2', '1000 / 0.06', 'PacGAN T2'),
    ]),
    'stacked-quarter': ('modes (of 1000) / KL (Unrolled GAN setup, D = ¼ G)', [
        ('DCGAN (as the Unrolled-GAN paper ran it)', '30.6 / 5.99', 'PacGAN T3'),
        ("DCGAN (PacGAN's implementation)", '78.5 / 5.21', 'PacGAN T3'),
        ('Unrolled GAN, 10 steps', '327 / 4.66', 'PacGAN T3'),
        ('PacDCGAN4', '667 / 1.81', 'PacGAN T3'),
    ]),
}

# R3GAN (Huang et al., NeurIPS 2024, Table 3): StackedMNIST in its own setup (not PacGAN's networks).
R3GAN_STACKED = [('R3GAN', '1000 / 0.029', "R3GAN T3 (own setup)"), ('StyleGAN2', '940 / 0.42', "R3GAN T3 (own setup)")]
ANCHORS['stacked-full'][1].extend(R3GAN_STACKED)
ANCHORS['stacked-quarter'][1].extend(R3GAN_STACKED)

LATE_POINTS = 5          # curve points averaged for the late-training mode count
BASELINE = 'ns'          # every objective is compared with this one

# Columns per kind of data set: (header, key in final scores, scale, decimals).
_COLUMNS = {
    'mixture': [('modes captured', 'modes_captured', 1, 1), ('high quality %', 'hq_fraction', 100, 1),
                ('reverse KL', 'reverse_kl', 1, 2), ('W1 to true', 'emd_to_true', 1, 3)],
    'swissroll': [('W1 to true', 'emd_to_true', 1, 3), ('W1 floor', 'emd_floor', 1, 3)],
    'finite': [('W1 to true', 'emd_to_true', 1, 3), ('W1 floor', 'emd_floor', 1, 3),
               ('% near a training point', 'near_train_fraction', 100, 1),
               ('same for true samples %', 'near_train_fraction_true', 100, 1)],
    'stacked': [('modes covered (of 1000)', 'modes_covered', 1, 1), ('KL to uniform', 'kl_to_uniform', 1, 2)],
    'digits': [('mean digit (4.5)', 'mean_digit', 1, 2), ('std of class counts', 'count_std', 1, 1),
               ('digits present', 'digits_present', 1, 1), ('first step with all 10', 'first_step_all_digits', 1, 0)],
}


def dataset_kind(dataset: str) -> str:
    if dataset in data2d.list_datasets():
        return data2d.get_dataset(dataset).kind
    return 'digits' if dataset == 'mnist' else 'stacked'


def load_results(outdir: str, protocol: str | None = None) -> list[dict]:
    pattern = os.path.join(outdir, 'runs', protocol or '*', '*', '*-seed*.json')
    return [runner.load_result(p) for p in sorted(glob.glob(pattern))]


def mean_std(values) -> tuple[float | None, float | None, int]:
    """(mean, sample std, count) of the values that are not None; std is None with fewer than 2."""
    vals = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if vals.size == 0:
        return None, None, 0
    std = float(vals.std(ddof=1)) if vals.size > 1 else None
    return float(vals.mean()), std, int(vals.size)


def format_cell(values, scale: float = 1.0, decimals: int = 2) -> str:
    mean, std, count = mean_std([None if v is None else v * scale for v in values])
    if mean is None:
        return '–'
    text = f'{mean:.{decimals}f}' if std is None else f'{mean:.{decimals}f} ± {std:.{decimals}f}'
    if count < len(values):
        text += f' ({count}/{len(values)})'
    return text


def late_mean(curve: list[dict], key: str, points: int = LATE_POINTS, from_step: int = 0) -> float | None:
    """Mean of `key` over the last `points` curve points at step >= `from_step` that define it (None if none
    does)."""
    vals = [p[key] for p in sorted(curve, key=lambda p: p['step'])
            if p.get(key) is not None and p['step'] >= from_step][-points:]
    return float(np.mean(vals)) if vals else None


def interval95(values) -> tuple[float, float] | None:
    """95 % interval for the mean of the values (Student t, n − 1 degrees of freedom); None for n < 2."""
    vals = np.asarray(values, dtype=np.float64)
    if vals.size < 2:
        return None
    half = float(scipy.stats.t.ppf(0.975, vals.size - 1) * vals.std(ddof=1) / np.sqrt(vals.size))
    return float(vals.mean()) - half, float(vals.mean()) + half


def welch(a, b) -> tuple[float, float] | None:
    """(t, two-sided p) of Welch's test of mean(a) = mean(b); None when a side has fewer than 2 values or
    both have no spread."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size < 2 or b.size < 2 or (a.std() == 0 and b.std() == 0):
        return None
    with warnings.catch_warnings():       # near-identical samples: scipy warns of precision loss
        warnings.simplefilter('ignore', RuntimeWarning)
        res = scipy.stats.ttest_ind(a, b, equal_var=False)
    return float(res.statistic), float(res.pvalue)


_LATE_KEYS = {'mixture': ('modes_captured', 'hq_fraction'), 'stacked': ('modes_covered', 'kl_to_uniform')}


def make_late_table(dataset: str, objs: dict) -> list[str]:
    """The late-training table (see the module docstring); empty for data sets without modes."""
    kind = dataset_kind(dataset)
    if kind not in _LATE_KEYS:
        return []
    modes_key, second_key = _LATE_KEYS[kind]
    second = 'high quality %' if kind == 'mixture' else 'KL to uniform'
    scale = 100 if kind == 'mixture' else 1
    late_modes = {obj: [_late(r, modes_key) for r in runs] for obj, runs in objs.items()}
    num_curve = next(iter(objs.values()))[0]['config']['num_curve']
    lines = [f'Late training (per seed the mean over the last {LATE_POINTS} curve points of the second half of '
             f'training, each scoring {num_curve:,} samples; mean ± std over seeds, 95 % interval of the mean, Welch\'s t test against '
             f'`{BASELINE}`):', '',
             f'| objective | modes, late mean | 95 % interval | {second}, late mean | vs {BASELINE}: t | p | seeds |',
             '| --- | --- | --- | --- | --- | --- | --- |']
    base = [v for v in late_modes.get(BASELINE, []) if v is not None]
    for obj in _objective_order(objs):
        vals = [v for v in late_modes[obj] if v is not None]
        ci = interval95(vals)
        ci_text = '–' if ci is None else f'{ci[0]:.1f} – {ci[1]:.1f}'
        sec = format_cell([_late(r, second_key) for r in objs[obj]], scale, 1 if kind == 'mixture' else 2)
        test = None if obj == BASELINE else welch(vals, base)
        t_text, p_text = ('–', '–') if test is None else (f'{test[0]:+.2f}', f'{test[1]:.3f}')
        lines.append(f'| {obj} | {format_cell(vals, 1, 1)} | {ci_text} | {sec} | {t_text} | {p_text} | {len(vals)} |')
    return lines


def _late(run: dict, key: str) -> float | None:
    """A run's late-training mean of `key`: the last curve points of the second half of its training."""
    return late_mean(run['curve'], key, from_step=run['config']['steps'] // 2)


def mode_key(dataset: str) -> str | None:
    """The curve score that counts the modes of `dataset` (None for data without modes)."""
    kind = dataset_kind(dataset)
    return _LATE_KEYS[kind][0] if kind in _LATE_KEYS else None


def _late_modes(run: dict) -> float | None:
    """A run's late-training mode count (see make_late_table); None for data without modes."""
    key = mode_key(run['config']['dataset'])
    return None if key is None else _late(run, key)


def _mode_datasets(groups: dict, protocol: str) -> list[str]:
    """The data sets with modes that have runs under `protocol`, in report order."""
    return sorted((d for (p, d) in groups if p == protocol and dataset_kind(d) in _LATE_KEYS), key=_dataset_order)


def make_summary_table(groups: dict, protocol: str) -> list[str]:
    """One row per objective, one column per data set with modes: the late-training mode count (mean ± std
    over seeds) and Welch's p against `ns`, marked ▲/▼ where p < 0.05; empty when no data set has modes."""
    datasets = _mode_datasets(groups, protocol)
    if not datasets:
        return []
    late = {d: {obj: [v for v in map(_late_modes, runs) if v is not None] for obj, runs in groups[(protocol, d)].items()}
            for d in datasets}
    objectives = _objective_order({o for d in datasets for o in late[d]})
    lines = [f'## Summary ({protocol} protocol): late-training mode count', '',
             'Per seed the mean mode count over the last curve points of the second half of training (the tables '
             f'below say how many samples each point scores); mean ± std over seeds, the number of seeds, and '
             f'Welch\'s two-sided p against `{BASELINE}` (▲ above, ▼ below it at p < 0.05; several tests, no '
             'correction for multiple comparisons).', '',
             '| objective | ' + ' | '.join(datasets) + ' |', '| --- |' + ' --- |' * len(datasets)]
    for obj in objectives:
        cells = []
        for d in datasets:
            vals, base = late[d].get(obj, []), late[d].get(BASELINE, [])
            if not vals:
                cells.append('–')
                continue
            mean, std, n = mean_std(vals)
            decimals = 1 if dataset_kind(d) == 'mixture' else 0
            text = f'{mean:.{decimals}f}' + ('' if std is None else f' ± {std:.{decimals}f}') + f' ({n})'
            test = None if obj == BASELINE else welch(vals, base)
            if test is not None:
                mark = '' if test[1] >= 0.05 else (' ▲' if test[0] > 0 else ' ▼')
                text += f', p = {test[1]:.3f}{mark}'
            cells.append(text)
        lines.append(f'| {obj} | ' + ' | '.join(cells) + ' |')
    return lines


# Head-to-head questions the report answers beside the comparisons with ns: (objective, against, question).
QUESTIONS = (
    ('rpgan-eb', 'rpgan', "does SoftGAN's entropy bonus help RpGAN?"),
    ('soft', 'soft-emd', "SoftGAN's β: constant 0.7213 (the default) against the EMD schedule (16-pair floor)"),
    ('soft-emd', 'soft-floor-single', "SoftGAN's EMD schedule: 16-pair floor against the first release's rule"),
    ('soft-emd', 'soft-floor-zero', "SoftGAN's EMD schedule: 16-pair floor against no floor"),
    ('soft-reference', 'soft-emd', "the authors' released toy code against the paper's algorithm"),
)


def make_questions_table(groups: dict, protocol: str) -> list[str]:
    """For each of QUESTIONS with both objectives stored on some data set: the difference of the late-training
    mode counts (mean over seeds) and Welch's two-sided p; empty when no question has runs."""
    datasets = _mode_datasets(groups, protocol)
    rows = []
    for obj, other, question in QUESTIONS:
        cells, any_pair = [], False
        for d in datasets:
            objs = groups[(protocol, d)]
            a = [v for v in map(_late_modes, objs.get(obj, [])) if v is not None]
            b = [v for v in map(_late_modes, objs.get(other, [])) if v is not None]
            if not (a and b):
                cells.append('–')
                continue
            any_pair = True
            test = welch(a, b)
            decimals = 1 if dataset_kind(d) == 'mixture' else 0
            diff = float(np.mean(a) - np.mean(b))
            diff = 0.0 if round(diff, decimals) == 0 else diff          # no "-0.0"
            cells.append(f'{diff:+.{decimals}f}' + ('' if test is None else f', p = {test[1]:.3f}'))
        if any_pair:
            rows.append(f'| {question} | `{obj}` − `{other}` | ' + ' | '.join(cells) + ' |')
    if not rows:
        return []
    return ([f'Head to head ({protocol} protocol): difference of the late-training mode counts (mean over seeds) '
             "and Welch's two-sided p:", '',
             '| question | difference | ' + ' | '.join(datasets) + ' |', '| --- | --- |' + ' --- |' * len(datasets)]
            + rows)


def welch_vs_published(values, pub_mean: float, pub_se: float, pub_n: int):
    """Welch's test of mean(values) = a published mean given as mean ± standard error over pub_n trials.
    Returns (difference of the means, 95 % interval of the difference, two-sided p); interval and p are None
    with fewer than 2 values."""
    vals = np.asarray(values, dtype=np.float64)
    diff = float(vals.mean()) - pub_mean
    if vals.size < 2:
        return diff, None, None
    va, vb = float(vals.var(ddof=1)) / vals.size, pub_se ** 2        # squared standard errors of both means
    se = float(np.sqrt(va + vb))
    if se == 0.0:
        return diff, None, None
    dof = (va + vb) ** 2 / (va ** 2 / (vals.size - 1) + vb ** 2 / (pub_n - 1))
    half = float(scipy.stats.t.ppf(0.975, dof)) * se
    p = float(2 * scipy.stats.t.sf(abs(diff) / se, dof))
    return diff, (diff - half, diff + half), p


def make_calibration_table(groups: dict, protocol: str) -> list[str]:
    """For the `standard` protocol: each seed's final scores of `ns` against PacGAN's GAN row (Welch's test
    against the published mean and standard error), and per data set whether the benchmark is calibrated
    (at least CALIBRATION_MIN_SEEDS seeds and no score differing at p < 0.05); empty for other protocols or
    without `ns` runs."""
    datasets = [d for d in PACGAN_GAN_ROW if BASELINE in groups.get((protocol, d), {})
                and groups[(protocol, d)][BASELINE][0]['config']['protocol'] == 'standard']
    if not datasets:
        return []
    lines = [f"## Calibration ({protocol} protocol): `{BASELINE}` against PacGAN's GAN row", '',
             f"PacGAN's Table 1 gives its GAN row as the mean ± standard error over {PACGAN_TRIALS} trials, each "
             'scored once at the end of training, so each of our seeds is compared by its final evaluation too '
             f"(not the late-training mean); Welch's two-sided test against the published mean and standard error "
             f'({PACGAN_TRIALS - 1} degrees of freedom on their side) and the 95 % interval of the difference. A '
             f'data set counts as calibrated with at least {CALIBRATION_MIN_SEEDS} seeds and no score differing '
             'at p < 0.05; a wide interval means the seeds cannot tell, not that the numbers agree.', '',
             f'| data set | score | `{BASELINE}`, final (mean ± std, seeds) | PacGAN GAN (mean ± s.e.) | '
             'difference (95 % interval) | p |', '| --- | --- | --- | --- | --- | --- |']
    verdicts = []
    for d in datasets:
        runs = groups[(protocol, d)][BASELINE]
        differing, tested = [], 0
        for header, key, scale, dec in _CALIBRATION_SCORES:
            vals = [r['final'].get(key) for r in runs]
            vals = [v * scale for v in vals if v is not None]
            pub_mean, pub_se = (x * scale for x in PACGAN_GAN_ROW[d][key])
            if not vals:
                lines.append(f'| {d} | {header} | – | {pub_mean:.{dec}f} ± {pub_se:.{dec}f} | – | – |')
                continue
            diff, ci, p = welch_vs_published(vals, pub_mean, pub_se, PACGAN_TRIALS)
            ci_text = '' if ci is None else f' ({ci[0]:+.{dec}f} to {ci[1]:+.{dec}f})'
            if p is not None:
                tested += 1
                if p < 0.05:
                    differing.append(f'{header} (p = {p:.3f})')
            lines.append(f'| {d} | {header} | {format_cell(vals, 1, dec)} ({len(vals)}) | '
                         f'{pub_mean:.{dec}f} ± {pub_se:.{dec}f} | {diff:+.{dec}f}{ci_text} | '
                         f'{"–" if p is None else f"{p:.3f}"} |')
        seeds = len(runs)
        untested = len(_CALIBRATION_SCORES) - tested
        if differing:
            found = 'differs in ' + ', '.join(differing)
        elif tested == 0:
            found = 'too few seeds for a test'
        else:
            found = 'no score differs at p < 0.05' + (f', {untested} without a test' if untested else '')
        if seeds >= CALIBRATION_MIN_SEEDS and not differing and not untested:
            verdicts.append(f'* {d}: **calibrated** ({seeds} seeds; {found}).')
        elif seeds >= CALIBRATION_MIN_SEEDS:
            verdicts.append(f'* {d}: **not calibrated** ({seeds} seeds; {found}).')
        else:
            verdicts.append(f'* {d}: **not calibrated yet**: {seeds} of {CALIBRATION_MIN_SEEDS} seeds stored '
                            f'({found}).')
    return lines + [''] + verdicts


def environments(results: list[dict]) -> list[str]:
    """The machines and torch versions the stored runs name (runs stored before this was recorded: 'unrecorded')."""
    seen: dict = {}
    for r in results:
        env = r.get('environment')
        key = 'unrecorded (stored before runs named their machine)' if env is None else \
            f'{env["machine"]}, {env["cpu_count"]} CPU cores, torch {env["torch"]}, Python {env["python"]}'
        seen[key] = seen.get(key, 0) + 1
    return [f'{k}: {n} runs' for k, n in sorted(seen.items())]


def _group(results: list[dict]) -> dict:
    groups: dict = {}
    for r in results:
        c = r['config']
        groups.setdefault((runner.protocol_label(c), c['dataset']), {}).setdefault(c['objective'], []).append(r)
    for objs in groups.values():
        for runs in objs.values():
            runs.sort(key=lambda r: r['config']['seed'])
    return groups


def _dataset_order(name: str) -> int:
    order = ('ring8', 'grid25', 'stacked-full', 'stacked-quarter', 'swissroll', 'gaussian', 'mnist')
    return order.index(name) if name in order else len(order)


def _objective_order(objectives) -> list[str]:
    from stylegan2_softgan.bench.protocols import DEFAULT_OBJECTIVES
    known = [o for o in DEFAULT_OBJECTIVES if o in objectives]
    return known + sorted(o for o in objectives if o not in known)


def _opt_text(opt: dict) -> str:
    extra = ''.join(f', {k} {v}' for k, v in opt.items() if k not in ('class_name', 'lr'))
    return f'{opt["class_name"].split(".")[-1]} lr {opt["lr"]:g}{extra}'


def _setup_line(objs: dict) -> str:
    c = next(iter(objs.values()))[0]['config']
    G, D = c['G_kwargs'], c['D_kwargs']
    if c['suite'] == '2d':
        d_act = D.get('activation')
        d_desc = f'{D["num_layers"]}×{D["hidden_features"]} {d_act}' + (
            f' ({D["maxout_pieces"]} pieces)' if d_act == 'maxout' else '')
        nets = f'G MLP {G["num_layers"]}×{G["hidden_features"]} ReLU+BN (z dim {G["z_dim"]}), D MLP {d_desc}'
    else:
        nets = (f'DCGAN ({c["arch"]["setup"]} setup, D capacity {c["arch"]["d_capacity"]:g}): G {G["channels"]}, '
                f'D {D["channels"]}, z dim {G["z_dim"]}')
    by_opt: dict = {}
    for obj in _objective_order(objs):
        oc = objs[obj][0]['config']
        text = _opt_text(oc['G_opt']) + ('' if oc['D_opt'] == oc['G_opt'] else f' (D: {_opt_text(oc["D_opt"])})')
        by_opt.setdefault(text, []).append(obj)
    opts = '; '.join(f'{", ".join(objs_)}: {text}' for text, objs_ in by_opt.items())
    return (f'{nets}; {c["steps"]:,} generator steps (n_critic discriminator steps each), batch {c["batch"]}; '
            f'{c["num_eval"]:,} samples scored. Optimisers: {opts}')


def make_table(dataset: str, objs: dict, reference: dict | None = None) -> list[str]:
    kind = dataset_kind(dataset)
    cols = _COLUMNS[kind]
    lines = ['| objective | ' + ' | '.join(h for h, *_ in cols) + ' | seeds | train s / run |',
             '| --- | ' + ' | '.join('---' for _ in cols) + ' | --- | --- |']
    for obj in _objective_order(objs):
        runs = objs[obj]
        cells = [format_cell([r['final'].get(key) for r in runs], scale, dec) for _h, key, scale, dec in cols]
        seeds = ','.join(str(r['config']['seed']) for r in runs)
        t = np.mean([r['timing']['train_s'] for r in runs])
        lines.append(f'| {obj} | ' + ' | '.join(cells) + f' | {len(runs)} ({seeds}) | {t:.0f} |')
    if reference is not None:
        cells = [format_cell([reference['final'].get(key)], scale, dec) for _h, key, scale, dec in cols]
        lines.append('| *real data* | ' + ' | '.join(cells) + ' | – | – |')
    return lines


def _reference(outdir: str, label: str, dataset: str) -> dict | None:
    path = os.path.join(outdir, 'runs', label, dataset, 'reference.json')
    if not os.path.isfile(path):
        return None
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def _stored_text(stored: int | None, runs: int) -> str:
    if stored is None:
        return 'options no longer accepted'
    return f'all {runs} runs stored' if stored == runs else f'{stored} of {runs} runs stored'


def write_report(outdir: str, protocol: str | None = None, commands: list[tuple[str, int | None, int]] | None = None,
                 figures: bool = True, log=print) -> str:
    """Write results.md (and the figures) for the runs stored under outdir; returns the Markdown path.
    commands: the recorded bench commands as (command, runs of it stored, its runs), stored None for a
    command the present options no longer accept."""
    results = load_results(outdir, protocol)
    groups = _group(results)
    lines = ['# Mode-coverage benchmarks: results', '',
             'Written by `python -m stylegan2_softgan.bench` from the per-run JSON files under `runs/` '
             '(mean ± sample std over seeds; "(k/n)": defined for k of n seeds only, "–": undefined, e.g. the '
             'reverse KL of a run without any high-quality sample; the published numbers come from the full '
             'protocols of other code bases, with other networks and budgets, and are printed only as external '
             'anchors).', '']
    if commands:
        lines += ['Commands that produced the runs (each reuses runs already stored with the same '
                  'configuration; delete `runs/` to recompute everything). Each is recorded when it starts; the '
                  'comment says how many of its runs are stored now with the configuration the present code '
                  'gives its options: fewer than all means it has not finished, or a later command or a change '
                  'of protocol replaced some of its runs.', '']
        lines += [f'    {cmd}  # {_stored_text(stored, runs)}' for cmd, stored, runs in commands] + ['']
    for proto in sorted({p for p, _d in groups}):
        calibration = make_calibration_table(groups, proto)
        if calibration:
            lines += calibration + ['']
        summary = make_summary_table(groups, proto)
        if summary:
            lines += summary + ['']
        questions = make_questions_table(groups, proto)
        if questions:
            lines += questions + ['']
    notes_path = os.path.join(outdir, NOTES_FILENAME)
    if os.path.isfile(notes_path):
        with open(notes_path, encoding='utf-8') as f:
            lines += [f.read().strip(), '']
    threads = sorted({r['timing']['threads'] for r in results})
    lines += [f'Report written {time.strftime("%Y-%m-%d")} on {platform.machine()} with {os.cpu_count()} CPU cores; '
              f'torch threads per run: {", ".join(map(str, threads))}. Run times are wall-clock seconds of training '
              f'(evaluation excluded) and depend on the load of the machine.', '']
    if results:
        lines += ['Machines and torch of the stored runs: ' + '; '.join(environments(results)) + '. A run is a '
                  'function of its configuration on one machine and torch build; re-running elsewhere (another '
                  'CPU, torch build or thread count), or with the seeds stacked (`--vectorise`, the default for '
                  'objectives with per-sample terms), may differ in the last digits and, through them, by a few '
                  'modes on single evaluations.', '']
    if not groups:
        lines += ['No runs stored yet.', '']
    for (proto, dataset) in sorted(groups, key=lambda k: (k[0], _dataset_order(k[1]))):
        objs = groups[(proto, dataset)]
        lines += [f'## {dataset} ({proto} protocol)', '', _setup_line(objs) + '.', '']
        lines += make_table(dataset, objs, _reference(outdir, proto, dataset)) + ['']
        late = make_late_table(dataset, objs)
        if late:
            lines += late + ['']
        if dataset_kind(dataset) in ('mixture', 'stacked'):
            lines += ['*real data*: the same number of samples drawn from the true distribution, scored the same '
                      'way (the best a generator can do at this sample size' +
                      (', with this classifier).' if dataset_kind(dataset) == 'stacked' else ').'), '']
        if dataset in ANCHORS and proto is not None:
            what, rows = ANCHORS[dataset]
            lines += [f'Published anchors ({what}):', '', '| method | published | source |', '| --- | --- | --- |']
            lines += [f'| {m} | {v} | {s} |' for m, v, s in rows] + ['']
        if figures:
            made = make_figures(outdir, proto, dataset, objs, log=log)
            lines += [f'![{os.path.basename(p)}](figures/{os.path.basename(p)})' for p in made] + ['']
    path = os.path.join(outdir, 'results.md')
    text = '\n'.join(lines).rstrip() + '\n'
    dnnlib.util.atomic_write_bytes(path, text.encode('utf-8'))
    return path


# ----------------------------------------------------------------------------
# Figures.


def _plt():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: str) -> None:
    with dnnlib.util.atomic_output(path) as f:
        fig.savefig(f, dpi=90, format='png')


def _samples_of(outdir: str, run: dict):
    _json_path, npz_path = runner.run_paths(outdir, run['config'])
    if not os.path.isfile(npz_path):
        return None
    with np.load(npz_path) as d:
        return d['samples']


def make_figures(outdir: str, protocol: str, dataset: str, objs: dict, log=print) -> list[str]:
    plt = _plt()
    made = []
    order = _objective_order(objs)
    firsts = {o: objs[o][0] for o in order}
    stem = os.path.join(outdir, 'figures', f'{protocol}-{dataset}')

    samples = {o: _samples_of(outdir, r) for o, r in firsts.items()}
    samples = {o: s for o, s in samples.items() if s is not None}
    if samples:
        n = len(samples)
        cols = min(4, n)
        rows = -(-n // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.3 * rows), squeeze=False)
        kind = dataset_kind(dataset)
        for ax in axes.flat:
            ax.axis('off')
        for ax, (obj, s) in zip(axes.flat, samples.items()):
            fin = firsts[obj]['final']
            if kind in ('mixture', 'swissroll', 'finite'):
                _plot_points(ax, dataset, s, firsts[obj])
                title = obj
                if kind == 'mixture':
                    title += f': {fin["modes_captured"]}/{fin["num_modes"]} modes, {100 * fin["hq_fraction"]:.0f}% HQ'
                else:
                    title += f': W1 {fin["emd_to_true"]:.3f}'
            else:
                grid = _image_grid(s)
                ax.imshow(grid, cmap='gray' if grid.ndim == 2 else None)
                title = obj + (f': {fin["modes_covered"]} modes' if 'modes_covered' in fin
                               else f': mean digit {fin["mean_digit"]:.2f}')
            ax.set_title(f'{title} (seed {firsts[obj]["config"]["seed"]})', fontsize=8)
        fig.tight_layout()
        path = stem + '_samples.png'
        _save(fig, path)
        plt.close(fig)
        made.append(path)

    curve_keys = [k for k in ('modes_captured', 'hq_fraction', 'modes_covered', 'kl_to_uniform', 'near_train_fraction',
                              'mean_digit', 'count_std', 'digits_present', 'batch_emd', 'beta', 'geometry_score')
                  if any(any(p.get(k) is not None for p in r['curve']) for r in firsts.values())]
    if curve_keys:
        cols = min(3, len(curve_keys))
        rows = -(-len(curve_keys) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
        colours = run_logging.curve_colours(plt, len(firsts))
        for ax in axes.flat:
            ax.axis('off')
        for ax, key in zip(axes.flat, curve_keys):
            ax.axis('on')
            for k, (obj, r) in enumerate(firsts.items()):
                pts = [(p['step'], p[key]) for p in r['curve'] if p.get(key) is not None]
                if pts:   # one colour per objective in every panel, even where others have no curve (β)
                    x, y = zip(*pts)
                    ax.plot(x, y, label=obj, linewidth=1, color=colours[k % len(colours)])
            ax.set_title(key.replace('_', ' '), fontsize=9)
            ax.set_xlabel('generator step', fontsize=8)
            ax.tick_params(labelsize=7)
        crowded = len(firsts) > run_logging.LEGEND_INSIDE_MAX
        if crowded:       # a long legend goes beside the panels, not over the first one's curves
            fig.legend(*axes.flat[0].get_legend_handles_labels(), fontsize=7, loc='center right')
        else:
            axes.flat[0].legend(fontsize=7)
        seeds = sorted({r['config']['seed'] for r in firsts.values()})
        fig.suptitle(f'{dataset} ({protocol}), seed {seeds[0] if len(seeds) == 1 else seeds}: curves over training',
                     fontsize=10)
        fig.tight_layout(rect=(0, 0, 0.86, 1) if crowded else None)
        path = stem + '_curves.png'
        _save(fig, path)
        plt.close(fig)
        made.append(path)
    return made


def _plot_points(ax, dataset: str, s: np.ndarray, run: dict) -> None:
    data = data2d.get_dataset(dataset)
    lo, hi = data.plot_limits()
    if data.kind == 'mixture':
        ax.scatter(s[:, 0], s[:, 1], s=1, alpha=0.4, color='tab:blue', linewidths=0)
        ax.scatter(data.means[:, 0], data.means[:, 1], s=30, marker='x', color='tab:red', linewidths=1)
    else:
        ref = data.train_set(run['config']['seed']) if data.kind == 'finite' else \
            data.sample_true(len(s), np.random.default_rng(0))
        ax.scatter(ref[:, 0], ref[:, 1], s=4 if data.kind == 'finite' else 1, alpha=0.6, color='tab:red',
                   linewidths=0)
        ax.scatter(s[:, 0], s[:, 1], s=1, alpha=0.3, color='tab:blue', linewidths=0)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect('equal')
    ax.axis('on')
    ax.tick_params(labelsize=6)


def _image_grid(images: np.ndarray, cols: int = 8) -> np.ndarray:
    """uint8 [N, C, H, W] -> one HWC (or HW) image grid."""
    n, c, h, w = images.shape
    rows = -(-n // cols)
    grid = np.zeros((rows * h, cols * w, c), dtype=np.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        grid[r * h:(r + 1) * h, k * w:(k + 1) * w] = images[i].transpose(1, 2, 0)
    return grid[..., 0] if c == 1 else grid
