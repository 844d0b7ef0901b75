"""How far the unfinished benchmark runs are: ``python -m stylegan2_softgan.bench --progress --outdir=OUT``.

A stacked run that stops early (``--stop-after``, an interrupted session) keeps its state in a checkpoint
under ``OUT/partial/<protocol>/<data set>/`` until a later command with the same configurations continues
it. Standard-protocol runs take hours per seed, so such checkpoints live across sessions; this module says,
for each one, which runs it holds, how many generator steps they have done, what their curves show so far,
and the command that continues them.

The checkpoint is read as data (tensors and plain containers, ``torch.load(weights_only=True)``). The
continuing command is not stored in it: it is rebuilt from the configurations the checkpoint records, and
printed only when the bench would build exactly those configurations from it again (the checkpoint's
file name carries their hash, so any other command would start afresh).
"""

from __future__ import annotations

import datetime
import glob
import itertools
import json
import os
import shlex

import numpy as np

import dnnlib
from stylegan2_softgan.bench import protocols, report, runner, vectorised

LAST_POINTS = report.LATE_POINTS      # curve points averaged for the recent mode count, as in the report


def find_partials(partial_dir: str) -> list[str]:
    """The checkpoint files under `partial_dir`, sorted by path."""
    return sorted(glob.glob(os.path.join(partial_dir, '**', '*.pt'), recursive=True))


def describe(path: str) -> dict:
    """What the checkpoint at `path` holds: its configurations, progress and curves so far.

    Raises ValueError when the file is not a partial benchmark run."""
    state = vectorised.read_partial(path)
    try:
        configs = [dnnlib.EasyDict(c) for c in json.loads(state['configs'])]
        curves = [json.loads(s['curve']) for s in state['seeds']]
        gen_steps, train_time = int(state['gen_steps']), float(state['train_time'])
        if not configs or len(curves) != len(configs):
            raise ValueError(f'{len(configs)} configurations but {len(curves)} curves')
        steps = int(configs[0]['steps'])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f'{path}: not a readable partial run checkpoint ({type(e).__name__}: {e})') from None
    rate = train_time / gen_steps if gen_steps else None
    return dict(path=path, configs=configs, curves=curves, gen_steps=gen_steps, steps=steps, train_time=train_time,
                seconds_left=None if rate is None else rate * (steps - gen_steps),
                written=os.path.getmtime(path))


def curve_summary(curve: list[dict], dataset: str) -> dict:
    """The last point of a curve and, for data with modes, the range of the mode count over the points so
    far and its mean over the last `LAST_POINTS` of them."""
    points = sorted(curve, key=lambda p: p['step'])
    out = dict(last=points[-1] if points else None, points=len(points), modes_min=None, modes_max=None,
               modes_last_mean=None)
    key = report.mode_key(dataset)
    modes = [p[key] for p in points if key is not None and p.get(key) is not None]
    if modes:
        out.update(modes_min=min(modes), modes_max=max(modes), modes_last_mean=float(np.mean(modes[-LAST_POINTS:])))
    return out


def resume_command(configs: list[dict], outdir: str, partial_dir: str | None = None) -> str | None:
    """The bench command that continues the stacked run of `configs` (None if no command would).

    The bench groups the seeds of one (data set, objective) that are not stored yet and trains them
    together, so a command for seeds F..L continues the run when it builds exactly `configs` for the seeds
    that are not stored, and the seeds between them that the run lacks are stored. The options the stored
    configurations cannot tell apart (--steps equal to the protocol's budget, --no-gs without seed 0) are
    left out where that gives the same configurations."""
    cfg = configs[0]
    seeds = sorted(int(c['seed']) for c in configs)
    first, count = seeds[0], seeds[-1] - seeds[0] + 1
    protocol_rule = protocols.protocol_update(cfg['suite'], cfg['protocol'])
    updates = 'protocol' if runner.update_rule(cfg) == protocol_rule else runner.update_rule(cfg)
    adam_beta1 = cfg.get('adam_beta1')
    refreshes = bool(protocols.protocol_eval_bn_refresh(cfg['suite'], cfg['protocol']))
    eval_bn = 'running' if refreshes and not cfg.get('eval_bn_refresh') else 'protocol'
    target = json.loads(json.dumps(configs, sort_keys=True))
    for steps, eval_every, gs in itertools.product((None, cfg['steps']), (None, cfg['eval_every']), (True, False)):
        try:
            candidates = protocols.make_run_configs([cfg['dataset']], [cfg['objective']], range(first, first + count),
                                                    cfg['protocol'], steps=steps, eval_every=eval_every,
                                                    data_path=cfg.get('data_path'), gs=gs,
                                                    optimizers=cfg.get('optimizers', 'preset'), updates=updates,
                                                    adam_beta1=adam_beta1, eval_bn=eval_bn)
        except ValueError:
            continue
        todo = [c for c in candidates if runner.existing_result(outdir, c) is None]
        if json.loads(json.dumps(todo, sort_keys=True)) != target:
            continue
        command = protocols.bench_command([cfg['suite']], cfg['protocol'], [cfg['objective']], count, first,
                                          [cfg['dataset']], outdir, cfg.get('data_path'), steps, eval_every,
                                          gs=gs, optimizers=cfg.get('optimizers', 'preset'), updates=updates,
                                          adam_beta1=adam_beta1, eval_bn=eval_bn)
        default_dir = os.path.join(outdir, 'partial')
        if partial_dir is not None and os.path.normpath(partial_dir) != os.path.normpath(default_dir):
            command += ' ' + shlex.quote(f'--partial-dir={partial_dir}')
        return command
    return None


def format_progress(info: dict, outdir: str, partial_dir: str | None = None) -> list[str]:
    """The lines `--progress` prints for one checkpoint (see `describe`)."""
    cfg = info['configs'][0]
    seeds = [int(c['seed']) for c in info['configs']]
    share = 100 * info['gen_steps'] / info['steps'] if info['steps'] else 0.0
    written = datetime.datetime.fromtimestamp(info['written'], datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
    left = '' if info['seconds_left'] is None else \
        f', about {dnnlib.util.format_time(info["seconds_left"])} more at that rate'
    lines = [info['path'],
             f'  {cfg["objective"]} on {cfg["dataset"]}, {runner.protocol_label(cfg)} protocol, '
             f'seed{"s" if len(seeds) > 1 else ""} {",".join(map(str, seeds))}: generator step '
             f'{info["gen_steps"]:,} of {info["steps"]:,} ({share:.1f} %); '
             f'{dnnlib.util.format_time(info["train_time"])} of training so far{left}; written {written}']
    for seed, curve in zip(seeds, info['curves']):
        summary = curve_summary(curve, cfg['dataset'])
        if summary['last'] is None:
            lines.append(f'  seed {seed}: no curve point yet')
            continue
        text = f'  seed {seed}, step {summary["last"]["step"]:,}: {runner.format_point(summary["last"])}'
        if summary['modes_last_mean'] is not None:
            text += (f'; modes over {summary["points"]} curve points {summary["modes_min"]}-{summary["modes_max"]}, '
                     f'mean of the last {min(LAST_POINTS, summary["points"])} {summary["modes_last_mean"]:.1f}')
        lines.append(text)
    stored = [int(c['seed']) for c in info['configs'] if runner.existing_result(outdir, c) is not None]
    command = None if stored else resume_command(info['configs'], outdir, partial_dir)
    if stored:
        lines.append(f'  stale: seed{"s" if len(stored) > 1 else ""} {",".join(map(str, stored))} of this run '
                     f'{"are" if len(stored) > 1 else "is"} stored in {outdir} already, so no command continues it '
                     f'(the file can be deleted)')
    elif command is None:
        lines.append('  continue: no bench command rebuilds these configurations (written by another version of '
                     'the code, or seeds between them are neither in this run nor stored)')
    else:
        lines.append(f'  continue: {command}')
    return lines


def progress_lines(outdir: str, partial_dir: str | None = None) -> list[str]:
    """Everything `--progress` prints: one block per checkpoint under the partial folder."""
    folder = partial_dir or os.path.join(outdir, 'partial')
    paths = find_partials(folder)
    if not paths:
        return [f'no partial runs under {folder}']
    lines = []
    for path in paths:
        try:
            info = describe(path)
        except ValueError as e:
            lines.extend([path, f'  unreadable: {e}'])
            continue
        lines.extend(format_progress(info, outdir, partial_dir))
    return lines
