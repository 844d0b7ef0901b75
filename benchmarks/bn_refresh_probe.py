"""Does PacGAN's refresh of G's BatchNorm statistics before evaluation change the 2-D scores?

PacGAN's released 2-D code runs, after every epoch and before it scores G's samples, 50 batches of 100
latents through G in training mode with its BatchNorm population updates (momentum 0.05), so its
evaluation uses statistics of G at its current parameters. Our bench scores G with the running
statistics left by training. This script takes checkpoints of unfinished standard-protocol runs
(`OUTDIR/partial/<protocol>/<dataset>/*.pt`, see `python -m stylegan2_softgan.bench --progress`), and
scores each seed's G both ways on the same 2,500 latents, for several draws of latents, printing modes
captured, high-quality fraction and reverse KL side by side with the mean difference (refreshed − running).
The refresh follows torch's BatchNorm, which averages the batch variance; Blocks averages the batch
standard deviation, a second-order difference that this script does not reproduce.

Examples:
  python benchmarks/bn_refresh_probe.py docs/benchmarks/partial/standard/grid25/*.pt
  python benchmarks/bn_refresh_probe.py --draws=5 --momentum=0.05 --batches=50 PATH.pt
"""

from __future__ import annotations

import json
import os
import sys

import click
import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from dnnlib.cli import OneLineErrors, UserError  # noqa: E402
from stylegan2_softgan.bench import protocols, runner, vectorised  # noqa: E402

SCORES = ('modes_captured', 'hq_fraction', 'reverse_kl')
# The option defaults are the standard protocol's own refresh, so the probe measures what the bench does.
PROTOCOL_REFRESH = protocols.protocol_eval_bn_refresh('2d', 'standard')


def _num(value) -> str:
    return '–' if value is None else f'{value:.3f}'


def probe(path: str, draws: int, batches: int, batch: int, momentum: float | None) -> list[dict]:
    """Per seed of the checkpoint at `path` and per draw: the scores with running and refreshed statistics."""
    try:
        state = vectorised.read_partial(path)
    except ValueError as e:
        raise UserError(str(e)) from None
    cfgs = json.loads(state['configs'])
    if any(cfg.get('suite') != '2d' for cfg in cfgs):
        raise UserError(f'{path}: expected a checkpoint of a 2-D run (the 2d suite)')
    seed_runs = [runner.SeedRun(cfg) for cfg in cfgs]
    G = vectorised.StackedModule([r.G for r in seed_runs])
    G.load_state_dict(state['G'])
    rows = []
    for s, seed_run in enumerate(seed_runs):
        g = G.copy_of(s)
        for k in range(draws):
            latents = torch.Generator().manual_seed(1000 + k)
            running = seed_run.evaluator.final(runner.generate(g, 2500, latents).numpy())
            h = runner.refreshed_batchnorm(g, batches, batch, torch.Generator().manual_seed(2000 + k), momentum)
            refreshed = seed_run.evaluator.final(runner.generate(h, 2500, latents.manual_seed(1000 + k)).numpy())
            rows.append(dict(seed=int(cfgs[s]['seed']), draw=k, step=int(state['gen_steps']),
                             running={key: running[key] for key in SCORES},
                             refreshed={key: refreshed[key] for key in SCORES}))
    return rows


@click.command(cls=OneLineErrors, context_settings=dict(help_option_names=['-h', '--help']))
@click.option('--draws', type=click.IntRange(min=1), default=3, show_default=True,
              help='Draws of 2,500 latents per seed')
@click.option('--batches', type=click.IntRange(min=1), default=PROTOCOL_REFRESH['batches'], show_default=True,
              help='Refresh passes through G')
@click.option('--batch', type=click.IntRange(min=2), default=PROTOCOL_REFRESH['batch'], show_default=True,
              help='Latents per refresh pass')
@click.option('--momentum', type=click.FloatRange(min=0, max=1, min_open=True),
              default=PROTOCOL_REFRESH['momentum'], show_default=True,
              help="BatchNorm momentum of the refresh (torch's convention)")
@click.argument('checkpoints', nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
def main(draws, batches, batch, momentum, checkpoints):
    """Score G with training's BatchNorm statistics and with PacGAN's refreshed ones, side by side."""
    torch.set_num_threads(1)
    print(f'torch {torch.__version__}, one thread; refresh: {batches} batches of {batch}, momentum {momentum}')
    for path in checkpoints:
        rows = probe(path, draws, batches, batch, momentum)
        print(f'{path}: {len(rows)} evaluations, generator step {rows[0]["step"]}')
        for r in rows:
            a, b = r['running'], r['refreshed']
            print(f'  seed {r["seed"]} draw {r["draw"]}: running modes {a["modes_captured"]} hq {a["hq_fraction"]:.3f} '
                  f'rkl {_num(a["reverse_kl"])} | refreshed modes {b["modes_captured"]} hq {b["hq_fraction"]:.3f} '
                  f'rkl {_num(b["reverse_kl"])}')
        diffs = {key: np.mean([r['refreshed'][key] - r['running'][key] for r in rows
                               if r['refreshed'][key] is not None and r['running'][key] is not None] or [np.nan])
                 for key in SCORES}
        print('  mean difference (refreshed - running): ' +
              ', '.join(f'{key} {value:+.3f}' for key, value in diffs.items()))


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
