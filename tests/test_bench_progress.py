"""`python -m stylegan2_softgan.bench --progress`: what the checkpoints of unfinished runs say, and the
command it prints really continues them."""

import os
import pickle
import shlex

import pytest
import torch

from stylegan2_softgan.bench import progress, protocols, runner, vectorised
from stylegan2_softgan.bench.__main__ import main

RUN_ARGS = ['--suite=2d', '--datasets=ring8', '--objectives=ns', '--steps=24', '--eval-every=8', '--no-gs']


def _bench(args, capsys):
    capsys.readouterr()
    code = main.main(args, standalone_mode=False)
    return code, capsys.readouterr()


def _progress(out, capsys) -> list[str]:
    code, captured = _bench(['--progress', f'--outdir={out}'], capsys)
    assert code in (None, 0), captured.err
    return captured.out.splitlines()


def test_progress_names_the_step_and_a_command_that_continues_the_run(tmp_path, capsys):
    out = tmp_path / 'bench'
    args = RUN_ARGS + ['--seeds=2', f'--outdir={out}']
    code, captured = _bench(args + ['--stop-after=1e-9'], capsys)    # stops after its first generator step
    assert code in (None, 0) and 'stopped; resume with the same command' in captured.out
    lines = _progress(out, capsys)
    path = vectorised.partial_path(str(out / 'partial'), protocols.make_run_configs(
        ['ring8'], ['ns'], [0, 1], 'quick', steps=24, eval_every=8, gs=False))
    assert lines[0] == path
    assert 'ns on ring8, quick protocol, seeds 0,1: generator step 1 of 24 (4.2 %)' in lines[1]
    assert lines[2].startswith('  seed 0, step 0: modes_captured ') and lines[3].startswith('  seed 1, step 0: ')
    command = lines[4].removeprefix('  continue: ')
    assert command == 'python -m stylegan2_softgan.bench ' + shlex.join(
        ['--suite=2d', '--protocol=quick', '--objectives=ns', '--seeds=2', '--datasets=ring8', '--steps=24',
         '--eval-every=8', '--no-gs', f'--outdir={out}'])
    # The printed command picks the checkpoint up and finishes the run.
    code, captured = _bench(shlex.split(command)[3:], capsys)
    assert code in (None, 0) and f'resumed from {path} at generator step 1' in captured.out
    assert not os.path.exists(path)
    for seed in (0, 1):
        stored = runner.load_result(str(out / 'runs' / 'quick' / 'ring8' / f'ns-seed{seed}.json'))
        assert [p['step'] for p in stored['curve']] == [0, 8, 16, 24]
    assert _progress(out, capsys) == [f'no partial runs under {out / "partial"}']


def test_a_checkpoint_whose_seed_was_stored_since_is_called_stale(tmp_path, capsys):
    out = tmp_path / 'bench'
    _bench(RUN_ARGS + ['--seeds=2', f'--outdir={out}', '--stop-after=1e-9'], capsys)
    _bench(RUN_ARGS + ['--seeds=1', f'--outdir={out}'], capsys)          # seed 0 alone, to the end
    lines = _progress(out, capsys)
    assert lines[-1].startswith('  stale: seed 0 of this run is stored in ')
    assert not any(line.startswith('  continue:') for line in lines)


def test_seeds_missing_between_those_of_a_run_must_be_stored_for_a_command_to_continue_it(tmp_path):
    out = tmp_path / 'bench'
    cfgs = protocols.make_run_configs(['ring8'], ['ns'], [0, 2], 'quick', steps=6, eval_every=3, gs=False)
    for cfg in cfgs:
        cfg.G_kwargs.hidden_features = cfg.D_kwargs.hidden_features = 16
    # Built by hand (narrower nets than any command builds): no command continues it.
    assert progress.resume_command(cfgs, str(out)) is None
    cfgs = protocols.make_run_configs(['ring8'], ['ns'], [0, 2], 'quick', steps=6, eval_every=3, gs=False)
    assert progress.resume_command(cfgs, str(out)) is None              # seed 1 neither in the run nor stored
    seed1 = protocols.make_run_configs(['ring8'], ['ns'], [1], 'quick', steps=6, eval_every=3, gs=False)[0]
    runner.save_result(str(out), runner.run(seed1))
    command = progress.resume_command(cfgs, str(out))
    assert command is not None and '--seeds=3' in command and '--first-seed' not in command
    # With seed 0 the Geometry Score curve is part of the configuration, so --no-gs must be spelled out;
    # without seed 0 it changes nothing and is left out. The protocol's own budget needs no --steps.
    assert '--no-gs' in command and '--steps=6' in command
    later = protocols.make_run_configs(['ring8'], ['ns'], [3, 4], 'standard', gs=False)
    command = progress.resume_command(later, str(out), partial_dir=str(tmp_path / 'elsewhere'))
    assert command == ('python -m stylegan2_softgan.bench --suite=2d --protocol=standard --objectives=ns --seeds=2 '
                       f'--first-seed=3 --datasets=ring8 --outdir={out} --partial-dir={tmp_path / "elsewhere"}')


def test_resume_command_keeps_the_update_rule_the_adam_beta1_and_the_eval_bn_overrides(tmp_path):
    out = tmp_path / 'bench'
    cfgs = protocols.make_run_configs(['grid25'], ['ns'], [2], 'standard', updates='alternating', adam_beta1=0.2)
    command = progress.resume_command(cfgs, str(out))
    assert command == ('python -m stylegan2_softgan.bench --suite=2d --protocol=standard --objectives=ns --seeds=1 '
                       f'--first-seed=2 --datasets=grid25 --updates=alternating --adam-beta1=0.2 --outdir={out}')
    simultaneous = protocols.make_run_configs(['grid25'], ['ns'], [2], 'standard', adam_beta1=0.2)
    assert progress.resume_command(simultaneous, str(out)).endswith(f'--adam-beta1=0.2 --outdir={out}')
    assert '--updates' not in progress.resume_command(simultaneous, str(out))
    # Runs scored with training's BatchNorm statistics (stored as standard-runningbn) keep --eval-bn=running.
    running = protocols.make_run_configs(['grid25'], ['ns'], [2], 'standard', eval_bn='running')
    assert progress.resume_command(running, str(out)).endswith(f'--datasets=grid25 --eval-bn=running --outdir={out}')
    assert '--eval-bn' not in progress.resume_command(simultaneous, str(out))


def test_adam_beta1_runs_are_stored_under_their_own_label_and_refused_for_other_optimisers(tmp_path, capsys):
    out = tmp_path / 'bench'
    code, captured = _bench(RUN_ARGS + ['--seeds=1', '--steps=4', '--eval-every=4', '--adam-beta1=0.2',
                                        f'--outdir={out}'], capsys)
    assert code in (None, 0), captured.err
    stored = runner.load_result(str(out / 'runs' / 'quick-beta1-0.2' / 'ring8' / 'ns-seed0.json'))
    assert stored['config']['G_opt']['betas'] == [0.2, 0.999] and stored['config']['adam_beta1'] == 0.2
    assert '--adam-beta1=0.2' in (out / 'commands.txt').read_text()
    with pytest.raises(SystemExit) as exit_info:
        main.main(RUN_ARGS + ['--objectives=wgan', '--adam-beta1=0.2', f'--outdir={tmp_path / "other"}'])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count('\n') == 0 and "--adam-beta1: objective 'wgan' trains G with torch.optim.RMSprop" in err
    assert not (tmp_path / 'other').exists()


def test_curve_summary_by_hand():
    curve = [dict(step=s, modes_captured=m, hq_fraction=0.5) for s, m in
             [(40, 6), (0, 0), (10, 8), (20, 7), (30, 8), (50, 5), (60, 7)]]
    summary = progress.curve_summary(curve, 'ring8')
    assert summary['last']['step'] == 60 and summary['points'] == 7
    assert (summary['modes_min'], summary['modes_max']) == (0, 8)
    assert summary['modes_last_mean'] == pytest.approx((7 + 8 + 6 + 5 + 7) / 5)   # steps 20-60
    stacked = progress.curve_summary([dict(step=0, modes_covered=3, kl_to_uniform=5.0)], 'stacked-quarter')
    assert stacked['modes_last_mean'] == 3.0
    assert progress.curve_summary([dict(step=0, fid=9.0)], 'mnist')['modes_last_mean'] is None


def test_files_that_are_not_checkpoints_are_reported_and_never_executed(tmp_path, capsys):
    out = tmp_path / 'bench'
    folder = out / 'partial' / 'quick' / 'ring8'
    folder.mkdir(parents=True)
    (folder / 'garbage.pt').write_bytes(b'not a checkpoint')
    torch.save(dict(format='something-else'), folder / 'other.pt')
    torch.save(dict(format=vectorised.CHECKPOINT_FORMAT, configs='[{}]', seeds=[dict(curve='[]')], gen_steps=3,
                    train_time=1.0), folder / 'partly.pt')
    marker = tmp_path / 'executed'

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), 'w'))

    (folder / 'payload.pt').write_bytes(pickle.dumps(Payload(), protocol=2))
    lines = _progress(out, capsys)
    assert lines[::2] == [str(folder / name) for name in ('garbage.pt', 'other.pt', 'partly.pt', 'payload.pt')]
    assert all(line.startswith('  unreadable: ') for line in lines[1::2])
    assert all('not a partial benchmark run' in lines[k] for k in (1, 3, 7))
    assert "not a readable partial run checkpoint (KeyError: 'steps')" in lines[5]
    assert not marker.exists()


@pytest.mark.parametrize('extra, message', [
    ([], '--outdir='),
    (['--partial-dir=/nonexistent/partial'], '--partial-dir=/nonexistent/partial: no such folder'),
])
def test_progress_errors_are_one_line(tmp_path, capsys, extra, message):
    outdir = tmp_path / 'missing' if not extra else tmp_path
    code, captured = _bench(['--progress', f'--outdir={outdir}'] + extra, capsys)
    assert code == 2 and message in captured.err and len(captured.err.strip().splitlines()) == 1


def test_an_unreadable_checkpoint_stops_the_command_before_it_writes_anything(tmp_path, capsys):
    partial = tmp_path / 'partial'
    cfgs = protocols.make_run_configs(['ring8'], ['ns'], [0, 1], 'quick', steps=24, eval_every=8, gs=False)
    path = vectorised.partial_path(str(partial), cfgs)
    os.makedirs(os.path.dirname(path))
    with open(path, 'wb') as f:
        f.write(b'truncated')
    out = tmp_path / 'bench'
    code, captured = _bench(RUN_ARGS + ['--seeds=2', f'--outdir={out}', f'--partial-dir={partial}'], capsys)
    assert code == 2 and len(captured.err.strip().splitlines()) == 1
    assert path in captured.err and 'not a partial benchmark run' in captured.err and 'delete it' in captured.err
    assert not out.exists()
    # The progress of other configurations under the right name (a hash collision, an edited file).
    torch.save(dict(format=vectorised.CHECKPOINT_FORMAT, configs='[]'), path)
    code, captured = _bench(RUN_ARGS + ['--seeds=2', f'--outdir={out}', f'--partial-dir={partial}'], capsys)
    assert code == 2 and 'holds the progress of other configurations' in captured.err and not out.exists()
    torch.save(dict(format=vectorised.CHECKPOINT_FORMAT, configs=torch.zeros(2)), path)
    code, captured = _bench(RUN_ARGS + ['--seeds=2', f'--outdir={out}', f'--partial-dir={partial}'], capsys)
    assert code == 2 and 'holds the progress of other configurations' in captured.err and not out.exists()
