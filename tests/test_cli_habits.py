"""A new user's first hour (issue 15): the console and plots of a run, and stylegan2-ada's command-line
habits (-h, one-line errors, --batch-gpu, run folders as --network, snapshot names, umask, cache
variables, honest metric names). Tiny runs and --dry-run only."""

import io
import json
import os
import re
import runpy
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import dnnlib
import train as train_script
from metrics import metric_main, metric_utils
from torch_utils import checkpoint
from training import builtin_data, run_logging, training_loop

REPO = Path(__file__).resolve().parents[1]

TINY = ['--data=builtin:digits8', '--cfg=digits', '--cbase=64', '--cmax=16', '--map=1', '--batch=16',
        '--aug=noaug', '--metrics=none', '--workers=0', '--snap=1']


def resolve(*args):
    ctx = train_script.main.make_context('train.py', list(args))
    return train_script.resolve_options(**ctx.params)


def tiny_networks():
    from training import architectures
    torch.manual_seed(0)
    G_kwargs, D_kwargs = architectures.build_arch_kwargs('stylegan2', 8, 1, channel_base=64, channel_max=16,
                                                         map_layers=1, z_dim=8, w_dim=8, num_fp16_res=0)
    return dnnlib.util.construct_class_by_name(**G_kwargs), dnnlib.util.construct_class_by_name(**D_kwargs)


# ----------------------------------------------------------------------------
# Console of a run.


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    """A SoftGAN run of 6 steps of 16 images in ticks of 3 steps, its console output captured."""
    run_dir = tmp_path_factory.mktemp('run')
    desc, c = resolve(*TINY, '--loss=soft', '--kimg=0.096', '--tick=0.048', '--beta-interval=1')
    c['image_snapshot_ticks'] = 1
    out = io.StringIO()
    old = sys.stdout
    sys.stdout = out
    try:
        training_loop.training_loop(run_dir=str(run_dir), rank=0, **c)
    finally:
        sys.stdout = old
    return run_dir, out.getvalue().splitlines()


def test_first_line_says_what_runs_and_on_what_device(tiny_run):
    _, lines = tiny_run
    assert lines[0].startswith('Training networks.Generator with softgan.SoftGANLoss for 0.096 kimg, batch 16')
    assert 'on cpu (' in lines[0] and 'thread' in lines[0]


def test_eta_line_after_the_first_steps(tiny_run):
    run_dir, lines = tiny_run
    eta = [line for line in lines if line.startswith('Speed over steps 2-4:')]
    assert len(eta) == 1, lines
    m = re.search(r'([\d.]+) sec/kimg; ETA (\S+) for the remaining ([\d.]+) kimg', eta[0])
    assert m and float(m.group(1)) > 0 and float(m.group(3)) == 0.032       # after 4 of the 6 steps
    assert lines.index(eta[0]) < min(i for i, line in enumerate(lines) if line.startswith('tick 1 '))


def test_tick_lines_carry_the_losses(tiny_run):
    run_dir, lines = tiny_run
    ticks = [line for line in lines if line.startswith('tick ')]
    assert len(ticks) == 2
    stats = [json.loads(line) for line in open(run_dir / 'stats.jsonl')]
    for line, record in zip(ticks, stats):
        fields = dict(re.findall(r'(?:^| )(G|D|R1|beta|EMD) (\S+)', line))
        assert set(fields) >= {'G', 'D', 'R1', 'beta'}, line
        assert 'PL' not in line          # the digits preset has no path-length regulariser
        # EMD once the β schedule has measured it (it needs enough recent samples first).
        assert ('EMD' in fields) == ('Loss/emd' in record), line
        # The numbers are the tick's means of the statistics written to stats.jsonl.
        for label, name in (('G', 'Loss/G/loss'), ('D', 'Loss/D/loss'), ('R1', 'Loss/r1_penalty'),
                            ('beta', 'Loss/beta'), ('EMD', 'Loss/emd')):
            if label in fields:
                assert float(fields[label]) == pytest.approx(record[name]['mean'], rel=1e-3), (label, line)
    log = (run_dir / 'log.txt').read_text()
    assert all(line in log for line in ticks)


def test_loss_fields_show_what_the_tick_reported(monkeypatch):
    from torch_utils import training_stats
    assert dict(run_logging.TICK_LOSSES) == {'G': 'Loss/G/loss', 'D': 'Loss/D/loss', 'R1': 'Loss/r1_penalty',
                                             'PL': 'Loss/pl_penalty', 'beta': 'Loss/beta', 'EMD': 'Loss/emd'}
    collector = training_stats.Collector(regex='Loss/test15/.*')
    monkeypatch.setattr(run_logging, 'TICK_LOSSES', (('G', 'Loss/test15/G'), ('PL', 'Loss/test15/pl'),
                                                     ('EMD', 'Loss/test15/emd')))
    training_stats.report('Loss/test15/G', torch.tensor([0.5, 1.0]))
    training_stats.report('Loss/test15/emd', torch.tensor([9.25]))
    collector.update()
    assert run_logging.loss_fields(collector) == ['G 0.75', 'EMD 9.25']     # PL never reported: left out


def test_ticks_under_one_kimg_get_distinct_snapshot_names(tiny_run):
    run_dir, _ = tiny_run
    snaps = [os.path.basename(p) for p in checkpoint.list_snapshots(str(run_dir))]
    assert snaps == ['network-snapshot-000000.048.pt', 'network-snapshot-000000.096.pt']
    assert (run_dir / 'fakes000000.048.png').is_file() and (run_dir / 'fakes000000.096.png').is_file()
    assert [checkpoint.load_snapshot(str(run_dir / s))['state']['cur_nimg'] for s in snaps] == [48, 96]


def test_progress_bar_only_on_a_terminal(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True
    monkeypatch.setattr(sys, 'stderr', io.StringIO())
    bar = dnnlib.util.progress_bar(100, desc='x')
    assert bar.disable            # a pipe or log file gets no bar updates
    term = Terminal()
    monkeypatch.setattr(sys, 'stderr', term)
    monkeypatch.delenv('TQDM_DISABLE', raising=False)
    bar = dnnlib.util.progress_bar(100, desc='tick 0')
    bar.update(50)
    bar.refresh()
    assert not bar.disable and bar.n == 50 and 'tick 0:  50%' in term.getvalue()
    bar.close()
    assert dnnlib.util.progress_bar(100, desc='x', enabled=False).disable


def test_metric_progress_lines_off_a_terminal_and_a_bar_on_one(monkeypatch, capsys):
    monitor = metric_utils.ProgressMonitor(tag='generator features', num_items=2000, verbose=True)
    for n in (1000, 2000):
        monitor.update(n)
    out = capsys.readouterr()
    assert out.out.count('generator features') == 2 and out.err == ''

    class Terminal(io.StringIO):
        def isatty(self):
            return True
    term = Terminal()
    monkeypatch.setattr(sys, 'stderr', term)
    monkeypatch.delenv('TQDM_DISABLE', raising=False)
    monitor = metric_utils.ProgressMonitor(tag='generator features', num_items=2000, verbose=True)
    assert monitor.bar_drawn
    monitor.update(1000)
    assert monitor.bar.n == 1000
    monitor.update(2000)
    assert capsys.readouterr().out == ''           # no lines beside the bar
    assert 'generator features:   0%' in term.getvalue() and term.getvalue().endswith('\r')   # drawn, then cleared


def test_long_metric_warns_once_with_the_estimate(monkeypatch, capsys):
    clock = [1000.0]
    monkeypatch.setattr(metric_utils.time, 'time', lambda: clock[0])
    monitor = metric_utils.ProgressMonitor(warn=True, context='fid50k_full on cpu').sub(
        tag='generator features', num_items=50000)
    clock[0] += 64.0                       # 64 images in 64 s: 50000 images take 13h 53m 20s
    monitor.update(64)
    clock[0] += 64.0
    monitor.update(128)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    assert err[0].startswith('warning: fid50k_full on cpu: generator features of 50000 images will take about 13h 53m 20s')
    fast = metric_utils.ProgressMonitor(warn=True).sub(tag='generator features', num_items=50000)
    clock[0] += 0.064                      # 1 ms per image: under 10 minutes
    fast.update(64)
    quiet = metric_utils.ProgressMonitor(warn=False).sub(tag='generator features', num_items=50000)
    clock[0] += 640
    quiet.update(64)                       # other ranks do not warn
    assert capsys.readouterr().err == ''


# ----------------------------------------------------------------------------
# Plots.


def _write_stats(run_dir: Path):
    with open(run_dir / 'stats.jsonl', 'w') as f:
        for i in range(5):
            rec = {'Progress/kimg': {'mean': 4.0 * (i + 1)}, 'Loss/G/loss': {'mean': 0.7 + 0.01 * i},
                   'Loss/D/loss': {'mean': 1.3}, 'Loss/D/reg': {'mean': 0.01},
                   'Loss/beta': {'mean': 0.6 - 0.1 * i}, 'Loss/emd': {'mean': 14.0 - i},
                   'Loss/emd_floor': {'mean': 7.0}, 'Loss/scores/real': {'mean': 0.1}}
            f.write(json.dumps(rec) + '\n')
    with open(run_dir / 'metric-emd64.jsonl', 'w') as f:
        for name, value in (('network-snapshot-000004.pt', 12.0), ('network-snapshot-000004.512.pt', 11.0)):
            f.write(json.dumps({'results': {'emd64': value, 'emd64_floor': 6.0}, 'snapshot_pkl': name}) + '\n')


def test_plots_have_labelled_axes_readable_legends_and_beta_apart_from_emd(tmp_path):
    import matplotlib.pyplot as plt
    _write_stats(tmp_path)
    figures = run_logging.plot_figures(str(tmp_path))
    try:
        assert set(figures) == {'plot-losses.png', 'plot-scores.png', 'plot-beta-emd.png', 'plot-metrics.png'}
        for name, fig in figures.items():
            for ax in fig.axes:
                assert ax.get_ylabel(), (name, 'y axis without a label')
                legend = [t.get_text() for t in ax.get_legend().get_texts()]
                assert legend and not any(re.fullmatch(r'\w+(/\w+)+', t) for t in legend), (name, legend)
            assert fig.axes[-1].get_xlabel() == 'training progress (kimg)'
        beta_ax, emd_ax = figures['plot-beta-emd.png'].axes
        assert beta_ax.get_ylabel().startswith('β') and [t.get_text() for t in beta_ax.get_legend().get_texts()] == ['β']
        assert 'EMD' in emd_ax.get_ylabel() and len(emd_ax.get_lines()) == 2     # EMD and its floor
        # β spans its own axis instead of being a flat line beside an EMD of ~10.
        lo, hi = beta_ax.get_ylim()
        assert hi - lo < 1.0
        metric_ax = figures['plot-metrics.png'].axes[0]
        assert metric_ax.get_ylabel() == 'emd64'
        x, y = metric_ax.get_lines()[0].get_data()
        assert list(x) == [4.0, 4.512] and list(y) == [12.0, 11.0]   # the fractional snapshot keeps its place
    finally:
        for fig in figures.values():
            plt.close(fig)
    assert sorted(run_logging.write_plots(str(tmp_path))) == sorted(figures)


def test_constant_beta_panel_shows_the_value_not_its_rounding_noise(tmp_path):
    import matplotlib.pyplot as plt
    beta = np.float32(1 / (2 * np.log(2)))
    with open(tmp_path / 'stats.jsonl', 'w') as f:
        for i, wobble in enumerate([0.0, 1e-14, -7e-14, 1.5e-13]):     # a float32 β averaged over a tick
            f.write(json.dumps({'Progress/kimg': {'mean': 4.0 * (i + 1)}, 'Loss/beta': {'mean': float(beta) + wobble},
                                'Loss/G/loss': {'mean': 0.5 + 0.1 * i}}) + '\n')
    figures = run_logging.plot_figures(str(tmp_path))
    try:
        (beta_ax,) = figures['plot-beta-emd.png'].axes
        lo, hi = beta_ax.get_ylim()
        assert lo == pytest.approx(beta - 0.1, rel=1e-6) and hi == pytest.approx(beta + 0.1, rel=1e-6)   # ±max(10 %, 0.1)
        assert beta_ax.yaxis.get_major_formatter().get_useOffset() is False
        loss_lo, loss_hi = figures['plot-losses.png'].axes[0].get_ylim()     # a moving curve keeps autoscaling
        assert loss_lo < 0.5 and 0.8 < loss_hi < 0.9
    finally:
        for fig in figures.values():
            plt.close(fig)


def test_metric_results_of_different_scales_get_their_own_panels(tmp_path):
    import matplotlib.pyplot as plt
    with open(tmp_path / 'metric-cat_cov1k.jsonl', 'w') as f:
        for kimg, std in ((4, 190.0), (8, 30.0)):
            res = {'cat_cov1k_coverage': 0.9, 'cat_cov1k_entropy': 2.2, 'cat_cov1k_mean_label': 4.6,
                   'cat_cov1k_count_std': std, **{f'cat_cov1k_share{d}': 0.1 for d in range(10)}}
            f.write(json.dumps({'results': res, 'snapshot_pkl': f'network-snapshot-{kimg:06d}.pt'}) + '\n')
    fig = run_logging.plot_figures(str(tmp_path))['plot-metrics.png']
    try:
        legends = [[t.get_text() for t in ax.get_legend().get_texts()] for ax in fig.axes]
        assert legends == [['coverage'] + [f'share{d}' for d in range(10)],     # values within [0, 1]
                           ['entropy', 'mean_label'],                            # 2.2 and 4.6: one scale
                           ['count_std']]                                        # up to 190
        assert all(ax.get_ylabel() == 'cat_cov1k' for ax in fig.axes)
        colours = [line.get_color() for line in fig.axes[0].get_lines()]
        assert len(set(colours)) == len(colours)                                # 11 curves, 11 colours
    finally:
        plt.close(fig)
    assert run_logging._scale_groups({'a': (np.zeros(1), np.array([12.0])), 'b': (np.zeros(1), np.array([6.0])),
                                      'c': (np.zeros(1), np.array([0.5]))}) == [['a', 'b'], ['c']]


# ----------------------------------------------------------------------------
# train.py options.


def test_batch_gpu_defaults_to_the_per_gpu_share():
    for gpus, expected in ((1, 32), (2, 16), (4, 8)):
        _, c = resolve('--gpus', str(gpus), '--dry-run')
        assert (c.batch_size, c.batch_gpu, c.num_gpus) == (32, expected, gpus)
    _, c = resolve('--gpus=2', '--batch-gpu=4')          # an explicit value still wins
    assert c.batch_gpu == 4


def test_cpu_process_warning_is_said_once(monkeypatch, capsys):
    monkeypatch.setattr(train_script, '_cuda_device_count', lambda: 0)
    monkeypatch.setattr(os, 'cpu_count', lambda: 2)
    with pytest.raises(SystemExit) as e:
        train_script.main(['--gpus=4', '--dry-run'])
    assert e.value.code == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith('warning:')]
    assert len(warnings) == 1 and '--gpus=4' in warnings[0] and 'more processes than the 2 CPU core(s)' in warnings[0]
    resolve('--gpus=2')
    assert '2 processes of 1 thread each on 2 CPU cores' in capsys.readouterr().err
    for gpus, cores in ((1, 2), (2, 16)):
        monkeypatch.setattr(os, 'cpu_count', lambda cores=cores: cores)
        resolve(f'--gpus={gpus}')
        assert capsys.readouterr().err == ''


def test_builtin_resolutions_are_listed():
    help_text = train_script.main.get_help(train_script.main.make_context('train.py', ['--dry-run']))
    listed = re.search(r'builtin:digits<N>\[-rgb\] with N in\s+([\d|]+)', ' '.join(help_text.split()))
    assert listed and [int(n) for n in listed.group(1).split('|')] == list(builtin_data.DIGITS_RESOLUTIONS)
    readme = (REPO / 'README.md').read_text()
    assert 'builtin:digits<N>[-rgb]' in readme and ', '.join(map(str, builtin_data.DIGITS_RESOLUTIONS[:-1])) in readme


def test_generate_examples_name_the_default_run():
    """The run folder the examples name is the one `python train.py` creates first."""
    desc, _ = resolve()
    default_run = f'training-runs/{os.path.basename(dnnlib.util.make_run_dir("training-runs", desc, create=False))}'
    assert default_run.endswith('00000-' + desc) or default_run.startswith('training-runs/0')
    import calc_metrics
    import generate
    texts = {'generate.py': generate.__doc__, 'README.md': (REPO / 'README.md').read_text(),
             'calc_metrics.py': calc_metrics.__doc__}
    for where, text in texts.items():
        named = re.findall(r'--network=(training-runs/\S+)', text)
        assert named, where
        assert all(n == f'training-runs/00000-{desc}' for n in named), (where, named)
    for metrics in re.findall(r'calc_metrics.py --network=\S+ --metrics=(\S+)', calc_metrics.__doc__):
        assert all(metric_main.is_valid_metric(m) for m in metrics.split(',')), metrics


def test_help_cites_papers_not_seed_files():
    import generate
    help_text = generate.main.get_help(generate.main.make_context('generate.py', ['--network=x', '--seeds=0',
                                                                                  '--outdir=o']))
    assert 'seed 004' not in help_text and 'Improving GAN on MNIST' in ' '.join(help_text.split())


def test_training_runs_is_ignored_by_git():
    lines = (REPO / '.gitignore').read_text().splitlines()
    assert '/training-runs/' in lines or 'training-runs/' in lines


# ----------------------------------------------------------------------------
# -h and one-line usage errors in every script.

SCRIPTS = [('train.py', None), ('generate.py', None), ('calc_metrics.py', None), ('dataset_tool.py', None),
           ('benchmarks/train_step.py', None), ('benchmarks/ops.py', None), ('benchmarks/metrics_throughput.py', None),
           (None, 'metrics.classifiers'), (None, 'stylegan2_softgan.bench')]
SCRIPTS += [(p, None) for p in ('legacy.py', 'projector.py', 'style_mixing.py', 'benchmarks/default_run_digits.py',
                                'benchmarks/gpu_check.py') if (REPO / p).is_file()]


def _run_script(path, module, args, monkeypatch, capsys):
    monkeypatch.setattr(sys, 'argv', [path or module, *args])
    with pytest.raises(SystemExit) as e:
        if path is not None:
            runpy.run_path(str(REPO / path), run_name='__main__')
        else:
            runpy.run_module(module, run_name='__main__', alter_sys=False)
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


RUNPY_RERUN = pytest.mark.filterwarnings('ignore:.*found in sys.modules:RuntimeWarning')   # -m of a loaded module


@RUNPY_RERUN
@pytest.mark.parametrize('path,module', SCRIPTS, ids=[p or m for p, m in SCRIPTS])
def test_dash_h_and_one_line_usage_errors(path, module, monkeypatch, capsys):
    code, out, err = _run_script(path, module, ['-h'], monkeypatch, capsys)
    assert code in (0, None) and re.match(r'(?i)usage:', out), (out, err)
    code, out, err = _run_script(path, module, ['--no-such-option'], monkeypatch, capsys)
    assert code == 2 and out == ''
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith('Error: ') and '--no-such-option' in lines[0], err


@RUNPY_RERUN
def test_subcommand_h(monkeypatch, capsys):
    code, out, _ = _run_script(None, 'metrics.classifiers', ['train-mnist', '-h'], monkeypatch, capsys)
    assert code in (0, None) and '--epochs' in out


# ----------------------------------------------------------------------------
# Networks from a run folder or a URL.


@pytest.fixture
def run_folder(tmp_path):
    """A run folder with old-style and exact-kimg snapshot names, the newest being 4512 images."""
    G, D = tiny_networks()
    run = tmp_path / '00000-run'
    run.mkdir()
    (run / 'training_options.json').write_text('{}')
    meta = dict(training_set_kwargs=dict(class_name='training.dataset.DigitsDataset', resolution=8))
    for nimg in (4000, 4512, 500):
        with torch.no_grad():
            G.mapping.fc0.bias.fill_(nimg)     # tells the snapshots apart
        checkpoint.save_snapshot(str(run / checkpoint.snapshot_name(nimg, exact=True)), {'G': G, 'D': D, 'G_ema': G},
                                 meta=dict(meta, cur_nimg=nimg))
    return run


def test_snapshot_names_and_order():
    assert checkpoint.snapshot_name(32000) == 'network-snapshot-000032.pt'       # stylegan2-ada's names
    assert checkpoint.snapshot_name(4008) == 'network-snapshot-000004.pt'
    assert checkpoint.snapshot_name(4008, exact=True) == 'network-snapshot-000004.008.pt'
    assert checkpoint.snapshot_name(32000, exact=True) == 'network-snapshot-000032.pt'
    assert checkpoint.snapshot_name(0, exact=True) == 'network-snapshot-000000.pt'
    for nimg in (0, 1, 999, 1000, 4008, 25_000_000, 123_456_789):
        assert checkpoint.snapshot_nimg(checkpoint.snapshot_name(nimg, exact=True)) == nimg
        assert checkpoint.snapshot_nimg(checkpoint.snapshot_name(nimg)) == nimg // 1000 * 1000
    assert checkpoint.snapshot_nimg('network-snapshot-000004.08.pt') is None
    assert checkpoint.snapshot_nimg('/x/network-snapshot-000010.pt') == 10000


def test_a_short_last_tick_does_not_overwrite_the_previous_snapshot():
    names = run_logging.ExactKimgNames(kimg_per_tick=1)          # --kimg=2.5, batch 16: ticks end at 1008, 2016, 2500
    got = [checkpoint.snapshot_name(n, names.exact(n)) for n in (1008, 2016, 2500)]
    assert got == ['network-snapshot-000001.pt', 'network-snapshot-000002.pt', 'network-snapshot-000002.500.pt']
    short = run_logging.ExactKimgNames(kimg_per_tick=0.5)        # ticks under 1 kimg: always exact
    assert [short.exact(n) for n in (512, 1024, 1536)] == [True, True, True]


def test_run_folder_means_its_newest_snapshot(run_folder):
    assert [os.path.basename(p) for p in checkpoint.list_snapshots(str(run_folder))] == \
        ['network-snapshot-000000.500.pt', 'network-snapshot-000004.pt', 'network-snapshot-000004.512.pt']
    assert checkpoint.resolve_snapshot_path(str(run_folder)).endswith('network-snapshot-000004.512.pt')
    G = checkpoint.load_network(str(run_folder))
    assert float(G.mapping.fc0.bias[0]) == 4512
    assert checkpoint.load_snapshot_meta(str(run_folder))['cur_nimg'] == 4512


def test_generate_and_calc_metrics_take_a_run_folder(run_folder, tmp_path, monkeypatch, capsys):
    import calc_metrics
    import generate
    out = tmp_path / 'out'
    with pytest.raises(SystemExit) as e:
        generate.main(['--network', str(run_folder), '--seeds=0-1', '--outdir', str(out)])
    assert e.value.code == 0 and sorted(os.listdir(out)) == ['seed0000.png', 'seed0001.png']
    with pytest.raises(SystemExit) as e:
        calc_metrics.calc_metrics(['--network', str(run_folder), '--metrics=emd64', '--num-gen=64', '--quiet',
                                   '--device=cpu', '--cache-dir', str(tmp_path / 'stats')])
    assert e.value.code == 0, capsys.readouterr()
    rec = json.loads((run_folder / 'metric-emd64.jsonl').read_text())
    assert rec['snapshot_pkl'] == 'network-snapshot-000004.512.pt'


def test_unreachable_url_is_one_line_and_one_download_message(tmp_path, monkeypatch, capsys):
    import generate
    monkeypatch.setenv('GANMC_CACHE_DIR', str(tmp_path / 'cache'))
    sleeps = []
    monkeypatch.setattr(dnnlib.util.time, 'sleep', sleeps.append)
    out = tmp_path / 'out'
    with pytest.raises(SystemExit) as e:
        generate.main(['--network', 'http://127.0.0.1:9/network-snapshot-000010.pt', '--seeds=0',
                       '--outdir', str(out)])
    assert e.value.code == 2
    captured = capsys.readouterr()
    assert captured.out.count('Downloading') == 1 and len(sleeps) == 2      # three attempts, announced once
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith('Error: --network: cannot download http://127.0.0.1:9/'), lines
    assert not out.exists()


# ----------------------------------------------------------------------------
# Files and the cache.


@pytest.mark.parametrize('mask', [0o022, 0o027, 0o002])
def test_files_follow_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        assert dnnlib.util.current_umask() == mask
        dnnlib.util.atomic_write_bytes(str(tmp_path / 'a.json'), b'{}')
        G, _ = tiny_networks()
        checkpoint.save_snapshot(str(tmp_path / 'network-snapshot-000000.pt'), {'G': G})
        run_logging.save_image_grid(np.zeros([1, 1, 4, 4]), str(tmp_path / 'g.png'), drange=(0, 1), grid_size=(1, 1))
    finally:
        os.umask(old)
    for name in ('a.json', 'network-snapshot-000000.pt', 'g.png'):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o666 & ~mask, name


def test_cache_variables(monkeypatch, tmp_path):
    for var in ('GANMC_CACHE_DIR', 'DNNLIB_CACHE_DIR'):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))
    assert dnnlib.make_cache_dir_path('x') == str(tmp_path / 'xdg' / 'stylegan2-softgan' / 'x')
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'nvidia'))
    assert dnnlib.make_cache_dir_path('x') == str(tmp_path / 'nvidia' / 'x')
    monkeypatch.setenv('GANMC_CACHE_DIR', str(tmp_path / 'ours'))            # the project's own variable wins
    assert dnnlib.make_cache_dir_path('x') == str(tmp_path / 'ours' / 'x')
    readme = (REPO / 'README.md').read_text()
    assert 'DNNLIB_CACHE_DIR' in readme and '`GANMC_CACHE_DIR` wins' in readme


# ----------------------------------------------------------------------------
# Honest metric names.


def test_logged_name_states_the_real_sample_count():
    assert metric_main.logged_name('fid50k_full', None) == 'fid50k_full'
    assert metric_main.logged_name('fid50k_full', 50000) == 'fid50k_full'
    assert metric_main.logged_name('fid50k_full', 200) == 'fid200_full'
    assert metric_main.logged_name('fid50k_full', 2000) == 'fid2k_full'
    assert metric_main.logged_name('kid50k_full', 1500) == 'kid1500_full'
    assert metric_main.logged_name('pr50k3_full', 200) == 'pr200_3_full'
    assert metric_main.logged_name('pr50k3_full', 10000) == 'pr10k3_full'
    assert metric_main.logged_name('is50k', 64) == 'is64'
    assert metric_main.logged_name('cat_cov10k', 1000) == 'cat_cov1k'
    assert metric_main.logged_name('emd64', 128) == 'emd64'          # no count in the name: num_gen recorded
    assert metric_main.logged_name('ppl2_wend', 40) == 'ppl2_wend'


def test_a_smaller_sample_is_logged_under_its_real_count(tmp_path, capsys):
    result = dnnlib.EasyDict(results=dnnlib.EasyDict(pr50k3_full_precision=0.5, pr50k3_full_recall=0.25),
                             metric='pr50k3_full', total_time=1.0, total_time_str='1s', num_gpus=1, num_gen=200)
    record = metric_main.report_metric(result, run_dir=str(tmp_path), snapshot_pkl=str(tmp_path / 'network-snapshot-000010.pt'))
    assert record.metric == 'pr200_3_full' and record.computed_as == 'pr50k3_full'
    assert record.results == {'pr200_3_full_precision': 0.5, 'pr200_3_full_recall': 0.25}
    assert not (tmp_path / 'metric-pr50k3_full.jsonl').exists()
    line = json.loads((tmp_path / 'metric-pr200_3_full.jsonl').read_text())
    assert line['results'] == record.results and line['num_gen'] == 200
    assert json.loads(capsys.readouterr().out)['metric'] == 'pr200_3_full'
    assert result.metric == 'pr50k3_full'          # the caller's result is untouched
