"""generate.py: images per seed, grid, interpolation frames and GIF, random-α mixing, rejection sampling with
its acceptance rate, conditional models, and one-line exit-2 errors that write nothing. Snapshots are
tiny networks saved directly (no training)."""


import math
import os
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

import dnnlib
import generate
from stylegan2_softgan import samplers
from torch_utils import checkpoint
from training import architectures

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _nets(arch, resolution=8, channels=1, c_dim=0, seed=0, **knobs):
    torch.manual_seed(seed)
    if arch == 'stylegan2':
        knobs = dict(dict(channel_base=64, channel_max=16, map_layers=1, z_dim=8, w_dim=8, num_fp16_res=0), **knobs)
    elif arch == 'dcgan':
        knobs = dict(dict(channel_base=64, channel_max=16, z_dim=8), **knobs)
    G_kwargs, D_kwargs = architectures.build_arch_kwargs(arch, resolution, channels, c_dim=c_dim, **knobs)
    G = dnnlib.util.construct_class_by_name(**G_kwargs)
    D = dnnlib.util.construct_class_by_name(**D_kwargs)
    return G, D


@pytest.fixture(scope='module')
def snaps(tmp_path_factory):
    root = tmp_path_factory.mktemp('snaps')
    out = {}
    for name, arch, kwargs in [('style', 'stylegan2', {}), ('cond', 'stylegan2', dict(c_dim=3, seed=1)),
                               ('rgb', 'stylegan2', dict(channels=3, seed=2)), ('plain', 'dcgan', {})]:
        G, D = _nets(arch, **kwargs)
        path = str(root / f'{name}.pt')
        checkpoint.save_snapshot(path, {'G': G, 'D': D, 'G_ema': G})
        out[name] = path
    G, D = _nets('stylegan2', seed=3)
    out['noD'] = str(root / 'noD.pt')
    checkpoint.save_snapshot(out['noD'], {'G': G, 'G_ema': G})
    G_kwargs, D_kwargs = architectures.build_arch_kwargs('mlp', None, None)
    out['points'] = str(root / 'points.pt')
    checkpoint.save_snapshot(out['points'], {'G_ema': dnnlib.util.construct_class_by_name(**G_kwargs)})
    return out


def run(*args):
    result = CliRunner().invoke(generate.main, [str(a) for a in args])
    return result


def png(path):
    with PIL.Image.open(path) as im:
        return np.asarray(im)


def expected_pixels(snap, z, c, psi=1.0):
    G = checkpoint.load_network(snap)
    with torch.no_grad():
        img = G(z, c, truncation_psi=psi, noise_mode='const') if psi != 1 else G(z, c, noise_mode='const')
    return samplers.to_uint8(img)


def same_image(a, b, tol=1):
    """PNG pixels against the expected uint8 (one level of slack for batch-dependent float rounding)."""
    a = a.reshape(b.shape) if a.ndim == 2 else a
    return np.abs(a.astype(int) - b.astype(int)).max() <= tol


# ----------------------------------------------------------------------------


def test_one_png_per_seed_with_truncation(snaps, tmp_path):
    out = tmp_path / 'out'
    result = run(f'--network={snaps["style"]}', '--seeds=0-2,9', '--trunc=0.5', f'--outdir={out}')
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(out)) == ['seed0000.png', 'seed0001.png', 'seed0002.png', 'seed0009.png']
    ref = expected_pixels(snaps['style'], samplers.seed_latents([0, 1, 2, 9], 8), torch.zeros(4, 0), psi=0.5)
    for i, seed in enumerate([0, 1, 2, 9]):
        with PIL.Image.open(out / f'seed{seed:04d}.png') as im:
            assert im.mode == 'L' and im.size == (8, 8)
            assert same_image(np.asarray(im), ref[i])


def test_rgb_grid(snaps, tmp_path):
    out = tmp_path / 'out'
    result = run(f'--network={snaps["rgb"]}', '--seeds=0-4', '--grid', f'--outdir={out}')
    assert result.exit_code == 0, result.output
    assert os.listdir(out) == ['grid.png']
    grid = png(out / 'grid.png')
    assert grid.shape == (16, 24, 3)                      # 5 images: 3 columns, 2 rows of 8x8
    ref = expected_pixels(snaps['rgb'], samplers.seed_latents(range(5), 8), torch.zeros(5, 0))
    assert same_image(grid[8:16, 8:16], ref[4]) and grid[8:, 16:].max() == 0


@pytest.mark.parametrize('method, space', [('lerp', 'z'), ('slerp', 'w')])
def test_interpolation_frames_and_gif(snaps, tmp_path, method, space):
    out = tmp_path / 'out'
    result = run(f'--network={snaps["style"]}', '--seeds=1,2,3', f'--interp={method}', f'--space={space}',
                 '--frames=3', '--frame-ms=50', f'--outdir={out}')
    assert result.exit_code == 0, result.output
    names = sorted(os.listdir(out))
    assert names == [f'frame{i:04d}.png' for i in range(7)] + ['interp.gif']
    ref = expected_pixels(snaps['style'], samplers.seed_latents([1, 2, 3], 8), torch.zeros(3, 0))
    for frame, key in ((0, 0), (3, 1), (6, 2)):
        assert same_image(png(out / f'frame{frame:04d}.png'), ref[key])
    with PIL.Image.open(out / 'interp.gif') as gif:
        assert gif.n_frames == 7 and gif.info['duration'] == 50


def test_random_alpha_mixing(snaps, tmp_path):
    out = tmp_path / 'out'
    result = run(f'--network={snaps["style"]}', '--seeds=4,5', '--interp-random', f'--outdir={out}')
    assert result.exit_code == 0, result.output
    zs = []
    for seed in (4, 5):
        rnd = np.random.RandomState(seed)
        z1, z2, alpha = rnd.randn(8), rnd.randn(8), rnd.uniform()
        zs.append(alpha * z1 + (1 - alpha) * z2)
    ref = expected_pixels(snaps['style'], torch.from_numpy(np.stack(zs)).float(), torch.zeros(2, 0))
    assert same_image(png(out / 'seed0004.png'), ref[0]) and same_image(png(out / 'seed0005.png'), ref[1])


def _logits(snap, seeds, batch=16):
    G = checkpoint.load_network(snap)
    D = checkpoint.load_network(snap, 'D')
    z = samplers.seed_latents(seeds, G.z_dim)
    c = torch.zeros(len(seeds), 0)
    with torch.no_grad():
        img = torch.cat([G(zb, cb, noise_mode='const') for zb, cb in zip(z.split(batch), c.split(batch))])
        return torch.cat([D(x, cb).reshape(-1) for x, cb in zip(img.split(batch), c.split(batch))]).numpy()


def test_reject_top_keeps_exactly_the_fraction_of_highest_scores(snaps, tmp_path):
    out = tmp_path / 'out'
    result = run(f'--network={snaps["style"]}', '--seeds=0-19', '--reject=top', '--top=0.25', f'--outdir={out}')
    assert result.exit_code == 0, result.output
    assert 'Accepted 5 of 20 candidates (25.0%)' in result.stdout
    logits = _logits(snaps['style'], range(20))
    best = sorted(np.argsort(-logits)[:5])
    assert sorted(os.listdir(out)) == [f'seed{s:04d}.png' for s in best]
    assert logits[best].mean() > logits.mean()


def test_reject_threshold_and_drs(snaps, tmp_path):
    logits = _logits(snaps['style'], range(20))
    out = tmp_path / 'thr'
    result = run(f'--network={snaps["style"]}', '--seeds=0-19', '--reject=threshold', '--threshold=0.55',
                 f'--outdir={out}')
    assert result.exit_code == 0, result.output
    kept = [s for s in range(20) if 1 / (1 + math.exp(-logits[s])) > 0.55]
    assert 0 < len(kept) < 20
    assert sorted(os.listdir(out)) == [f'seed{s:04d}.png' for s in kept]
    assert f'Accepted {len(kept)} of 20 candidates ({100 * len(kept) / 20:.1f}%)' in result.stdout
    outs = []
    for i in range(2):
        out = tmp_path / f'drs{i}'
        result = run(f'--network={snaps["style"]}', '--seeds=0-19', '--reject=drs', '--drs-percentile=50',
                     '--reject-seed=3', '--grid', f'--outdir={out}')
        assert result.exit_code == 0, result.output
        outs.append(result.stdout.splitlines()[0])
    mask = samplers.reject(torch.from_numpy(logits), 'drs', gamma_percentile=50,
                           generator=torch.Generator().manual_seed(3))
    k = int(mask.sum())
    assert outs[0] == outs[1] and outs[0].startswith(f'Accepted {k} of 20 candidates')


def test_conditional_class(snaps, tmp_path):
    out = tmp_path / 'out'
    result = run(f'--network={snaps["cond"]}', '--seeds=0,1', '--class=2', f'--outdir={out}')
    assert result.exit_code == 0, result.output
    ref = expected_pixels(snaps['cond'], samplers.seed_latents([0, 1], 8), samplers.class_labels(3, 2, 2))
    other = expected_pixels(snaps['cond'], samplers.seed_latents([0, 1], 8), samplers.class_labels(3, 0, 2))
    assert same_image(png(out / 'seed0001.png'), ref[1]) and not same_image(png(out / 'seed0001.png'), other[1])


def test_plain_generator_without_truncation(snaps, tmp_path):
    out = tmp_path / 'out'
    result = run(f'--network={snaps["plain"]}', '--seeds=3', '--noise-mode=random', f'--outdir={out}')
    assert result.exit_code == 0, result.output
    ref = expected_pixels(snaps['plain'], samplers.seed_latents([3], 8), torch.zeros(1, 0))
    assert same_image(png(out / 'seed0003.png'), ref[0])


@pytest.mark.parametrize('snap, args, message', [
    ('style', ['--seeds=3-1'], "Invalid value for '--seeds'"),
    ('style', ['--seeds=a'], "Invalid value for '--seeds'"),
    ('cond', ['--seeds=0'], '--class: the network is conditional: give a class in 0..2'),
    ('cond', ['--seeds=0', '--class=3'], '--class: the network is conditional: give a class in 0..2, got 3'),
    ('style', ['--seeds=0', '--class=1'], '--class: the network is unconditional'),
    ('plain', ['--seeds=0', '--trunc=0.7'], '--trunc: DCGANGenerator has no mapping network'),
    ('plain', ['--seeds=0,1', '--interp=lerp', '--space=w'], '--space=w: DCGANGenerator has no mapping network'),
    ('style', ['--seeds=0', '--space=w'], '--space: only applies with --interp'),
    ('style', ['--seeds=0', '--interp=lerp'], '--interp: needs at least 2 seeds'),
    ('style', ['--seeds=0,1', '--interp=lerp', '--grid'], '--grid: cannot be combined with --interp'),
    ('style', ['--seeds=0,1', '--interp=lerp', '--reject=top'], '--reject: cannot be combined with --interp'),
    ('style', ['--seeds=0', '--threshold=0.5'], '--threshold: only applies with --reject=threshold'),
    ('style', ['--seeds=0', '--reject=top', '--drs-eps=0.1'], '--drs-eps: only applies with --reject=drs'),
    ('style', ['--seeds=0', '--noise-mode=loud'], "Invalid value for '--noise-mode'"),
    ('noD', ['--seeds=0-3', '--reject=top'], "--reject: needs the discriminator of the snapshot"),
    ('points', ['--seeds=0'], '--network: MLPGenerator does not generate 1- or 3-channel images'),
    (None, ['--seeds=0'], '--network: '),
])
def test_bad_options_exit_2_with_one_line_and_write_nothing(snaps, tmp_path, snap, args, message):
    out = tmp_path / 'out'
    network = snaps[snap] if snap else str(tmp_path / 'missing.pt')
    result = run(f'--network={network}', *args, f'--outdir={out}')
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith('Error: ') and message in lines[0], result.stderr
    assert not out.exists()


def test_parse_seeds():
    assert generate.parse_seeds('0-3,7, 10-11') == [0, 1, 2, 3, 7, 10, 11]
    with pytest.raises(ValueError, match='empty'):
        generate.parse_seeds('5-4')
    with pytest.raises(ValueError, match='out of range'):
        generate.parse_seeds(str(2**32))


def test_command_line_script(snaps, tmp_path):
    out = tmp_path / 'out'
    script = os.path.join(REPO, 'generate.py')
    proc = subprocess.run([sys.executable, script, f'--network={snaps["style"]}', '--seeds=0-3', '--reject=top',
                           '--top=0.5', f'--outdir={out}'], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert 'Accepted 2 of 4 candidates (50.0%)' in proc.stdout and len(os.listdir(out)) == 2
    proc = subprocess.run([sys.executable, script, f'--network={snaps["style"]}', '--seeds=0', '--trunc=0.5',
                           '--class=1', f'--outdir={tmp_path / "bad"}'], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.strip().count('\n') == 0
    assert proc.stderr.startswith('Error: --class') and not (tmp_path / 'bad').exists()

