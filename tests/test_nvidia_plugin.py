"""SoftGAN in NVIDIA's loss conventions (stylegan2_softgan.nvidia_plugin): gradients of every phase against
hand-written losses on stand-in networks with NVIDIA's attribute names, the β schedule fed by the real
batches it sees, statistics through the host's training_stats, the discriminator blur, an import that needs
none of our top-level package names, and a few steps of NVIDIA's own stylegan3 loop with the class as its loss."""

import glob
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from nvidia_reference import python_path, stylegan3_copy
from stylegan2_softgan import nvidia_plugin, soft_terms
from stylegan2_softgan.beta_schedule import BETA_MAX
from stylegan2_softgan.emd import batch_emd
from torch_utils import training_stats

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RES = 8


# ----------------------------------------------------------------------------
# Stand-ins with NVIDIA's attribute names and call signatures.


class Mapping(torch.nn.Module):
    """z -> ws [N, num_ws, w_dim]; records how it was called; keeps a W average like NVIDIA's."""

    def __init__(self, z_dim=4, w_dim=4, num_ws=3, convention='sg3'):
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws, self.convention = z_dim, w_dim, num_ws, convention
        self.fc = torch.nn.Linear(z_dim, w_dim * num_ws)
        self.register_buffer('w_avg', torch.zeros(w_dim))
        self.calls = []

    def forward(self, z, c, **kwargs):
        self.calls.append(kwargs)
        update = kwargs.get('update_emas', False) if self.convention == 'sg3' else not kwargs.get('skip_w_avg_update', False)
        ws = self.fc(z).view(-1, self.num_ws, self.w_dim)
        if update and self.training:
            self.w_avg.copy_(ws.detach().mean([0, 1]).lerp(self.w_avg, 0.9))
        return ws


class Synthesis(torch.nn.Module):
    def __init__(self, w_dim=4, num_ws=3, convention='sg3'):
        super().__init__()
        self.num_ws, self.convention = num_ws, convention
        self.fc = torch.nn.Linear(w_dim * num_ws, 3 * RES * RES)

    def forward(self, ws, **kwargs):
        if self.convention == 'sg2ada':
            assert not kwargs, 'stylegan2-ada synthesis takes ws only'
        return torch.tanh(self.fc(ws.flatten(1))).view(-1, 3, RES, RES)


class Generator(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.mapping = Mapping()
        self.synthesis = Synthesis()
        self.z_dim, self.c_dim, self.num_ws = 4, 0, 3


class Discriminator(torch.nn.Module):
    def __init__(self, convention='sg3'):
        super().__init__()
        self.convention = convention
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4 * RES * RES, 1)

    def forward(self, img, c, **kwargs):
        if self.convention == 'sg2ada':
            assert not kwargs
        else:
            assert set(kwargs) <= {'update_emas'}
        return self.fc(torch.nn.functional.leaky_relu(self.conv(img), 0.2).flatten(1))


def sg3_loss(**kwargs):
    torch.manual_seed(0)
    G, D = Generator(), Discriminator()
    kwargs = dict(dict(r1_gamma=0, style_mixing_prob=0, pl_weight=0), **kwargs)
    return nvidia_plugin.StyleGAN3SoftGANLoss('cpu', G, D, **kwargs), G, D


def batch(n=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    real = (torch.randint(0, 256, [n, 3, RES, RES], generator=g).float() / 127.5 - 1)
    return real, torch.zeros(n, 0), torch.randn(n, 4, generator=g), torch.zeros(n, 0)


def grads(module):
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in module.parameters()]


def zero(*modules):
    for m in modules:
        m.requires_grad_(True)
        for p in m.parameters():
            p.grad = None


def H(logits):   # independent: μ from the sigmoid, entropy in natural log, computed in float64
    mu = torch.sigmoid(logits.double())
    return (-(mu * mu.log() + (1 - mu) * (1 - mu).log())).float()


# ----------------------------------------------------------------------------
# Gradients of each phase against hand-written losses.


def test_dmain_gradient_matches_the_softgan_discriminator_loss():
    loss, G, D = sg3_loss(beta=0.5)
    real, real_c, z, c = batch()
    zero(D)
    loss.accumulate_gradients('Dmain', real, real_c, z, c, gain=1.0, cur_nimg=0)
    ours = grads(D)
    zero(D)
    with torch.no_grad():
        fake = G.synthesis(G.mapping(z, c))
    lf, lr = D(fake, c), D(real, real_c)
    expected = ((-(1 - torch.sigmoid(lf)) - 0.5 * H(lf)).mean() + (-torch.sigmoid(lr) - 0.5 * H(lr)).mean())
    expected.backward()
    for a, b in zip(ours, grads(D)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize('g_loss', ['linear', 'ns'])
def test_gmain_gradient_matches_the_generator_loss(g_loss):
    loss, G, D = sg3_loss(beta=0.3, g_loss=g_loss)
    real, real_c, z, c = batch()
    zero(G)
    loss.accumulate_gradients('Gmain', real, real_c, z, c, gain=2.0, cur_nimg=0)
    ours = grads(G)
    zero(G)
    logits = D(G.synthesis(G.mapping(z, c)), c)
    term = 1 - torch.sigmoid(logits) if g_loss == 'linear' else -torch.log(torch.sigmoid(logits))
    (2.0 * term.mean()).backward()
    for a, b in zip(ours, grads(G)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_dreg_is_r1_with_its_gain_and_the_real_signs_are_reported():
    loss, G, D = sg3_loss(beta=0.3, r1_gamma=3.0)
    real, real_c, z, c = batch()
    zero(D)
    collector = training_stats.Collector(regex='Loss/.*')
    loss.accumulate_gradients('Dreg', real, real_c, z, c, gain=16.0, cur_nimg=0)
    collector.update()
    ours = grads(D)
    zero(D)
    x = real.clone().requires_grad_(True)
    g = torch.autograd.grad(D(x, real_c).sum(), x, create_graph=True)[0]
    (16.0 * (3.0 / 2 * g.square().sum([1, 2, 3])).mean()).backward()
    for a, b in zip(ours, grads(D)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    with torch.no_grad():
        signs = D(real, real_c).sign()
    assert collector.num('Loss/signs/real') == 4 and collector.mean('Loss/signs/real') == pytest.approx(float(signs.mean()))
    assert collector.num('Loss/r1_penalty') == 4 and collector.num('Loss/D/loss') == 0


def test_path_length_phase_updates_its_mean_and_reaches_the_generator():
    loss, G, D = sg3_loss(beta=0.3, pl_weight=2.0)
    real, real_c, z, c = batch()
    zero(G)
    loss.accumulate_gradients('Greg', real, real_c, z, c, gain=4.0, cur_nimg=0)
    assert float(loss.pl_mean) > 0
    assert any(float(g.abs().sum()) > 0 for g in grads(G.synthesis))
    # Independent: first call, pl_mean starts at 0 -> lerp by pl_decay; the penalty uses half the batch.
    torch.manual_seed(5)
    loss2, G2, _ = sg3_loss(beta=0.3, pl_weight=2.0)
    torch.manual_seed(5)
    loss2.accumulate_gradients('Greg', real, real_c, z, c, gain=1.0, cur_nimg=0)
    torch.manual_seed(5)
    ws = G2.mapping(z[:2], c[:2])
    img = G2.synthesis(ws)
    noise = torch.randn_like(img) / RES
    pl_grad = torch.autograd.grad((img * noise).sum(), ws)[0]
    lengths = pl_grad.square().sum(2).mean(1).sqrt()
    assert float(loss2.pl_mean) == pytest.approx(0.01 * float(lengths.mean()), rel=1e-5)


def test_phase_names_are_checked():
    loss, *_ = sg3_loss()
    with pytest.raises(ValueError, match="unknown phase 'Gfoo'"):
        loss.accumulate_gradients('Gfoo', *batch(), gain=1, cur_nimg=0)


def test_stylegan2ada_convention_calls_mapping_and_synthesis_as_nvidia_does():
    torch.manual_seed(0)
    mapping, synthesis, D = Mapping(convention='sg2ada'), Synthesis(convention='sg2ada'), Discriminator('sg2ada')
    loss = nvidia_plugin.StyleGAN2ADASoftGANLoss('cpu', mapping, synthesis, D, augment_pipe=None,
                                                 style_mixing_prob=1.0, r1_gamma=1, pl_batch_shrink=2, pl_decay=0.01,
                                                 pl_weight=2, beta=0.2)
    real, real_c, z, c = batch()
    for phase in ('Gmain', 'Greg', 'Dmain', 'Dreg'):
        loss.accumulate_gradients(phase, real, real_c, z, c, sync=True, gain=1.0)
    # Every pass but the style-mixing one updates the W average; mixing passes skip it (NVIDIA's keyword).
    assert {frozenset(k.items()) for k in mapping.calls} == {frozenset(), frozenset({('skip_w_avg_update', True)})}
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in mapping.parameters())


# ----------------------------------------------------------------------------
# β from the real batches seen, statistics through the host.


def test_default_beta_is_constant_as_train_py_soft():
    loss, *_ = sg3_loss()
    assert loss.beta_schedule.fixed == BETA_MAX and loss.beta_schedule.beta == BETA_MAX
    for step in range(3):
        for phase in ('Gmain', 'Dmain'):
            loss.accumulate_gradients(phase, *batch(seed=step), gain=1.0, cur_nimg=4 * step)
    assert loss.beta_schedule.beta == BETA_MAX and loss.beta_schedule.num_measurements == 0


def test_default_floor_is_built_from_seen_real_batches():
    loss, G, D = sg3_loss(beta=None, beta_floor_pairs=2, beta_interval=1)   # floor 'real' by default: 2·4·2 = 16 reals
    assert loss.beta_schedule.fixed is None and loss.beta_schedule.floor_mode == 'real'
    seen = []
    for step in range(6):
        real, real_c, z, c = batch(seed=10 + step)
        loss.accumulate_gradients('Gmain', real, real_c, z, c, gain=1.0, cur_nimg=4 * step)
        ready = loss.beta_schedule.num_measurements > 0
        assert ready == (4 * len(seen) >= 16), step
        if ready and loss.beta_schedule.num_measurements == 1 and step == 4:
            # The floor: mean EMD of 2 disjoint pairs of 4 among the 16 most recent reals (before this step's).
            reals = torch.cat(seen)[-16:]
            pairs = [batch_emd(reals[8 * k:8 * k + 4], reals[8 * k + 4:8 * k + 8]) for k in range(2)]
            assert loss.beta_schedule.emd_floor == pytest.approx(np.mean(pairs), rel=1e-6)
        else:
            assert ready or loss.beta_schedule.beta == BETA_MAX
        loss.accumulate_gradients('Dmain', real, real_c, z, c, gain=1.0, cur_nimg=4 * step)
        seen.append(real)


def test_seen_reals_keep_8bit_images_exactly():
    src = nvidia_plugin.SeenRealImages(capacity=6)
    a, b = batch(4, seed=1)[0], batch(4, seed=2)[0]
    src.add(a)
    src.add(b)
    assert len(src) == 6
    assert torch.equal(src(6), torch.cat([a, b])[-6:])
    with pytest.raises(ValueError, match='asked for 7 real images, only 6 seen'):
        src(7)


def test_statistics_go_to_the_host_training_stats_resolved_at_run_time(monkeypatch):
    reported = []

    class FakeStats:
        @staticmethod
        def report(name, value):
            reported.append(name)
            return value

        report0 = report

    loss, *_ = sg3_loss(beta=None, beta_floor='zero')
    monkeypatch.setitem(sys.modules, 'torch_utils.training_stats', FakeStats)
    monkeypatch.setattr(sys.modules['torch_utils'], 'training_stats', FakeStats)
    for phase in ('Gmain', 'Dmain'):
        loss.accumulate_gradients(phase, *batch(), gain=1.0, cur_nimg=0)
    for name in ('Loss/signs/real', 'Loss/scores/real', 'Loss/signs/fake', 'Loss/G/loss', 'Loss/D/loss', 'Loss/beta',
                 'Loss/emd', 'Loss/entropy/real'):
        assert name in reported, name


def test_import_needs_none_of_our_top_level_names(tmp_path):
    """With poisoned training/dnnlib/metrics packages first on sys.path and a stand-in host torch_utils that
    only has training_stats, the plugin imports, constructs with its defaults, and reports there."""
    for name in ('training', 'dnnlib', 'metrics'):
        (tmp_path / name).mkdir()
        (tmp_path / name / '__init__.py').write_text(f'raise ImportError("poisoned {name}")\n')
    (tmp_path / 'torch_utils').mkdir()
    (tmp_path / 'torch_utils' / '__init__.py').write_text('')
    (tmp_path / 'torch_utils' / 'training_stats.py').write_text(textwrap.dedent('''
        NAMES = []
        def report(name, value):
            NAMES.append(name)
            return value
        report0 = report
    '''))
    script = textwrap.dedent(f'''
        import sys
        sys.path[:0] = [{str(tmp_path)!r}, {os.path.dirname(os.path.abspath(__file__))!r}]
        import torch
        from stylegan2_softgan import nvidia_plugin
        from test_nvidia_plugin import Generator, Discriminator, batch
        loss = nvidia_plugin.StyleGAN3SoftGANLoss('cpu', Generator(), Discriminator(), r1_gamma=1, pl_weight=1,
                                                  style_mixing_prob=0.5, blur_init_sigma=1, blur_fade_kimg=1)
        for phase in ('Gmain', 'Greg', 'Dmain', 'Dreg'):
            loss.accumulate_gradients(phase, *batch(), gain=1.0, cur_nimg=0)
        import torch_utils.training_stats as host
        assert 'Loss/signs/real' in host.NAMES and 'Loss/beta' in host.NAMES, host.NAMES
        assert 'training' not in sys.modules and 'dnnlib' not in sys.modules and 'metrics' not in sys.modules
        print('plugin ok')
    ''')
    out = subprocess.run([sys.executable, '-c', script], cwd=str(tmp_path), capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=''))
    assert out.returncode == 0 and 'plugin ok' in out.stdout, out.stderr[-3000:]


# ----------------------------------------------------------------------------
# Terms and blur against independent computations.


def test_soft_terms_equal_the_softgan_loss_and_the_fuzzy_entropy():
    from stylegan2_softgan.softgan import SoftGANLoss
    from training.loss import fuzzy_entropy
    logits = torch.linspace(-30, 30, 121)
    torch.testing.assert_close(soft_terms.membership_entropy(logits), fuzzy_entropy(logits), rtol=1e-6, atol=0)
    torch.testing.assert_close(soft_terms.membership_entropy(logits[40:81]), H(logits[40:81]), rtol=1e-5, atol=1e-6)
    loss = SoftGANLoss('cpu', Generator(), Discriminator(), beta=0.5, r1_gamma=0, pl_weight=0)
    assert torch.equal(loss.loss_D_real(logits), soft_terms.discriminator_real_term(logits))
    assert torch.equal(loss.loss_D_gen(logits), soft_terms.discriminator_fake_term(logits))
    assert torch.equal(loss.loss_G(logits), soft_terms.generator_term(logits, 'linear'))


def test_blur_matches_a_direct_2d_convolution_and_fades():
    img = torch.randn(2, 3, 9, 11)
    sigma = 1.3
    r = int(np.floor(3 * sigma))
    taps = np.exp2(-(np.arange(-r, r + 1) / sigma) ** 2)
    k2 = np.outer(taps, taps) / taps.sum() ** 2
    x = img.double().numpy()
    pad = np.pad(x, [(0, 0), (0, 0), (r, r), (r, r)])
    expected = np.zeros_like(x)
    for i in range(x.shape[2]):
        for j in range(x.shape[3]):
            expected[:, :, i, j] = (pad[:, :, i:i + 2 * r + 1, j:j + 2 * r + 1] * k2).sum((2, 3))
    got = nvidia_plugin.gaussian_blur(img, sigma)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert torch.equal(nvidia_plugin.gaussian_blur(img, 0), img)
    loss, *_ = sg3_loss(blur_init_sigma=10, blur_fade_kimg=2)
    assert [loss.blur_sigma(n) for n in (0, 1000, 2000, 5000)] == [10.0, 5.0, 0.0, 0.0]
    assert sg3_loss()[0].blur_sigma(0) == 0.0
    with pytest.raises(ValueError, match='blur_init_sigma'):
        sg3_loss(blur_init_sigma=-1)


def test_blur_reaches_the_discriminator_inputs():
    loss, G, D = sg3_loss(beta=0.3, blur_init_sigma=2, blur_fade_kimg=1)
    real, real_c, z, c = batch()
    zero(D)
    loss.accumulate_gradients('Dmain', real, real_c, z, c, gain=1.0, cur_nimg=500)   # σ = 1
    ours = grads(D)
    zero(D)
    with torch.no_grad():
        fake = G.synthesis(G.mapping(z, c))
    blur = lambda x: nvidia_plugin.gaussian_blur(x, 1.0)  # noqa: E731
    lf, lr = D(blur(fake), c), D(blur(real), real_c)
    ((-(1 - torch.sigmoid(lf)) - 0.3 * H(lf)).mean() + (-torch.sigmoid(lr) - 0.3 * H(lr)).mean()).backward()
    for a, b in zip(ours, grads(D)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


# ----------------------------------------------------------------------------
# NVIDIA's own stylegan3 loop with the plugin as its loss.

DRIVER = '''
"""Runs NVIDIA's unmodified stylegan3 or stylegan2-ada-pytorch training loop on the CPU with a given loss class. Their loop assumes
CUDA (device, timing events, pinned memory, memory statistics): this driver lends it CPU equivalents from
outside, by replacing the module-global `torch` of their training_loop with a view that redirects those
calls, and by patching two torch entry points in this process only. Their files are untouched."""
import sys
import types

import torch

run_dir, data_dir, kimg, loss_class, flavour = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4], sys.argv[5]
torch.Tensor.pin_memory = lambda self, *args, **kwargs: self
# Their InfiniteSampler passes the data set to Sampler.__init__, which current torch no longer accepts.
torch.utils.data.Sampler.__init__ = lambda self, *args, **kwargs: None


class Event:
    def __init__(self, *args, **kwargs):
        pass

    def record(self, *args, **kwargs):
        pass

    def synchronize(self):
        pass

    def elapsed_time(self, other):
        return 0.0


class TorchOnCPU(types.ModuleType):
    def __getattr__(self, name):
        return getattr(torch, name)


view = TorchOnCPU('torch')
view.device = lambda kind, *args: torch.device('cpu') if kind == 'cuda' else torch.device(kind, *args)
view.cuda = types.SimpleNamespace(Event=Event, current_stream=lambda *a, **k: None, synchronize=lambda *a, **k: None,
                                  max_memory_allocated=lambda *a, **k: 0, max_memory_reserved=lambda *a, **k: 0,
                                  reset_peak_memory_stats=lambda *a, **k: None, is_available=lambda: False)

from training import training_loop  # NVIDIA's, from the copy first on PYTHONPATH

training_loop.torch = view
# Their loop prints a module summary by running G on torch.empty inputs. stylegan2-ada's mapping folds every
# training-mode batch into w_avg, so uninitialised memory reaches w_avg (NaN for good on some machines: CI, 2026-12-06).
# Zeros keep that pass finite; nothing else in their loop calls torch.empty.
view.empty = torch.zeros
if flavour == 'stylegan3':
    G_kwargs = dict(class_name='training.networks_stylegan2.Generator', z_dim=32, w_dim=32,
                    mapping_kwargs=dict(num_layers=2), channel_base=128, channel_max=16, num_fp16_res=0,
                    conv_clamp=None, fused_modconv_default='inference_only')
    D_kwargs = dict(class_name='training.networks_stylegan2.Discriminator', block_kwargs=dict(freeze_layers=0))
    loss_kwargs = dict(pl_no_weight_grad=True, blur_init_sigma=2, blur_fade_kimg=0.1)
else:   # stylegan2-ada-pytorch
    G_kwargs = dict(class_name='training.networks.Generator', z_dim=32, w_dim=32, mapping_kwargs=dict(num_layers=2),
                    synthesis_kwargs=dict(channel_base=128, channel_max=16, num_fp16_res=0, conv_clamp=None))
    D_kwargs = dict(class_name='training.networks.Discriminator', block_kwargs={})
    loss_kwargs = {}
D_kwargs.update(mapping_kwargs={}, epilogue_kwargs=dict(mbstd_group_size=4), channel_base=128, channel_max=16,
                num_fp16_res=0, conv_clamp=None)
training_loop.training_loop(
    run_dir=run_dir,
    training_set_kwargs=dict(class_name='training.dataset.ImageFolderDataset', path=data_dir, use_labels=False,
                             max_size=None, xflip=False, resolution=16),
    data_loader_kwargs=dict(pin_memory=False, num_workers=0),
    G_kwargs=G_kwargs, D_kwargs=D_kwargs,
    G_opt_kwargs=dict(class_name='torch.optim.Adam', betas=[0, 0.99], eps=1e-8, lr=0.0025),
    D_opt_kwargs=dict(class_name='torch.optim.Adam', betas=[0, 0.99], eps=1e-8, lr=0.0025),
    loss_kwargs=dict(class_name=loss_class, r1_gamma=1.0, style_mixing_prob=0.9, pl_weight=2, beta=None, beta_floor_pairs=2,
                     **loss_kwargs),
    augment_kwargs=dict(class_name='training.augment.AugmentPipe', xflip=1, rotate90=1, xint=1, scale=1, rotate=1,
                        aniso=1, xfrac=1, brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1),
    G_reg_interval=4, D_reg_interval=4, ada_target=0.6, ada_interval=1, ada_kimg=1,
    metrics=[], random_seed=0, num_gpus=1, rank=0, batch_size=8, batch_gpu=4, ema_kimg=0.01, ema_rampup=None,
    total_kimg=kimg, kimg_per_tick=kimg / 2, image_snapshot_ticks=None, network_snapshot_ticks=2)
print('driver done')
'''


@pytest.mark.parametrize('tree_name, flavour, loss_class', [
    ('stylegan3', 'stylegan3', 'StyleGAN3SoftGANLoss'),
    ('stylegan2-ada-pytorch', 'stylegan2-ada', 'StyleGAN2ADASoftGANLoss'),
])
def test_a_few_steps_of_nvidia_loop_with_the_plugin_loss(tmp_path, tree_name, flavour, loss_class):
    """16x16 RGB StyleGAN2 networks (stylegan3's --cfg=stylegan2 / stylegan2-ada's), 128 images (16 steps of
    batch 8: R1, path length, stylegan3's blur, ADA); about 25 s each on one core. ADA must read
    Loss/signs/real (else p becomes NaN), and the snapshot NVIDIA's loop writes imports with our importer."""
    tree = stylegan3_copy(tmp_path, tree_name)
    pytest.importorskip('psutil', reason="NVIDIA's training loop imports psutil")
    import PIL.Image
    data = tmp_path / 'data'
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(32):
        PIL.Image.fromarray((rng.random([16, 16, 3]) * 255).astype(np.uint8)).save(data / f'img{i:03d}.png')
    (tmp_path / 'driver.py').write_text(DRIVER)
    run = tmp_path / 'run'
    run.mkdir()
    out = subprocess.run([sys.executable, str(tmp_path / 'driver.py'), str(run), str(data), '0.128',
                          f'stylegan2_softgan.nvidia_plugin.{loss_class}', flavour],
                         cwd=tree, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, PYTHONPATH=python_path(tree), OMP_NUM_THREADS='1'))
    assert out.returncode == 0 and 'driver done' in out.stdout, (out.stdout[-2000:], out.stderr[-3000:])
    stats = [json.loads(line) for line in (run / 'stats.jsonl').read_text().splitlines()]
    last = stats[-1]
    for name in ('Loss/signs/real', 'Loss/beta', 'Loss/emd', 'Loss/emd_floor', 'Loss/G/loss', 'Loss/D/loss',
                 'Loss/r1_penalty', 'Loss/pl_penalty', 'Loss/entropy/real'):
        assert name in last and np.isfinite(last[name]['mean']), name
    assert 0 <= last['Loss/beta']['mean'] <= BETA_MAX + 1e-6
    from torch_utils import checkpoint
    snap = checkpoint.load_snapshot(sorted(glob.glob(str(run / 'network-snapshot-*.pkl')))[-1])
    p = float(snap['modules']['augment_pipe']['state_dict']['p'])
    assert np.isfinite(p) and p > 0   # ADA moved p from 0 using the reported real signs
