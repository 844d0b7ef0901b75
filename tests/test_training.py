"""The training loop and train.py: a tick of each loss, exact resume, two-process training, ADA,
safe checkpoints and one-line CLI errors. Tiny StyleGAN2 networks on the embedded 8x8 digits."""

import copy
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import train as train_script
from torch_utils import checkpoint, training_stats
from training import training_loop
from training.ada import AdaController

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY = ['--data=builtin:digits8', '--cfg=digits', '--cbase=64', '--cmax=16', '--map=1', '--batch=16',
        '--aug=noaug', '--metrics=none', '--workers=0', '--tick=0.5', '--snap=1', '--kimg=1']


def resolve(*args):
    ctx = train_script.main.make_context('train.py', list(args))
    return train_script.resolve_options(**ctx.params)


def run_loop(c, run_dir, **overrides):
    c = copy.deepcopy(c)
    c['image_snapshot_ticks'] = None     # image grids are tested once, explicitly
    c.update(overrides)
    os.makedirs(run_dir, exist_ok=True)
    return training_loop.training_loop(run_dir=str(run_dir), rank=0, **c)


def state_of(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize('loss', ['stylegan2', 'soft', 'soft-emd'])
def test_one_tick_of_each_loss_has_finite_losses_and_gradients(tmp_path, loss):
    desc, c = resolve(*TINY, f'--loss={loss}', '--kimg=0.064', '--tick=0.064')
    collector = training_stats.Collector(regex='Loss/.*')
    metrics = ['emd64'] if loss == 'soft-emd' else []     # the metric registry, called at each snapshot
    result = run_loop(c, tmp_path / 'run', image_snapshot_ticks=1, metrics=metrics)
    collector.update()
    for name in ['Loss/G/loss', 'Loss/D/loss', 'Loss/scores/real', 'Loss/scores/fake']:
        assert collector.num(name) > 0 and np.isfinite(collector.mean(name)), name
    assert collector.num_nonfinite('Loss/G/loss') == 0 and collector.num_nonfinite('Loss/D/loss') == 0
    if loss == 'soft':       # the default: constant β = 1/(2 ln 2), nothing measured
        assert collector.num('Loss/beta') > 0 and collector.mean('Loss/beta') == pytest.approx(1 / (2 * np.log(2)))
        assert collector.num('Loss/emd') == 0
    if loss == 'soft-emd':   # the EMD schedule
        assert collector.num('Loss/beta') > 0 and 0 <= collector.mean('Loss/beta') <= 0.7214
        assert collector.num('Loss/emd') > 0 and collector.mean('Loss/emd') > collector.mean('Loss/emd_floor') > 0
    for p in list(result.G.parameters()) + list(result.D.parameters()):
        assert torch.isfinite(p).all()
    run = tmp_path / 'run'
    # Ticks under 1 kimg: file names carry the exact kimg (whole-kimg names would repeat).
    for name in ['log.txt', 'stats.jsonl', 'reals.png', 'fakes_init.png', 'fakes000000.064.png',
                 'network-snapshot-000000.064.pt', 'plot-losses.png']:
        assert (run / name).is_file(), name
    if metrics:
        line = json.loads(open(run / 'metric-emd64.jsonl').readline())
        assert line['snapshot_pkl'] == 'network-snapshot-000000.064.pt'
        assert line['results']['emd64'] > line['results']['emd64_floor'] > 0
        assert (run / 'plot-metrics.png').is_file()


def test_soft_logs_beta_starting_at_the_bound(tmp_path):
    desc, c = resolve(*TINY, '--loss=soft', '--kimg=0.064', '--tick=0.016', '--beta-interval=1', '--beta-ema=0')
    run_loop(c, tmp_path / 'run', network_snapshot_ticks=None)
    stats = [json.loads(line) for line in open(tmp_path / 'run' / 'stats.jsonl')]
    betas = [r['Loss/beta']['mean'] for r in stats if 'Loss/beta' in r]
    emds = [r['Loss/emd']['mean'] for r in stats if 'Loss/emd' in r]
    # The first measurement is the reference: β = β_max exactly; later ones follow the EMD ratio.
    assert betas[0] == pytest.approx(1 / (2 * np.log(2)), rel=1e-9)
    assert len(emds) == len(betas) >= 3


def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path):
    desc, c = resolve(*TINY, '--loss=soft', '--kimg=2', '--tick=1', '--aug=ada', '--augpipe=bgc', '--beta-interval=1',
                      '--target=0.2')
    c['ada_kimg'] = 1     # make p move visibly in two kimg
    full = run_loop(c, tmp_path / 'full')
    snap = tmp_path / 'full' / 'network-snapshot-000001.pt'
    assert snap.is_file()
    resumed = run_loop(c, tmp_path / 'resumed', resume=str(snap))
    assert resumed.cur_nimg == full.cur_nimg and resumed.batch_idx == full.batch_idx
    for name in ['G', 'D', 'G_ema']:
        a, b = state_of(full[name]), state_of(resumed[name])
        for key in a:
            assert torch.equal(a[key], b[key]), f'{name}.{key} differs after resume'
    assert float(full.augment_pipe.p) == float(resumed.augment_pipe.p) > 0
    sched_a, sched_b = full.loss.beta_schedule.state_dict(), resumed.loss.beta_schedule.state_dict()
    recent_a, recent_b = sched_a.pop('recent'), sched_b.pop('recent')     # the recent samples: a tensor or None
    assert sched_a == sched_b
    assert (recent_a is None and recent_b is None) or torch.equal(recent_a, recent_b)
    assert torch.equal(full.loss.pl_mean, resumed.loss.pl_mean)


def test_snapshot_holds_full_state_and_loads_as_data(tmp_path):
    desc, c = resolve(*TINY, '--loss=soft', '--kimg=0.032', '--tick=0.032')
    run_loop(c, tmp_path / 'run')
    snap = checkpoint.load_snapshot(str(tmp_path / 'run' / 'network-snapshot-000000.032.pt'))
    assert set(snap['modules']) >= {'G', 'D', 'G_ema'}
    st = snap['state']
    assert st['cur_nimg'] == 32 and set(st['optimizers']) == {'G', 'D'}
    assert 'beta_schedule' in st['loss'] and 'rng' in st
    assert snap['meta']['training_set_kwargs']['class_name'] == 'training.dataset.DigitsDataset'
    G = checkpoint.load_network(str(tmp_path / 'run' / 'network-snapshot-000000.032.pt'))
    img = G(torch.randn(2, G.z_dim), torch.zeros(2, 0), noise_mode='const')
    assert img.shape == (2, 1, 8, 8)


def test_ada_probability_moves_toward_target():
    class Pipe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer('p', torch.zeros([]))

    pipe = Pipe()
    ada = AdaController(pipe, target=0.6, interval=2, speed_kimg=1, batch_size=10)
    step = 10 * 2 / 1000
    # D is always confident on reals: sign = +1 > target, so p rises by one step per adjustment.
    for batch_idx in range(1, 7):
        training_stats.report('Loss/signs/real', torch.ones(10))
        ada.maybe_adjust(batch_idx)
    assert float(pipe.p) == pytest.approx(3 * step)
    # D unsure (signs average 0 < 0.6): p falls, never below zero.
    for batch_idx in range(7, 21):
        training_stats.report('Loss/signs/real', torch.tensor([1.0, -1.0]))
        ada.maybe_adjust(batch_idx)
    assert float(pipe.p) == 0.0


def test_ada_state_carries_pending_signs():
    class Pipe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer('p', torch.zeros([]))

    a_pipe, b_pipe = Pipe(), Pipe()
    a = AdaController(a_pipe, target=0.0, interval=4, speed_kimg=1, batch_size=1)
    training_stats.report('Loss/signs/real', torch.tensor([1.0, 1.0, -1.0]))
    state = a.state_dict()                  # closes the interval and carries its sums
    b = AdaController(b_pipe, target=0.0, interval=4, speed_kimg=1, batch_size=1)
    b.load_state_dict(state)
    b.maybe_adjust(4)
    assert b.last_rt == pytest.approx(1 / 3)
    assert float(b_pipe.p) > 0


# ----------------------------------------------------------------------------
# Two processes (gloo) against one process with the same total batch.


def test_two_process_training_matches_single_process(tmp_path):
    desc, c = resolve(*TINY, '--loss=stylegan2', '--kimg=0.128', '--tick=0.128', '--batch=8', '--batch-gpu=4',
                      '--mbstd-group=4')
    # Stochastic parts that draw from per-rank RNGs are switched off: noise inputs and style mixing.
    c['loss_kwargs']['style_mixing_prob'] = 0.0
    c['G_kwargs']['synthesis_kwargs']['use_noise'] = False
    c['image_snapshot_ticks'] = None
    single = run_loop(c, tmp_path / 'single')
    c2 = dict(copy.deepcopy(c), num_gpus=2, run_dir=str(tmp_path / 'double'), options_for_meta={})
    os.makedirs(c2['run_dir'])
    train_script.launch(c2)
    snap = checkpoint.load_snapshot(str(tmp_path / 'double' / 'network-snapshot-000000.128.pt'))
    for name in ['G', 'D']:
        ref = state_of(single[name])
        got = snap['modules'][name]['state_dict']
        for key in ref:
            if key.endswith('w_avg'):   # tracked per rank from that rank's latents, as in stylegan2-ada
                continue
            assert torch.allclose(ref[key], got[key], rtol=1e-4, atol=1e-5), f'{name}.{key}'
    log = open(tmp_path / 'double' / 'log.txt').read()
    assert ', 2 processes on cpu (' in log


# ----------------------------------------------------------------------------
# train.py


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, os.path.join(REPO, 'train.py'), *args], capture_output=True, text=True,
                          cwd=cwd)


@pytest.mark.parametrize('args, message', [
    (['--batch=0'], "Invalid value for '--batch'"),
    (['--loss=nope'], "Invalid value for '--loss'"),
    (['--data=/no/such/data.zip'], '--data'),
    (['--beta=2'], '--beta: a fixed β must be in'),
    (['--beta-floor=low'], '--beta-floor'),
    (['--loss=stylegan2', '--beta=0.3'], '--beta: only applies to --loss=soft'),
    (['--aug=fixed'], '--aug=fixed: needs --p'),
    (['--target=0.5', '--aug=noaug'], '--target: only applies to --aug=ada'),
    (['--batch=10', '--gpus=1', '--batch-gpu=4'], '--batch-gpu=4'),
    (['--metrics=fid_nope'], '--metrics'),
    (['--arch=mlp'], '--arch=mlp'),
    (['--resume=/no/such/snapshot.pt'], '--resume'),
])
def test_bad_cli_values_exit_2_with_one_line_and_no_run_folder(tmp_path, args, message):
    out = tmp_path / 'runs'
    proc = cli(f'--outdir={out}', *args)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith('Error: ') and message in lines[0], lines[0]
    assert not out.exists()


def test_crafted_resume_file_is_refused_and_executes_nothing(tmp_path):
    marker = tmp_path / 'pwned'

    class Exploit:
        def __reduce__(self):
            return (os.system, (f'touch {marker}',))

    evil = tmp_path / 'network-snapshot-000001.pt'
    torch.save({'format': checkpoint.FORMAT, 'version': 1, 'x': Exploit()}, str(evil))
    proc = cli(f'--outdir={tmp_path / "runs"}', f'--resume={evil}')
    assert proc.returncode == 2 and 'not a loadable snapshot' in proc.stderr
    assert not marker.exists() and not (tmp_path / 'runs').exists()


@pytest.mark.parametrize('args, beta', [
    ([], 1 / (2 * np.log(2))),                      # the default: constant β = 1/(2 ln 2)
    (['--beta=0.3'], 0.3),
    (['--beta=auto'], None),                         # None: the EMD schedule
    (['--beta-floor=zero'], None),                   # a schedule option asks for the schedule
    (['--beta-pairs=4', '--beta-interval=2'], None),
    (['--beta=0.3', '--beta-interval=2'], 0.3),      # a number wins
    (['--soft-variant=reference'], None),            # None: the released code's own β = 1
    (['--soft-variant=reference', '--beta=0.5'], 0.5),
])
def test_soft_beta_default_and_what_selects_the_schedule(args, beta):
    _, c = resolve(*TINY, '--loss=soft', *args)
    assert c.loss_kwargs.get('beta') == (pytest.approx(beta, rel=1e-12) if beta is not None else None)
    _, c = resolve(*TINY, '--loss=soft-emd')
    assert c.loss_kwargs.get('beta') is None and c.loss_kwargs.beta_floor_pairs == 16
    from training.loss import get_loss_spec
    from stylegan2_softgan.beta_schedule import BETA_MAX
    assert get_loss_spec('soft').defaults == get_loss_spec('soft-beta-fixed').defaults == {'beta': BETA_MAX}


def test_reference_variant_refuses_the_schedule():
    with pytest.raises(train_script.UserError, match=r'--beta: --soft-variant=reference has a constant β'):
        resolve(*TINY, '--loss=soft', '--soft-variant=reference', '--beta=auto')


def test_dry_run_prints_options_and_writes_nothing(tmp_path):
    proc = cli(f'--outdir={tmp_path / "runs"}', '--dry-run', '--loss=soft', '--beta-floor=zero')
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout[:proc.stdout.rindex('}') + 1]
    options = json.loads(text)
    assert options['loss_kwargs']['class_name'] == 'stylegan2_softgan.softgan.SoftGANLoss'
    assert options['loss_kwargs']['beta_floor'] == 'zero'
    assert options['training_set_kwargs']['class_name'] == 'training.dataset.DigitsDataset'
    assert not (tmp_path / 'runs').exists()


def test_cli_trains_and_resumes_latest_skipping_a_damaged_snapshot(tmp_path):
    out = tmp_path / 'runs'
    base = [f'--outdir={out}', *TINY, '--kimg=1', '--tick=0.5', '--loss=soft']
    proc = cli(*base)
    assert proc.returncode == 0, proc.stderr
    run_dir = out / '00000-digits8-digits-soft-batch16-noaug'
    assert (run_dir / 'training_options.json').is_file()
    snaps = checkpoint.list_snapshots(str(run_dir))
    assert len(snaps) >= 1
    # A snapshot cut short (as by a kill during a write without the atomic rename) is skipped.
    damaged = run_dir / 'network-snapshot-000009.pt'
    damaged.write_bytes(b'partial')
    proc = cli(*[a for a in base if not a.startswith('--kimg')], '--kimg=1.5', '--resume=latest')
    assert proc.returncode == 0, proc.stderr
    log = open(out / '00001-digits8-digits-soft-batch16-noaug-resume' / 'log.txt').read()
    assert f'Resuming from "{snaps[-1]}"' in log
