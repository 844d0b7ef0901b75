"""RpGAN + R1 + R2 (R3GAN) and the R2 option of the logit-loss machinery: loss values against closed
forms, gradients against direct autograd of the definitions, lazy R2, the entropy bonus on top of RpGAN,
the command line, and a tick from train.py."""

import copy
import math
import os

import numpy as np
import pytest
import torch

import stylegan2_softgan  # noqa: F401  (registers the objectives)
from dnnlib.cli import UserError
from stylegan2_softgan.objectives import RpGANLoss
from stylegan2_softgan.softgan import beta_schedule_kwargs
from tests.test_objectives import TINY, LinearD, batch, grads, input_grad, make_loss, nets, resolve, zero
from torch_utils import training_stats
from training import training_loop
from training.loss import get_loss_spec


def sp(x):
    """softplus from its definition."""
    return torch.log(1 + torch.exp(x))


def H(logits):
    """Fuzzy entropy of μ = σ(l) from its definition."""
    mu = 1 / (1 + torch.exp(-logits))
    return -mu * torch.log(mu) - (1 - mu) * torch.log(1 - mu)


def sq_input_grad(D, x):
    return input_grad(D, x).flatten(1).square().sum(1)


def test_rpgan_pair_terms_equal_closed_forms():
    G, D = nets()
    loss = make_loss('rpgan', G, D, r1_gamma=1.0)
    lr = torch.linspace(-3, 3, 13, dtype=torch.float64).reshape(-1, 1)
    lf = torch.linspace(2, -4, 13, dtype=torch.float64).reshape(-1, 1)
    assert torch.allclose(loss.loss_D_pair(lr, lf), sp(lf - lr), rtol=1e-12, atol=1e-12)
    assert torch.allclose(loss.loss_G_pair(lr, lf), sp(lr - lf), rtol=1e-12, atol=1e-12)
    # Equal logits: both terms are log 2, whatever the level.
    assert torch.allclose(loss.loss_D_pair(lr, lr), torch.full_like(lr, math.log(2)), rtol=1e-14)
    with pytest.raises(NotImplementedError, match='pairs a real'):
        loss.loss_G(lf)


def test_rpgan_registration_and_defaults():
    spec = get_loss_spec('rpgan')
    assert spec.class_name == 'stylegan2_softgan.objectives.RpGANLoss' and 'r1_gamma' not in spec.defaults
    G, D = nets()
    loss = RpGANLoss('cpu', G, D, r1_gamma=0.5)
    assert loss.r2_gamma == 0.5 and loss.D_reg_interval is None      # same γ, every step
    assert RpGANLoss('cpu', G, D, r1_gamma=0.5, r2_gamma=0.0).r2_gamma == 0.0
    assert RpGANLoss('cpu', G, D, r1_gamma=0.5, D_reg_interval=4).D_reg_interval == 4
    with pytest.raises(ValueError, match='r2_gamma must be a finite number >= 0'):
        RpGANLoss('cpu', G, D, r2_gamma=-1.0)


@pytest.mark.parametrize('gamma', [0.0, 0.7])
def test_rpgan_discriminator_gradients_equal_direct_loss_with_r1_r2(gamma):
    G, D = nets()
    real, c, z, _ = batch()
    loss = make_loss('rpgan', G, D, r1_gamma=gamma)
    phase = 'Dboth'                 # R1 and R2 every step: one phase with the main terms
    collector = training_stats.Collector(regex='Loss/.*')
    loss.accumulate_gradients(phase, real, c, z, c, gain=1.5, cur_nimg=0)
    collector.update()
    got = grads(D)
    assert all(p.grad is None for p in G.parameters())
    zero(D)
    with torch.no_grad():
        fake = G(z, c)
    direct = sp(D(fake, c) - D(real, c)).mean()
    direct = direct + gamma / 2 * sq_input_grad(D, real).mean() + gamma / 2 * sq_input_grad(D, fake).mean()
    (1.5 * direct).backward()
    for a, b in zip(got, grads(D)):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)
    if gamma:
        assert collector['Loss/r1_penalty'] == pytest.approx(float(sq_input_grad(D, real).mean().detach()), rel=1e-9)
        assert collector['Loss/r2_penalty'] == pytest.approx(float(sq_input_grad(D, fake).mean().detach()), rel=1e-9)


def test_rpgan_generator_gradients_equal_direct_loss_and_step_descends():
    G, D = nets()
    real, c, z, _ = batch()
    loss = make_loss('rpgan', G, D, r1_gamma=1.0)
    loss.accumulate_gradients('Gboth', real, c, z, c, gain=2.0, cur_nimg=0)
    got = grads(G)
    zero(G, D)

    def direct():
        return sp(D(real, c) - D(G(z, c), c)).mean()

    before = direct()
    (2.0 * before).backward()
    for a, b in zip(got, grads(G)):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)
    norm = torch.sqrt(sum(g.square().sum() for g in got))
    with torch.no_grad():
        for p, g in zip(G.parameters(), got):
            p.sub_(1e-3 * g / norm)
    assert direct().item() < before.item()


def test_r1_r2_closed_form_for_a_linear_discriminator():
    """For l(x) = w·x + b, ‖∇_x l‖² = ‖w‖² at every input: both penalties are γ/2·‖w‖²."""
    G, D = nets(D_cls=LinearD)
    real, c, z, _ = batch()
    loss = make_loss('ns', G, D, r1_gamma=0.3, r2_gamma=0.8)
    collector = training_stats.Collector(regex='Loss/.*')
    loss.accumulate_gradients('Dreg', real, c, z, c, gain=1.0, cur_nimg=0)
    collector.update()
    w = D.fc.weight.detach()
    assert collector['Loss/r1_penalty'] == pytest.approx(float(w.square().sum()), rel=1e-12)
    assert collector['Loss/r2_penalty'] == pytest.approx(float(w.square().sum()), rel=1e-12)
    # Gradient of (0.3 + 0.8)/2·‖w‖² with respect to w is 1.1·w; none for the bias.
    assert torch.allclose(D.fc.weight.grad, 1.1 * w, rtol=1e-12)
    assert D.fc.bias.grad is None or torch.count_nonzero(D.fc.bias.grad) == 0


def test_lazy_r2_on_any_logit_loss_scales_with_the_interval():
    G, D = nets()
    real, c, z, _ = batch()
    loss = make_loss('hinge', G, D, r2_gamma=0.6, D_reg_interval=4)
    assert loss.D_reg_interval == 4 and loss.r1_gamma == 0
    loss.accumulate_gradients('Dreg', real, c, z, c, gain=4.0, cur_nimg=0)   # StepRunner's gain = interval
    got = grads(D)
    zero(D)
    with torch.no_grad():
        fake = G(z, c)
    (4.0 * 0.6 / 2 * sq_input_grad(D, fake).mean()).backward()
    for a, b in zip(got, grads(D)):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)
    # The main phase of the same loss carries no penalty: exactly the hinge terms.
    zero(D)
    loss.accumulate_gradients('Dmain', real, c, z, c, gain=1.0, cur_nimg=0)
    got = grads(D)
    zero(D)
    (torch.clamp(1 - D(real, c), min=0).mean() + torch.clamp(1 + D(fake, c), min=0).mean()).backward()
    for a, b in zip(got, grads(D)):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)


def test_r2_every_step_joins_the_main_phase():
    G, D = nets()
    real, c, z, _ = batch()
    loss = make_loss('ns', G, D, r2_gamma=0.4, D_reg_interval=None)
    loss.accumulate_gradients('Dboth', real, c, z, c, gain=1.0, cur_nimg=0)
    got = grads(D)
    zero(D)
    with torch.no_grad():
        fake = G(z, c)
    (sp(-D(real, c)).mean() + sp(D(fake, c)).mean() + 0.2 * sq_input_grad(D, fake).mean()).backward()
    for a, b in zip(got, grads(D)):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)


def test_entropy_bonus_on_rpgan_equals_direct_loss():
    G, D = nets()
    real, c, z, _ = batch()
    loss = make_loss('rpgan', G, D, r1_gamma=0.5, beta_schedule=beta_schedule_kwargs(beta=0.3))
    loss.accumulate_gradients('Dboth', real, c, z, c, gain=1.0, cur_nimg=0)
    got = grads(D)
    zero(D)
    with torch.no_grad():
        fake = G(z, c)
    lr, lf = D(real, c), D(fake, c)
    direct = (sp(lf - lr) - 0.3 * H(lr) - 0.3 * H(lf)).mean()
    direct = direct + 0.25 * sq_input_grad(D, real).mean() + 0.25 * sq_input_grad(D, fake).mean()
    direct.backward()
    for a, b in zip(got, grads(D)):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)
    spec = get_loss_spec('rpgan-eb')
    assert spec.defaults['beta_schedule']['fixed'] is None      # the EMD schedule, not a constant


def test_paired_loss_rejects_unequal_batches():
    G, D = nets()
    real, c, z, _ = batch(n=6)
    loss = make_loss('rpgan', G, D, r1_gamma=0.0)
    with pytest.raises(ValueError, match='pairs reals with generated samples'):
        loss.accumulate_gradients('Dboth', real[:4], c[:4], z, c, gain=1.0, cur_nimg=0)


def test_cli_r2_reg_every_and_rpgan():
    _, cfg = resolve(*TINY, '--loss=rpgan', '--gamma=0.2')
    assert cfg.loss_kwargs.class_name == 'stylegan2_softgan.objectives.RpGANLoss'
    assert cfg.loss_kwargs.r1_gamma == 0.2 and 'r2_gamma' not in cfg.loss_kwargs     # R2 = R1's γ
    _, cfg = resolve(*TINY, '--loss=ns', '--r2-gamma=1', '--reg-every=8')
    assert cfg.loss_kwargs.r2_gamma == 1 and cfg.loss_kwargs.D_reg_interval == 8
    _, cfg = resolve(*TINY, '--loss=hinge', '--gamma=1', '--reg-every=1')
    assert cfg.loss_kwargs.D_reg_interval is None                                       # every step
    _, cfg = resolve(*TINY, '--loss=rpgan', '--entropy-bonus=1', '--beta-pairs=4', '--beta-samples=64')
    sched = cfg.loss_kwargs.beta_schedule
    assert sched['floor_pairs'] == 4 and sched['emd_samples'] == 64
    with pytest.raises(UserError) as info:
        resolve(*TINY, '--loss=soft', '--soft-variant=reference', '--beta-samples=64')
    msg = info.value.format_message()
    assert '--beta-samples' in msg and 'constant' in msg and '\n' not in msg


def _train_one_tick(tmp_path, cfg):
    """Run train.py's resolved options for their length without snapshots; (Loss/* collector, result)."""
    cfg = copy.deepcopy(cfg)
    cfg.update(image_snapshot_ticks=None, network_snapshot_ticks=None)
    os.makedirs(tmp_path / 'run')
    collector = training_stats.Collector(regex='Loss/.*')
    result = training_loop.training_loop(run_dir=str(tmp_path / 'run'), rank=0, **cfg)
    collector.update()
    return collector, result


@pytest.mark.parametrize('name', ['rpgan', 'rpgan-eb'])
def test_rpgan_trains_a_tick_from_train_py(tmp_path, name):
    _, cfg = resolve(*TINY, f'--loss={name}', '--gamma=0.1')
    collector, result = _train_one_tick(tmp_path, cfg)
    for key in ('Loss/G/loss', 'Loss/D/loss', 'Loss/r1_penalty', 'Loss/r2_penalty'):
        assert collector.num(key) > 0 and np.isfinite(collector.mean(key)), (name, key)
    if name == 'rpgan-eb':
        assert collector.num('Loss/beta') > 0 and collector.num('Loss/entropy/real') > 0
    for key in ('G', 'D'):
        assert all(torch.isfinite(v).all() for v in result[key].state_dict().values())


def test_reference_soft_variant_trains_a_tick_from_train_py(tmp_path):
    _, cfg = resolve(*TINY, '--loss=soft', '--soft-variant=reference')
    assert cfg.loss_kwargs.variant == 'reference'
    collector, result = _train_one_tick(tmp_path, cfg)
    for key in ('Loss/G/loss', 'Loss/D/loss', 'Loss/entropy/real', 'Loss/entropy/fake'):
        assert collector.num(key) > 0 and np.isfinite(collector.mean(key)), key
    assert collector.num('Loss/beta') == 0          # constant β, no schedule
    assert all(torch.isfinite(v).all() for v in result.G.state_dict().values())
