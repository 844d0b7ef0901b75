"""Command line of the mode-coverage benchmarks.

    python -m stylegan2_softgan.bench --suite=2d --protocol=quick --objectives=ns,soft --seeds=5 --outdir=out
    python -m stylegan2_softgan.bench --suite=stacked --data=mnist.npz --outdir=out
    python -m stylegan2_softgan.bench --report-only --outdir=out
    python -m stylegan2_softgan.bench --progress --outdir=out
"""

from __future__ import annotations

import inspect
import json
import os
import shlex
import time

import click

import dnnlib
from dnnlib.cli import CommaSeparatedList, OneLineErrors, UserError


def _main(suite, protocol, objectives, seeds, first_seed, datasets, outdir, data, steps, eval_every, threads, gs,
          optimizers, updates, adam_beta1, eval_bn, force, report_only, progress, detector_dir, cache_dir, vectorise,
          partial_dir, checkpoint_every, stop_after):
    import torch

    import stylegan2_softgan  # noqa: F401  (registers the objectives)
    from stylegan2_softgan.bench import protocols, report, runner, vectorised

    command = protocols.bench_command(suite, protocol, objectives, seeds, first_seed, datasets, outdir, data, steps,
                                      eval_every, threads, gs, optimizers, updates, adam_beta1, eval_bn)
    if progress:
        from stylegan2_softgan.bench.progress import progress_lines
        if not os.path.isdir(outdir):
            raise UserError(f'--outdir={outdir}: no such folder')
        if partial_dir is not None and not os.path.isdir(partial_dir):
            raise UserError(f'--partial-dir={partial_dir}: no such folder')
        print('\n'.join(progress_lines(outdir, partial_dir)))
        return
    if report_only:
        if not os.path.isdir(os.path.join(outdir, 'runs')):
            raise UserError(f'--outdir={outdir}: holds no runs/ folder to report on')
        path = report.write_report(outdir, protocol=None, commands=_stored_commands(outdir))
        print(f'wrote {path}')
        return

    configs, needs_mnist = _configs(suite, protocol, objectives, seeds, first_seed, datasets, data, steps,
                                    eval_every, gs, optimizers, updates, adam_beta1, eval_bn)
    classifier = None
    if needs_mnist and not os.path.isfile(data):
        raise UserError(f'--data={data}: file not found (expected mnist.npz)')
    torch.set_num_threads(threads)

    if needs_mnist:
        from stylegan2_softgan.bench.stacked_mnist import get_classifier
        try:
            classifier, acc = get_classifier(data, cache_dir=cache_dir, detector_dir=detector_dir)
        except ValueError as e:
            raise UserError(f'--data={data}: {e}') from None
        print(f'MNIST classifier: {classifier.description}; measured test accuracy {acc:.4f}', flush=True)

    todo = [cfg for cfg in configs if force or runner.existing_result(outdir, cfg) is None]
    partial_dir = partial_dir or os.path.join(outdir, 'partial')
    groups = _groups(todo, vectorise, vectorised.stackable)
    for group in groups:
        path = vectorised.partial_path(partial_dir, group)
        if vectorise and vectorised.stackable(group[0]) and os.path.isfile(path):
            try:
                vectorised.read_partial_of(path, group)
            except ValueError as e:
                raise UserError(f'{e}; delete it to start these runs afresh') from None
    _record_command(outdir, command)
    print(f'{len(configs)} runs ({len(configs) - len(todo)} already stored in {outdir}), torch threads {threads}',
          flush=True)
    done = set()
    for cfg in configs:
        ref_path = runner.reference_path(outdir, cfg)
        if ref_path not in done and (force or not os.path.isfile(ref_path)):
            done.add(ref_path)
            ref = runner.reference(cfg, classifier)
            text = json.dumps(ref, indent=1, sort_keys=True) + '\n'
            dnnlib.util.atomic_write_bytes(ref_path, text.encode('utf-8'))
    start = time.time()
    done_runs = 0
    for k, group in enumerate(groups):
        cfg = group[0]
        seeds_text = ','.join(str(c.seed) for c in group)
        tag = f'[{k + 1}/{len(groups)}] {cfg.dataset} {cfg.objective} seed{"s" if len(group) > 1 else ""} {seeds_text}'
        say = (lambda msg, tag=tag: print(f'  {tag} {msg}', flush=True))
        left = None if stop_after is None else stop_after * 60 - (time.time() - start)
        if left is not None and left <= 0 and k > 0:
            print(f'--stop-after={stop_after}: time is up; {len(groups) - k} run groups not started', flush=True)
            break
        if vectorise and vectorised.stackable(cfg):
            print(f'{tag}: {cfg.steps:,} generator steps, {len(group)} seed(s) stacked', flush=True)
            results = vectorised.run_stacked(group, classifier=classifier, progress=say, partial_dir=partial_dir,
                                             checkpoint_every=checkpoint_every, stop_after_s=left)
            if results is None:
                print(f'{tag}: stopped; resume with the same command', flush=True)
                break
        else:
            print(f'{tag}: {cfg.steps:,} generator steps', flush=True)
            results = [runner.run(cfg, classifier=classifier, progress=say)]
        for result in results:
            path = runner.save_result(outdir, result)
            print(f'{tag}: seed {result["config"]["seed"]} done -> {path}', flush=True)
        done_runs += len(results)
        elapsed = time.time() - start
        eta = elapsed / done_runs * (len(todo) - done_runs)
        print(f'{tag}: {results[0]["timing"]["train_s"]:.0f} s of training (elapsed {dnnlib.util.format_time(elapsed)}, '
              f'about {dnnlib.util.format_time(eta)} left)', flush=True)
    path = report.write_report(outdir, protocol=None, commands=_stored_commands(outdir))
    print(f'wrote {path}', flush=True)


def _configs(suite, protocol, objectives, seeds, first_seed, datasets, data, steps, eval_every, gs, optimizers,
             updates, adam_beta1, eval_bn) -> tuple[list, bool]:
    """The run configurations of one bench command's options, in training order, and whether they read MNIST;
    bad options raise UserError naming the option. The parameters carry the command line's option names (a
    parsed command is passed by name). Touches no file, so recorded commands can be re-read."""
    import stylegan2_softgan  # noqa: F401  (registers the objectives)
    from stylegan2_softgan.bench import protocols
    from training.loss import list_losses

    suites = list(protocols.SUITES) if 'all' in suite else suite
    for s in suites:
        if s not in protocols.SUITES:
            raise UserError(f'--suite: unknown suite {s!r}; expected all or one of {", ".join(protocols.SUITES)}')
    valid = list_losses()
    for obj in objectives:
        if obj not in valid:
            raise UserError(f'--objectives: unknown objective {obj!r}; registered: {", ".join(valid)}')
    if not objectives:
        raise UserError('--objectives: give at least one objective')
    all_datasets = [d for s in suites for d in protocols.SUITES[s]]
    if datasets:
        for d in datasets:
            if d not in all_datasets:
                raise UserError(f'--datasets: {d!r} is not in the chosen suites; expected some of {", ".join(all_datasets)}')
        all_datasets = [d for d in all_datasets if d in datasets]
    needs_mnist = any(protocols.suite_of(d) != '2d' for d in all_datasets)
    if needs_mnist and data is None:
        raise UserError('--data: the stacked and digits suites need MNIST as mnist.npz '
                        '(x_train, y_train, x_test, y_test), e.g. --data=../shared/data/mnist.npz')
    # The MNIST path is kept as given (relative to where the command runs): the stored configurations, which
    # decide whether a run can be reused, then hold no path of this machine.
    try:
        configs = protocols.make_run_configs(all_datasets, objectives, range(first_seed, first_seed + seeds), protocol,
                                             steps=steps, eval_every=eval_every, data_path=data, gs=gs,
                                             optimizers=optimizers, updates=updates, adam_beta1=adam_beta1,
                                             eval_bn=eval_bn)
    except ValueError as e:
        # Messages about another option name it themselves; the rest are about the protocol.
        raise UserError(str(e) if str(e).startswith('--') else f'--protocol={protocol}: {e}') from None
    return configs, needs_mnist


def _groups(todo, vectorise: bool, stackable) -> list[list]:
    """Runs to do, grouped: all seeds of one (data set, objective) together when they can be stacked."""
    groups, index = [], {}
    for cfg in todo:
        if not (vectorise and stackable(cfg)):
            groups.append([cfg])
            continue
        key = (cfg.dataset, cfg.objective)
        if key not in index:
            index[key] = len(groups)
            groups.append([])
        groups[index[key]].append(cfg)
    return groups


def _commands_path(outdir: str) -> str:
    return os.path.join(outdir, 'commands.txt')


def _read_commands(outdir: str) -> list[str]:
    path = _commands_path(outdir)
    if not os.path.isfile(path):
        return []
    with open(path, encoding='utf-8') as f:
        return [line.rstrip('\n') for line in f if line.strip()]


def _stored_commands(outdir: str) -> list[tuple[str, int | None, int]]:
    """The commands recorded in outdir's commands.txt, each with how many of its runs are stored there with
    exactly the configuration this code gives its options: (command, stored, runs). A command recorded when
    it started may not have finished, and a command recorded before a protocol changed may now describe other
    runs; stored is None for one this code no longer accepts."""
    from stylegan2_softgan.bench import protocols, runner
    prefix = protocols.BENCH_COMMAND + ' '
    config_options = inspect.signature(_configs).parameters
    rows = []
    for command in _read_commands(outdir):
        stored, runs = None, 0
        if command.startswith(prefix):
            try:
                args = shlex.split(command[len(prefix):])
                # A help request would print the help text and exit instead of giving options.
                if set(args) & set(main.context_settings['help_option_names']):
                    raise ValueError('a help request')
                params = main.make_context('bench', args).params
                configs, _ = _configs(**{k: params[k] for k in config_options})
            except (click.ClickException, ValueError):
                configs = None
            if configs is not None:
                runs = len(configs)
                stored = sum(runner.existing_result(outdir, cfg) is not None for cfg in configs)
        rows.append((command, stored, runs))
    return rows


def _record_command(outdir: str, command: str) -> None:
    commands = _read_commands(outdir)
    if command not in commands:
        os.makedirs(outdir, exist_ok=True)
        with open(_commands_path(outdir), 'a', encoding='utf-8') as f:
            f.write(command + '\n')


@click.command(cls=OneLineErrors, context_settings=dict(help_option_names=['-h', '--help']))
@click.option('--suite', type=CommaSeparatedList(), default='2d', show_default=True,
              help='2d, stacked, digits, or all (comma-separated)')
@click.option('--protocol', type=click.Choice(['quick', 'standard', 'full']), default='quick', show_default=True,
              help="quick: small nets, minutes per run on a CPU; standard: PacGAN's released 2-D configuration "
                   "(the calibration); full: the published setups")
@click.option('--objectives', type=CommaSeparatedList(), default='ns,soft,far,swgan,wgan-gp,hinge,ms',
              show_default=True, help='registered --loss names')
@click.option('--seeds', type=click.IntRange(min=1), default=5, show_default=True,
              help='runs per objective: seeds F..F+N-1 (F = --first-seed)')
@click.option('--first-seed', type=click.IntRange(min=0), default=0, show_default=True,
              help='first seed: lets separate processes (one per core) train different seeds of one table')
@click.option('--datasets', type=CommaSeparatedList(), default='', help='restrict to these data sets of the suites')
@click.option('--outdir', type=click.Path(file_okay=False), default='bench-results', show_default=True,
              help='runs/, results.md and figures/ go here')
@click.option('--data', type=click.Path(dir_okay=False), default=None, help='mnist.npz (stacked and digits suites)')
@click.option('--steps', type=click.IntRange(min=1), default=None, help='override the generator steps of every run')
@click.option('--eval-every', type=click.IntRange(min=1), default=None, help='override the curve interval (generator steps)')
@click.option('--threads', type=click.IntRange(min=1), default=1, show_default=True,
              help='torch CPU threads (one is fastest for these small nets on a busy machine)')
@click.option('--gs/--no-gs', default=True, show_default=True, help='Geometry Score curve for seed 0 of 2-D runs')
@click.option('--optimizers', type=click.Choice(['preset', 'protocol']), default='preset', show_default=True,
              help="preset: each objective's registered optimiser (RMSProp for WGAN ...), else the protocol's; "
                   "protocol: the protocol's optimiser for all (runs stored under <protocol>-sameopt)")
@click.option('--updates', type=click.Choice(['protocol', 'alternating']), default='protocol', show_default=True,
              help="protocol: the protocol's update rule (simultaneous G and D steps for standard, as PacGAN's "
                   "code; alternating for the others); alternating: G's step, then D's, for all (standard runs "
                   "stored under standard-alternating)")
@click.option('--adam-beta1', type=click.FloatRange(min=0, max=1, max_open=True), default=None,
              help="replace β1 of every run's Adam optimisers (for G and D; objectives trained with another "
                   "optimiser are refused); runs stored under <protocol>-beta1-<value>. 0.2 is the other "
                   "reading of PacGAN's blocks Adam(beta1=0.8) (standard protocol)")
@click.option('--eval-bn', type=click.Choice(['protocol', 'running']), default='protocol', show_default=True,
              help="protocol: G's BatchNorm statistics as the protocol scores them (standard: refreshed at G's "
                   "current parameters before every evaluation, as PacGAN's code; the others: training's "
                   "running statistics); running: training's running statistics for all (standard runs stored "
                   "under standard-runningbn)")
@click.option('--vectorise/--no-vectorise', default=True, show_default=True,
              help='train the seeds of one objective stacked in one process (objectives with per-sample terms)')
@click.option('--partial-dir', type=click.Path(file_okay=False), default=None,
              help='checkpoints of unfinished stacked runs  [default: OUTDIR/partial]')
@click.option('--checkpoint-every', type=click.IntRange(min=1), default=1000, show_default=True,
              help='generator steps between checkpoints of a stacked run')
@click.option('--stop-after', type=click.FloatRange(min=0, min_open=True), default=None,
              help='minutes: stop (checkpointing the stacked run in progress) after this long; rerun to continue')
@click.option('--force', is_flag=True, help='recompute runs that are already stored')
@click.option('--report-only', is_flag=True, help='only rewrite results.md and the figures from stored runs')
@click.option('--progress', is_flag=True,
              help='only list the unfinished (checkpointed) runs: steps done, curves so far, the command that '
                   'continues them')
@click.option('--detector-dir', type=click.Path(file_okay=False), default=None, help='folder holding mnist-cnn.pt')
@click.option('--cache-dir', type=click.Path(file_okay=False), default=None, help='cache folder for the classifier')
def main(**kwargs):
    """Mode-coverage benchmarks: every objective with the same networks, budget and seeds."""
    _main(**kwargs)


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
