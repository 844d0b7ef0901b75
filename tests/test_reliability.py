"""Reliability and security (issue 17): a snapshot is data, bad input fails in one line before a run folder
exists, divergence stops the run, options given on --resume take effect or are refused, write errors
name the path, and several processes started by torchrun behave like --gpus.

Every command-line case checks the same contract: exit status 1 or 2, one line on stderr (no traceback),
no run folder left behind, no code executed from the file."""

import copy
import errno
import json
import os
import subprocess
import sys

import pytest
import torch

import train as train_script
from torch_utils import checkpoint

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY = ['--data=builtin:digits8', '--cfg=digits', '--cbase=64', '--cmax=16', '--map=1', '--batch=16',
        '--aug=noaug', '--metrics=none', '--workers=0', '--tick=0.032', '--snap=1', '--kimg=0.032']


def script(name, *args, cwd=None, timeout=300):
    return subprocess.run([sys.executable, os.path.join(REPO, name), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


def one_line_error(proc, *fragments, codes=(1, 2)):
    """The failure contract: exit 1 or 2, exactly one non-empty line on stderr, no traceback."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode in codes, (proc.returncode, proc.stderr[-2000:])
    assert len(lines) == 1 and 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A real two-step soft run of the tiny config, trained through train.py: (outdir, run folder, snapshot)."""
    out = tmp_path_factory.mktemp('trained') / 'runs'
    proc = script('train.py', f'--outdir={out}', *TINY, '--loss=soft')
    assert proc.returncode == 0, proc.stderr
    run_dir = next(out.iterdir())
    return out, run_dir, checkpoint.list_snapshots(str(run_dir))[-1]


def craft(src, dst, edit):
    """Copy a snapshot with `edit(obj)` applied to its raw dict (meta as JSON text)."""
    obj = torch.load(src, weights_only=True)
    edit(obj)
    torch.save(obj, str(dst))
    return str(dst)


def set_meta(**entries):
    def edit(obj):
        meta = json.loads(obj['meta'])
        meta.update(entries)
        obj['meta'] = json.dumps(meta)
    return edit


# ----------------------------------------------------------------------------
# 1. Nothing read from a snapshot names code that runs.

MARKDOWN_PAYLOAD = {'class_name': 'markdown.Markdown', 'extensions': ['subprocess:Popen'],
                    'extension_configs': {'subprocess:Popen': {'args': ['touch', '{marker}']}}}


def test_markdown_payload_in_meta_executes_nothing(trained, tmp_path):
    marker = tmp_path / 'pwned'
    payload = json.loads(json.dumps(MARKDOWN_PAYLOAD).replace('{marker}', str(marker)))
    evil = craft(trained[2], tmp_path / 'evil.pt', set_meta(training_set_kwargs=payload))
    proc = script('calc_metrics.py', f'--network={evil}', '--metrics=emd64')
    one_line_error(proc, 'evil.pt', 'meta.training_set_kwargs', 'markdown.Markdown')
    proc = script('train.py', f'--outdir={tmp_path / "runs"}', *TINY, f'--resume={evil}')
    one_line_error(proc, 'evil.pt', 'meta.training_set_kwargs')
    with pytest.raises(checkpoint.CheckpointError, match='not a registered data class'):
        checkpoint.load_snapshot(evil)
    assert not marker.exists() and not (tmp_path / 'runs').exists()
    # The payload never reaches an importer: not even the module named in it is imported.
    code = (f'import sys; from torch_utils import checkpoint\n'
            f'try: checkpoint.load_snapshot({evil!r})\nexcept checkpoint.CheckpointError: pass\n'
            f'print("markdown" in sys.modules)')
    check = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=REPO)
    assert check.stdout.strip() == 'False', check.stderr
    assert not marker.exists()


def test_data_kwargs_allow_only_registered_classes_and_their_parameters():
    from torch_utils import persistence
    from training import dataset
    ok = {'class_name': 'training.dataset.DigitsDataset', 'resolution': 8, 'max_size': 16}
    assert len(dataset.open_dataset(ok)) == 16
    for bad, field in [({'class_name': 'collections.OrderedDict'}, 'class_name'),
                       ({'class_name': 'training.dataset.Dataset', 'name': 'x', 'raw_shape': [1, 1, 4, 4]}, 'class_name'),
                       ({'class_name': 'training.dataset.os.system'}, 'class_name'),
                       (dict(ok, command='touch x'), 'command'),
                       (dict(ok, resolution={'class_name': 'os.system'}), 'resolution'),
                       ({'resolution': 8}, 'class_name'),
                       ('training.dataset.DigitsDataset', 'class_name')]:
        with pytest.raises(ValueError, match=field):
            persistence.check_data_kwargs(bad)
    # Parameters of the base class reached through **super_kwargs are accepted.
    persistence.check_data_kwargs(dict(ok, xflip=True, use_labels=True, random_seed=3))


def _drop(key):
    return lambda obj: obj.pop(key)


def _module_edit(fn):
    def edit(obj):
        fn(obj['modules'])
    return edit


def _set_config(name, **init_kwargs):
    def fn(modules):
        config = json.loads(modules[name]['config'])
        config['init_kwargs'].update(init_kwargs)
        modules[name]['config'] = json.dumps(config)
    return _module_edit(fn)


def _set_class(name, class_name):
    def fn(modules):
        config = json.loads(modules[name]['config'])
        config['class_name'] = class_name
        modules[name]['config'] = json.dumps(config)
    return _module_edit(fn)


def _reshape_first(name):
    def fn(modules):
        sd = modules[name]['state_dict']
        key = next(k for k, v in sd.items() if v.ndim == 2)
        sd[key] = torch.zeros([sd[key].shape[0] + 1, sd[key].shape[1]])
    return _module_edit(fn)


def _poison(name):
    def fn(modules):
        sd = modules[name]['state_dict']
        key = next(k for k, v in sd.items() if v.is_floating_point() and v.numel() > 1)
        sd[key] = sd[key].clone()
        sd[key][0] = float('nan')
    return _module_edit(fn)


CRAFTED = [
    ('unregistered_class', _set_class('G_ema', 'torch.nn.Linear'), 'modules.G_ema.config.class_name'),
    ('foreign_class', _set_class('G', 'os.system'), 'modules.G.config.class_name'),
    ('wrong_shape', _reshape_first('G_ema'), 'modules.G_ema.state_dict['),
    ('no_modules', _drop('modules'), 'modules: missing'),
    ('meta_not_string', lambda obj: obj.update(meta={'cur_nimg': 0}), 'meta: expected JSON text'),
    ('meta_not_json', lambda obj: obj.update(meta='{nope'), 'meta: not valid JSON'),
    ('huge_z_dim', _set_config('G_ema', z_dim=2 ** 31), 'z_dim: 2147483648 is out of range'),
    ('z_dim_mismatch', _set_config('G_ema', z_dim=4096), 'modules.G_ema.state_dict['),
    ('nan_weights', _poison('G_ema'), 'NaN or Inf'),
]


RESUME_CRAFTED = [('no_state', _drop('state'), 'state: missing'),
                  ('state_without_rng', lambda obj: obj['state'].pop('rng'), 'state.rng: missing'),
                  ('state_cur_nimg_text', lambda obj: obj['state'].update(cur_nimg='32'), 'state.cur_nimg: expected')]


@pytest.mark.parametrize('case, edit, message', CRAFTED + RESUME_CRAFTED, ids=[c[0] for c in CRAFTED + RESUME_CRAFTED])
def test_crafted_snapshot_is_refused_by_the_loader_with_the_field(trained, tmp_path, case, edit, message):
    bad = craft(trained[2], tmp_path / f'{case}.pt', edit)
    with pytest.raises(checkpoint.CheckpointError, match=message.replace('[', r'\[')) as info:
        checkpoint.load_snapshot(bad, require_state=True)
    assert str(info.value).startswith(bad) and '\n' not in str(info.value)
    if (case, edit, message) in CRAFTED:      # what generate.py and calc_metrics.py load
        with pytest.raises(checkpoint.CheckpointError, match=message.replace('[', r'\[')):
            checkpoint.load_network(bad)
    else:
        checkpoint.load_network(bad)


@pytest.mark.parametrize('name, case', [('generate.py', 'nan_weights'), ('calc_metrics.py', 'wrong_shape'),
                                        ('train.py', 'huge_z_dim'), ('train.py', 'no_state')])
def test_crafted_snapshot_is_one_line_in_every_script(trained, tmp_path, name, case):
    edit, message = {c[0]: c[1:] for c in CRAFTED + RESUME_CRAFTED}[case]
    bad = craft(trained[2], tmp_path / f'{case}.pt', edit)
    out = tmp_path / 'out'
    args = {'generate.py': [f'--network={bad}', f'--outdir={out}', '--seeds=0'],
            'calc_metrics.py': [f'--network={bad}', '--metrics=emd64'],
            'train.py': [f'--outdir={out}', *TINY, f'--resume={bad}']}[name]
    one_line_error(script(name, *args), f'{case}.pt', message)
    assert not out.exists()


# ----------------------------------------------------------------------------
# 2. Checked before anything is written.

def resolve(*args, given=None):
    ctx = train_script.main.make_context('train.py', list(args))
    return train_script.resolve_options(_given=given, **ctx.params)


@pytest.mark.parametrize('args', [['--gamma=nan'], ['--tick=nan'], ['--beta-ema=nan'], ['--aug=fixed', '--p=nan'],
                                  ['--kimg=inf'], ['--glr=nan'], ['--dlr=inf'], ['--ms-lambda=-inf'], ['--far-m0=nan']])
def test_non_finite_numbers_are_refused(args):
    import click
    with pytest.raises(click.BadParameter, match='not a finite number'):
        resolve(*TINY, *args)


def test_non_finite_numbers_fail_in_one_line_before_a_run_folder(tmp_path):
    out = tmp_path / 'runs'
    one_line_error(script('train.py', f'--outdir={out}', '--glr=nan', '--dry-run'), '--glr', 'not a finite number',
                   codes=(2,))
    from dnnlib.cli import UserError
    with pytest.raises(UserError, match='--beta-floor: expected a finite number'):
        resolve(*TINY, '--beta-floor=inf')
    assert not out.exists()


def write_pngs(folder, shapes, corrupt=()):
    """PNG files 00000.png ... with the given (H, W, C) shapes; indices in `corrupt` get truncated bytes."""
    import numpy as np
    import PIL.Image
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, (h, w, ch) in enumerate(shapes):
        pixels = rng.integers(0, 256, [h, w, ch], dtype=np.uint8)
        path = folder / f'{i:05d}.png'
        PIL.Image.fromarray(pixels[:, :, 0] if ch == 1 else pixels).save(path)
        if i in corrupt:
            path.write_bytes(path.read_bytes()[:40])
    return folder


@pytest.mark.parametrize('case', ['corrupt', 'larger', 'rgb'])
def test_bad_image_in_the_sample_fails_before_a_run_folder(tmp_path, case):
    shapes = [(8, 8, 1)] * 40
    if case == 'larger':
        shapes[20] = (16, 16, 1)
    if case == 'rgb':
        shapes[20] = (8, 8, 3)
    data = write_pngs(tmp_path / 'data', shapes, corrupt={20} if case == 'corrupt' else ())
    from dnnlib.cli import UserError
    with pytest.raises(UserError, match='00020.png'):
        resolve('--data', str(data), '--cfg=digits', '--metrics=none')


def test_image_outside_the_sample_fails_mid_run_in_one_line_with_a_log(tmp_path):
    """Images not sampled before the run are checked as they are read: one line naming the file, in log.txt too."""
    from training import dataset, training_loop
    data = write_pngs(tmp_path / 'data', [(8, 8, 1)] * 20, corrupt={19})
    desc, c = resolve(*TINY, '--beta-floor=zero')
    c = copy.deepcopy(c)
    c['training_set_kwargs'] = dataset.make_dataset_kwargs(str(data), validate=False)
    c['image_snapshot_ticks'] = None
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    with pytest.raises(training_loop.TrainingStopped) as info:
        training_loop.training_loop(run_dir=str(run_dir), rank=0, **c)
    message = str(info.value)
    assert '00019.png' in message and '\n' not in message and 'kimg' in message
    assert f'Error: {message}' in (run_dir / 'log.txt').read_text()
    assert not checkpoint.list_snapshots(str(run_dir))


def test_validate_sample_reads_the_first_and_a_seeded_sample():
    from training import dataset
    ds = dataset.open_dataset(dataset.make_dataset_kwargs('builtin:digits8'))
    seen = []
    getitem = type(ds).__getitem__
    type(ds).__getitem__ = lambda self, idx: seen.append(idx) or getitem(self, idx)
    try:
        assert dataset.validate_sample(ds, num=10, seed=3) == len(seen) and 0 in seen and 10 <= len(seen) <= 11
        first = list(seen)
        seen.clear()
        dataset.validate_sample(ds, num=10, seed=3)
        assert seen == first
    finally:
        type(ds).__getitem__ = getitem


def test_fewer_images_than_the_grid_and_the_real_floor(tmp_path):
    from dnnlib.cli import UserError
    from training import dataset, run_logging, training_loop
    with pytest.raises(UserError, match=r'distinct images\), but the training set has 31'):
        resolve(*TINY, '--subset=31', '--beta=auto')      # the EMD schedule's real floor
    ds = dataset.open_dataset(dataset.make_dataset_kwargs('builtin:digits8', max_size=31))
    G = type('G', (), {'z_dim': 4})()
    (gw, gh), grid_z, _ = training_loop._setup_grid(ds, G, 'cpu', 0, str(tmp_path), write_reals=True)
    assert gw * gh > 31 and sum(len(z) for z in grid_z) == gw * gh
    assert (tmp_path / 'reals.png').is_file() and run_logging.grid_shape(8, 31) == (gw, gh)
    resolve(*TINY, '--subset=31', '--beta-floor=zero')     # the grid copes, and so does a floor of zero
    resolve(*TINY, '--subset=31')                           # and the default constant β, which measures nothing


# ----------------------------------------------------------------------------
# Resume: data from the snapshot, options that take effect or are refused, nothing left to train.

def test_resume_takes_data_from_the_snapshot_and_applies_the_given_options(trained):
    out, run_dir, snap = trained
    recorded = checkpoint.load_snapshot(snap)['meta']['options']
    desc, c = resolve(f'--resume={snap}', '--kimg=0.064', '--glr=0.5', '--gamma=3', '--snap=7', '--metrics=emd64',
                      given={'resume', 'kimg', 'glr', 'gamma', 'snap', 'metrics'})
    assert c['training_set_kwargs'] == recorded['training_set_kwargs']
    assert c['G_kwargs'] == recorded['G_kwargs'] and c['D_kwargs'] == recorded['D_kwargs']
    assert c['G_opt_kwargs']['lr'] == 0.5 and c['D_opt_kwargs']['lr'] == recorded['D_opt_kwargs']['lr']
    assert c['loss_kwargs'] == dict(recorded['loss_kwargs'], r1_gamma=3.0)
    assert (c['total_kimg'], c['network_snapshot_ticks'], c['metrics']) == (0.064, 7, ['emd64'])
    assert c['batch_size'] == recorded['batch_size'] and c['random_seed'] == recorded['random_seed']
    # The same command as the original run, plus --resume, is accepted as it is.
    resolve(*[a for a in TINY if not a.startswith('--kimg')], '--kimg=0.064', '--loss=soft', f'--resume={snap}')


@pytest.mark.parametrize('args, message', [
    (['--loss=ns'], '--loss: cannot change on --resume'),
    (['--cbase=128'], '--cbase: cannot change on --resume'),
    (['--batch=32'], '--batch: cannot change on --resume'),
    (['--data=builtin:digits16'], 'trained on 8x8'),
    (['--data=builtin:digits8-rgb'], '3 channel(s)'),
    (['--cond=1'], '10 label values'),
    (['--kimg=0.032'], 'nothing to train'),
    (['--kimg=0.016'], 'is already at 0.032 kimg'),
])
def test_resume_refusals_are_one_line_before_a_run_folder(trained, args, message):
    from dnnlib.cli import UserError
    with pytest.raises(UserError, match=message.replace('(', r'\(').replace(')', r'\)')):
        resolve(f'--resume={trained[2]}', '--kimg=0.064', *args,
                given={'resume', 'kimg', *(a[2:].split('=')[0] for a in args)})


def test_resume_latest_of_a_finished_run_exits_without_a_folder(trained):
    out, run_dir, snap = trained
    before = sorted(os.listdir(out))
    one_line_error(script('train.py', f'--outdir={out}', '--resume=latest', '--kimg=0.032'), 'nothing to train',
                   codes=(2,))
    assert sorted(os.listdir(out)) == before


def test_learning_rate_given_on_resume_reaches_the_optimisers(trained, tmp_path):
    """--glr/--dlr on --resume change the optimisers' lr (the snapshot's moments are kept)."""
    from training import training_loop
    snap = trained[2]
    old = checkpoint.load_snapshot(snap)['state']['optimizers']
    desc, c = resolve(f'--resume={snap}', '--kimg=0.048', '--glr=0.0125', '--dlr=0.00125',
                      given={'resume', 'kimg', 'glr', 'dlr'})
    c = dict(copy.deepcopy(c), image_snapshot_ticks=None)
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    training_loop.training_loop(run_dir=str(run_dir), rank=0, **c)
    new = checkpoint.load_snapshot(checkpoint.list_snapshots(str(run_dir))[-1])['state']['optimizers']
    recorded = checkpoint.load_snapshot(snap)['meta']['options']
    for key, lr in (('G', 0.0125), ('D', 0.00125)):
        ratio = lr / recorded[f'{key}_opt_kwargs']['lr']
        # The lazy-regularisation factor c = k/(k+1) applies to both, so the ratio is the ratio of the options.
        assert new[key]['param_groups'][0]['lr'] == pytest.approx(old[key]['param_groups'][0]['lr'] * ratio, rel=1e-12)
        assert new[key]['state'][0]['step'] > old[key]['state'][0]['step']


# ----------------------------------------------------------------------------
# 3. Divergence.

def test_divergence_stops_in_one_line_without_a_snapshot_of_the_broken_state(tmp_path):
    out = tmp_path / 'runs'
    proc = script('train.py', f'--outdir={out}', *[a for a in TINY if not a.startswith(('--kimg', '--tick'))],
                  '--tick=0.016', '--kimg=0.064', '--glr=1e30', '--dlr=1e30', '--gamma=0')
    line = one_line_error(proc, 'training diverged at 0.016 kimg', 'no snapshot of this state was written',
                          codes=(1,))
    assert 'Loss/' in line or 'weights of' in line
    run_dir = next(out.iterdir())
    assert not checkpoint.list_snapshots(str(run_dir))
    assert line[len('Error: '):] in (run_dir / 'log.txt').read_text()


def test_divergence_check_names_the_phase_or_the_network(tmp_path):
    from torch_utils import training_stats
    from training import training_loop
    from training.run_logging import RunLogger
    net = torch.nn.Linear(2, 2)
    assert training_loop.weights_finite({'G': net}) is None
    log = RunLogger(str(tmp_path), enabled=True)
    collector = training_stats.Collector(regex='Loss/.*')
    training_stats.report('Loss/D/reg', torch.tensor([1.0, float('nan')]))
    collector.update()
    with pytest.raises(training_loop.TrainingStopped, match=r'Loss/D/reg \(phase D\) had 1 non-finite.*last good snapshot is x\.pt'):
        training_loop.check_divergence(log, collector, {'G': net}, 4000, str(tmp_path), 'x.pt')
    collector = training_stats.Collector(regex='Loss/.*')
    collector.update()      # nothing reported: finite
    with torch.no_grad():
        net.weight[0, 0] = float('inf')
    log = RunLogger(str(tmp_path), enabled=True)
    with pytest.raises(training_loop.TrainingStopped, match='the weights of G became NaN or Inf'):
        training_loop.check_divergence(log, collector, {'G': net}, 4000, str(tmp_path), None)


# ----------------------------------------------------------------------------
# 5. Write errors and leftovers of killed writes.

def test_write_error_inside_a_snapshot_names_the_path_and_leaves_nothing(tmp_path, monkeypatch):
    real_save = torch.save

    def full_disk_save(obj, f, *args, **kwargs):
        class Full:
            def write(self, data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            def __getattr__(self, name):
                return getattr(f, name)
        return real_save(obj, Full(), *args, **kwargs)
    monkeypatch.setattr(torch, 'save', full_disk_save)
    path = tmp_path / 'network-snapshot-000001.pt'
    with pytest.raises(OSError) as info:
        checkpoint.atomic_save({'x': torch.zeros(1000)}, str(path))
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    assert os.listdir(tmp_path) == []
    import dnnlib
    with pytest.raises(OSError) as info:
        with dnnlib.util.atomic_output(str(tmp_path / 'a.png')) as f:
            f.write = None
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
    assert info.value.filename == str(tmp_path / 'a.png') and os.listdir(tmp_path) == []


_INJECT = r'''
import errno, os, sys
sys.path.insert(0, {repo!r})
import train
target, err = sys.argv[1], getattr(errno, sys.argv[2])
def fail(*args, **kwargs):
    raise OSError(err, os.strerror(err), *([args[-1]] if target == 'snapshot' else []))
if target == 'snapshot':
    from torch_utils import checkpoint
    real = checkpoint.atomic_save
    def atomic_save(obj, path):
        import torch
        real_save = torch.save
        def save(o, f, *a, **k):
            f.write(b'x' * 100)
            raise RuntimeError('unexpected pos 2449472 vs 2449360') from OSError(err, os.strerror(err))
        torch.save = save
        try:
            real(obj, path)
        finally:
            torch.save = real_save
    checkpoint.atomic_save = atomic_save
elif target == 'stats':
    from training import run_logging
    run_logging.RunLogger.write_stats = lambda self, *a, **k: (_ for _ in ()).throw(
        OSError(err, os.strerror(err), os.path.join(self.run_dir, 'stats.jsonl')))
elif target == 'tensorboard':
    from torch.utils import tensorboard
    tensorboard.SummaryWriter.add_scalar = fail
elif target == 'image':     # the folder refuses new files (as a read-only mount does) once training runs
    import tempfile
    real_mkstemp = tempfile.mkstemp
    def mkstemp(*args, prefix='', dir=None, **kwargs):
        if prefix.startswith(('.tmp-fakes', '.tmp-reals')):
            raise OSError(err, os.strerror(err), os.path.join(dir, prefix + 'abc'))
        return real_mkstemp(*args, prefix=prefix, dir=dir, **kwargs)
    tempfile.mkstemp = mkstemp
train.main(sys.argv[3:])
'''


@pytest.mark.parametrize('target, code, fragment', [('snapshot', 'ENOSPC', 'network-snapshot-'),
                                                   ('stats', 'EACCES', 'stats.jsonl'),
                                                   ('tensorboard', 'ENOSPC', 'runs'),
                                                   ('image', 'EROFS', 'reals.png')])
def test_write_errors_end_the_run_in_one_line_naming_the_path(tmp_path, target, code, fragment):
    out = tmp_path / 'runs'
    proc = subprocess.run([sys.executable, '-c', _INJECT.format(repo=REPO), target, code, f'--outdir={out}', *TINY],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    line = one_line_error(proc, fragment, os.strerror(getattr(errno, code)), code, codes=(1,))
    assert 'unexpected pos' not in line
    assert not [p for p in out.rglob('.tmp-*')]


def test_leftover_temporary_files_are_removed_at_the_next_start(tmp_path):
    import dnnlib
    run = tmp_path / 'runs' / '00000-x'
    run.mkdir(parents=True)
    complete = run / 'network-snapshot-000001.pt'
    complete.write_bytes(b'complete')
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True,
                          text=True).stdout.strip()
    killed = run / f'.tmp-network-snapshot-000002.pt-{dead}-abc123'
    live = run / f'.tmp-network-snapshot-000003.pt-{os.getpid()}-def456'
    fresh_dead = run / f'.tmp-fakes000002.png-{dead}-ghi789'
    old_style = run / '.tmp-network-snapshot-000004.pt-xyz'
    for path in (killed, live, fresh_dead, old_style):
        path.write_bytes(b'partial')
    for path in (killed, live, old_style, complete):
        os.utime(path, (0, 0))
    train_script.remove_stale_temp_files(str(tmp_path / 'runs'), None)
    assert sorted(p.name for p in run.iterdir()) == sorted([complete.name, live.name, fresh_dead.name])
    assert complete.read_bytes() == b'complete'
    # The name atomic_output gives its temporary file carries the pid that remove_stale_temp_files reads.
    with dnnlib.util.atomic_output(str(run / 'x.bin')) as f:
        name = [p.name for p in run.iterdir() if p.name.startswith('.tmp-x.bin-')][0]
        assert f'-{os.getpid()}-' in name
        f.write(b'1')


# ----------------------------------------------------------------------------
# 6. Several machines: torchrun with two "nodes" of one process each.

TORCHRUN_TINY = [a for a in TINY if not a.startswith('--kimg')] + ['--loss=stylegan2', '--mbstd-group=4']


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def torchrun_nodes(args, logs, rdzv_id):
    """Start two torchrun agents (--nnodes=2, one process each) on this machine; returns their Popen objects."""
    port = free_port()
    procs = []
    for node, log in enumerate(logs):
        cmd = [sys.executable, '-m', 'torch.distributed.run', '--nnodes=2', '--nproc-per-node=1', f'--node-rank={node}',
               '--rdzv-backend=c10d', f'--rdzv-endpoint=127.0.0.1:{port}', f'--rdzv-id={rdzv_id}',
               os.path.join(REPO, 'train.py'), *args]
        procs.append(subprocess.Popen(cmd, stdout=open(log, 'w'), stderr=subprocess.STDOUT, cwd=REPO))
    return procs


def test_torchrun_two_nodes_match_two_spawned_processes(tmp_path):
    args = [*TORCHRUN_TINY, '--kimg=0.032']
    procs = torchrun_nodes([f'--outdir={tmp_path / "torchrun"}', *args], [tmp_path / 'n0.log', tmp_path / 'n1.log'],
                           'match')
    spawn = script('train.py', f'--outdir={tmp_path / "spawn"}', '--gpus=2', *args)
    codes = [p.wait(timeout=300) for p in procs]
    assert spawn.returncode == 0, spawn.stderr[-2000:]
    assert codes[0] == 0, (tmp_path / 'n0.log').read_text()[-3000:]
    snaps = [checkpoint.list_snapshots(str(next((tmp_path / kind).iterdir())))[-1] for kind in ('torchrun', 'spawn')]
    ours, ref = (checkpoint.load_snapshot(s) for s in snaps)
    assert ours['state']['cur_nimg'] == ref['state']['cur_nimg'] == 32 and len(ours['state']['rng']) == 2
    # Same data order, latents and per-rank seeds; only the thread count differs (torchrun: the cores of a
    # "node" for its one process; --gpus=2: half each), which changes the order of float sums.
    worst = 0.0
    for name in ('G', 'D', 'G_ema'):
        for key, value in ref['modules'][name]['state_dict'].items():
            got = ours['modules'][name]['state_dict'][key]
            assert torch.allclose(got, value, rtol=1e-4, atol=1e-5), f'{name}.{key}'
            if value.is_floating_point():
                worst = max(worst, float((got - value).abs().max()))
    print(f'largest difference torchrun vs --gpus=2: {worst:.3g}')


def test_torchrun_lost_rank_stops_the_other_in_bounded_time_and_resume_continues(tmp_path):
    import signal
    import time
    out = tmp_path / 'runs'
    logs = [tmp_path / 'n0.log', tmp_path / 'n1.log']
    procs = torchrun_nodes([f'--outdir={out}', *TORCHRUN_TINY, '--kimg=2', '--dist-timeout=30'], logs, 'lost')
    deadline = time.time() + 240
    while time.time() < deadline and not (out.exists() and any(checkpoint.list_snapshots(str(d)) for d in out.iterdir())):
        assert all(p.poll() is None for p in procs), logs[0].read_text()[-2000:]
        time.sleep(0.5)
    run_dir = next(out.iterdir())
    assert checkpoint.list_snapshots(str(run_dir)), 'no snapshot within the time limit'
    # Kill node 1's training process (the agent's child), as a machine failure would.
    children = subprocess.run(['pgrep', '-P', str(procs[1].pid)], capture_output=True, text=True).stdout.split()
    assert children
    killed_at = time.time()
    for pid in children:
        os.kill(int(pid), signal.SIGKILL)
    procs[0].wait(timeout=120)
    elapsed = time.time() - killed_at
    procs[1].wait(timeout=60)
    text = logs[0].read_text()
    lines = [line for line in text.splitlines() if line.startswith('Error: lost')]
    assert len(lines) == 1 and 'lost rank 1 of 2' in lines[0] and '--resume=latest' in lines[0], text[-3000:]
    assert elapsed < 30 + 30, elapsed
    done = checkpoint.load_snapshot(checkpoint.list_snapshots(str(run_dir))[-1])['state']['cur_nimg']
    # --resume=latest continues from the newest complete snapshot (here on one process).
    proc = script('train.py', f'--outdir={out}', '--resume=latest', f'--kimg={done / 1000 + 0.032}')
    assert proc.returncode == 0, proc.stderr[-2000:]
    resumed = [d for d in out.iterdir() if d.name.endswith('-resume')]
    assert len(resumed) == 1
    assert checkpoint.load_snapshot(checkpoint.list_snapshots(str(resumed[0]))[-1])['state']['cur_nimg'] == done + 32


def test_oversized_image_is_refused_from_its_header_before_decoding(tmp_path):
    """A decompression bomb among small images: its header says 4000x4000, so it is refused unread."""
    import PIL.Image
    from training import dataset
    data = write_pngs(tmp_path / 'data', [(8, 8, 1)] * 8)
    PIL.Image.new('L', (4000, 4000)).save(data / '00005.png')
    ds = dataset.open_dataset(dataset.make_dataset_kwargs(str(data), validate=False))
    decoded = []
    real_load = PIL.ImageFile.ImageFile.load

    def load(self):
        decoded.append(self.size)
        return real_load(self)
    PIL.ImageFile.ImageFile.load = load
    try:
        with pytest.raises(dataset.DatasetError, match='00005.png: image is 4000x4000, but the data set is 8x8'):
            dataset.validate_sample(ds)
    finally:
        PIL.ImageFile.ImageFile.load = real_load
    assert (4000, 4000) not in decoded and (8, 8) in decoded
