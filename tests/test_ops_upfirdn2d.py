"""upfirdn2d and its wrappers against a direct numpy implementation (explicit zero insertion, padding
and a loop over filter taps), gradients in float64, setup_filter, errors and the fallback paths."""

import warnings

import numpy as np
import pytest
import scipy.signal
import torch

from torch_utils import custom_ops
from torch_utils.ops import upfirdn2d as U


pytestmark = pytest.mark.usefixtures('one_thread')


def upfirdn2d_np(x, f, up=(1, 1), down=(1, 1), pad=(0, 0, 0, 0), flip=False, gain=1.0):
    """The definition, step by step: zero insertion, pad/crop, valid 2-D convolution, subsampling."""
    x = np.asarray(x, np.float64)
    n, c, h, w = x.shape
    f = np.ones((1, 1)) if f is None else np.asarray(f, np.float64)
    if f.ndim == 1:
        f = np.outer(f, f)
    ux, uy = up
    dx, dy = down
    px0, px1, py0, py1 = pad
    z = np.zeros((n, c, h * uy, w * ux))
    z[:, :, ::uy, ::ux] = x
    z = np.pad(z, ((0, 0), (0, 0), (max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0))))
    z = z[:, :, max(-py0, 0):z.shape[2] - max(-py1, 0), max(-px0, 0):z.shape[3] - max(-px1, 0)]
    fh, fw = f.shape
    k = f if flip else f[::-1, ::-1]   # convolution = correlation with the flipped filter
    oh, ow = z.shape[2] - fh + 1, z.shape[3] - fw + 1
    out = np.zeros((n, c, oh, ow))
    for i in range(fh):
        for j in range(fw):
            out += z[:, :, i:i + oh, j:j + ow] * k[i, j]
    return out[:, :, ::dy, ::dx] * gain


def _random_case(rng):
    h, w = int(rng.integers(1, 7)), int(rng.integers(1, 7))
    up = [int(rng.integers(1, 4)), int(rng.integers(1, 4))]
    down = [int(rng.integers(1, 4)), int(rng.integers(1, 4))]
    kind = int(rng.integers(0, 4))
    if kind == 0:
        f = None
    elif kind == 1:
        f = rng.standard_normal(int(rng.integers(1, 18)))       # both the outer-product and the 2-pass path
    else:
        f = rng.standard_normal((int(rng.integers(1, 5)), int(rng.integers(1, 5))))
    pad = [int(v) for v in rng.integers(-4, 5, size=4)]
    return h, w, up, down, f, pad, bool(rng.integers(0, 2)), float(rng.uniform(0.5, 2.0))


def _fits(h, w, up, down, f, pad):
    fw, fh = (1, 1) if f is None else (f.shape[-1], f.shape[0])
    return h * up[1] + pad[2] + pad[3] >= fh and w * up[0] + pad[0] + pad[1] >= fw


def test_numpy_oracle_matches_scipy_upfirdn():
    # scipy.signal.upfirdn computes the full 1-D convolution; ours with padding fw - 1 on each side is the same.
    rng = np.random.default_rng(5)
    for up, down, taps in [(1, 1, 4), (2, 1, 4), (1, 2, 5), (3, 2, 7), (2, 3, 12)]:
        h = rng.standard_normal(taps)
        x = rng.standard_normal((1, 1, 1, 9))
        ours = upfirdn2d_np(x, np.outer([1.0], h), (up, 1), (down, 1), (taps - 1, taps - 1, 0, 0))[0, 0, 0]
        theirs = scipy.signal.upfirdn(h, x[0, 0, 0], up=up, down=down)
        m = min(len(ours), len(theirs))
        assert np.abs(ours[:m] - theirs[:m]).max() < 1e-12
        assert np.abs(ours[m:]).max(initial=0) < 1e-12 and np.abs(theirs[m:]).max(initial=0) < 1e-12


def test_random_configurations_match_numpy_float64():
    rng = np.random.default_rng(0)
    checked = 0
    while checked < 150:
        h, w, up, down, f, pad, flip, gain = _random_case(rng)
        if not _fits(h, w, up, down, f, pad):
            continue
        x = rng.standard_normal((2, 3, h, w))
        ft = None if f is None else torch.tensor(f, dtype=torch.float32)
        ref = upfirdn2d_np(x, None if ft is None else ft.double().numpy(), up, down, pad, flip, gain)
        y = U.upfirdn2d(torch.tensor(x), ft, up=up, down=down, padding=pad, flip_filter=flip, gain=gain, impl='ref')
        assert tuple(y.shape) == ref.shape, (h, w, up, down, pad)
        assert np.abs(y.numpy() - ref).max() < 1e-10, (h, w, up, down, pad, flip, gain)
        checked += 1


def test_channels_last_and_float32():
    rng = np.random.default_rng(1)
    f = U.setup_filter([1, 3, 3, 1])
    x = rng.standard_normal((2, 5, 7, 6)).astype(np.float32)
    xt = torch.tensor(x).contiguous(memory_format=torch.channels_last)
    for up, down, pad in [(2, 1, [2, 1, 2, 1]), (1, 2, [1, 1, 1, 1]), (1, 1, [1, 2, 2, 1])]:
        y = U.upfirdn2d(xt, f, up=up, down=down, padding=pad, impl='ref')
        ref = upfirdn2d_np(x, f.numpy(), (up, up), (down, down), pad)
        assert y.dtype == torch.float32
        np.testing.assert_allclose(y.numpy(), ref, atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize('taps', [[1, 3, 3, 1], [1, 2, 1], [1, 3, 3, 1, 1, 3, 3, 1, 2, 5, 1, 4],
                                  list(range(1, 17))])
def test_wrappers_stylegan_shapes(taps):
    rng = np.random.default_rng(2)
    f = U.setup_filter(taps)
    fn = f.double().numpy()
    fw = f.shape[-1]
    x = rng.standard_normal((2, 3, 8, 6))
    xt = torch.tensor(x)

    y = U.upsample2d(xt, f, impl='ref')
    assert tuple(y.shape) == (2, 3, 16, 12)
    ref = upfirdn2d_np(x, fn, (2, 2), (1, 1), ((fw + 1) // 2, (fw - 2) // 2) * 2, gain=4)
    assert np.abs(y.numpy() - ref).max() < 1e-10

    y = U.downsample2d(xt, f, impl='ref')
    assert tuple(y.shape) == (2, 3, 4, 3)
    ref = upfirdn2d_np(x, fn, (1, 1), (2, 2), ((fw - 1) // 2, (fw - 2) // 2) * 2)
    assert np.abs(y.numpy() - ref).max() < 1e-10

    y = U.filter2d(xt, f, padding=[1, 0, 0, 2], impl='ref')
    assert tuple(y.shape) == (2, 3, 10, 7)
    ref = upfirdn2d_np(x, fn, pad=(1 + fw // 2, (fw - 1) // 2, fw // 2, 2 + (fw - 1) // 2))
    assert np.abs(y.numpy() - ref).max() < 1e-10

    y = U.upsample2d(xt, f, up=[2, 1], padding=[0, 1], flip_filter=True, gain=0.5, impl='ref')
    ref = upfirdn2d_np(x, fn, (2, 1), (1, 1), ((fw + 1) // 2, (fw - 2) // 2, 1 + fw // 2, 1 + (fw - 1) // 2),
                       flip=True, gain=1.0)   # gain 0.5 times up_x * up_y = 2
    assert tuple(y.shape) == ref.shape
    assert np.abs(y.numpy() - ref).max() < 1e-10


def test_interpolation_filters_preserve_constants():
    # A normalised filter keeps a constant image constant away from the borders, for every resampling.
    f = U.setup_filter([1, 3, 3, 1])
    x = torch.full([1, 2, 12, 12], 0.75, dtype=torch.float64)
    for y, border in [(U.upsample2d(x, f, impl='ref'), 2), (U.downsample2d(x, f, impl='ref'), 1),
                      (U.filter2d(x, f, impl='ref'), 2)]:
        inner = y[:, :, border:-border, border:-border]
        assert inner.numel() > 0 and torch.allclose(inner, torch.full_like(inner, 0.75))
        assert not torch.allclose(y, torch.full_like(y, 0.75))   # the zero border does show at the edges


@pytest.mark.parametrize('case', [
    dict(up=2, down=1, padding=[2, 1, 2, 1], f='4'),
    dict(up=1, down=2, padding=[1, 1, 1, 1], f='4'),
    dict(up=[3, 1], down=[1, 2], padding=[0, -1, 2, 1], f='2d'),
    dict(up=2, down=3, padding=[1, 3, -1, 2], f='8'),
    dict(up=[1, 2], down=[2, 1], padding=[7, 8, 6, 7], f='16'),
    dict(up=1, down=1, padding=[-1, 2, 0, 1], f='none'),
])
def test_gradcheck_and_gradgradcheck(case):
    gen = torch.Generator().manual_seed(3)
    f = {'4': U.setup_filter([1, 3, 3, 1]), '2d': torch.randn([3, 2], generator=gen),
         '8': U.setup_filter([1, 2, 3, 4, 4, 3, 2, 1]), '16': U.setup_filter(np.hanning(18)[1:-1]),
         'none': None}[case['f']]
    assert case['f'] != '16' or f.numel() >= U.SEPARABLE_MIN_TAPS   # the two-pass path
    x = torch.randn([1, 1, 4, 3], dtype=torch.float64, generator=gen, requires_grad=True)

    def fn(x):
        return U.upfirdn2d(x, f, up=case['up'], down=case['down'], padding=case['padding'], flip_filter=True,
                           gain=1.5, impl='ref')
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


def test_third_order_gradients():
    # The op is linear, so its gradient of any order is again an upfirdn2d; check the third order numerically.
    f = U.setup_filter([1, 3, 3, 1])
    x = torch.randn([1, 1, 4, 4], dtype=torch.float64, requires_grad=True)

    def second(x):
        y = U.upsample2d(x, f, impl='ref')
        g, = torch.autograd.grad((y ** 3).sum(), x, create_graph=True)
        return g
    assert torch.autograd.gradgradcheck(second, (x,))


def test_setup_filter_under_meta_default_device():
    # Checkpoint validation builds networks under torch.device('meta'); the taps must still be numbers
    # (normalising a meta tensor fails on .item()), so the meta build works instead of falling back to the CPU.
    with torch.device('meta'):
        f = U.setup_filter([1, 3, 3, 1])
        conv = torch.nn.Conv2d(2, 2, 3)
    assert conv.weight.is_meta and f.device.type == 'cpu'
    np.testing.assert_allclose(f.numpy(), np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64, rtol=1e-6)


def test_setup_filter():
    f = U.setup_filter([1, 3, 3, 1])
    assert f.shape == (4, 4) and f.dtype == torch.float32
    np.testing.assert_allclose(f.numpy(), np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64, rtol=1e-6)
    taps = [1, 2, 3, 4, 5, 6, 7, 8]
    f = U.setup_filter(taps)
    assert f.shape == (8,)
    np.testing.assert_allclose(f.numpy(), np.array(taps) / 36, rtol=1e-6)
    assert U.setup_filter(taps, separable=False).shape == (8, 8)
    assert U.setup_filter([1, 2, 3], separable=True).shape == (3,)
    f = U.setup_filter([[1, 2], [3, 4]], normalize=False, flip_filter=True, gain=4)
    np.testing.assert_allclose(f.numpy(), np.array([[4, 3], [2, 1]]) * 4.0)
    f = U.setup_filter([1, 3], normalize=False, gain=4, separable=True)
    np.testing.assert_allclose(f.numpy(), [2, 6])          # sqrt(gain) per axis
    assert U.setup_filter(None).shape == (1, 1) and float(U.setup_filter(None)) == 1
    assert U.setup_filter(2.0).shape == (1, 1)
    src = torch.tensor([1.0, 3.0, 3.0, 1.0])
    U.setup_filter(src)
    assert src.tolist() == [1.0, 3.0, 3.0, 1.0]           # the caller's tensor is not normalised in place
    with pytest.raises(ValueError, match='sum to zero'):
        U.setup_filter([1, -1])
    with pytest.raises(ValueError, match='1-D or 2-D'):
        U.setup_filter(np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match='empty'):
        U.setup_filter([])
    with pytest.raises(ValueError, match='separable=True'):
        U.setup_filter(np.ones((2, 2)), separable=True)


def test_bad_arguments():
    x = torch.zeros([1, 1, 4, 4])
    f = U.setup_filter([1, 3, 3, 1])
    with pytest.raises(ValueError, match='4-D'):
        U.upfirdn2d(torch.zeros([4, 4]), f)
    with pytest.raises(ValueError, match='filter f are not supported'):
        U.upfirdn2d(x, f.clone().requires_grad_(True), impl='ref')
    with pytest.raises(ValueError, match='padding'):
        U.upfirdn2d(x, f, padding=[1, 2, 3], impl='ref')
    with pytest.raises(ValueError, match='up factors must be >= 1'):
        U.upfirdn2d(x, f, up=0, impl='ref')
    with pytest.raises(ValueError, match='down must be'):
        U.upfirdn2d(x, f, down=1.5, impl='ref')
    with pytest.raises(ValueError, match='empty output height'):
        U.upfirdn2d(torch.zeros([1, 1, 2, 8]), f, impl='ref')
    with pytest.raises(TypeError, match='setup_filter'):
        U.upfirdn2d(x, [1, 3, 3, 1], impl='ref')
    with pytest.raises(ValueError, match="impl must be 'ref' or 'cuda'"):
        U.upfirdn2d(x, f, impl='triton')


def test_cuda_request_on_cpu_tensor_uses_reference_silently():
    U._plugin.reset()
    x = torch.randn([1, 2, 5, 5])
    f = U.setup_filter([1, 3, 3, 1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        a = U.upsample2d(x, f, impl='cuda')
        b = U.upsample2d(x, f, impl='cuda')
    assert not [w for w in caught if issubclass(w.category, custom_ops.CustomOpFallbackWarning)]
    assert torch.equal(a, U.upsample2d(x, f, impl='ref')) and torch.equal(a, b)
    U._plugin.reset()


def test_plugin_contract_is_used_when_available(monkeypatch):
    # A stand-in extension that implements the documented contract with the reference kernel:
    # 2-D float32 filters only, separable filters as two calls.
    calls = []

    class FakePlugin:
        @staticmethod
        def upfirdn2d(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter, gain):
            assert f.ndim == 2 and f.dtype == torch.float32
            calls.append((tuple(f.shape), upx, upy, downx, downy))
            return U._ref_kernel(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter, gain)

    monkeypatch.setattr(U._plugin, 'select', lambda impl, x: FakePlugin if impl == 'cuda' else None)
    f = U.setup_filter([1, 3, 3, 1], separable=True)
    x = torch.randn([1, 1, 3, 4], dtype=torch.float64, requires_grad=True)
    y = U.upsample2d(x, f, impl='cuda')
    assert calls == [((1, 4), 2, 1, 1, 1), ((4, 1), 1, 2, 1, 1)]
    ref = upfirdn2d_np(x.detach().numpy(), f.double().numpy(), (2, 2), (1, 1), (2, 1, 2, 1), gain=4)
    assert np.abs(y.detach().numpy() - ref).max() < 1e-10
    assert torch.autograd.gradgradcheck(lambda x: U.upsample2d(x, f, impl='cuda'), (x,), fast_mode=True)
