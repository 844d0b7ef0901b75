"""Speed of the vectorised (stacked-seed) trainer against the per-seed trainer, side by side.

    python -m stylegan2_softgan.bench.speed --dataset=grid25 --objectives=ns,soft --seeds=5 --steps=300

For each objective it trains `--steps` generator steps of the protocol's configuration (no curve
points) three ways and prints milliseconds per generator step: one seed with the per-seed trainer
(runner.run), S seeds with it one after the other (S times that, measured), and S seeds stacked in one
process (vectorised.run_stacked). The speed-up is (S seeds one by one) / (S seeds stacked); "cost of S
vs 1" is the stacked step time over the one-seed time. The device and torch threads are printed.
"""

from __future__ import annotations

import platform
import time

import click
import torch

from dnnlib.cli import CommaSeparatedList, OneLineErrors, UserError


def measure(dataset: str, objective: str, seeds: int, steps: int, protocol: str = 'quick') -> dict:
    import stylegan2_softgan  # noqa: F401  (registers the objectives)
    from stylegan2_softgan.bench import protocols, runner, vectorised
    cfgs = []
    for s in range(seeds):
        cfg = protocols.make_run_config(dataset, objective, s, protocol, steps=steps, eval_every=steps)
        cfg.num_curve = cfg.num_eval = 100       # scoring is not what is timed: keep it negligible
        cfgs.append(cfg)
    if not vectorised.stackable(cfgs[0]):
        raise UserError(f'--objectives: {objective} has batch-wide terms and cannot be stacked')
    one = [runner.run(cfgs[0])]
    per_seed_ms = sum(r['timing']['train_s'] for r in one) * 1000 / steps
    serial = [runner.run(c) for c in cfgs]
    serial_ms = sum(r['timing']['train_s'] for r in serial) * 1000 / steps
    stacked = vectorised.run_stacked(cfgs)
    stacked_ms = stacked[0]['timing']['train_s'] * 1000 / steps
    return dict(dataset=dataset, objective=objective, seeds=seeds, steps=steps, one_seed_ms=per_seed_ms,
                serial_ms=serial_ms, stacked_ms=stacked_ms, speedup=serial_ms / stacked_ms,
                cost_vs_one=stacked_ms / per_seed_ms)


@click.command(cls=OneLineErrors, context_settings=dict(help_option_names=['-h', '--help']))
@click.option('--dataset', default='grid25', show_default=True, help='a 2-D data set of the benchmark')
@click.option('--protocol', type=click.Choice(['quick', 'standard', 'full']), default='quick', show_default=True)
@click.option('--objectives', type=CommaSeparatedList(), default='ns,soft', show_default=True)
@click.option('--seeds', type=click.IntRange(min=2), default=5, show_default=True, help='S, seeds stacked')
@click.option('--steps', type=click.IntRange(min=10), default=300, show_default=True, help='generator steps timed')
@click.option('--threads', type=click.IntRange(min=1), default=1, show_default=True)
def main(dataset, protocol, objectives, seeds, steps, threads):
    """Per-step time of S stacked seeds against the per-seed trainer."""
    torch.set_num_threads(threads)
    print(f'device: CPU ({platform.processor() or platform.machine()}), torch {torch.__version__}, '
          f'{threads} thread(s); protocol {protocol}, {dataset}, {steps} generator steps, S = {seeds}')
    print(f'{"objective":<18} {"1 seed ms/step":>15} {"S one by one":>13} {"S stacked":>10} {"speed-up":>9} '
          f'{"cost S vs 1":>12}')
    for objective in objectives:
        m = measure(dataset, objective, seeds, steps, protocol)
        print(f'{objective:<18} {m["one_seed_ms"]:>15.2f} {m["serial_ms"]:>13.2f} {m["stacked_ms"]:>10.2f} '
              f'{m["speedup"]:>8.2f}x {m["cost_vs_one"]:>11.2f}x', flush=True)


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
