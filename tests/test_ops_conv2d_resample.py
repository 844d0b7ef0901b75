"""conv2d_resample against its definition computed directly in numpy (zero insertion, padding, filter
taps and convolution taps as explicit loops), for every fast path; gradients; errors."""

import warnings

import numpy as np
import pytest
import torch

from torch_utils import custom_ops
from torch_utils.ops import conv2d_gradfix, conv2d_resample as R, upfirdn2d as U


pytestmark = pytest.mark.usefixtures('one_thread')


def upfirdn_np(x, f, up=1, down=1, pad=(0, 0, 0, 0), flip=False, gain=1.0):
    """Zero insertion, pad/crop, valid convolution with f (1-D = outer product), keep every down-th."""
    n, c, h, w = x.shape
    f = np.ones((1, 1)) if f is None else np.asarray(f, np.float64)
    f = np.outer(f, f) if f.ndim == 1 else f
    z = np.zeros((n, c, h * up, w * up))
    z[:, :, ::up, ::up] = x
    px0, px1, py0, py1 = pad
    z = np.pad(z, ((0, 0), (0, 0), (max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0))))
    z = z[:, :, max(-py0, 0):z.shape[2] - max(-py1, 0), max(-px0, 0):z.shape[3] - max(-px1, 0)]
    k = f if flip else f[::-1, ::-1]
    oh, ow = z.shape[2] - k.shape[0] + 1, z.shape[3] - k.shape[1] + 1
    out = np.zeros((n, c, oh, ow))
    for i in range(k.shape[0]):
        for j in range(k.shape[1]):
            out += z[:, :, i:i + oh, j:j + ow] * k[i, j]
    return out[:, :, ::down, ::down] * gain


def conv_np(z, w, groups, flip_weight):
    """Valid grouped correlation (convolution when flip_weight=False), one kernel tap at a time."""
    w = w if flip_weight else w[:, :, ::-1, ::-1]
    n, _, h, wd = z.shape
    o, cg, kh, kw = w.shape
    oh, ow = h - kh + 1, wd - kw + 1
    og = o // groups
    out = np.zeros((n, o, oh, ow))
    for g in range(groups):
        zg, wg = z[:, g * cg:(g + 1) * cg], w[g * og:(g + 1) * og]
        for i in range(kh):
            for j in range(kw):
                out[:, g * og:(g + 1) * og] += np.einsum('nchw,oc->nohw', zg[:, :, i:i + oh, j:j + ow], wg[:, :, i, j])
    return out


def conv2d_resample_np(x, w, f, up, down, padding, groups, flip_weight, flip_filter):
    """The documented definition: upfirdn (up, with the centring padding) -> conv -> upfirdn (down)."""
    fw, fh = (1, 1) if f is None else (f.shape[-1], f.shape[0])
    px0, px1, py0, py1 = padding
    if up > 1:
        px0, px1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2
        py0, py1 = py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
    if down > 1:
        px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
        py0, py1 = py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
    z = upfirdn_np(x, f if up > 1 else None, up=up, pad=(px0, px1, py0, py1), flip=flip_filter, gain=up * up)
    z = conv_np(z, w, groups, flip_weight)
    if down > 1:
        z = upfirdn_np(z, f, down=down, flip=flip_filter)
    return z


def _check(rng, x_shape, w_shape, f, up, down, padding, groups, flip_weight, flip_filter, tol=1e-10):
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    fn = None if f is None else f.double().numpy()
    pad4 = padding if isinstance(padding, list) and len(padding) == 4 else [padding] * 4
    ref = conv2d_resample_np(x, w, fn, up, down, pad4, groups, flip_weight, flip_filter)
    y = R.conv2d_resample(torch.tensor(x), torch.tensor(w), f, up=up, down=down, padding=padding, groups=groups,
                          flip_weight=flip_weight, flip_filter=flip_filter)
    assert tuple(y.shape) == ref.shape
    assert np.abs(y.numpy() - ref).max() < tol
    return y


FILTER = U.setup_filter([1, 3, 3, 1])


@pytest.mark.parametrize('name, kw', [
    # The calls StyleGAN2's layers make (up: flip_weight=False; down/none: flip_weight=True).
    ('synthesis up 3x3', dict(w=(6, 4, 3, 3), up=2, padding=1, flip_weight=False)),
    ('synthesis 3x3', dict(w=(6, 4, 3, 3), padding=1)),
    ('modulated grouped up', dict(x=(1, 8, 5, 5), w=(12, 4, 3, 3), groups=2, up=2, padding=1, flip_weight=False)),
    ('modulated grouped', dict(x=(1, 8, 5, 5), w=(12, 4, 3, 3), groups=2, padding=1)),
    ('torgb 1x1', dict(w=(3, 4, 1, 1))),
    ('discriminator down 3x3', dict(w=(6, 4, 3, 3), down=2, padding=1)),
    ('discriminator skip 1x1 down', dict(w=(6, 4, 1, 1), down=2)),
    ('1x1 up', dict(w=(6, 4, 1, 1), up=2)),
    ('up and down', dict(w=(6, 4, 3, 3), up=2, down=2, padding=1)),
    ('asymmetric padding', dict(w=(6, 4, 3, 2), padding=[2, 0, -1, 1])),
    ('up, no filter', dict(w=(6, 4, 3, 3), up=2, padding=1, f=None)),
    ('up 3, flipped filter', dict(w=(6, 4, 2, 3), up=3, padding=[1, 0, 2, 1], flip_filter=True)),
    ('down 3, separable filter', dict(w=(6, 4, 3, 3), down=3, padding=2, f=U.setup_filter([1, 2, 3, 4, 4, 3, 2, 1]))),
])
def test_paths_match_definition(name, kw):
    rng = np.random.default_rng(0)
    _check(rng, kw.get('x', (2, 4, 6, 7)), kw['w'], kw.get('f', FILTER), kw.get('up', 1), kw.get('down', 1),
           kw.get('padding', 0), kw.get('groups', 1), kw.get('flip_weight', True), kw.get('flip_filter', False))


def test_random_configurations_match_definition():
    rng = np.random.default_rng(1)
    checked = 0
    while checked < 60:
        up, down, groups = int(rng.choice([1, 2, 3])), int(rng.choice([1, 2, 3])), int(rng.choice([1, 2]))
        kh, kw = int(rng.choice([1, 2, 3])), int(rng.choice([1, 3]))
        kind = int(rng.integers(0, 3))
        f = None if kind == 0 else torch.randn([int(rng.integers(1, 5))] * kind, dtype=torch.float32)
        padding = [int(v) for v in rng.integers(-1, 3, size=4)] if rng.random() < 0.5 else int(rng.integers(0, 2))
        h, w = int(rng.integers(3, 8)), int(rng.integers(3, 8))
        pad4 = padding if isinstance(padding, list) else [padding] * 4
        fw = 1 if f is None else f.shape[-1]
        # Skip configurations whose output would be empty.
        size = min(h, w) * up + min(pad4) * 2 + 2 * ((fw + up - 1) // 2 if up > 1 else 0) - kh - kw - 2 * fw
        if size < 2:
            continue
        _check(rng, (2, 2 * groups, h, w), (3 * groups, 2, kh, kw), f, up, down, padding, groups,
               bool(rng.integers(0, 2)), bool(rng.integers(0, 2)))
        checked += 1


@pytest.mark.parametrize('up, down, k', [(2, 1, 3), (1, 2, 3), (1, 2, 1), (2, 1, 1)])
def test_gradcheck_and_gradgradcheck(up, down, k):
    gen = torch.Generator().manual_seed(2)
    x = torch.randn([1, 2, 3, 3], dtype=torch.float64, generator=gen, requires_grad=True)
    w = torch.randn([2, 2, k, k], dtype=torch.float64, generator=gen, requires_grad=True)

    def fn(x, w):
        return R.conv2d_resample(x, w, FILTER, up=up, down=down, padding=k // 2, flip_weight=(up == 1))
    assert torch.autograd.gradcheck(fn, (x, w))
    assert torch.autograd.gradgradcheck(fn, (x, w), fast_mode=True)


def test_no_weight_gradients_applies_to_resampling_convs():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn([2, 4, 6, 6], generator=gen, requires_grad=True)
    w = torch.randn([5, 4, 3, 3], generator=gen, requires_grad=True)
    for kw in (dict(up=2, flip_weight=False), dict(down=2)):
        y = R.conv2d_resample(x, w, FILTER, padding=1, **kw)
        with conv2d_gradfix.no_weight_gradients():
            y.square().sum().backward()
        assert w.grad is None and x.grad is not None
        x.grad = None


def test_bad_arguments():
    x = torch.zeros([1, 4, 6, 6])
    with pytest.raises(ValueError, match='x has 4 channels'):
        R.conv2d_resample(x, torch.zeros([5, 3, 3, 3]))
    with pytest.raises(ValueError, match='w must be a 4-D'):
        R.conv2d_resample(x, torch.zeros([5, 4, 3]))
    with pytest.raises(ValueError, match='up must be an int >= 1'):
        R.conv2d_resample(x, torch.zeros([5, 4, 3, 3]), FILTER, up=0)
    with pytest.raises(ValueError, match='dtype'):
        R.conv2d_resample(x, torch.zeros([5, 4, 3, 3], dtype=torch.float64))
    with pytest.raises(ValueError, match='groups'):
        R.conv2d_resample(x, torch.zeros([5, 2, 3, 3]), groups=2)


def test_cpu_tensors_use_the_reference_without_a_warning():
    # conv2d_resample requests no implementation, so running on a CPU is no reason to warn.
    U._plugin.reset()
    x = torch.randn([1, 2, 4, 4])
    with warnings.catch_warnings():
        warnings.simplefilter('error', custom_ops.CustomOpFallbackWarning)
        for kw in (dict(up=2), dict(down=2), dict(up=2, down=2)):
            R.conv2d_resample(x, torch.randn([3, 2, 3, 3]), FILTER, padding=1, **kw)
    U._plugin.reset()
