"""Does the default `python train.py` cover all ten digits?

Trains the default run (or takes a finished run folder or snapshot), draws 1,000 samples from its final
G_ema and labels them with the embedded-digits classifier at the run's resolution (metrics/classifiers.py:
a small CNN trained on 4/5 of scikit-learn's digits, ~98 % held-out accuracy). The run passes when all 10
classes appear and every class takes between 5 % and 15 % of the samples. Prints the class shares, the
wall and CPU time of the training (when it ran it) and PASS/FAIL; exit status 0 on PASS, 1 on FAIL.

Examples:
  # The default run from scratch, then the check (about 6 minutes on 2 idle cores):
  python benchmarks/default_run_digits.py
  # The same with other training options (any train.py option after --):
  python benchmarks/default_run_digits.py --outdir=/tmp/trials -- --loss=stylegan2 --seed=1
  # Only the check, on a finished run folder (its newest snapshot) or one snapshot:
  python benchmarks/default_run_digits.py --run=training-runs/00000-digits16-digits-soft
"""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time

import click

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from dnnlib.cli import OneLineErrors, UserError  # noqa: E402

NUM_SAMPLES = 1000
MIN_SHARE, MAX_SHARE = 0.05, 0.15


def _child_cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def train_default(outdir: str, train_args: list[str]) -> tuple[str, float, float]:
    """Run train.py into a fresh folder under outdir; return (run folder, wall s, CPU s of the child)."""
    os.makedirs(outdir, exist_ok=True)
    before = set(os.listdir(outdir))
    cmd = [sys.executable, os.path.join(ROOT, 'train.py'), f'--outdir={outdir}', *train_args]
    print('running: ' + ' '.join(cmd), flush=True)
    cpu0, t0 = _child_cpu_seconds(), time.time()
    rc = subprocess.call(cmd, cwd=ROOT)
    wall, cpu = time.time() - t0, _child_cpu_seconds() - cpu0
    if rc != 0:
        raise UserError(f'train.py exited with status {rc}')
    new = sorted(set(os.listdir(outdir)) - before)
    if len(new) != 1:
        raise UserError(f'--outdir: expected train.py to make one new run folder in {outdir}, found {new}')
    return os.path.join(outdir, new[0]), wall, cpu


def class_shares(snapshot: str, num: int = NUM_SAMPLES, seed: int = 0) -> dict:
    """cat_cov1k of a snapshot's G_ema against its own training data (the metric the default run logs)."""
    from metrics import metric_main
    from torch_utils import checkpoint
    snap = checkpoint.load_snapshot(snapshot)
    G = checkpoint.unpack_module(snap['modules']['G_ema']).eval().requires_grad_(False)
    result = metric_main.calc_metric('cat_cov1k', G=G, dataset_kwargs=snap['meta']['training_set_kwargs'],
                                     num_gen=num, seed=seed, cache=False, allow_download=False)
    return dict(result.results, detector=result.get('detector'), kimg=snap['meta'].get('cur_nimg', 0) / 1000)


def verdict(res: dict, num_classes: int = 10) -> tuple[bool, list[float]]:
    shares = [res[f'cat_cov1k_share{i}'] for i in range(num_classes)]
    ok = all(MIN_SHARE <= s <= MAX_SHARE for s in shares) and res['cat_cov1k_coverage'] == 1.0
    return ok, shares


@click.command(cls=OneLineErrors, context_settings=dict(help_option_names=['-h', '--help']))
@click.option('--run', 'run', metavar='PATH', help='Check this run folder (newest snapshot) or snapshot instead of training')
@click.option('--outdir', metavar='DIR', help='Where the default run goes  [default: a temporary folder, removed after]')
@click.option('--seed', type=int, default=0, show_default=True, help='Seed of the 1,000 latents')
@click.option('--json-out', metavar='FILE', help='Also write the result as JSON')
@click.argument('train_args', nargs=-1, type=click.UNPROCESSED)
def main(run, outdir, seed, json_out, train_args):
    """Train the default run (or take --run) and check that its samples cover all ten digits evenly."""
    from torch_utils import checkpoint
    wall = cpu = None
    with tempfile.TemporaryDirectory() as tmp:
        if run is None:
            run, wall, cpu = train_default(outdir or tmp, list(train_args))
        elif train_args:
            raise UserError('--run: training options cannot be given with --run (nothing is trained)')
        try:
            snapshot = checkpoint.find_latest_snapshot(run) if os.path.isdir(run) else run
            res = class_shares(snapshot, seed=seed)
        except checkpoint.CheckpointError as e:
            raise UserError(f'--run: {e}') from None
    ok, shares = verdict(res)
    print(f'snapshot: {snapshot} ({res["kimg"]:g} kimg)')
    print(f'classifier: {res["detector"]}')
    if wall is not None:
        print(f'training: wall {wall:.0f} s, CPU (user+sys) {cpu:.0f} s, {os.cpu_count()} cores')
    print(f'classes found: {sum(s > 0 for s in shares)}/10 in {NUM_SAMPLES} samples; entropy '
          f'{res["cat_cov1k_entropy"]:.3f} of {math.log(10):.3f}')
    print('shares: ' + '  '.join(f'{d}:{100 * s:.1f}%' for d, s in enumerate(shares)))
    print(f'{"PASS" if ok else "FAIL"}: every class between {100 * MIN_SHARE:.0f}% and {100 * MAX_SHARE:.0f}% '
          f'(smallest {100 * min(shares):.1f}%, largest {100 * max(shares):.1f}%)')
    if json_out:
        from dnnlib.util import atomic_output
        with atomic_output(json_out) as f:
            f.write(json.dumps(dict(res, snapshot=snapshot, train_wall_s=wall, train_cpu_s=cpu, passed=ok), indent=1).encode())
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
