"""The other objectives (ns, ms, hinge, f-GAN, WGAN, WGAN-GP, FAR, SW-GAN) and the mode-seeking regulariser:
loss values against direct formulas, gradients against direct autograd, descent, FAR's selection and penalty,
the SVGD direction against a naive double loop, f-GAN conjugates, weight clipping, a 2-D run on ring-of-8
data with the MLP networks, and a tick of each objective from train.py on the embedded digits."""

import copy
import math
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.spatial.distance import pdist

import dnnlib
import stylegan2_softgan  # noqa: F401  (registers the objectives)
import train as train_script
from dnnlib.cli import UserError
from stylegan2_softgan.far import FARLoss, lowest_scored
from stylegan2_softgan.mode_seeking import ModeSeeking, mode_seeking_kwargs, ms_ratio
from stylegan2_softgan.objectives import DIVERGENCES, FGANLoss, WGANGPLoss, WGANLoss
from stylegan2_softgan.swgan import SWGANLoss, median_bandwidth, svgd_direction
from torch_utils import training_stats
from training import architectures, training_loop
from training.loss import get_loss_spec, list_losses
from training.phases import StepRunner

OBJECTIVES = ['ns', 'ms', 'hinge', 'fgan-kl', 'fgan-rkl', 'fgan-js', 'wgan', 'wgan-gp', 'far', 'swgan']
SHAPE = (1, 2, 2)

# ----------------------------------------------------------------------------
# Tiny float64 networks (plain G(z, c), not style generators).


class LinearG(torch.nn.Module):
    def __init__(self, z_dim=3):
        super().__init__()
        self.z_dim, self.c_dim = z_dim, 0
        self.fc = torch.nn.Linear(z_dim, int(np.prod(SHAPE)), dtype=torch.float64)

    def forward(self, z, c, **kwargs):
        return self.fc(z).reshape(z.shape[0], *SHAPE)


class LinearD(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c_dim = 0
        self.fc = torch.nn.Linear(int(np.prod(SHAPE)), 1, dtype=torch.float64)

    def forward(self, img, c, **kwargs):
        return self.fc(img.flatten(1))


class TanhD(torch.nn.Module):
    """l(x) = v·tanh(Wx + b) + b2: its input gradient depends on x."""

    def __init__(self, hidden=5):
        super().__init__()
        self.c_dim = 0
        self.fc = torch.nn.Linear(int(np.prod(SHAPE)), hidden, dtype=torch.float64)
        self.out = torch.nn.Linear(hidden, 1, dtype=torch.float64)

    def forward(self, img, c, **kwargs):
        return self.out(torch.tanh(self.fc(img.flatten(1))))


def nets(seed=0, D_cls=TanhD):
    torch.manual_seed(seed)
    G, D = LinearG(), D_cls()
    with torch.no_grad():          # logits of a useful size for every objective
        for p in D.parameters():
            p.mul_(2.0)
    return G, D


def batch(seed=1, n=6):
    g = torch.Generator().manual_seed(seed)
    real = torch.randn(n, *SHAPE, generator=g, dtype=torch.float64)
    z = torch.randn(n, 3, generator=g, dtype=torch.float64)
    c = torch.zeros(n, 0, dtype=torch.float64)
    return real, c, z, c


def make_loss(name, G, D, **overrides):
    spec = get_loss_spec(name)
    kwargs = dict(spec.defaults, style_mixing_prob=0.0)
    kwargs.update(overrides)
    return dnnlib.util.construct_class_by_name(device='cpu', G=G, D=D, class_name=spec.class_name, **kwargs)


def grads(module):
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in module.parameters()]


def zero(*modules):
    for m in modules:
        for p in m.parameters():
            p.grad = None


# ----------------------------------------------------------------------------
# Direct formulas, written from the papers' definitions (not from the implementation's stable forms).


def g_f(div, v):
    return {'kl': lambda: v, 'rkl': lambda: -torch.exp(-v),
            'js': lambda: math.log(2) - torch.log(1 + torch.exp(-v))}[div]()


def f_star(div, t):
    return {'kl': lambda: torch.exp(t - 1), 'rkl': lambda: -1 - torch.log(-t),
            'js': lambda: -torch.log(2 - torch.exp(t))}[div]()


def sp(x):
    return torch.log(1 + torch.exp(x))


def per_sample_terms(name, l):
    """(L_D on a real, L_D on a fake, L_G on a fake) for logits l."""
    if name in ('ns', 'ms', 'far'):
        return sp(-l), sp(l), sp(-l)
    if name == 'hinge':
        return torch.clamp(1 - l, min=0), torch.clamp(1 + l, min=0), -l
    if name.startswith('fgan-'):
        div = name[5:]
        return -g_f(div, l), f_star(div, g_f(div, l)), -g_f(div, l)
    assert name in ('wgan', 'wgan-gp', 'swgan')
    return -l, l, -l


def input_grad(D, x, create_graph=True):
    x = x.detach().requires_grad_(True)
    return torch.autograd.grad(D(x, None).sum(), x, create_graph=create_graph)[0]


def direct_D(name, loss, G, D, real, z, c, eps=None, cand_z=None):
    """The whole discriminator loss of one step, computed from the definitions."""
    with torch.no_grad():
        fake = G(z, c)
    n = real.shape[0]
    if name == 'far':
        m0 = loss.counts(n)[0]
        with torch.no_grad():
            cand = G(cand_z, c[:0].new_zeros(len(cand_z), 0))
            order = np.argsort(D(cand, None).reshape(-1).numpy(), kind='stable')[:m0]
        half = torch.cat([real[:n - m0], cand[torch.from_numpy(order)]])
        gr = input_grad(D, half)
        return sp(-D(half, None)).mean() + sp(D(fake, None)).mean() + \
            loss.far_lambda * gr.square().flatten(1).sum(1).mean()
    t_real, _, _ = per_sample_terms(name, D(real, c))
    _, t_fake, _ = per_sample_terms(name, D(fake, c))
    total = t_real.mean() + t_fake.mean()
    if name == 'wgan-gp':
        x_hat = eps * real + (1 - eps) * fake
        gr = input_grad(D, x_hat)
        total = total + 10.0 * (gr.flatten(1).norm(dim=1) - 1).square().mean()
    return total


def direct_G(name, G, D, z, c, lam_ms=0.05):
    x = G(z, c)
    _, _, t = per_sample_terms(name, D(x, c))
    total = t.mean()
    if name == 'ms':
        h = z.shape[0] // 2
        r = (x[:h] - x[h:2 * h]).abs().mean() / (z[:h] - z[h:2 * h]).abs().mean()
        total = total + lam_ms / (r + 1e-5)
    return total


def prepare(name, G, D, real, c, z, seed=7):
    """The loss with its random parts pinned: FAR's candidates, WGAN-GP's ε (from a known seed)."""
    loss = make_loss(name, G, D)
    extra = {}
    if name == 'far':
        g = torch.Generator().manual_seed(seed)
        cand_z = torch.randn(loss.counts(real.shape[0])[1], 3, generator=g, dtype=torch.float64)
        loss.sample_candidates = lambda num, gen_z, gen_c: (cand_z[:num], gen_c.new_zeros(num, 0))
        extra['cand_z'] = cand_z
    if name == 'wgan-gp':
        torch.manual_seed(seed)
        extra['eps'] = torch.rand([real.shape[0], 1, 1, 1], dtype=torch.float64)
    return loss, extra


# ----------------------------------------------------------------------------
# Registry and per-sample values.


def test_every_objective_is_registered_with_its_presets():
    assert set(OBJECTIVES) <= set(list_losses())
    wgan = get_loss_spec('wgan')
    assert wgan.D_opt == {'class_name': 'torch.optim.RMSprop', 'lr': 5e-5} == wgan.G_opt
    assert wgan.defaults['n_critic'] == 5 and wgan.defaults['clip'] == 0.01
    assert get_loss_spec('swgan').defaults['n_critic'] == 5 and get_loss_spec('swgan').D_opt['lr'] == 5e-5
    gp = get_loss_spec('wgan-gp')
    assert gp.defaults['gp_lambda'] == 10 and gp.defaults['n_critic'] == 5 and gp.D_opt['betas'] == [0.0, 0.9]
    far = get_loss_spec('far')
    assert far.defaults['m0'] == 0.5 and far.defaults['m1'] == 4 and far.defaults['far_lambda'] == 10
    assert far.D_opt['class_name'] == 'torch.optim.RMSprop' and far.D_opt['lr'] == 1e-4
    assert get_loss_spec('ms').defaults['mode_seeking']['lam'] == 0.05
    for name in ('ns', 'hinge', 'fgan-js'):
        assert get_loss_spec(name).G_opt is None and get_loss_spec(name).defaults['r1_gamma'] == 0


@pytest.mark.parametrize('name', OBJECTIVES)
def test_per_sample_terms_equal_direct_formulas_on_fixed_logits(name):
    G, D = nets()
    loss = make_loss(name, G, D)
    logits = torch.linspace(-3, 3, 13, dtype=torch.float64).reshape(-1, 1)
    d_real, d_fake, g_term = per_sample_terms(name, logits)
    assert torch.allclose(loss.loss_D_real(logits), d_real, rtol=1e-12, atol=1e-12)
    assert torch.allclose(loss.loss_D_gen(logits), d_fake, rtol=1e-12, atol=1e-12)
    assert torch.allclose(loss.loss_G(logits), g_term, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('name', OBJECTIVES)
def test_discriminator_gradients_equal_the_direct_loss_and_step_descends(name):
    G, D = nets()
    real, c, z, _ = batch()
    loss, extra = prepare(name, G, D, real, c, z)
    if name == 'wgan-gp':
        torch.manual_seed(7)     # the loss draws the same ε as `extra`
    loss.accumulate_gradients('Dmain', real, c, z, c, gain=1.0, cur_nimg=0)
    got = grads(D)
    assert all(p.grad is None for p in G.parameters())
    zero(D)
    before = direct_D(name, loss, G, D, real, z, c, **extra)
    before.backward()
    for a, b in zip(got, grads(D)):
        assert torch.allclose(a, b, rtol=1e-8, atol=1e-11), name
    # One plain gradient step with the loss's gradient lowers the direct loss.
    norm = torch.sqrt(sum(g.square().sum() for g in got))
    assert norm > 0
    with torch.no_grad():
        for p, g in zip(D.parameters(), got):
            p.sub_(1e-3 * g / norm)
    after = direct_D(name, loss, G, D, real, z, c, **extra)
    assert after.item() < before.item(), name


@pytest.mark.parametrize('name', [n for n in OBJECTIVES if n != 'swgan'])
def test_generator_gradients_equal_the_direct_loss_and_step_descends(name):
    G, D = nets()
    real, c, z, _ = batch()
    loss, _ = prepare(name, G, D, real, c, z)
    loss.accumulate_gradients('Gmain', real, c, z, c, gain=2.0, cur_nimg=0)
    got = grads(G)
    zero(G, D)
    before = direct_G(name, G, D, z, c)
    (2.0 * before).backward()
    for a, b in zip(got, grads(G)):
        assert torch.allclose(a, b, rtol=1e-8, atol=1e-11), name
    norm = torch.sqrt(sum(g.square().sum() for g in got))
    with torch.no_grad():
        for p, g in zip(G.parameters(), got):
            p.sub_(1e-3 * g / norm)
    assert direct_G(name, G, D, z, c).item() < before.item(), name


# ----------------------------------------------------------------------------
# f-GAN.


@pytest.mark.parametrize('div', ['kl', 'rkl', 'js'])
def test_fgan_conjugate_satisfies_fenchel_equality(div):
    d = DIVERGENCES[div]
    u = torch.logspace(-3, 3, 61, dtype=torch.float64)
    fp = d.f_prime(u)
    assert torch.allclose(d.conjugate(fp), u * fp - d.f(u), rtol=1e-10, atol=1e-12)
    # f'(1) is the threshold, and f(1) = 0 (a divergence between equal distributions is 0).
    assert float(d.f_prime(torch.tensor(1.0, dtype=torch.float64))) == pytest.approx(d.threshold, abs=1e-15)
    assert float(d.f(torch.tensor(1.0, dtype=torch.float64))) == pytest.approx(0.0, abs=1e-15)
    # The activation lands in the conjugate's domain, and the stable composition equals f*(g_f(v)).
    v = torch.linspace(-8, 8, 81, dtype=torch.float64)
    t = d.activation(v)
    assert bool(((t > d.domain[0]) & (t < d.domain[1])).all())
    assert torch.allclose(d.conjugate_of_activation(v), d.conjugate(t), rtol=1e-9, atol=1e-12)
    # Far out the stable form stays finite where the textbook composition loses it (float32 logits).
    far_out = torch.tensor([-60.0, 60.0])
    assert torch.isfinite(d.conjugate_of_activation(far_out)).all()
    if div == 'js':        # −log(2 − e^t) with e^t rounded to 2
        assert not torch.isfinite(d.conjugate(d.activation(far_out))).all()


def test_fgan_signs_use_the_divergence_threshold():
    G, D = nets()
    loss = FGANLoss('cpu', G, D, divergence='kl')
    # KL's boundary is g_f(v) = v = f'(1) = 1, not v = 0.
    assert loss.logit_signs(torch.tensor([0.5, 1.5])).tolist() == [-1.0, 1.0]
    assert FGANLoss('cpu', G, D, divergence='js').logit_signs(torch.tensor([-0.1, 0.1])).tolist() == [-1.0, 1.0]
    with pytest.raises(ValueError, match='divergence'):
        FGANLoss('cpu', G, D, divergence='hellinger')


# ----------------------------------------------------------------------------
# WGAN: clipping.


def test_weight_clipping_holds_after_every_critic_step_and_from_the_start():
    G, D = nets(D_cls=TanhD)
    with torch.no_grad():
        for p in D.parameters():
            p.mul_(10.0)
    loss = WGANLoss('cpu', G, D, clip=0.05, style_mixing_prob=0.0)
    assert all(p.detach().abs().max().item() <= 0.05 for p in D.parameters())        # clipped when built
    assert any(p.detach().abs().max().item() == 0.05 for p in D.parameters())
    runner = StepRunner(loss, G, D, dict(class_name='torch.optim.SGD', lr=10.0),
                        dict(class_name='torch.optim.SGD', lr=10.0))
    assert [ph.name for ph in runner.phases] == ['Gboth', 'Dboth'] and runner.phases[0].interval == 1
    real, c, z, _ = batch()
    before = [p.detach().clone() for p in D.parameters()]
    for step in range(3):
        runner.step(step, [real], [c], [[z], [z]], [[c], [c]], cur_nimg=step * 6)
        assert all(p.detach().abs().max().item() <= 0.05 + 1e-15 for p in D.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, D.parameters()))
    # The generator is never clipped.
    big = G.fc.weight.detach().abs().max()
    loss.post_step('Gmain', G)
    assert torch.equal(G.fc.weight.detach().abs().max(), big)
    with pytest.raises(ValueError, match='clipping'):
        WGANLoss('cpu', G, D, clip=-1)


def test_step_replaces_nan_and_inf_gradients_before_the_update():
    """NaN becomes 0 and ±inf becomes ±1e5 in every gradient the optimiser sees (one SGD step, lr 1)."""
    G, D = nets()
    loss = make_loss('ns', G, D)
    runner = StepRunner(loss, G, D, dict(class_name='torch.optim.SGD', lr=1.0),
                        dict(class_name='torch.optim.SGD', lr=1.0))
    phase = next(ph for ph in runner.phases if ph.module is D)
    params = list(D.parameters())
    before = [p.detach().clone() for p in params]
    bad = torch.tensor([float('nan'), float('inf'), -float('inf'), 2.5])
    for p in params:
        g = torch.full_like(p, 0.5)
        g.view(-1)[:min(4, p.numel())] = bad[:min(4, p.numel())]
        p.grad = g
    runner._apply(phase)
    clean = torch.tensor([0.0, 1e5, -1e5, 2.5])
    for p, b in zip(params, before):
        expected = torch.full_like(p, 0.5)
        expected.view(-1)[:min(4, p.numel())] = clean[:min(4, p.numel())]
        assert torch.equal(p.grad, expected)
        assert torch.allclose(b - p.detach(), expected, rtol=1e-6, atol=1e-2)
    assert all(torch.isfinite(p).all() for p in params)


def test_n_critic_schedules_the_generator():
    G, D = nets()
    loss = make_loss('wgan', G, D)
    runner = StepRunner(loss, G, D, dict(class_name='torch.optim.RMSprop', lr=5e-5),
                        dict(class_name='torch.optim.RMSprop', lr=5e-5))
    assert loss.n_critic == 5
    assert {ph.name: ph.interval for ph in runner.phases} == {'Gboth': 5, 'Dboth': 1}
    assert isinstance(runner.optimizers['D'], torch.optim.RMSprop)


def test_wgan_gp_norm_groups_packed_inputs():
    # With packing the critic sees `pack` samples as one point: the norm is over their joint gradient.
    torch.manual_seed(0)
    G_kwargs, D_kwargs = architectures.build_arch_kwargs('mlp', None, None, pack=2)
    G = dnnlib.util.construct_class_by_name(**G_kwargs)      # the MLPs compute in float32
    D = dnnlib.util.construct_class_by_name(**D_kwargs)
    loss = WGANGPLoss('cpu', G, D, style_mixing_prob=0.0, r1_gamma=0.0)
    real = torch.randn(8, 2)
    fake = torch.randn(8, 2)
    c = torch.zeros(8, 0)
    collector = training_stats.Collector(regex='Loss/gp_penalty')
    torch.manual_seed(3)
    loss.accumulate_D_extra(real, c, fake, c, gain=1.0)
    collector.update()
    torch.manual_seed(3)
    eps = torch.rand([8, 1])
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    g = torch.autograd.grad(D(x_hat, c).sum(), x_hat)[0]
    expected = (g.reshape(4, 4).norm(dim=1) - 1).square()
    assert collector.num('Loss/gp_penalty') == 4
    assert collector.mean('Loss/gp_penalty') == pytest.approx(float(expected.mean()), rel=1e-5)


# ----------------------------------------------------------------------------
# FAR.


def test_far_picks_exactly_the_lowest_scored_candidates():
    G, D = nets()
    real, c, z, _ = batch(n=8)
    loss, extra = prepare('far', G, D, real, c, z)
    assert loss.counts(8) == (4, 32) and loss.r1_gamma == 0 and loss.D_reg_interval is None
    imgs, _, logits = loss.select_fake_as_real(8, z, c)
    with torch.no_grad():
        cand = G(extra['cand_z'], None)
        all_logits = D(cand, None).reshape(-1).numpy()
    lowest = np.argsort(all_logits)[:4]
    assert np.allclose(np.sort(logits.numpy()), np.sort(all_logits[lowest]), rtol=0, atol=0)
    assert float(logits.max()) < float(np.sort(all_logits)[4])
    for img in imgs:       # every selected image is one of the lowest-scored candidates
        assert min(float((img - cand[i]).abs().max()) for i in lowest) == 0.0
    assert lowest_scored(torch.tensor([3.0, -1.0, 2.0, -5.0]), 2).tolist() == [3, 1]
    with pytest.raises(ValueError, match='cannot pick'):
        lowest_scored(torch.zeros(3), 4)


def test_far_penalty_equals_finite_difference_gradient_norm():
    G, D = nets()
    real, c, z, _ = batch(n=6)
    loss, extra = prepare('far', G, D, real, c, z)
    collector = training_stats.Collector(regex='Loss/(far/penalty|scores/real|scores/far)')
    loss.accumulate_gradients('Dboth', real, c, z, c, gain=1.0, cur_nimg=0)
    collector.update()
    m0 = loss.counts(6)[0]
    with torch.no_grad():
        cand = G(extra['cand_z'], None)
        order = np.argsort(D(cand, None).reshape(-1).numpy())[:m0]
        half = torch.cat([real[:6 - m0], cand[torch.from_numpy(order)]]).flatten(1)

        def l(x):
            return float(D(x.reshape(1, *SHAPE), None))

        h = 1e-6
        penalties = []
        for x in half:
            g = [(l(x + h * e) - l(x - h * e)) / (2 * h) for e in torch.eye(x.numel(), dtype=torch.float64)]
            penalties.append(sum(v * v for v in g))
    assert collector.num('Loss/far/penalty') == 6
    assert collector.mean('Loss/far/penalty') == pytest.approx(np.mean(penalties), rel=1e-6)
    assert collector.num('Loss/scores/real') == 6 - m0 and collector.num('Loss/scores/far') == m0


def test_far_options_and_packing_are_checked():
    G, D = nets()
    with pytest.raises(ValueError, match='r1_gamma'):
        FARLoss('cpu', G, D, r1_gamma=1.0)
    with pytest.raises(ValueError, match='m0'):
        FARLoss('cpu', G, D, m0=1.0)
    with pytest.raises(ValueError, match='m1'):
        FARLoss('cpu', G, D, m1=0)
    assert FARLoss('cpu', G, D, m0=0.25).counts(64) == (16, 256)      # seed 002's 2-D setting
    assert FARLoss('cpu', G, D, m0=0.9).counts(2) == (1, 8)            # at least one real stays
    G_kwargs, D_kwargs = architectures.build_arch_kwargs('mlp', None, None, pack=2)
    Gp, Dp = (dnnlib.util.construct_class_by_name(**k) for k in (G_kwargs, D_kwargs))
    loss = FARLoss('cpu', Gp, Dp, style_mixing_prob=0.0)
    x = torch.randn(4, 2)
    c = torch.zeros(4, 0)
    with pytest.raises(ValueError, match='packing'):
        loss.accumulate_gradients('Dboth', x, c, torch.randn(4, 2), c, gain=1.0, cur_nimg=0)


# ----------------------------------------------------------------------------
# SW-GAN.


def naive_svgd(x, s, alpha, rho):
    m = len(x)
    h = (0.6 * np.median(pdist(x))) ** 2 / np.log(m)
    phi = np.zeros_like(x)
    for i in range(m):
        for j in range(m):
            k = math.exp(-float(np.sum((x[j] - x[i]) ** 2)) / h)
            grad_k = -2.0 / h * (x[j] - x[i]) * k           # ∇_{x_j} k(x_j, x_i)
            phi[i] += alpha * k * s[j] + rho * grad_k
    return phi / m, h


@pytest.mark.parametrize('m', [2, 5, 8])
def test_svgd_direction_equals_naive_double_loop(m):
    rng = np.random.default_rng(m)
    x = rng.normal(size=(m, 3))
    s = rng.normal(size=(m, 3))
    phi, h = svgd_direction(torch.from_numpy(x), torch.from_numpy(s), alpha=2.0, rho=0.5)
    ref, h_ref = naive_svgd(x, s, 2.0, 0.5)
    assert h == pytest.approx(h_ref, rel=1e-12)
    assert np.allclose(phi.numpy(), ref, rtol=1e-10, atol=1e-12)
    assert median_bandwidth(torch.zeros(4, 3)) == 1.0 and median_bandwidth(torch.zeros(1, 3)) == 1.0


def test_svgd_repulsion_pushes_nearby_particles_apart():
    pair = torch.tensor([[0.0, 0.0], [0.1, 0.0]], dtype=torch.float64)
    phi, _ = svgd_direction(pair, torch.zeros_like(pair), alpha=2.0, rho=0.5)   # no critic: repulsion only
    assert float(phi[0, 0]) < 0 < float(phi[1, 0]) and float(phi[:, 1].abs().max()) == 0
    assert torch.allclose(phi[0], -phi[1], rtol=1e-12, atol=0)
    x = torch.tensor([[0.0, 0.0], [0.1, 0.0], [3.0, 3.0]], dtype=torch.float64)
    phi, _ = svgd_direction(x, torch.zeros_like(x), alpha=2.0, rho=0.5)
    assert float(phi[1, 0] - phi[0, 0]) > 0
    moved = x + 0.01 * phi
    assert float((moved[0] - moved[1]).norm()) > float((x[0] - x[1]).norm())
    phi0, _ = svgd_direction(x, torch.zeros_like(x), alpha=2.0, rho=0.0)
    assert float(phi0.abs().max()) == 0.0


def test_swgan_generator_gradient_is_the_svgd_surrogate():
    # For x = W z + b the surrogate −(1/m) Σ ⟨x_i, φ_i⟩ has gradients −(1/m) Σ φ_i z_iᵀ and −(1/m) Σ φ_i.
    G, D = nets()
    real, c, z, _ = batch(n=6)
    loss = make_loss('swgan', G, D, clip=None)
    loss.accumulate_gradients('Gmain', real, c, z, c, gain=1.0, cur_nimg=0)
    with torch.no_grad():
        x = G(z, c).flatten(1)
    score = input_grad(D, x.reshape(-1, *SHAPE), create_graph=False).flatten(1)
    phi, _ = naive_svgd(x.numpy(), score.numpy(), 2.0, 0.5)
    phi = torch.from_numpy(phi)
    assert torch.allclose(G.fc.weight.grad, -(phi.T @ z) / 6, rtol=1e-9, atol=1e-12)
    assert torch.allclose(G.fc.bias.grad, -phi.mean(0), rtol=1e-9, atol=1e-12)
    # A small step moves the samples along φ.
    with torch.no_grad():
        for p in G.parameters():
            p.sub_(1e-3 * p.grad)
        dx = G(z, c).flatten(1) - x
    assert float((dx * phi).sum()) > 0
    with pytest.raises(ValueError, match='alpha'):
        SWGANLoss('cpu', G, D, alpha=-1.0)
    with pytest.raises(ValueError, match='SVGD needs particles'):
        svgd_direction(x, score[:, :2])


# ----------------------------------------------------------------------------
# Mode seeking.


def test_mode_seeking_term_falls_as_outputs_spread():
    ms = ModeSeeking(lam=0.2)
    g = torch.Generator().manual_seed(0)
    z = torch.randn(8, 4, generator=g, dtype=torch.float64)
    img = torch.randn(8, 1, 3, 3, generator=g, dtype=torch.float64)
    values = [float(ms.penalty(img * s, z, cur_nimg=0)) for s in (0.5, 1.0, 2.0, 4.0)]
    assert all(a > b for a, b in zip(values, values[1:]))
    r = np.abs(img[:4].numpy() - img[4:].numpy()).mean() / np.abs(z[:4].numpy() - z[4:].numpy()).mean()
    assert values[1] == pytest.approx(0.2 / (r + 1e-5), rel=1e-12)
    assert float(ms_ratio(img[:4], img[4:], z[:4], z[4:])) == pytest.approx(r, rel=1e-12)
    with pytest.raises(ValueError, match='at least 2'):
        ms.penalty(img[:1], z[:1], 0)


def test_mode_seeking_schedule_is_a_function_of_the_image_count():
    ms = ModeSeeking(lam=0.05, delta=0.01, every_kimg=2.0)
    assert [ms.lam_at(n) for n in (0, 1999, 2000, 5999, 6000)] == pytest.approx([0.05, 0.05, 0.06, 0.07, 0.08])
    assert ModeSeeking(lam=0.3).lam_at(10**9) == 0.3
    with pytest.raises(ValueError, match='every_kimg'):
        ModeSeeking(lam=0.1, delta=0.01)
    with pytest.raises(ValueError, match='lam'):
        ModeSeeking(lam=-1)


def test_mode_seeking_attaches_to_any_objective_and_uses_the_schedule():
    G, D = nets()
    real, c, z, _ = batch()
    for name, extra in (('hinge', {}), ('wgan-gp', {}), ('swgan', {}), ('soft', dict(beta=0.3))):
        loss = make_loss(name, G, D, mode_seeking=mode_seeking_kwargs(0.1, 0.05, 0.004), **extra)
        collector = training_stats.Collector(regex='Loss/(ms_lambda|G/ms)')
        loss.accumulate_gradients('Gmain', real, c, z, c, gain=1.0, cur_nimg=8)     # two schedule steps
        collector.update()
        assert collector['Loss/ms_lambda'] == pytest.approx(0.2)
        with torch.no_grad():
            x = G(z, c)
        r = float(ms_ratio(x[:3], x[3:], z[:3], z[3:]))
        assert collector['Loss/G/ms'] == pytest.approx(0.2 / (r + 1e-5), rel=1e-10)
        # Nothing to save for mode seeking: λ is a function of cur_nimg.
        assert set(loss.state_dict()) <= {'pl_mean', 'beta_schedule'}
        zero(G, D)


# ----------------------------------------------------------------------------
# 2-D: StepRunner with the MLP networks on ring-of-8 data.


def ring8(n, g):
    k = torch.randint(8, [n], generator=g)
    angle = 2 * math.pi * k.float() / 8
    return torch.stack([angle.cos(), angle.sin()], dim=1) + 0.01 * torch.randn(n, 2, generator=g)


@pytest.mark.parametrize('name', OBJECTIVES)
def test_two_dimensional_training_with_mlp_networks(name):
    torch.manual_seed(0)
    G_kwargs, D_kwargs = architectures.build_arch_kwargs('mlp-maxout', None, None)
    G = dnnlib.util.construct_class_by_name(**G_kwargs).train()
    D = dnnlib.util.construct_class_by_name(**D_kwargs).train()
    G.requires_grad_(False)
    D.requires_grad_(False)
    loss = make_loss(name, G, D, pl_weight=0.0)
    adam = dict(class_name='torch.optim.Adam', lr=1e-4, betas=[0.8, 0.999])    # PacGAN's 2-D optimiser
    runner = StepRunner(loss, G, D, adam, adam)
    before = {k: [p.detach().clone() for p in m.parameters()] for k, m in (('G', G), ('D', D))}
    collector = training_stats.Collector(regex='Loss/.*')
    g = torch.Generator().manual_seed(1)
    n, steps = 32, 20
    for step in range(steps):
        real = ring8(n, g)
        c = torch.zeros(n, 0)
        zs = [[torch.randn(n, 2, generator=g)] for _ in runner.phases]
        runner.step(step, [real], [c], zs, [[c] for _ in runner.phases], cur_nimg=step * n)
    collector.update()
    for key in ('Loss/G/loss', 'Loss/D/loss', 'Loss/scores/real', 'Loss/scores/fake'):
        assert collector.num(key) > 0 and np.isfinite(collector.mean(key)), (name, key)
        assert collector.num_nonfinite(key) == 0, (name, key)
    assert collector.num('Loss/G/loss') == n * math.ceil(steps / loss.n_critic)
    for key, module in (('G', G), ('D', D)):
        params = list(module.parameters())
        assert all(torch.isfinite(p).all() for p in params)
        assert any(not torch.equal(a, b) for a, b in zip(before[key], params)), (name, key)
    if name in ('wgan', 'swgan'):
        assert all(p.detach().abs().max().item() <= 0.01 for p in D.parameters())
    if name == 'far':
        assert collector.num('Loss/far/candidates') == steps * 4 * n


# ----------------------------------------------------------------------------
# train.py: options and a tick of every objective on the embedded digits.

TINY = ['--data=builtin:digits8', '--cfg=digits', '--cbase=64', '--cmax=16', '--map=1', '--batch=16',
        '--aug=noaug', '--metrics=none', '--workers=0', '--kimg=0.032', '--tick=0.032']


def resolve(*args):
    ctx = train_script.main.make_context('train.py', list(args))
    return train_script.resolve_options(**ctx.params)


def test_cli_presets_and_overrides():
    _, c = resolve(*TINY, '--loss=wgan')
    assert c.G_opt_kwargs == {'class_name': 'torch.optim.RMSprop', 'lr': 5e-5} == c.D_opt_kwargs
    assert c.loss_kwargs.n_critic == 5 and c.loss_kwargs.clip == 0.01 and c.loss_kwargs.r1_gamma == 0
    _, c = resolve(*TINY, '--loss=wgan', '--dlr=1e-4', '--n-critic=2', '--clip=0.05')
    assert c.D_opt_kwargs.lr == 1e-4 and c.G_opt_kwargs.lr == 5e-5
    assert c.loss_kwargs.n_critic == 2 and c.loss_kwargs.clip == 0.05
    _, c = resolve(*TINY, '--loss=far', '--far-m0=0.25', '--far-m1=2', '--far-lambda=5')
    assert (c.loss_kwargs.m0, c.loss_kwargs.m1, c.loss_kwargs.far_lambda) == (0.25, 2, 5)
    _, c = resolve(*TINY, '--loss=swgan', '--svgd-alpha=1', '--svgd-rho=0.25')
    assert (c.loss_kwargs.alpha, c.loss_kwargs.rho) == (1, 0.25)
    _, c = resolve(*TINY, '--loss=wgan-gp', '--gp-lambda=2')
    assert c.loss_kwargs.gp_lambda == 2 and c.D_opt_kwargs.betas == [0.0, 0.9]
    _, c = resolve(*TINY, '--loss=hinge', '--ms-lambda=0.1', '--ms-delta=0.01', '--ms-every-kimg=600')
    assert c.loss_kwargs.mode_seeking == mode_seeking_kwargs(0.1, 0.01, 600)
    _, c = resolve(*TINY, '--loss=ms')
    assert c.loss_kwargs.mode_seeking == mode_seeking_kwargs(0.05)
    _, c = resolve(*TINY, '--loss=soft', '--ms-lambda=0.2')
    assert c.loss_kwargs.mode_seeking == mode_seeking_kwargs(0.2) and 'beta' in c.loss_kwargs
    _, c = resolve(*TINY, '--loss=ms', '--ms-delta=0.01', '--ms-every-kimg=600')
    assert c.loss_kwargs.mode_seeking == mode_seeking_kwargs(0.05, 0.01, 600)
    _, c = resolve(*TINY, '--loss=ms', '--ms-lambda=0')
    assert 'mode_seeking' not in c.loss_kwargs
    _, c = resolve(*TINY, '--loss=ns', '--gamma=1')
    assert c.loss_kwargs.r1_gamma == 1 and c.loss_kwargs.class_name == 'training.loss.StyleGAN2Loss'
    _, c = resolve(*TINY, '--loss=ns')
    assert c.loss_kwargs.r1_gamma == 0 and c.G_opt_kwargs.class_name == 'torch.optim.Adam'


@pytest.mark.parametrize('args, message', [
    (['--loss=ns', '--far-m0=0.3'], '--far-m0: only applies to --loss=far'),
    (['--loss=wgan-gp', '--clip=0.1'], '--clip: only applies to --loss=wgan/swgan'),
    (['--loss=wgan', '--gp-lambda=1'], '--gp-lambda: only applies to --loss=wgan-gp'),
    (['--loss=far', '--gamma=1'], '--gamma: --loss=far has its own zero-centred penalty'),
    (['--loss=ns', '--ms-delta=0.1'], '--ms-delta: only applies with --ms-lambda or --loss=ms'),
    (['--loss=ns', '--ms-lambda=0.1', '--ms-delta=0.1'], '--ms-delta: the schedule needs its step'),
    (['--loss=ns', '--ms-lambda=0.1', '--ms-every-kimg=5'], '--ms-every-kimg: only applies with --ms-delta > 0'),
])
def test_cli_objective_option_errors(args, message):
    with pytest.raises(UserError) as info:
        resolve(*TINY, *args)
    assert message in info.value.format_message() and '\n' not in info.value.format_message()


@pytest.mark.parametrize('name', OBJECTIVES)
def test_each_objective_trains_a_tick_from_train_py(tmp_path, monkeypatch, name):
    _, c = resolve(*TINY, f'--loss={name}')
    c = copy.deepcopy(c)
    c.update(image_snapshot_ticks=None, network_snapshot_ticks=None)
    os.makedirs(tmp_path / 'run')
    initial = {}

    class RecordingRunner(StepRunner):      # remembers the networks as the loop hands them over
        def __init__(self, loss, G, D, *args, **kwargs):
            initial.update(G=copy.deepcopy(G.state_dict()), D=copy.deepcopy(D.state_dict()), loss=loss)
            super().__init__(loss, G, D, *args, **kwargs)

    monkeypatch.setattr(training_loop, 'StepRunner', RecordingRunner)
    collector = training_stats.Collector(regex='Loss/.*')
    result = training_loop.training_loop(run_dir=str(tmp_path / 'run'), rank=0, **c)
    collector.update()
    assert type(initial['loss']).__name__ == get_loss_spec(name).class_name.rsplit('.', 1)[1]
    for key in ('Loss/G/loss', 'Loss/D/loss', 'Loss/scores/real', 'Loss/scores/fake'):
        assert collector.num(key) > 0 and np.isfinite(collector.mean(key)), (name, key)
    assert result.cur_nimg == 32
    for key in ('G', 'D'):
        after = result[key].state_dict()
        assert any(not torch.equal(v, after[k]) for k, v in initial[key].items()), (name, key)
        assert all(torch.isfinite(v).all() for v in after.values())
    if name == 'ms':
        assert collector.mean('Loss/ms_lambda') == pytest.approx(0.05, rel=1e-12)
    if name in ('wgan', 'swgan'):
        assert all(p.detach().abs().max().item() <= 0.01 for p in result.D.parameters())


# ----------------------------------------------------------------------------
# StepRunner's simultaneous updates (ALI's algorithm, the standard protocol's).


def _mlp_pair(seed=0):
    torch.manual_seed(seed)
    G_kwargs, D_kwargs = architectures.build_arch_kwargs('mlp-maxout', None, None)
    G_kwargs.update(hidden_features=16, num_layers=2)
    D_kwargs.update(hidden_features=8, num_layers=2)
    G = dnnlib.util.construct_class_by_name(**G_kwargs).train().requires_grad_(False)
    D = dnnlib.util.construct_class_by_name(**D_kwargs).train().requires_grad_(False)
    return G, D


def test_simultaneous_step_takes_both_gradients_at_the_same_parameters():
    """One simultaneous ns step with SGD equals a hand-written one: both gradients of the textbook losses
    at the starting parameters, one batch of fakes, BatchNorm running statistics moved once."""
    G, D = _mlp_pair()
    G0, D0 = copy.deepcopy(G), copy.deepcopy(D)
    g = torch.Generator().manual_seed(3)
    n, lr = 32, 0.05
    real, z, c = ring8(n, g), torch.randn(n, 2, generator=g), torch.zeros(n, 0)
    loss = make_loss('ns', G, D, r1_gamma=0.0, pl_weight=0.0)
    sgd = dict(class_name='torch.optim.SGD', lr=lr)
    runner = StepRunner(loss, G, D, sgd, sgd, simultaneous=True)
    assert [ph.name for ph in runner.phases] == ['Gboth', 'Dboth']
    runner.step(0, [real], [c], [[z], [z]], [[c], [c]], cur_nimg=0)

    # By hand, on the starting copies.
    Gh, Dh = copy.deepcopy(G0).requires_grad_(True), copy.deepcopy(D0).requires_grad_(True)
    fake = Gh(z, c)
    G_loss = F.softplus(-Dh(fake, c)).mean()
    G_grads = torch.autograd.grad(G_loss, list(Gh.parameters()))
    D_loss = F.softplus(-Dh(real, c)).mean() + F.softplus(Dh(fake.detach(), c)).mean()
    D_grads = torch.autograd.grad(D_loss, list(Dh.parameters()))
    for p, p0, gr in zip(G.parameters(), G0.parameters(), G_grads):
        assert torch.allclose(p, p0 - lr * gr, rtol=1e-5, atol=1e-7)
    for p, p0, gr in zip(D.parameters(), D0.parameters(), D_grads):
        assert torch.allclose(p, p0 - lr * gr, rtol=1e-5, atol=1e-7)
    # Running statistics: one update with momentum m from this batch (the D phase's forward of G is undone).
    norm, norm0 = G.norm0, G0.norm0
    pre = G0.fc0(z)
    m = norm0.momentum
    assert torch.allclose(norm.running_mean, (1 - m) * norm0.running_mean + m * pre.mean(0), rtol=1e-5, atol=1e-7)
    assert torch.allclose(norm.running_var, (1 - m) * norm0.running_var + m * pre.var(0, unbiased=True),
                          rtol=1e-5, atol=1e-7)

    # Alternating updates from the same start give D's gradient at the updated G: another D.
    G2, D2 = copy.deepcopy(G0), copy.deepcopy(D0)
    alt = StepRunner(make_loss('ns', G2, D2, r1_gamma=0.0, pl_weight=0.0), G2, D2, sgd, sgd)
    alt.step(0, [real], [c], [[z], [z]], [[c], [c]], cur_nimg=0)
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-7) for a, b in zip(G2.parameters(), G.parameters()))
    assert any(not torch.allclose(a, b, rtol=1e-5, atol=1e-7) for a, b in zip(D2.parameters(), D.parameters()))


def test_simultaneous_updates_refuse_lazy_regularisation():
    G, D = _mlp_pair()
    loss = make_loss('ns', G, D, r1_gamma=1.0, pl_weight=0.0)
    assert loss.D_reg_interval is not None
    adam = dict(class_name='torch.optim.Adam', lr=1e-4)
    with pytest.raises(ValueError, match='simultaneous updates need one phase per network'):
        StepRunner(loss, G, D, adam, adam, simultaneous=True)
    StepRunner(make_loss('ns', G, D, r1_gamma=1.0, pl_weight=0.0, D_reg_interval=None), G, D, adam, adam,
               simultaneous=True)
