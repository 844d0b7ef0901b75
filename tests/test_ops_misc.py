"""fma, conv2d_gradfix (including no_weight_gradients), grid_sample_gradfix and the shared CUDA-plugin
dispatch of torch_utils.ops."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from torch_utils import custom_ops
from torch_utils.ops import OpPlugin, check_impl, conv2d_gradfix, fma, grid_sample_gradfix


pytestmark = pytest.mark.usefixtures('one_thread')

# ----------------------------------------------------------------------------
# fma


@pytest.mark.parametrize('shapes', [
    ((2, 3, 4), (2, 3, 4), (2, 3, 4)),
    ((2, 3, 4), (1, 3, 1), (4,)),
    ((3, 1), (1, 4), (1,)),
    ((5,), (2, 1, 5), (2, 3, 1)),
])
def test_fma_values_and_broadcast_gradients(shapes):
    gen = torch.Generator().manual_seed(0)
    a, b, c = (torch.randn(s, dtype=torch.float64, generator=gen, requires_grad=True) for s in shapes)
    y = fma.fma(a, b, c)
    ref = a * b + c
    assert y.shape == ref.shape and torch.allclose(y, ref)
    r = torch.randn(y.shape, dtype=torch.float64, generator=gen)
    got = torch.autograd.grad((y * r).sum(), [a, b, c])
    want = torch.autograd.grad((ref * r).sum(), [a, b, c])
    for g, w, t in zip(got, want, (a, b, c)):
        assert g.shape == t.shape and torch.allclose(g, w)
    assert torch.autograd.gradgradcheck(fma.fma, (a, b, c))


def test_fma_rejects_non_tensors():
    with pytest.raises(TypeError, match='fma: b must be a torch.Tensor'):
        fma.fma(torch.ones(2), 2.0, torch.ones(2))

# ----------------------------------------------------------------------------
# conv2d_gradfix


def _conv_inputs(seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn([2, 4, 5, 5], dtype=torch.float64, generator=gen, requires_grad=True)
    w = torch.randn([6, 2, 3, 3], dtype=torch.float64, generator=gen, requires_grad=True)
    b = torch.randn([6], dtype=torch.float64, generator=gen, requires_grad=True)
    return x, w, b


def test_conv_wrappers_match_torch_and_support_double_backward():
    x, w, b = _conv_inputs()
    y = conv2d_gradfix.conv2d(x, w, b, stride=2, padding=1, groups=2)
    assert torch.equal(y, F.conv2d(x, w, b, stride=2, padding=1, groups=2))
    wt = w.detach().reshape(2, 3, 2, 3, 3).transpose(1, 2).reshape(4, 3, 3, 3).requires_grad_(True)
    yt = conv2d_gradfix.conv_transpose2d(x, wt, b, stride=2, padding=1, output_padding=1, groups=2)
    assert torch.equal(yt, F.conv_transpose2d(x, wt, b, stride=2, padding=1, output_padding=1, groups=2))
    small = x.detach()[:1, :, :3, :3].clone().requires_grad_(True)
    assert torch.autograd.gradgradcheck(lambda x, w: conv2d_gradfix.conv2d(x, w, padding=1, groups=2),
                                        (small, w), fast_mode=True)
    assert torch.autograd.gradgradcheck(lambda x, w: conv2d_gradfix.conv_transpose2d(x, w, stride=2, groups=2),
                                        (small, wt), fast_mode=True)


def test_no_weight_gradients_drops_only_the_weight_gradient():
    for op, w_shape in ((conv2d_gradfix.conv2d, [6, 4, 3, 3]), (conv2d_gradfix.conv_transpose2d, [4, 6, 3, 3])):
        x, _, b = _conv_inputs(1)
        w = torch.randn(w_shape, dtype=torch.float64, requires_grad=True)
        y = op(x, w, b, padding=1)
        with conv2d_gradfix.no_weight_gradients():
            assert conv2d_gradfix.weight_gradients_disabled()
            y.square().sum().backward()
        assert not conv2d_gradfix.weight_gradients_disabled()
        assert w.grad is None
        gx, gb = x.grad.clone(), b.grad.clone()
        x.grad = b.grad = None
        op(x, w, b, padding=1).square().sum().backward()
        assert torch.allclose(x.grad, gx) and torch.allclose(b.grad, gb) and w.grad is not None


def test_path_length_pattern_gets_weight_gradient_from_the_penalty():
    # StyleGAN2's regulariser: input gradients with create_graph inside the context, the penalty's
    # backward outside it must still reach the weights, exactly as with plain F.conv2d.
    def run(conv):
        x, w, _ = _conv_inputs(2)                                  # the weight is shared by two layers
        h = F.leaky_relu(conv(x, w, padding=1, groups=2), 0.2)     # 4 -> 6 channels
        y = conv(h, w, padding=1, groups=3)                       # 6 -> 6 channels
        with conv2d_gradfix.no_weight_gradients():
            g, = torch.autograd.grad(y.square().sum(), x, create_graph=True)
        g.square().sum().backward()
        return x.grad, w.grad
    gx, gw = run(conv2d_gradfix.conv2d)
    rx, rw = run(F.conv2d)
    assert gw is not None and torch.allclose(gw, rw) and torch.allclose(gx, rx)


def test_no_weight_gradients_nests_restores_on_error_and_can_be_a_no_op():
    assert not conv2d_gradfix.weight_gradients_disabled()
    with conv2d_gradfix.no_weight_gradients():
        with conv2d_gradfix.no_weight_gradients():
            assert conv2d_gradfix.weight_gradients_disabled()
        assert conv2d_gradfix.weight_gradients_disabled()   # the outer context is still active
    assert not conv2d_gradfix.weight_gradients_disabled()
    with pytest.raises(KeyError):
        with conv2d_gradfix.no_weight_gradients():
            raise KeyError('boom')
    assert not conv2d_gradfix.weight_gradients_disabled()
    with conv2d_gradfix.no_weight_gradients(disable=False):
        assert not conv2d_gradfix.weight_gradients_disabled()
        x, w, _ = _conv_inputs(3)
        conv2d_gradfix.conv2d(x, w, groups=2).sum().backward()
        assert w.grad is not None

# ----------------------------------------------------------------------------
# grid_sample_gradfix


def grid_sample_np(img, grid):
    """Bilinear sampling, zero padding, align_corners=False, one output pixel at a time."""
    n, c, h, w = img.shape
    _, oh, ow, _ = grid.shape
    out = np.zeros((n, c, oh, ow))
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                x = ((grid[b, i, j, 0] + 1) * w - 1) / 2      # pixel centres at -1 + (2k + 1) / w
                y = ((grid[b, i, j, 1] + 1) * h - 1) / 2
                x0, y0 = int(np.floor(x)), int(np.floor(y))
                for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
                    for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
                        if 0 <= yy < h and 0 <= xx < w:
                            out[b, :, i, j] += wy * wx * img[b, :, yy, xx]
    return out


def _grid_inputs(seed=0):
    gen = torch.Generator().manual_seed(seed)
    img = torch.randn([2, 3, 4, 5], dtype=torch.float64, generator=gen, requires_grad=True)
    grid = (torch.rand([2, 3, 4, 2], dtype=torch.float64, generator=gen) * 2.6 - 1.3).requires_grad_(True)
    return img, grid


def test_grid_sample_values():
    img, grid = _grid_inputs()
    ref = grid_sample_np(img.detach().numpy(), grid.detach().numpy())
    for y in (grid_sample_gradfix.grid_sample(img, grid), grid_sample_gradfix._GridSample2dForward.apply(img, grid)):
        assert np.abs(y.detach().numpy() - ref).max() < 1e-12


def test_grid_sample_double_backward():
    img, grid = _grid_inputs(1)
    const_grid = grid.detach()
    # Both the dispatcher and the fallback: second order w.r.t. the image with a constant grid (ADA + R1).
    for fn in (grid_sample_gradfix.grid_sample, grid_sample_gradfix._GridSample2dForward.apply):
        assert torch.autograd.gradcheck(lambda x: fn(x, const_grid), (img,))
        assert torch.autograd.gradgradcheck(lambda x: fn(x, const_grid), (img,))
    # The dispatcher on a torch whose grid_sample is twice differentiable: the grid too.
    if grid_sample_gradfix.native_double_backward_supported():
        assert torch.autograd.gradgradcheck(grid_sample_gradfix.grid_sample, (img, grid))


def test_r1_through_augmentation_agrees_between_native_and_fallback():
    img, grid = _grid_inputs(2)
    weight = torch.randn([4, 3, 3, 3], dtype=torch.float64, requires_grad=True)
    grads = []
    for fn in (F.grid_sample, grid_sample_gradfix.grid_sample, grid_sample_gradfix._GridSample2dForward.apply):
        weight.grad = None
        x = img.detach().requires_grad_(True)
        if fn is F.grid_sample:
            aug = fn(x, grid.detach(), mode='bilinear', padding_mode='zeros', align_corners=False)
        else:
            aug = fn(x, grid.detach())
        score = F.conv2d(aug, weight).square().sum()
        r1, = torch.autograd.grad(score, x, create_graph=True)
        r1.square().sum().backward()
        grads.append(weight.grad.clone())
    assert torch.allclose(grads[0], grads[1]) and torch.allclose(grads[0], grads[2])


def test_grid_sample_fallback_refuses_grid_second_order():
    img, grid = _grid_inputs(3)
    y = grid_sample_gradfix._GridSample2dForward.apply(img, grid)
    gx, = torch.autograd.grad(y.square().sum(), img, create_graph=True)
    with pytest.raises(RuntimeError, match='w.r.t. the grid are not supported'):
        torch.autograd.grad(gx.square().sum(), grid)
    y = grid_sample_gradfix._GridSample2dForward.apply(img, grid)
    gg, = torch.autograd.grad(y.square().sum(), grid, create_graph=True)
    with pytest.raises(RuntimeError, match='gradient w.r.t. the grid is not supported'):
        torch.autograd.grad(gg.square().sum(), img)


def test_grid_sample_bad_shapes():
    img, grid = _grid_inputs()
    with pytest.raises(ValueError, match='input must be a 4-D'):
        grid_sample_gradfix.grid_sample(img[0], grid)
    with pytest.raises(ValueError, match=r'grid must be a tensor \[N, H_out, W_out, 2\]'):
        grid_sample_gradfix.grid_sample(img, grid[..., :1])
    with pytest.raises(ValueError, match='N = 2'):
        grid_sample_gradfix.grid_sample(img, grid[:1])

# ----------------------------------------------------------------------------
# Plugin dispatch


class _FakeCudaTensor:
    device = torch.device('cuda')


def test_check_impl():
    check_impl('op', 'ref')
    check_impl('op', 'cuda')
    with pytest.raises(ValueError, match="op: impl must be 'ref' or 'cuda', got 'cpu'"):
        check_impl('op', 'cpu')


def test_plugin_is_loaded_lazily_once_and_cached(monkeypatch):
    calls = []
    sentinel = object()

    def fake_try_get_plugin(module_name, sources, headers=None, source_dir=None, **kwargs):
        calls.append((module_name, tuple(sources), tuple(headers), source_dir))
        return sentinel
    monkeypatch.setattr(custom_ops, 'try_get_plugin', fake_try_get_plugin)
    plugin = OpPlugin('myop', 'myop_plugin', sources=['myop.cpp', 'myop.cu'], headers=['myop.h'])
    assert calls == []                                   # nothing at construction
    assert plugin.select('ref', _FakeCudaTensor()) is None
    assert calls == []                                   # nor for impl='ref'
    assert plugin.select('cuda', _FakeCudaTensor()) is sentinel
    assert plugin.select('cuda', _FakeCudaTensor()) is sentinel
    assert len(calls) == 1 and calls[0][:3] == ('myop_plugin', ('myop.cpp', 'myop.cu'), ('myop.h',))
    assert calls[0][3].endswith('ops')


def test_plugin_fallback_warns_once_and_cpu_tensors_are_silent():
    plugin = OpPlugin('myop', 'myop_missing_plugin', sources=['does_not_exist.cpp'])
    custom_ops.reset('myop_missing_plugin')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        for _ in range(3):
            assert plugin.select('cuda', torch.zeros(1)) is None         # CPU tensor
            assert plugin.select('cuda', _FakeCudaTensor()) is None      # extension cannot be built
    messages = [str(w.message) for w in caught if issubclass(w.category, custom_ops.CustomOpFallbackWarning)]
    assert len(messages) == 1, messages           # CPU tensors take the reference silently
    assert 'myop_missing_plugin' in messages[0]
    custom_ops.reset('myop_missing_plugin')
