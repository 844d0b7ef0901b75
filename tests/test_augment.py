"""ADA augmentation pipe (training/augment.py) against independent computations: numpy index
constructions for the exact pixel transforms, scipy.ndimage and the analytic image for the resampled
geometry, closed-form color matrices, scipy filtering for the band-pass bank, binomial statistics for
the probabilities, and numerical derivatives (first order, and R1's second order) through the pipe."""

import json
import math
from statistics import NormalDist

import numpy as np
import pytest
import scipy.ndimage
import torch
from scipy.spatial.transform import Rotation

from torch_utils import checkpoint, persistence
from training.augment import PRESETS, SYM6, AugmentPipe, imgfilter_bank, reflect_pad, sym2_taps

PHI_INV = NormalDist().inv_cdf


pytestmark = pytest.mark.usefixtures('one_thread')


def make_pipe(p=1.0, **kwargs):
    pipe = AugmentPipe(**kwargs)
    pipe.p.fill_(p)
    return pipe


def smooth_field(h, w, shift=0.0):
    """A smooth image (low spatial frequencies) as an analytic function of centred pixel coordinates."""
    def f(x, y):
        return (np.cos(2 * np.pi * (0.03 * x + 0.015 * y) + 0.3 + shift)
                + 0.4 * np.sin(2 * np.pi * (-0.02 * x + 0.035 * y) + 1.0 + shift))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    return f, f(xx - (w - 1) / 2, yy - (h - 1) / 2)


def rot(theta):
    return np.array([[math.cos(theta), -math.sin(theta), 0], [math.sin(theta), math.cos(theta), 0], [0, 0, 1]])


def diag(sx, sy):
    return np.diag([sx, sy, 1.0])


def shift(tx, ty):
    return np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1.0]])


def scipy_warp(img, g_inv):
    """Output pixel o takes the input at G_inv o (centred coordinates), with mirror boundaries."""
    h, w = img.shape
    c = np.array([(w - 1) / 2, (h - 1) / 2])
    a, t = g_inv[:2, :2], g_inv[:2, 2]
    off = t + c - a @ c
    # scipy's axes are (row = y, col = x).
    m = np.array([[a[1, 1], a[1, 0]], [a[0, 1], a[0, 0]]])
    return scipy.ndimage.affine_transform(img, m, offset=[off[1], off[0]], order=5, mode='mirror')

# ----------------------------------------------------------------------------
# p = 0, presets, construction.


@pytest.mark.parametrize('name', list(PRESETS))
def test_p_zero_is_identity_and_draws_nothing(name):
    pipe = AugmentPipe(**PRESETS[name])
    assert float(pipe.p) == 0
    for channels in (1, 3):
        x = torch.randn(4, channels, 16, 16)
        state = torch.get_rng_state()
        y = pipe(x)
        assert y is x
        assert torch.equal(torch.get_rng_state(), state)


def test_presets_are_stylegan2_ada_pipelines():
    assert list(PRESETS) == ['blit', 'geom', 'color', 'filter', 'noise', 'cutout',
                             'bg', 'bgc', 'bgcf', 'bgcfn', 'bgcfnc']
    blit, geom = {'xflip', 'rotate90', 'xint'}, {'scale', 'rotate', 'aniso', 'xfrac'}
    color = {'brightness', 'contrast', 'lumaflip', 'hue', 'saturation'}
    expected = {'blit': blit, 'geom': geom, 'color': color, 'filter': {'imgfilter'}, 'noise': {'noise'},
                'cutout': {'cutout'}, 'bg': blit | geom, 'bgc': blit | geom | color,
                'bgcf': blit | geom | color | {'imgfilter'}, 'bgcfn': blit | geom | color | {'imgfilter', 'noise'},
                'bgcfnc': blit | geom | color | {'imgfilter', 'noise', 'cutout'}}
    for name, keys in expected.items():
        assert PRESETS[name] == {k: 1 for k in keys}, name


@pytest.mark.parametrize('name', list(PRESETS))
def test_presets_run(name):
    torch.manual_seed(0)
    pipe = make_pipe(0.5, **PRESETS[name])
    for channels, dtype in ((3, torch.float32), (1, torch.float32), (3, torch.float64)):
        x = torch.randn(8, channels, 16, 16, dtype=dtype)
        y = pipe(x)
        assert y.shape == x.shape and y.dtype == x.dtype
        assert torch.isfinite(y).all()
        assert not torch.equal(y, x)  # 8 samples at p = 0.5: something fires (failure odds < 1e-2 for 'noise')


def test_same_seed_same_output_and_rng_only_global():
    pipe = make_pipe(0.6, **PRESETS['bgcfnc'])
    x = torch.randn(6, 3, 16, 16)
    torch.manual_seed(123)
    a = pipe(x)
    torch.manual_seed(123)
    b = pipe(x)
    assert torch.equal(a, b)
    torch.manual_seed(124)
    assert not torch.equal(pipe(x), a)


def test_persistence_and_checkpoint_keep_p():
    pipe = make_pipe(0.37, **PRESETS['bgc'], rotate_max=0.5, imgfilter_bands=[1, 0, 1, 0])
    kwargs = json.loads(json.dumps(persistence.get_init_kwargs(pipe)))
    assert kwargs == {**PRESETS['bgc'], 'rotate_max': 0.5, 'imgfilter_bands': [1, 0, 1, 0]}
    assert list(pipe.state_dict()) == ['p']  # the filters are derived constants, not checkpoint state
    packed = checkpoint.pack_module(pipe)
    clone = checkpoint.unpack_module(packed)
    assert float(clone.p) == pytest.approx(0.37)
    assert clone.rotate_max == 0.5 and clone.imgfilter_bands == [1, 0, 1, 0]
    x = torch.randn(4, 3, 16, 16)
    torch.manual_seed(5)
    a = pipe(x)
    torch.manual_seed(5)
    assert torch.equal(clone(x), a)


@pytest.mark.parametrize('kwargs, exc, words', [
    (dict(xflp=1), TypeError, 'xflp'),
    (dict(xflip=-0.5), ValueError, 'xflip'),
    (dict(rotate='1'), TypeError, 'rotate'),
    (dict(hue=float('nan')), ValueError, 'hue'),
    (dict(scale_std=-1), ValueError, 'scale_std'),
    (dict(cutout_size=1.5), ValueError, 'cutout_size'),
    (dict(imgfilter_bands=[1, 1, 1]), ValueError, 'imgfilter_bands'),
    (dict(imgfilter_bands=[1, 1, -1, 1]), ValueError, 'imgfilter_bands'),
    (dict(noise=True), TypeError, 'noise'),
])
def test_bad_constructor_arguments(kwargs, exc, words):
    with pytest.raises(exc, match=words):
        AugmentPipe(**kwargs)


def test_bad_forward_arguments():
    pipe = make_pipe(1.0, **PRESETS['bgc'])
    with pytest.raises(ValueError, match=r'\[N, C, H, W\]'):
        pipe(torch.zeros(3, 16, 16))
    with pytest.raises(ValueError, match='float'):
        pipe(torch.zeros(1, 3, 16, 16, dtype=torch.uint8))
    with pytest.raises(ValueError, match='channels'):
        pipe(torch.zeros(1, 2, 16, 16))
    with pytest.raises(ValueError, match='debug_percentile'):
        pipe(torch.zeros(1, 3, 16, 16), debug_percentile=1.0)
    pipe.p.fill_(-0.1)
    with pytest.raises(ValueError, match='probability p'):
        pipe(torch.zeros(1, 3, 16, 16))
    # Geometry, filtering and corruptions work for any channel count.
    y = make_pipe(1.0, **PRESETS['geom'], imgfilter=1, noise=1, cutout=1)(torch.randn(2, 2, 16, 16))
    assert y.shape == (2, 2, 16, 16)

# ----------------------------------------------------------------------------
# Exact pixel transforms.


def test_xflip_is_exact():
    torch.manual_seed(1)
    x = torch.randn(8, 3, 16, 12)
    y = make_pipe(1.0, xflip=1)(x)
    flipped = 0
    for xi, yi in zip(x, y):
        assert torch.equal(yi, xi) or torch.equal(yi, xi.flip(2))
        flipped += torch.equal(yi, xi.flip(2))
    assert 0 < flipped < 8


def test_rotate90_is_exact():
    torch.manual_seed(2)
    x = torch.randn(8, 2, 16, 16)
    y = make_pipe(1.0, rotate90=1)(x)
    seen = set()
    for xi, yi in zip(x, y):
        ks = [k for k in range(4) if torch.equal(yi, torch.rot90(xi, k, dims=(1, 2)))]
        assert len(ks) == 1
        seen.add(ks[0])
    assert len(seen) >= 3


def reflect_shift_np(img, tx, ty):
    """Content moved by (tx, ty) pixels, revealed pixels filled by reflection (numpy pad + crop)."""
    h, w = img.shape[-2:]
    m = max(abs(tx), abs(ty))
    pad = np.pad(img, [(0, 0)] * (img.ndim - 2) + [(m, m), (m, m)], mode='reflect')
    return pad[..., m - ty:m - ty + h, m - tx:m - tx + w]


def test_xint_is_a_reflected_integer_shift():
    torch.manual_seed(3)
    x = torch.randn(8, 1, 16, 16, dtype=torch.float64)
    y = make_pipe(1.0, xint=1, xint_max=0.25)(x).numpy()
    xn = x.numpy()
    nonzero = 0
    for xi, yi in zip(xn, y):
        matches = [(tx, ty) for tx in range(-4, 5) for ty in range(-4, 5)
                   if np.array_equal(yi, reflect_shift_np(xi, tx, ty))]
        assert len(matches) == 1
        nonzero += matches[0] != (0, 0)
    assert nonzero >= 4
    # Debug percentile: t = (2q - 1) * xint_max of the size, rounded; q = 0.9 -> round(0.2 * 16) = 3.
    y = make_pipe(0.0, xint=1, xint_max=0.25)(x, debug_percentile=0.9).numpy()
    assert np.array_equal(y, reflect_shift_np(xn, 3, 3))


def test_blit_composition_matches_numpy():
    # xflip (i = 1), then rotation by 3 * 90 degrees, then a shift of (1, 1): q = 0.8, xint_max = 0.125.
    x = torch.randn(2, 3, 16, 16)
    y = make_pipe(0.0, **PRESETS['blit'])(x, debug_percentile=0.8).numpy()
    e = x.numpy()[..., ::-1]
    # +90 degrees takes +x to +y; with y pointing down, np.rot90(k=-1) on (row, col) arrays.
    e = np.rot90(e, k=-3, axes=(2, 3))
    e = reflect_shift_np(e, 1, 1)
    assert np.array_equal(y, e)


def test_reflect_pad_matches_numpy_for_any_size():
    for shape in ([2, 1, 5, 7], [1, 2, 2, 3], [1, 1, 1, 4]):
        x = torch.randn(shape)
        for pads in ([2, 3, 1, 4], [10, 0, 0, 9], [0, 0, 0, 0], [0, 23, 17, 1]):
            y = reflect_pad(x, pads).numpy()
            e = np.pad(x.numpy(), [(0, 0), (0, 0), (pads[2], pads[3]), (pads[0], pads[1])], mode='reflect')
            assert np.array_equal(y, e)

# ----------------------------------------------------------------------------
# Probabilities.


def test_xflip_changes_half_of_p():
    # A transform fires with probability multiplier * p; a fired x-flip flips with probability 1/2.
    n, p = 4000, 0.6
    x = torch.tensor([0.0, 1.0]).repeat(n, 1, 1, 1)
    torch.manual_seed(4)
    y = make_pipe(p, xflip=1)(x)
    flipped = (y[:, 0, 0, 0] == 1).double().mean().item()
    expected = p / 2
    assert abs(flipped - expected) < 4 * math.sqrt(expected * (1 - expected) / n)


@pytest.mark.parametrize('p, multiplier', [(0.3, 1.0), (0.5, 0.5), (2.0, 1.0)])
def test_brightness_fires_with_multiplier_times_p(p, multiplier):
    n = 3000
    x = torch.zeros(n, 1, 2, 2)
    torch.manual_seed(5)
    y = make_pipe(p, brightness=multiplier)(x)
    changed = (y != 0).any(dim=(1, 2, 3)).double().mean().item()
    expected = min(p * multiplier, 1.0)
    assert abs(changed - expected) <= 4 * math.sqrt(expected * (1 - expected) / n) + 1e-12


def test_rotation_probability_counts_both_rotations_once():
    # Two independent rotations with 1 - sqrt(1 - rotate * p) each: P(at least one) = rotate * p.
    n, p = 3000, 0.5
    f, img = smooth_field(8, 8)
    x = torch.tensor(img, dtype=torch.float32).repeat(n, 1, 1, 1)
    torch.manual_seed(6)
    y = make_pipe(p, rotate=1)(x)
    changed = (y != x).any(dim=(1, 2, 3)).double().mean().item()
    assert abs(changed - p) < 4 * math.sqrt(p * (1 - p) / n)

# ----------------------------------------------------------------------------
# Resampled geometry.


def expected_geometry(q, h, w, pipe):
    """Forward content map G from the documented parameter quantiles and the order of the chain."""
    z = PHI_INV(q)
    g = np.eye(3)
    if pipe.scale > 0:
        s = 2 ** (z * pipe.scale_std)
        g = diag(s, s) @ g
    if pipe.rotate > 0:
        g = rot((2 * q - 1) * math.pi * pipe.rotate_max) @ g   # the second rotation is 0 in debug mode
    if pipe.aniso > 0:
        s = 2 ** (z * pipe.aniso_std)
        g = diag(s, 1 / s) @ g
    if pipe.xfrac > 0:
        g = shift(z * pipe.xfrac_std * w, z * pipe.xfrac_std * h) @ g
    return g


@pytest.mark.parametrize('kwargs, q', [
    (dict(scale=1), 0.85),
    (dict(scale=1), 0.1),
    (dict(rotate=1, rotate_max=0.25), 0.8),
    (dict(rotate=1), 0.9),
    (dict(aniso=1), 0.2),
    (dict(xfrac=1), 0.7),
    (dict(scale=1, rotate=1, aniso=1, xfrac=1, rotate_max=0.3), 0.75),
])
def test_geometry_matches_scipy_and_the_analytic_image(kwargs, q):
    h, w = 16, 16
    f, img = smooth_field(h, w)
    pipe = make_pipe(0.0, **kwargs)
    y = pipe(torch.tensor(img)[None, None], debug_percentile=q)[0, 0].numpy()
    g_inv = np.linalg.inv(expected_geometry(q, h, w, pipe))

    # The whole image, reflection included, against a quintic-spline warp with mirror boundaries. The
    # pipe interpolates bilinearly on a 2x grid: error <= (0.5^2 / 8) (|f_xx| + |f_yy|), about 0.002 for
    # this image, plus the filters' passband ripple; the mirror's kinks at the edges add high
    # frequencies that the two interpolators treat differently, hence 0.06 overall
    # (a wrong direction or order of the maps errs by > 0.3).
    ref = scipy_warp(img, g_inv)
    assert np.abs(y - ref).max() < 0.06
    # Where the source lies well inside the image, the exact answer is the analytic image at G^-1 o.
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    ox, oy = xx - (w - 1) / 2, yy - (h - 1) / 2
    sx = g_inv[0, 0] * ox + g_inv[0, 1] * oy + g_inv[0, 2]
    sy = g_inv[1, 0] * ox + g_inv[1, 1] * oy + g_inv[1, 2]
    inside = (np.abs(sx) < (w - 1) / 2 - 3) & (np.abs(sy) < (h - 1) / 2 - 3)
    assert inside.sum() >= 10
    assert np.abs(y - f(sx, sy))[inside].max() < 0.005


def test_blit_then_geometry_composition():
    # 'bg' at q = 0.8: flip, 3 x 90 degrees, shift (1, 1), then the general chain.
    h, w = 16, 16
    f, img = smooth_field(h, w)
    pipe = make_pipe(0.0, **PRESETS['bg'], rotate_max=0.2, scale_std=0.1, aniso_std=0.1, xfrac_std=0.05)
    q = 0.8
    y = pipe(torch.tensor(img)[None, None], debug_percentile=q)[0, 0].numpy()
    blit = shift(1, 1) @ rot(3 * math.pi / 2) @ diag(-1, 1)
    g_inv = np.linalg.inv(expected_geometry(q, h, w, pipe) @ blit)
    assert np.abs(y - scipy_warp(img, g_inv)).max() < 0.06


def test_resampling_the_identity_is_the_identity():
    pipe = AugmentPipe()
    x = torch.randn(3, 2, 16, 12, dtype=torch.float64)
    y = pipe.resample(x, torch.eye(3, dtype=torch.float64).repeat(3, 1, 1))
    # Orthogonal wavelet: upsampling then downsampling is exact, up to the float32 filter taps.
    assert (y - x).abs().max() < 1e-5


def test_rotation_leaves_a_radial_image_unchanged():
    h = w = 16
    yy, xx = np.mgrid[0:h, 0:w] - (h - 1) / 2
    img = np.exp(-(xx ** 2 + yy ** 2) / (2 * 3.0 ** 2))
    x = torch.tensor(img)[None, None].repeat(8, 1, 1, 1)
    torch.manual_seed(7)
    y = make_pipe(1.0, rotate=1)(x).numpy()[:, 0]
    # Inside the inscribed disc every source stays inside the image; beyond it rotations bring in
    # the reflected copies of the blob.
    # Bilinear sampling of the 2x grid errs by up to (0.5^2 / 8) (|f_xx| + |f_yy|) <= 0.007 here.
    disc = xx ** 2 + yy ** 2 <= 6.5 ** 2
    assert np.abs(y - img)[:, disc].max() < 0.01
    assert (np.abs(y - img).reshape(8, -1).max(axis=1) > 0).all()  # the samples were resampled


def test_geometry_on_non_square_images():
    h, w = 12, 20
    f, img = smooth_field(h, w)
    pipe = make_pipe(0.0, rotate=1, rotate_max=0.1, xfrac=1)
    q = 0.7
    y = pipe(torch.tensor(img)[None, None], debug_percentile=q)[0, 0].numpy()
    g_inv = np.linalg.inv(expected_geometry(q, h, w, pipe))
    assert np.abs(y - scipy_warp(img, g_inv)).max() < 0.06


def test_sym6_taps_are_an_orthogonal_wavelet():
    g = np.asarray(SYM6)
    assert g.sum() == pytest.approx(math.sqrt(2), abs=1e-12)
    for shift_ in range(6):
        assert np.dot(g[:g.size - 2 * shift_], g[2 * shift_:]) == pytest.approx(float(shift_ == 0), abs=1e-12)

# ----------------------------------------------------------------------------
# Color.


LUMA = np.array([1.0, 1.0, 1.0]) / math.sqrt(3)


def color_matrix(q, pipe):
    """Closed-form 4x4 color matrix for debug percentile q (brightness first)."""
    z = PHI_INV(q)
    m = np.eye(4)
    if pipe.brightness > 0:
        t = np.eye(4)
        t[:3, 3] = z * pipe.brightness_std
        m = t @ m
    if pipe.contrast > 0:
        m = np.diag([2 ** (z * pipe.contrast_std)] * 3 + [1]) @ m
    if pipe.lumaflip > 0:
        t = np.eye(4)
        t[:3, :3] -= 2 * np.outer(LUMA, LUMA) * math.floor(2 * q)
        m = t @ m
    if pipe.hue > 0:
        t = np.eye(4)
        t[:3, :3] = Rotation.from_rotvec(LUMA * (2 * q - 1) * math.pi * pipe.hue_max).as_matrix()
        m = t @ m
    if pipe.saturation > 0:
        s = 2 ** (z * pipe.saturation_std)
        t = np.eye(4)
        t[:3, :3] = np.outer(LUMA, LUMA) + (np.eye(3) - np.outer(LUMA, LUMA)) * s
        m = t @ m
    return m


@pytest.mark.parametrize('kwargs', [dict(brightness=1), dict(contrast=1), dict(lumaflip=1), dict(hue=1),
                                    dict(saturation=1), PRESETS['color'], dict(**PRESETS['color'], hue_max=0.3)])
@pytest.mark.parametrize('q', [0.3, 0.8])
def test_color_matches_closed_form(kwargs, q):
    torch.manual_seed(8)
    x = torch.rand(2, 3, 4, 5, dtype=torch.float64) * 2 - 1
    pipe = make_pipe(0.0, **kwargs)
    y = pipe(x, debug_percentile=q).numpy()
    m = color_matrix(q, pipe)
    xn = x.numpy()
    e = np.einsum('ij,njhw->nihw', m[:3, :3], xn) + m[:3, 3][None, :, None, None]
    np.testing.assert_allclose(y, e, rtol=0, atol=1e-6)  # parameters are drawn in float32


@pytest.mark.parametrize('q', [0.3, 0.8])
def test_color_on_gray_images(q):
    # Gray v is the RGB pixel (v, v, v): brightness adds b, contrast multiplies by c, the luma flip
    # negates, and hue / saturation leave gray alone.
    x = torch.rand(2, 1, 4, 5, dtype=torch.float64)
    pipe = make_pipe(0.0, **PRESETS['color'])
    y = pipe(x, debug_percentile=q).numpy()
    z = PHI_INV(q)
    b, c, i = z * pipe.brightness_std, 2 ** (z * pipe.contrast_std), math.floor(2 * q)
    np.testing.assert_allclose(y, (1 - 2 * i) * c * (x.numpy() + b), rtol=0, atol=1e-6)


def test_unfired_color_samples_are_untouched():
    torch.manual_seed(9)
    x = torch.randn(64, 3, 4, 4)
    y = make_pipe(0.5, **PRESETS['color'])(x)
    same = [torch.equal(a, b) for a, b in zip(x, y)]
    # P(no color transform fires) = 0.5^5 per sample.
    assert 0 < sum(same) < 64

# ----------------------------------------------------------------------------
# Image-space filtering and corruptions.


def test_filter_bank_splits_the_spectrum():
    bank = imgfilter_bank()
    assert bank.shape == (4, 43)
    impulse = np.zeros(43)
    impulse[21] = 1
    np.testing.assert_allclose(bank.sum(axis=0), impulse, atol=1e-15)
    np.testing.assert_allclose(bank, bank[:, ::-1], atol=1e-15)  # zero phase
    k = np.arange(43) - 21

    def response(omega):
        return bank @ np.cos(omega * k)
    np.testing.assert_allclose(response(0), [1, 0, 0, 0], atol=1e-12)
    np.testing.assert_allclose(response(math.pi), [0, 0, 0, 1], atol=1e-12)
    for band, omega in enumerate([math.pi / 16, 3 * math.pi / 16, 3 * math.pi / 8, 3 * math.pi / 4]):
        assert np.argmax(response(omega)) == band  # octave bands, lowest first
    h = sym2_taps()
    assert h.sum() == pytest.approx(math.sqrt(2)) and np.dot(h, h) == pytest.approx(1)


@pytest.mark.parametrize('bands', [[1, 1, 1, 1], [0, 0, 0, 1], [1, 0, 1, 0]])
def test_imgfilter_matches_scipy(bands):
    q = 0.8
    torch.manual_seed(10)
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    pipe = make_pipe(0.0, imgfilter=1, imgfilter_bands=bands, imgfilter_std=1)
    y = pipe(x, debug_percentile=q).numpy()
    expected_power = np.array([10, 1, 1, 1]) / 13
    g = np.ones(4)
    for i, strength in enumerate(bands):
        t = np.ones(4)
        if strength > 0:
            t[i] = 2 ** PHI_INV(q)
        g *= t / math.sqrt((expected_power * t ** 2).sum())
    kernel = g @ imgfilter_bank()
    e = scipy.ndimage.correlate1d(x.numpy(), kernel, axis=3, mode='mirror')
    e = scipy.ndimage.correlate1d(e, kernel, axis=2, mode='mirror')
    np.testing.assert_allclose(y, e, rtol=0, atol=1e-6)  # the bank is stored in float32


def test_noise_strength_at_percentile():
    q = 0.6
    x = torch.zeros(8, 3, 32, 32, dtype=torch.float64)
    torch.manual_seed(11)
    y = make_pipe(0.0, noise=1, noise_std=0.2)(x, debug_percentile=q)
    sigma = PHI_INV((1 + q) / 2) * 0.2   # q-quantile of |N(0, 0.2^2)|
    assert abs(y.std().item() / sigma - 1) < 0.03
    assert abs(y.mean().item()) < 4 * sigma / math.sqrt(y.numel())


@pytest.mark.parametrize('q, size', [(0.3, 0.5), (0.7, 0.25)])
def test_cutout_region(q, size):
    x = torch.randn(2, 3, 16, 12)
    y = make_pipe(0.0, cutout=1, cutout_size=size)(x, debug_percentile=q)
    u = (np.arange(12) + 0.5) / 12
    v = (np.arange(16) + 0.5) / 16
    cut = (np.abs(v[:, None] - q) < size / 2) & (np.abs(u[None, :] - q) < size / 2)
    assert cut.sum() > 0
    e = x.numpy() * ~cut
    assert np.array_equal(y.numpy(), e)

# ----------------------------------------------------------------------------
# Gradients.


def seeded(pipe, seed):
    def fn(x):
        torch.manual_seed(seed)
        return pipe(x)
    return fn


def spy_resample(pipe, monkeypatch):
    """Record the batch sizes that go through the resampling pass."""
    sizes = []
    original = pipe.resample

    def resample(images, *args, **kwargs):
        sizes.append(images.shape[0])
        return original(images, *args, **kwargs)
    monkeypatch.setattr(pipe, 'resample', resample)
    return sizes


# (preset, p, batch): 'bg' at a low p resamples some samples and blits the others, which exercises
# the gather / index_copy path; 'bgcfnc' at a high p exercises every stage.
GRAD_CASES = [('bg', 0.3, 4), ('bgcfnc', 0.8, 2)]


@pytest.mark.parametrize('preset, p, batch', GRAD_CASES)
def test_gradcheck_through_the_pipe(preset, p, batch, monkeypatch):
    pipe = make_pipe(p, **PRESETS[preset])
    sizes = spy_resample(pipe, monkeypatch)
    x = torch.randn(batch, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(seeded(pipe, 12), (x,), eps=1e-6, atol=1e-6, fast_mode=True)
    assert sizes and (preset != 'bg' or 0 < sizes[0] < batch)
    # R1 differentiates the input gradient again: check the derivative of the backward pass.
    x1 = torch.randn(batch, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(seeded(pipe, 12), (x1,), eps=1e-6, atol=1e-6, fast_mode=True)


def r1_penalty(pipe, seed, x, weight, bias):
    """||d D(augment(x)) / dx||^2 with a small nonlinear discriminator D."""
    torch.manual_seed(seed)
    y = pipe(x)
    d = torch.nn.functional.conv2d(y, weight, bias, padding=1)
    logits = torch.nn.functional.softplus(d).mean(dim=(1, 2, 3)) + (d.tanh() ** 2).sum(dim=(1, 2, 3))
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    return grad.square().sum()


@pytest.mark.parametrize('preset, p, batch', GRAD_CASES)
def test_r1_through_augmentation_matches_finite_differences(preset, p, batch, monkeypatch):
    pipe = make_pipe(p, **PRESETS[preset])
    sizes = spy_resample(pipe, monkeypatch)
    gen = torch.Generator().manual_seed(14)
    x0 = torch.randn(batch, 3, 8, 8, dtype=torch.float64, generator=gen)
    weight = torch.randn(2, 3, 3, 3, dtype=torch.float64, generator=gen) * 0.3
    bias = torch.randn(2, dtype=torch.float64, generator=gen) * 0.1
    a = torch.tensor(1.3, dtype=torch.float64)

    def penalty(weight, a):
        x = x0 * a
        if not x.requires_grad:
            x.requires_grad_(True)
        return r1_penalty(pipe, 12, x, weight, bias)

    # Parameters behind the pipe (the discriminator's weights): what the R1 step optimises.
    w = weight.clone().requires_grad_(True)
    (g_w,) = torch.autograd.grad(penalty(w, a), w)
    assert sizes and (preset != 'bg' or 0 < sizes[0] < batch)
    eps = 1e-6
    for idx in [(0, 0, 0, 0), (1, 2, 1, 1), (0, 1, 2, 0)]:
        wp, wm = weight.clone(), weight.clone()
        wp[idx] += eps
        wm[idx] -= eps
        fd = (penalty(wp, a).item() - penalty(wm, a).item()) / (2 * eps)
        assert g_w[idx].item() == pytest.approx(fd, rel=1e-5, abs=1e-8)

    # A parameter in front of the pipe (R1's gradient is still taken w.r.t. the pipe's input): this
    # differentiates the pipe's backward pass w.r.t. its input.
    a_ = a.clone().requires_grad_(True)
    (g_a,) = torch.autograd.grad(penalty(weight, a_), a_)
    fd = (penalty(weight, a + eps).item() - penalty(weight, a - eps).item()) / (2 * eps)
    assert g_a.item() == pytest.approx(fd, rel=1e-5, abs=1e-8)

# ----------------------------------------------------------------------------
# CUDA.


@pytest.mark.cuda
def test_cuda_matches_cpu_in_debug_mode_and_r1_works():
    pipe = make_pipe(0.0, **PRESETS['bgcf'], rotate_max=0.3)
    x = torch.randn(4, 3, 32, 32)
    a = pipe(x, debug_percentile=0.7)
    b = pipe.cuda()(x.cuda(), debug_percentile=0.7).cpu()
    assert (a - b).abs().max() < 1e-4
    pipe.p.fill_(0.8)
    xc = x.cuda().requires_grad_(True)
    y = pipe(xc)
    (g,) = torch.autograd.grad((y.tanh() ** 2).sum(), xc, create_graph=True)
    g.square().sum().backward()
    assert torch.isfinite(xc.grad).all()
