"""How noisy is the batch EMD that drives SoftGAN's β? The measurement behind docs/benchmarks/beta_schedule.md.

For each 2-D mixture and sample size n, prints mean ± std over independent pairs of the exact EMD
between two true samples (the schedule's floor) and between a true sample and a "generator" that
reproduces every mode except the first k (equal weights on the rest, the true σ), plus the cost of one
EMD. A schedule can only tell a generator missing k modes from a converged one when that generator's
EMD stands several floor standard deviations above the floor.

    python -m stylegan2_softgan.bench.emd_spread --datasets=grid25,ring8 --sizes=100,200,400,800
"""

from __future__ import annotations

import dataclasses
import time

import click
import numpy as np
import torch

from dnnlib.cli import CommaSeparatedList, OneLineErrors, UserError
from stylegan2_softgan.bench import data2d
from stylegan2_softgan.emd import batch_emd


def sample_missing_modes(data: data2d.Data2D, n: int, missing: int, rng: np.random.Generator) -> np.ndarray:
    """n samples of the mixture with its first `missing` modes removed (the others equally weighted)."""
    if data.kind != 'mixture':
        raise ValueError(f'{data.name}: only mixtures have modes to miss')
    if not 0 <= missing < len(data.means):
        raise ValueError(f'{data.name}: can miss 0 to {len(data.means) - 1} modes, not {missing}')
    return dataclasses.replace(data, means=data.means[missing:]).sample_true(n, rng)


def emd_of(x: np.ndarray, y: np.ndarray) -> float:
    return batch_emd(torch.from_numpy(x), torch.from_numpy(y))


def spread_row(data: data2d.Data2D, n: int, missing: list[int], floor_pairs: int, gen_pairs: int,
               rng: np.random.Generator) -> dict:
    """Floor and missing-mode EMDs at sample size n: {'floor': [...], 'miss<k>': [...], 'ms_per_emd': t}."""
    row = {}
    t0 = time.perf_counter()
    row['floor'] = [emd_of(data.sample_true(n, rng), data.sample_true(n, rng)) for _ in range(floor_pairs)]
    row['ms_per_emd'] = 1000 * (time.perf_counter() - t0) / floor_pairs
    for k in missing:
        row[f'miss{k}'] = [emd_of(sample_missing_modes(data, n, k, rng), data.sample_true(n, rng))
                           for _ in range(gen_pairs)]
    return row


@click.command(cls=OneLineErrors)
@click.option('--datasets', type=CommaSeparatedList(), default='grid25,ring8', show_default=True,
              help='2-D mixtures (data2d registry)')
@click.option('--sizes', type=CommaSeparatedList(), default='100,200,400,800', show_default=True,
              help='sample sizes n per EMD')
@click.option('--missing', type=CommaSeparatedList(), default='1,4', show_default=True,
              help='numbers of missing modes to compare with the floor')
@click.option('--floor-pairs', type=click.IntRange(min=2), default=24, show_default=True)
@click.option('--gen-pairs', type=click.IntRange(min=2), default=8, show_default=True)
@click.option('--seed', type=int, default=0, show_default=True, help='numpy seed')
def main(datasets, sizes, missing, floor_pairs, gen_pairs, seed):
    """Spread of the batch EMD: real vs real against generators that miss modes."""
    try:
        sizes = [int(s) for s in sizes]
        missing = [int(k) for k in missing]
    except ValueError:
        raise UserError('--sizes/--missing: expected comma-separated integers') from None
    if any(s < 2 for s in sizes):
        raise UserError('--sizes: every size must be at least 2')
    if any(k < 0 for k in missing):
        raise UserError('--missing: numbers of modes must be >= 0')
    most = max(missing, default=0)
    datas = []
    for name in datasets:
        try:
            datas.append(data2d.get_dataset(name))
        except (KeyError, ValueError) as e:
            raise UserError(f'--datasets: {e}') from None
        if datas[-1].kind != 'mixture' or most >= len(datas[-1].means):
            raise UserError(f'--datasets: {name} is not a mixture with more than {most} modes')
    rng = np.random.default_rng(seed)
    heads = ['real vs real (floor)'] + [f'misses {k} mode{"s" * (k != 1)}' for k in missing]
    print('| data | n | ' + ' | '.join(heads) + ' | ms per EMD |')
    print('| --- | --- | ' + ' | '.join('---' for _ in heads) + ' | --- |')
    for data in datas:
        for n in sizes:
            row = spread_row(data, n, missing, floor_pairs, gen_pairs, rng)
            cells = [f'{np.mean(row[k]):.3f} ± {np.std(row[k], ddof=1):.3f}'
                     for k in ['floor'] + [f'miss{k}' for k in missing]]
            print(f'| {data.name} | {n} | ' + ' | '.join(cells) + f' | {row["ms_per_emd"]:.1f} |', flush=True)


if __name__ == '__main__':
    main()
