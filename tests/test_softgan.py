"""SoftGAN: fuzzy entropy, loss values and gradients against the formula, the β schedule, and the
StyleGAN2 loss's terms against closed forms."""

import math

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

import stylegan2_softgan  # noqa: F401  (registers the objectives)
from stylegan2_softgan.beta_schedule import BETA_MAX, BetaSchedule
from stylegan2_softgan.softgan import SoftGANLoss, beta_schedule_kwargs
from torch_utils import training_stats
from training.loss import StyleGAN2Loss, fuzzy_entropy, get_loss_spec, list_losses, register_loss

torch.set_default_dtype(torch.float32)


class LinearG(torch.nn.Module):
    """z -> image through one linear map (not a style generator)."""

    def __init__(self, z_dim=3, shape=(1, 2, 2)):
        super().__init__()
        self.z_dim, self.c_dim, self.shape = z_dim, 0, shape
        self.fc = torch.nn.Linear(z_dim, int(np.prod(shape)), dtype=torch.float64)

    def forward(self, z, c):
        return self.fc(z).reshape(z.shape[0], *self.shape)


class LinearD(torch.nn.Module):
    """l(x) = w·x + b."""

    def __init__(self, shape=(1, 2, 2)):
        super().__init__()
        self.c_dim = 0
        self.fc = torch.nn.Linear(int(np.prod(shape)), 1, dtype=torch.float64)

    def forward(self, img, c):
        return self.fc(img.flatten(1))


def _nets(seed=0):
    torch.manual_seed(seed)
    return LinearG(), LinearD()


def _batch(seed=1, n=6):
    g = torch.Generator().manual_seed(seed)
    real = torch.randn(n, 1, 2, 2, generator=g, dtype=torch.float64)
    z = torch.randn(n, 3, generator=g, dtype=torch.float64)
    c = torch.zeros(n, 0, dtype=torch.float64)
    return real, c, z, c


def _grads(module):
    return [p.grad.clone() for p in module.parameters()]


def _zero(*modules):
    for m in modules:
        for p in m.parameters():
            p.grad = None


# ----------------------------------------------------------------------------
# Fuzzy entropy.


def test_fuzzy_entropy_matches_definition_and_is_stable():
    logits = torch.linspace(-8, 8, 101, dtype=torch.float64)
    mu = torch.sigmoid(logits)
    naive = -mu * torch.log(mu) - (1 - mu) * torch.log(1 - mu)
    assert torch.allclose(fuzzy_entropy(logits), naive, rtol=1e-10, atol=1e-12)
    assert fuzzy_entropy(torch.zeros([], dtype=torch.float64)).item() == pytest.approx(math.log(2))
    extreme = torch.tensor([-200.0, 200.0, -1e4, 1e4], requires_grad=True)
    h = fuzzy_entropy(extreme)
    assert torch.isfinite(h).all() and (h >= 0).all() and h.max() < 1e-30
    h.sum().backward()
    assert torch.isfinite(extreme.grad).all()
    assert BETA_MAX == pytest.approx(0.7213475204444817)


# ----------------------------------------------------------------------------
# SoftGAN loss against the formula.


def _soft(G, D, **kw):
    return SoftGANLoss('cpu', G, D, r1_gamma=0, style_mixing_prob=0, beta=kw.pop('beta', 0.4), **kw)


@pytest.mark.parametrize('beta', [0.0, 0.4, BETA_MAX])
def test_softgan_discriminator_loss_and_gradients_equal_formula(beta):
    G, D = _nets()
    real, real_c, z, c = _batch()
    loss = _soft(G, D, beta=beta)
    loss.accumulate_gradients('Dmain', real, real_c, z, c, gain=1.0, cur_nimg=0)
    got = _grads(D)
    assert all(p.grad is None for p in G.parameters())

    # Direct computation of L_D = −V with V from eq. 4 (μ from σ, H from its definition).
    _zero(D)
    with torch.no_grad():
        fake = G(z, c)
    mu_r, mu_f = torch.sigmoid(D(real, real_c)), torch.sigmoid(D(fake, c))
    H = lambda m: -m * torch.log(m) - (1 - m) * torch.log(1 - m)  # noqa: E731
    V = (mu_r + beta * H(mu_r)).mean() + ((1 - mu_f) + beta * H(mu_f)).mean()
    (-V).backward()
    for a, b in zip(got, _grads(D)):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize('g_loss', ['linear', 'ns'])
def test_softgan_generator_loss_and_gradients_equal_formula(g_loss):
    G, D = _nets()
    real, real_c, z, c = _batch()
    loss = _soft(G, D, g_loss=g_loss)
    loss.accumulate_gradients('Gmain', real, real_c, z, c, gain=2.5, cur_nimg=0)
    got = _grads(G)
    _zero(G, D)
    mu = torch.sigmoid(D(G(z, c), c))
    direct = (1 - mu).mean() if g_loss == 'linear' else (-torch.log(mu)).mean()
    (2.5 * direct).backward()
    for a, b in zip(got, _grads(G)):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)


def test_entropy_bonus_attaches_to_another_logit_loss():
    G, D = _nets()
    real, real_c, z, c = _batch()
    sched = beta_schedule_kwargs(beta=0.3)
    loss = StyleGAN2Loss('cpu', G, D, r1_gamma=0, style_mixing_prob=0, beta_schedule=sched)
    loss.accumulate_gradients('Dmain', real, real_c, z, c, gain=1.0, cur_nimg=0)
    got = _grads(D)
    _zero(D)
    with torch.no_grad():
        fake = G(z, c)
    lr, lf = D(real, real_c), D(fake, c)
    sp = torch.nn.functional.softplus
    mu_r, mu_f = torch.sigmoid(lr), torch.sigmoid(lf)
    H = lambda m: -m * torch.log(m) - (1 - m) * torch.log(1 - m)  # noqa: E731
    direct = sp(-lr).mean() + sp(lf).mean() - 0.3 * (H(mu_r).mean() + H(mu_f).mean())
    direct.backward()
    for a, b in zip(got, _grads(D)):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)


def test_stylegan2_r1_matches_closed_form_for_linear_discriminator():
    # For l(x) = w·x + b, ∇_x l = w, so R1 = γ/2·‖w‖² and its gradient is γ·w (and 0 for b).
    G, D = _nets()
    real, real_c, z, c = _batch()
    loss = StyleGAN2Loss('cpu', G, D, r1_gamma=3.0, style_mixing_prob=0)
    assert loss.D_reg_interval == 16 and loss.G_reg_interval is None
    loss.accumulate_gradients('Dreg', real, real_c, z, c, gain=16.0, cur_nimg=0)
    w = D.fc.weight.detach()
    assert torch.allclose(D.fc.weight.grad, 16.0 * 3.0 * w, rtol=1e-10)
    assert D.fc.bias.grad is None or torch.allclose(D.fc.bias.grad, torch.zeros_like(D.fc.bias), atol=1e-14)


def test_stylegan2_losses_equal_softplus_terms():
    G, D = _nets()
    real, real_c, z, c = _batch()
    loss = StyleGAN2Loss('cpu', G, D, r1_gamma=0, style_mixing_prob=0)
    loss.accumulate_gradients('Dmain', real, real_c, z, c, gain=1.0, cur_nimg=0)
    got = _grads(D)
    _zero(D)
    sp = torch.nn.functional.softplus
    with torch.no_grad():
        fake = G(z, c)
    (sp(-D(real, real_c)).mean() + sp(D(fake, c)).mean()).backward()
    for a, b in zip(got, _grads(D)):
        assert torch.allclose(a, b, rtol=1e-10)


def test_path_length_needs_a_style_generator():
    G, D = _nets()
    with pytest.raises(ValueError, match='style generator'):
        StyleGAN2Loss('cpu', G, D, pl_weight=2.0)


def test_softgan_reports_statistics():
    G, D = _nets()
    real, real_c, z, c = _batch()
    collector = training_stats.Collector(regex='Loss/.*')
    loss = _soft(G, D, beta=0.25)
    loss.accumulate_gradients('Gmain', real, real_c, z, c, gain=1.0, cur_nimg=0)
    loss.accumulate_gradients('Dmain', real, real_c, z, c, gain=1.0, cur_nimg=0)
    collector.update()
    assert collector['Loss/beta'] == 0.25
    with torch.no_grad():
        lr = D(real, real_c)
    assert collector['Loss/signs/real'] == pytest.approx(float(lr.sign().mean()))
    assert collector['Loss/entropy/real'] == pytest.approx(float(fuzzy_entropy(lr).mean()))
    assert collector.num('Loss/entropy/fake') == real.shape[0]


def test_loss_registry():
    assert {'stylegan2', 'soft'} <= set(list_losses())
    assert get_loss_spec('soft').class_name == 'stylegan2_softgan.softgan.SoftGANLoss'
    with pytest.raises(ValueError, match='unknown loss'):
        get_loss_spec('nope')
    with pytest.raises(ValueError, match='already registered'):
        register_loss('soft', 'some.other.Class', 'x')
    with pytest.raises(ValueError, match='invalid loss name'):
        register_loss('Bad Name', 'a.B', 'x')


def test_softgan_rejects_bad_options():
    G, D = _nets()
    with pytest.raises(ValueError, match='g_loss'):
        SoftGANLoss('cpu', G, D, g_loss='log')
    with pytest.raises(ValueError, match='fixed beta'):
        SoftGANLoss('cpu', G, D, beta=0.9)
    with pytest.raises(ValueError, match='needs a source of real images'):
        SoftGANLoss('cpu', G, D)          # EMD schedule with the real floor but no real_source


# ----------------------------------------------------------------------------
# The β schedule.


def test_beta_starts_at_bound_and_follows_emd_scaling_without_smoothing():
    s = BetaSchedule(floor=1.0, ema=0.0)
    assert s.beta == pytest.approx(1 / (2 * math.log(2)))
    # (EMD, expected β): reference 10, floor 1 -> β = clip((e − 1)/9, 0, 1) capped at β_max.
    for emd, expected in [(10.0, BETA_MAX), (8.2, 0.8 if 0.8 < BETA_MAX else BETA_MAX), (5.5, 0.5),
                          (2.8, 0.2), (1.0, 0.0), (0.3, 0.0), (12.0, BETA_MAX)]:
        assert s.update(emd) == pytest.approx(expected, abs=1e-12)
    assert s.emd_ref == 10.0 and s.emd_floor == 1.0 and s.num_measurements == 7


def test_beta_schedule_smoothing_and_zero_floor():
    s = BetaSchedule(floor='zero', ema=0.5)
    seq = [8.0, 4.0, 2.0, 2.0]
    smooth = seq[0]
    s.update(seq[0])
    for emd in seq[1:]:
        smooth = 0.5 * smooth + 0.5 * emd
        assert s.update(emd) == pytest.approx(min(smooth / 8.0, BETA_MAX))
    assert s.emd_smooth == pytest.approx(smooth)


def test_beta_schedule_degenerate_reference():
    s = BetaSchedule(floor=5.0, ema=0.0)
    s.update(4.0)                      # reference below the floor: the ratio is undefined
    assert s.beta == 0.0
    assert s.update(6.0) == BETA_MAX


def test_beta_schedule_measures_on_interval_with_real_floor():
    g = torch.Generator().manual_seed(0)
    pool = torch.randn(8, 1, 2, 2, generator=g, dtype=torch.float64)
    calls = []

    def real_source(n):
        calls.append(n)
        return pool[:n]

    s = BetaSchedule(real_source=real_source, interval=3, ema=0.0, floor_pairs=1, emd_samples=None)
    real = torch.randn(4, 1, 2, 2, generator=g, dtype=torch.float64)
    fakes = [torch.randn(4, 1, 2, 2, generator=g, dtype=torch.float64) * (2.0 - 0.2 * i) for i in range(7)]
    measured = []
    for step, fake in enumerate(fakes):
        for _round in range(2):      # two accumulation rounds share cur_nimg: counted once
            s.on_generator_step(real, fake, cur_nimg=step * 8)
        measured.append(s.num_measurements)
    assert measured == [1, 1, 1, 2, 2, 2, 3]
    assert calls == [8]              # the floor is measured once, from 2m disjoint reals

    def brute(a, b):
        cost = torch.cdist(a.flatten(1), b.flatten(1)).numpy()
        r, c = linear_sum_assignment(cost)
        return cost[r, c].mean()

    assert s.emd_floor == pytest.approx(brute(pool[:4], pool[4:8]), rel=1e-9)
    assert s.emd_ref == pytest.approx(brute(real, fakes[0]), rel=1e-9)
    assert s.emd_last == pytest.approx(brute(real, fakes[6]), rel=1e-9)
    expected = min(max((s.emd_last - s.emd_floor) / (s.emd_ref - s.emd_floor), 0.0), BETA_MAX)
    assert s.beta == pytest.approx(expected)


def test_beta_schedule_state_round_trip_continues_identically():
    a = BetaSchedule(floor=0.5, ema=0.7, interval=1)
    for e in [9.0, 7.0, 6.0]:
        a.update(e)
    b = BetaSchedule(floor=0.5, ema=0.7, interval=1)
    b.load_state_dict(a.state_dict())
    assert b.beta == a.beta and b.emd_ref == a.emd_ref and b.num_measurements == 3
    for e in [5.0, 3.0]:
        assert a.update(e) == b.update(e)
    with pytest.raises(ValueError, match='lacks'):
        b.load_state_dict({'beta': 0.1})


def test_loss_state_carries_schedule():
    G, D = _nets()
    loss = SoftGANLoss('cpu', G, D, beta_floor='zero', r1_gamma=0, style_mixing_prob=0, beta_ema=0.0)
    real, real_c, z, c = _batch()
    loss.accumulate_gradients('Gmain', real, real_c, z, c, gain=1.0, cur_nimg=0)
    state = loss.state_dict()
    other = SoftGANLoss('cpu', G, D, beta_floor='zero', r1_gamma=0, style_mixing_prob=0, beta_ema=0.0)
    other.load_state_dict(state)
    assert other.beta_schedule.emd_ref == loss.beta_schedule.emd_ref
    assert other.beta_schedule.num_steps == 1
    with pytest.raises(ValueError, match='unexpected loss state'):
        other.load_state_dict({**state, 'junk': 1})
    plain = StyleGAN2Loss('cpu', G, D)
    with pytest.raises(ValueError, match='has a β schedule'):
        plain.load_state_dict(state)


# ----------------------------------------------------------------------------
# The multi-pair floor, fresh-sample measurements and their logging.


def _brute_emd(a, b):
    cost = torch.cdist(a.flatten(1).double(), b.flatten(1).double()).numpy()
    r, c = linear_sum_assignment(cost)
    return cost[r, c].mean()


class _Pool:
    """real_source over a fixed pool, handing out consecutive slices (so the test knows every draw)."""

    def __init__(self, pool):
        self.pool, self.pos, self.calls = pool, 0, []

    def __call__(self, n):
        self.calls.append(n)
        out = self.pool[self.pos:self.pos + n]
        self.pos += n
        assert len(out) == n, 'pool exhausted'
        return out

    def state_dict(self):
        return {'pos': self.pos}

    def load_state_dict(self, state):
        self.pos = state['pos']


def test_multi_pair_floor_is_the_mean_of_independent_pair_emds_and_its_spread_is_logged():
    g = torch.Generator().manual_seed(3)
    pool = torch.randn(200, 1, 2, 2, generator=g, dtype=torch.float64)
    source = _Pool(pool)
    s = BetaSchedule(real_source=source, interval=1, ema=0.0, floor_pairs=5, emd_samples=None)
    real = torch.randn(4, 1, 2, 2, generator=g, dtype=torch.float64)
    fake = 2 + torch.randn(4, 1, 2, 2, generator=g, dtype=torch.float64)
    collector = training_stats.Collector(regex='Loss/.*')
    s.on_generator_step(real, fake, cur_nimg=0)
    collector.update()
    assert source.calls == [40]                       # 5 pairs of two disjoint batches of 4
    pairs = [_brute_emd(pool[8 * k:8 * k + 4], pool[8 * k + 4:8 * k + 8]) for k in range(5)]
    assert s.emd_floor == pytest.approx(np.mean(pairs), rel=1e-9)
    assert s.emd_floor_std == pytest.approx(np.std(pairs, ddof=1), rel=1e-9)
    assert collector['Loss/emd_floor'] == pytest.approx(np.mean(pairs), rel=1e-9)
    assert collector['Loss/emd_floor_std'] == pytest.approx(np.std(pairs, ddof=1), rel=1e-9)
    assert s.state_dict()['emd_floor_std'] == s.emd_floor_std
    # A single pair has no spread: NaN, and nothing is logged for it.
    one = BetaSchedule(real_source=_Pool(pool), interval=1, floor_pairs=1, emd_samples=None)
    collector = training_stats.Collector(regex='Loss/.*')
    one.on_generator_step(real, fake, cur_nimg=0)
    collector.update()
    assert math.isnan(one.emd_floor_std) and collector.num('Loss/emd_floor_std') == 0
    assert one.emd_floor == pytest.approx(_brute_emd(pool[:4], pool[4:8]), rel=1e-9)


def test_emd_samples_measures_recent_fakes_against_fresh_reals_and_waits_until_enough():
    g = torch.Generator().manual_seed(4)
    pool = torch.randn(400, 1, 2, 2, generator=g, dtype=torch.float64)
    source = _Pool(pool)
    s = BetaSchedule(real_source=source, interval=3, ema=0.0, floor_pairs=2, emd_samples=8)
    real = torch.randn(4, 1, 2, 2, generator=g, dtype=torch.float64)     # the step's reals are not used
    fakes = [torch.randn(4, 1, 2, 2, generator=g, dtype=torch.float64) * (2.0 - 0.2 * i) for i in range(8)]
    measured = []
    for step, fake in enumerate(fakes):
        s.on_generator_step(real, fake, cur_nimg=step * 4)
        measured.append(s.num_measurements)
    # Due at step 0 but only 4 samples exist: measured at step 1; then due at 3 and 6 (8 samples by then).
    assert measured == [0, 1, 1, 2, 2, 2, 3, 3]
    assert source.calls == [8, 32, 8, 8]              # reals for the measurement, then 2 pairs of 2 x 8 for the floor
    first = torch.cat([fakes[0], fakes[1]]).float()    # kept in float32
    assert s.emd_ref == pytest.approx(_brute_emd(pool[:8], first), rel=1e-9)
    floor_pairs = [_brute_emd(pool[8:16], pool[16:24]), _brute_emd(pool[24:32], pool[32:40])]
    assert s.emd_floor == pytest.approx(np.mean(floor_pairs), rel=1e-9)
    last = torch.cat([fakes[5], fakes[6]]).float()
    assert s.emd_last == pytest.approx(_brute_emd(pool[48:56], last), rel=1e-9)
    assert torch.equal(s.recent, torch.cat([fakes[6], fakes[7]]).float())


def test_emd_samples_state_round_trip_resumes_exactly():
    g = torch.Generator().manual_seed(5)
    pool = torch.randn(400, 1, 2, 2, generator=g, dtype=torch.float64)
    fakes = [torch.randn(4, 1, 2, 2, generator=g, dtype=torch.float64) for _ in range(9)]
    a = BetaSchedule(real_source=_Pool(pool), interval=2, ema=0.5, floor='zero', emd_samples=12)
    for step in range(5):
        a.on_generator_step(fakes[step], fakes[step], cur_nimg=step)
    b = BetaSchedule(real_source=_Pool(pool), interval=2, ema=0.5, floor='zero', emd_samples=12)
    b.load_state_dict(a.state_dict())
    assert b.real_source.pos == a.real_source.pos > 0      # the source's position travels with the schedule
    assert torch.equal(a.recent, b.recent) and a.due == b.due
    for step in range(5, 9):
        a.on_generator_step(fakes[step], fakes[step], cur_nimg=step)
        b.on_generator_step(fakes[step], fakes[step], cur_nimg=step)
        assert a.beta == b.beta and a.emd_smooth == b.emd_smooth
    legacy = {k: v for k, v in a.state_dict().items() if k not in ('recent', 'due', 'emd_floor_std')}
    b.load_state_dict(legacy)                         # a first-release checkpoint still loads
    assert b.recent is None and b.due is False
    with pytest.raises(ValueError, match='"recent" must be a tensor'):
        b.load_state_dict({**a.state_dict(), 'recent': [1, 2]})


def test_schedule_options_are_checked():
    with pytest.raises(ValueError, match='floor_pairs'):
        BetaSchedule(floor='zero', floor_pairs=0)
    with pytest.raises(ValueError, match='emd_samples'):
        BetaSchedule(floor='zero', emd_samples=1)
    with pytest.raises(ValueError, match='needs a source of real images'):
        BetaSchedule(floor='zero', emd_samples=100)


def test_beta_variant_presets_spell_out_their_schedule():
    assert get_loss_spec('soft-beta-fixed').defaults == {'beta': BETA_MAX}
    assert get_loss_spec('soft-floor-zero').defaults == {'beta_floor': 'zero', 'beta_emd_samples': 400}
    assert get_loss_spec('soft-floor-multi').defaults == {'beta_floor': 'real', 'beta_floor_pairs': 16,
                                                          'beta_emd_samples': 400}
    assert get_loss_spec('soft-floor-single').defaults == {'beta_floor': 'real', 'beta_floor_pairs': 1,
                                                           'beta_emd_samples': None}


# ----------------------------------------------------------------------------
# The reference variant (the authors' released toy code).


def _ref_entropy(d):
    """The released code's entropy written out: p = clamp(d, 1e-8, 1), q = clamp(1 − d, 1e-8, 1)."""
    p = torch.where(d < 1e-8, torch.full_like(d, 1e-8), torch.where(d > 1, torch.ones_like(d), d))
    q0 = 1 - d
    q = torch.where(q0 < 1e-8, torch.full_like(d, 1e-8), torch.where(q0 > 1, torch.ones_like(d), q0))
    return -(p * torch.log(p) + q * torch.log(q))


@pytest.mark.parametrize('beta', [None, 0.25])
def test_reference_variant_discriminator_loss_and_gradients(beta):
    G, D = _nets()
    real, real_c, z, c = _batch()
    with torch.no_grad():
        D.fc.weight.mul_(3.0)        # outputs on both sides of d = 1, where the clamp bites
    loss = SoftGANLoss('cpu', G, D, r1_gamma=0, style_mixing_prob=0, variant='reference', beta=beta)
    assert loss.beta_schedule is None and loss.reference_beta == (1.0 if beta is None else beta)
    b = loss.reference_beta
    loss.accumulate_gradients('Dmain', real, real_c, z, c, gain=1.0, cur_nimg=0)
    got = _grads(D)
    _zero(D)
    with torch.no_grad():
        fake = G(z, c)
    d_r = torch.log(1 + torch.exp(D(real, real_c)))
    d_f = torch.log(1 + torch.exp(D(fake, c)))
    assert (d_r > 1).any() and (d_r < 1).any()
    V = (d_r + b * _ref_entropy(d_r)).mean() + (-d_f + b * _ref_entropy(d_f)).mean()
    (-V).backward()
    for a, e in zip(got, _grads(D)):
        assert torch.allclose(a, e, rtol=1e-9, atol=1e-12)


def test_reference_variant_generator_and_options():
    G, D = _nets()
    real, real_c, z, c = _batch()
    loss = SoftGANLoss('cpu', G, D, r1_gamma=0, style_mixing_prob=0, variant='reference')
    loss.accumulate_gradients('Gmain', real, real_c, z, c, gain=1.0, cur_nimg=0)
    got = _grads(G)
    _zero(G, D)
    (-torch.log(1 + torch.exp(D(G(z, c), c))).mean()).backward()
    for a, e in zip(got, _grads(G)):
        assert torch.allclose(a, e, rtol=1e-9, atol=1e-12)
    # Entropy of the clamped output: zero with zero gradient once d ≥ 1; the paper's H at d = ½.
    d = torch.tensor([0.5, 1.0, 3.0], dtype=torch.float64, requires_grad=True)
    from stylegan2_softgan.softgan import reference_entropy
    h = reference_entropy(d)
    assert h[0].item() == pytest.approx(math.log(2)) and h[1].item() == pytest.approx(0.0, abs=1e-6)
    h[2].backward()
    assert d.grad[2] == 0
    with pytest.raises(ValueError, match='variant'):
        SoftGANLoss('cpu', G, D, variant='released')
    with pytest.raises(ValueError, match='own generator term'):
        SoftGANLoss('cpu', G, D, variant='reference', g_loss='ns')
    with pytest.raises(ValueError, match='constant β >= 0'):
        SoftGANLoss('cpu', G, D, variant='reference', beta=-1.0)
    assert get_loss_spec('soft-reference').defaults == {'variant': 'reference'}


def test_training_loops_real_source_position_round_trips():
    """The image loop's RealImageSource tells and restores its position (plain data), so a resumed
    schedule draws the same fresh reals."""
    from training.training_loop import RealImageSource

    class Digits:
        def __len__(self):
            return 50

        def __getitem__(self, i):
            return np.full((1, 2, 2), i, dtype=np.uint8), None

    a = RealImageSource(Digits(), 'cpu', 3)
    a(5)
    state = a.state_dict()
    assert all(isinstance(v, (str, int)) for v in state.values())
    b = RealImageSource(Digits(), 'cpu', 9)
    b.load_state_dict(state)
    assert torch.equal(a(7), b(7))
