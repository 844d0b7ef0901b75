"""projector.py, style_mixing.py and generate.py --projected-w on a tiny StyleGAN2 generator saved as a
snapshot in the test: the projection approaches a target the generator can make, the distances are the
named ones, the noise regulariser matches a direct computation, the mixing grid puts each style where
--styles says, and bad input gives one line with exit status 2."""

import io
import os

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

import generate
import projector
import style_mixing
from test_metrics_pipeline import make_detector_dir
from torch_utils import checkpoint
from training import networks


@pytest.fixture(scope='module')
def snap(tmp_path_factory):
    torch.manual_seed(0)
    G = networks.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
                           mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(channel_base=128, channel_max=16))
    with torch.no_grad():
        for name, p in G.named_parameters():
            if 'noise_strength' in name:
                p.fill_(0.1)
    path = tmp_path_factory.mktemp('snap') / 'G.pt'
    checkpoint.save_snapshot(str(path), {'G_ema': G})
    return str(path)


def load(snap):
    return checkpoint.load_network(snap)


def target_from(G, tmp_path, seed=7):
    """A target the generator can make exactly: its image for some w (PNG)."""
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).float()
    with torch.no_grad():
        img = G.synthesis(G.mapping(z, None), noise_mode='const')
    pixels = ((img[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8)).numpy()
    path = tmp_path / 'target.png'
    PIL.Image.fromarray(pixels).save(path)
    return str(path), pixels


def run(cmd, args):
    return CliRunner().invoke(cmd, [str(a) for a in args])


def test_projection_approaches_a_reachable_target(snap, tmp_path):
    G = load(snap)
    path, pixels = target_from(G, tmp_path)
    target = torch.from_numpy(projector.load_target(path, 16, 3).copy()).permute(2, 0, 1)[None].float()
    assert torch.equal(target[0].permute(1, 2, 0).to(torch.uint8), torch.from_numpy(pixels))   # same size: unchanged
    name, dist = projector.make_distance('pixel', target, 'cpu')
    assert name.startswith('pixel FALLBACK')
    ws, dists = projector.project(load(snap), pixels, dist, num_steps=40, seed=1)
    assert ws.shape == (40, G.num_ws, G.w_dim)
    assert dists[-1] < 0.4 * dists[0], (dists[0], dists[-1])
    # The stored w is one w repeated over the layers.
    assert torch.equal(ws[-1], ws[-1][:1].repeat(G.num_ws, 1))


def test_noise_regulariser_and_w_statistics_match_direct_computation(snap):
    G = load(snap)
    bufs = projector.noise_buffers(G)
    assert sorted(bufs) == sorted(n for n, _ in G.synthesis.named_buffers() if n.endswith('noise_const'))
    expected = 0.0
    for v in bufs.values():
        x = v.double().numpy()
        while True:
            expected += np.mean(x * np.roll(x, 1, axis=1)) ** 2 + np.mean(x * np.roll(x, 1, axis=0)) ** 2
            if x.shape[0] <= 8:
                break
            x = x.reshape(x.shape[0] // 2, 2, x.shape[1] // 2, 2).mean((1, 3))
    assert float(projector.noise_regularisation(bufs)) == pytest.approx(expected, rel=1e-5)
    w_avg, w_std = projector.w_statistics(G, num_samples=500, seed=3)
    z = torch.from_numpy(np.random.RandomState(3).randn(500, G.z_dim)).float()
    with torch.no_grad():
        w = G.mapping(z, None)[:, 0].double().numpy()
    np.testing.assert_allclose(w_avg[0, 0].numpy(), w.mean(0), rtol=1e-5, atol=1e-6)
    assert w_std == pytest.approx(float(np.sqrt(((w - w.mean(0)) ** 2).sum() / 500)), rel=1e-5)


def test_distance_choice_names_the_fallbacks(snap, tmp_path):
    target = torch.rand(1, 3, 16, 16) * 255
    img = (torch.rand(1, 3, 16, 16) * 255).requires_grad_(True)
    lp = make_detector_dir(tmp_path / 'both', vgg=True)
    name, dist = projector.make_distance('auto', target, 'cpu', detector_dir=lp)
    assert name.startswith('lpips')
    # The fake VGG's LPIPS embedding is the image / 255: the distance is the squared difference / 255².
    assert float(dist(img).detach()) == pytest.approx(float(((img.detach() - target) / 255).square().sum()), rel=1e-5)
    inc = make_detector_dir(tmp_path / 'inc')
    name, dist = projector.make_distance('auto', target, 'cpu', detector_dir=inc)
    assert name.startswith('pixel-inception FALLBACK')
    dist(img).backward()
    assert img.grad is not None and float(img.grad.abs().sum()) > 0
    with pytest.raises(Exception, match='--distance=lpips: VGG16 not found'):
        projector.make_distance('lpips', target, 'cpu', detector_dir=inc)


def test_projector_cli_writes_its_files_and_generate_reads_them_back(snap, tmp_path):
    G = load(snap)
    path, _ = target_from(G, tmp_path)
    out = tmp_path / 'out'
    res = run(projector.main, [f'--network={snap}', f'--target={path}', '--num-steps=12', '--distance=pixel',
                               '--save-video=true', f'--outdir={out}'])
    assert res.exit_code == 0, res.output
    assert 'Distance: pixel FALLBACK' in res.output
    assert sorted(os.listdir(out)) == ['proj.gif', 'proj.png', 'proj_steps.npz', 'projected_w.npz', 'target.png']
    with np.load(out / 'projected_w.npz', allow_pickle=False) as data:
        w = data['w']
        assert str(data['distance']).startswith('pixel FALLBACK')
    assert w.shape == (1, G.num_ws, G.w_dim)
    with np.load(out / 'proj_steps.npz', allow_pickle=False) as data:
        assert data['w'].shape == (12, G.num_ws, G.w_dim) and np.array_equal(data['w'][-1:], w)
    gif = PIL.Image.open(out / 'proj.gif')
    assert gif.n_frames == 3 and gif.size == (32, 16)      # steps 0, 10, 11; target beside projection
    # generate.py --projected-w synthesises the stored w (with the network's own constant noise; proj.png used
    # the noise maps optimised alongside, as in stylegan2-ada).
    res = run(generate.main, [f'--network={snap}', f'--projected-w={out / "projected_w.npz"}', f'--outdir={tmp_path / "g"}'])
    assert res.exit_code == 0, res.output
    with torch.no_grad():
        img = G.synthesis(torch.from_numpy(w), noise_mode='const')
    expected = (img[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
    assert np.array_equal(np.asarray(PIL.Image.open(tmp_path / 'g' / 'proj00.png')), expected)


@pytest.mark.parametrize('args, message', [
    (['--target=/no/such.png'], '--target: /no/such.png: no such file'),
    (['--distance=lpips'], '--distance=lpips: VGG16 not found'),
    (['--num-steps=0'], "Invalid value for '--num-steps'"),
])
def test_projector_bad_input(snap, tmp_path, args, message, monkeypatch):
    monkeypatch.setenv('GANMC_CACHE_DIR', str(tmp_path / 'cache'))
    path, _ = target_from(load(snap), tmp_path)
    res = run(projector.main, [f'--network={snap}', f'--target={path}', f'--outdir={tmp_path / "o"}', *args])
    assert res.exit_code == 2 and message in res.output, res.output
    assert not (tmp_path / 'o').exists()


def test_generate_projected_w_errors(snap, tmp_path):
    bad = tmp_path / 'bad.npz'
    np.savez(bad, w=np.zeros([1, 3, 8], np.float32))
    res = run(generate.main, [f'--network={snap}', f'--projected-w={bad}', f'--outdir={tmp_path / "o"}'])
    assert res.exit_code == 2 and '"w" has shape [1, 3, 8]' in res.output
    res = run(generate.main, [f'--network={snap}', f'--projected-w={bad}', '--seeds=1', f'--outdir={tmp_path / "o"}'])
    assert res.exit_code == 2 and '--seeds: cannot be combined with --projected-w' in res.output
    res = run(generate.main, [f'--network={snap}', f'--outdir={tmp_path / "o"}'])
    assert res.exit_code == 2 and '--seeds: required (or --projected-w)' in res.output
    assert not (tmp_path / 'o').exists()


def test_style_mixing_grid_takes_the_listed_layers_from_the_column_seed(snap, tmp_path):
    G = load(snap)
    rows, cols, styles = [3, 9], [5, 11, 2], [0, 1, 2]
    cells, grid = style_mixing.mix(G, rows, cols, styles)
    z = {s: torch.from_numpy(np.random.RandomState(s).randn(1, G.z_dim)).float() for s in rows + cols}
    with torch.no_grad():
        w = {s: G.mapping(z[s], None)[0] for s in z}
        for r in rows:
            for c in cols:
                mixed = w[r].clone()
                mixed[styles] = w[c][styles]
                img = G.synthesis(mixed[None], noise_mode='const')
                expected = (img[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
                assert np.abs(cells[(r, c)].astype(int) - expected.astype(int)).max() <= 1
    h = 16
    assert grid.shape == (3 * h, 4 * h, 3) and not grid[:h, :h].any()
    assert np.array_equal(grid[h:2 * h, 2 * h:3 * h], cells[(3, 11)])
    assert np.array_equal(grid[:h, 3 * h:4 * h], cells[(2, 2)]) and np.array_equal(grid[2 * h:, :h], cells[(9, 9)])
    # All layers from the column: the mix is the column's own image.
    cells, _ = style_mixing.mix(G, [3], [5], list(range(G.num_ws)))
    assert np.array_equal(cells[(3, 5)], cells[(5, 5)])


def test_style_mixing_cli(snap, tmp_path):
    out = tmp_path / 'out'
    res = run(style_mixing.main, [f'--network={snap}', '--rows=1,2', '--cols=3-5', '--styles=0-2', '--save-cells',
                                  f'--outdir={out}'])
    assert res.exit_code == 0, res.output
    assert PIL.Image.open(out / 'grid.png').size == (4 * 16, 3 * 16)
    assert len(os.listdir(out)) == 1 + 2 + 3 + 6
    res = run(style_mixing.main, [f'--network={snap}', '--rows=1', '--cols=2', '--styles=0-99', f'--outdir={tmp_path / "o"}'])
    assert res.exit_code == 2 and '--styles: layer 99 does not exist' in res.output
    res = run(style_mixing.main, [f'--network={snap}', '--rows=x', '--cols=2', f'--outdir={tmp_path / "o"}'])
    assert res.exit_code == 2 and '--rows:' in res.output
    assert not (tmp_path / 'o').exists()
