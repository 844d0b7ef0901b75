"""stylegan2_softgan.samplers: seeds, truncation, interpolation (random-α mixing, lerp/slerp in Z and W),
rejection sampling (threshold, top fraction, DRS) and the pixel conversion, against numpy and closed forms."""

import math

import numpy as np
import pytest
import torch

import dnnlib
from stylegan2_softgan import samplers
from training import architectures


def build(arch, c_dim=0, seed=0, **knobs):
    torch.manual_seed(seed)
    if arch == 'stylegan2':
        knobs = dict(dict(channel_base=64, channel_max=16, map_layers=1, z_dim=8, w_dim=8, num_fp16_res=0), **knobs)
    elif arch == 'dcgan':
        knobs = dict(dict(channel_base=64, channel_max=16, z_dim=8), **knobs)
    G_kwargs, D_kwargs = architectures.build_arch_kwargs(arch, 8, 1, c_dim=c_dim, **knobs)
    G = dnnlib.util.construct_class_by_name(**G_kwargs).eval().requires_grad_(False)
    D = dnnlib.util.construct_class_by_name(**D_kwargs).eval().requires_grad_(False)
    return G, D


@pytest.fixture(scope='module')
def style_nets():
    G, D = build('stylegan2')
    with torch.no_grad():      # a tracked W average away from zero, as after training
        G.mapping.w_avg.copy_(torch.randn_like(G.mapping.w_avg))
    return G, D


# ----------------------------------------------------------------------------
# Latents.


def test_seed_latents_follow_stylegan2_ada():
    z = samplers.seed_latents([0, 7, 123], 5)
    for row, seed in zip(z, [0, 7, 123]):
        assert np.array_equal(row.numpy(), np.random.RandomState(seed).randn(5).astype(np.float32))
    z1, z2, alpha = samplers.seed_mix_latents([3, 4], 5)
    assert torch.equal(z1, samplers.seed_latents([3, 4], 5))
    rnd = np.random.RandomState(4)
    rnd.randn(5)
    assert np.array_equal(z2[1].numpy(), rnd.randn(5).astype(np.float32))
    assert alpha[1].item() == pytest.approx(rnd.uniform(), abs=1e-7)


def test_class_labels():
    assert torch.equal(samplers.class_labels(3, 2, 2), torch.tensor([[0.0, 0, 1], [0, 0, 1]]))
    assert samplers.class_labels(0, None, 4).shape == (4, 0)
    with pytest.raises(ValueError, match='unconditional'):
        samplers.class_labels(0, 1, 1)
    with pytest.raises(ValueError, match=r'0\.\.2'):
        samplers.class_labels(3, 3, 1)
    with pytest.raises(ValueError, match='conditional'):
        samplers.class_labels(3, None, 1)


def test_random_mix_is_alpha_weighted():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g)
    alpha = torch.tensor([0.0, 1.0, 0.25, 0.9])
    z = samplers.random_mix(z1, z2, alpha)
    ref = alpha.numpy()[:, None] * z1.numpy() + (1 - alpha.numpy()[:, None]) * z2.numpy()
    assert np.allclose(z.numpy(), ref, rtol=1e-6, atol=1e-7)
    assert torch.equal(z[0], z2[0]) and torch.equal(z[1], z1[1])


# ----------------------------------------------------------------------------
# Interpolation.


def test_lerp_and_slerp_closed_forms():
    a, b = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 2.0, 0.0])
    for fn in (samplers.lerp, samplers.slerp):
        assert torch.equal(fn(a, b, 0.0), a) and torch.equal(fn(a, b, 1.0), b)
    assert torch.allclose(samplers.lerp(a, b, 0.25), torch.tensor([0.75, 0.5, 0.0]))
    # Unit vectors at angle Ω: slerp(t) = cos(tΩ)·e1 + sin(tΩ)·e⊥, and the norm stays 1.
    omega = 1.1
    e1 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    e2 = torch.tensor([math.cos(omega), math.sin(omega)], dtype=torch.float64)
    for t in (0.1, 0.3, 0.5, 0.8):
        got = samplers.slerp(e1, e2, t)
        assert torch.allclose(got, torch.tensor([math.cos(t * omega), math.sin(t * omega)], dtype=torch.float64),
                              atol=1e-12)
    # Parallel vectors: the angle is 0, slerp falls back to lerp; batched rows interpolate independently.
    assert torch.allclose(samplers.slerp(a, 3 * a, 0.5), 2 * a)
    rows = samplers.slerp(torch.stack([e1, e1]), torch.stack([e2, -e1 + 1e-3]), 0.0)
    assert torch.equal(rows, torch.stack([e1, e1]))


def test_path_weights_hit_every_keyframe():
    w = samplers.path_weights(3, 4)
    assert len(w) == 9
    assert [w[i] for i in (0, 4, 8)] == [(0, 0.0), (1, 0.0), (1, 1.0)]
    path = samplers.interpolate_path(torch.tensor([[0.0], [4.0], [8.0]]), 4, 'lerp')
    assert path.reshape(-1).tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8]
    with pytest.raises(ValueError, match='at least 2'):
        samplers.path_weights(1, 4)
    with pytest.raises(ValueError, match='lerp'):
        samplers.interpolate_path(torch.zeros(2, 1), 2, 'cubic')


@pytest.mark.parametrize('space', ['z', 'w'])
@pytest.mark.parametrize('method', ['lerp', 'slerp'])
def test_interpolation_endpoints_equal_the_generator_at_the_keyframes(style_nets, space, method):
    G, _ = style_nets
    z = samplers.seed_latents([1, 2, 3], G.z_dim)
    c = torch.zeros(3, 0)
    frames = samplers.interpolation_frames(G, z, c, frames=3, method=method, space=space, truncation_psi=0.7)
    assert frames.shape == (7, 1, 8, 8)
    with torch.no_grad():
        ref = torch.cat([G(z[i:i + 1], c[:1], truncation_psi=0.7, noise_mode='const') for i in range(3)])
    for k, i in ((0, 0), (3, 1), (6, 2)):
        assert torch.allclose(frames[i * 3], ref[i], atol=1e-5), (k, i)
    # In-between frames differ from both ends.
    assert (frames[1] - ref[0]).abs().max() > 1e-4 and (frames[1] - ref[1]).abs().max() > 1e-4


def test_interpolation_with_a_plain_generator_and_labels():
    G, _ = build('dcgan', c_dim=2)
    z = samplers.seed_latents([5, 6], G.z_dim)
    c = samplers.class_labels(2, 1, 2)
    frames = samplers.interpolation_frames(G, z, c, frames=2, method='slerp', space='z')
    with torch.no_grad():
        ref = G(z, c)
    assert torch.allclose(frames[0], ref[0], atol=1e-5) and torch.allclose(frames[2], ref[1], atol=1e-5)
    with pytest.raises(ValueError, match='mapping network'):
        samplers.interpolation_frames(G, z, c, frames=2, space='w')
    with pytest.raises(ValueError, match='truncation'):
        samplers.generate(G, z, c, truncation_psi=0.5)


def test_truncation_pulls_toward_the_w_average(style_nets):
    G, _ = style_nets
    z = samplers.seed_latents(range(4), G.z_dim)
    c = torch.zeros(4, 0)
    same = samplers.generate(G, z, c, truncation_psi=0.0)
    assert torch.allclose(same, same[:1].expand_as(same), atol=1e-6)       # ψ = 0: every z gives w_avg's image
    with torch.no_grad():
        w_avg_img = G.synthesis(G.mapping.w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1), noise_mode='const')
    assert torch.allclose(same[0], w_avg_img[0], atol=1e-5)
    free = samplers.generate(G, z, c, truncation_psi=1.0, batch_size=3)
    with torch.no_grad():
        assert torch.allclose(free, G(z, c, noise_mode='const'), atol=1e-6)
    with pytest.raises(ValueError, match='noise_mode'):
        samplers.generate(G, z, c, noise_mode='loud')


# ----------------------------------------------------------------------------
# Rejection sampling.


def logits_pool(n=200, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).normal(size=n) * 2).float()


@pytest.mark.parametrize('fraction, expected', [(0.3, 60), (0.25, 50), (1.0, 200), (0.001, 1), (0.0125, 3)])
def test_top_fraction_keeps_exactly_the_requested_count(fraction, expected):
    logits = logits_pool()
    mask = samplers.accept_top(logits, fraction)
    assert int(mask.sum()) == expected
    order = np.argsort(-logits.numpy())
    assert set(np.flatnonzero(mask.numpy())) == set(order[:expected])
    if expected < 200:
        assert logits[mask].mean() > logits.mean()
    with pytest.raises(ValueError, match='fraction'):
        samplers.accept_top(logits, 0.0)


def test_threshold_keeps_sigmoid_above():
    logits = logits_pool()
    for t in (0.3, 0.5, 0.9):
        mask = samplers.accept_threshold(logits, t)
        ref = 1 / (1 + np.exp(-logits.numpy().astype(np.float64))) > t
        assert np.array_equal(mask.numpy(), ref)
        assert logits[mask].mean() > logits.mean()
    with pytest.raises(ValueError, match='threshold'):
        samplers.accept_threshold(logits, 1.0)


def test_drs_scores_and_acceptance_follow_azadi_et_al():
    logits = logits_pool(1000, seed=3)
    l = logits.numpy().astype(np.float64)
    M, eps = l.max(), 1e-6
    F_ref = l - M - np.log(1 - np.exp(l - M - eps))
    assert np.allclose(samplers.drs_scores(logits, eps=eps).numpy(), F_ref, rtol=1e-10, atol=1e-10)
    p, gamma = samplers.drs_acceptance(logits, gamma_percentile=80, eps=eps)
    assert gamma == pytest.approx(np.percentile(F_ref, 80), rel=1e-10)
    assert np.allclose(p.numpy(), 1 / (1 + np.exp(-(F_ref - gamma))), rtol=1e-10)
    # p grows with the logit, and the best sample is (almost) surely kept.
    order = np.argsort(l)
    assert np.all(np.diff(p.numpy()[order]) >= 0) and p.numpy()[order[-1]] > 0.99
    # A larger D*_max estimate than the pool's own maximum lowers every score.
    assert (samplers.drs_scores(logits, max_logit=M + 1) < samplers.drs_scores(logits)).all()
    # The empirical acceptance rate matches the mean probability (binomial, 5σ).
    big = logits_pool(20000, seed=4)
    p_big, _ = samplers.drs_acceptance(big)
    mask = samplers.accept_drs(big, torch.Generator().manual_seed(0))
    sigma = math.sqrt(float((p_big * (1 - p_big)).sum())) / len(big)
    assert abs(mask.double().mean().item() - p_big.mean().item()) < 5 * sigma
    assert big[mask].mean() > big.mean() + 0.5
    again = samplers.reject(big, 'drs', generator=torch.Generator().manual_seed(0))
    assert torch.equal(mask, again)
    with pytest.raises(ValueError, match='rejection method'):
        samplers.reject(big, 'best')


def test_rejection_with_the_discriminator_keeps_the_fraction_and_raises_the_score(style_nets):
    G, D = style_nets
    z = samplers.seed_latents(range(40), G.z_dim)
    c = torch.zeros(40, 0)
    images = samplers.generate(G, z, c, batch_size=8)
    logits = samplers.discriminator_logits(D, images, c, batch_size=8)
    with torch.no_grad():      # minibatch-std layers make a score depend on its batch: same batches here
        ref = torch.cat([D(x, cc).reshape(-1) for x, cc in zip(images.split(8), c.split(8))])
    assert torch.allclose(logits, ref, atol=1e-6)
    mask = samplers.reject(logits, 'top', fraction=0.25)
    assert int(mask.sum()) == 10
    assert logits[mask].mean() > logits.mean()
    assert logits[mask].min() >= logits[~mask].max()


def test_packed_discriminator_is_refused():
    G_kwargs, D_kwargs = architectures.build_arch_kwargs('mlp', None, None, pack=2)
    D = dnnlib.util.construct_class_by_name(**D_kwargs)
    with pytest.raises(ValueError, match='one discriminator output per sample'):
        samplers.discriminator_logits(D, torch.randn(4, 2), torch.zeros(4, 0))


# ----------------------------------------------------------------------------
# Pixels.


def test_pixel_conversion_and_grid():
    x = torch.tensor([-1.0, 0.0, 1.0, -2.0, 2.0, 0.5]).reshape(1, 1, 1, 6)
    assert samplers.to_uint8(x).reshape(-1).tolist() == [0, 128, 255, 0, 255, 191]
    rgb = torch.zeros(2, 3, 4, 5)
    assert samplers.to_uint8(rgb).shape == (2, 4, 5, 3)
    ims = np.stack([np.full((2, 3, 1), 10 * (i + 1), dtype=np.uint8) for i in range(5)])
    grid = samplers.image_grid(ims)
    assert grid.shape == (4, 9, 1)                                  # ⌈√5⌉ = 3 columns, 2 rows
    assert grid[0, 0, 0] == 10 and grid[0, 3, 0] == 20 and grid[2, 0, 0] == 40 and grid[2, 3, 0] == 50
    assert grid[2, 6, 0] == 0                                       # the empty cell stays black
