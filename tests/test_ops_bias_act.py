"""bias_act against the same computation written with plain torch functions (values, first and second
derivatives), gradcheck/gradgradcheck in float64, argument errors and the fallback paths."""

import math
import warnings

import pytest
import torch
import torch.nn.functional as F

from torch_utils import custom_ops
from torch_utils.ops import bias_act as B


pytestmark = pytest.mark.usefixtures('one_thread')

# Independent definitions of the activations (torch's own functions, not the module's table).
PLAIN = {
    'linear': lambda z, a: z,
    'relu': lambda z, a: torch.relu(z),
    'lrelu': lambda z, a: F.leaky_relu(z, a),
    'tanh': lambda z, a: torch.tanh(z),
    'sigmoid': lambda z, a: torch.sigmoid(z),
    'elu': lambda z, a: F.elu(z),
    'selu': lambda z, a: F.selu(z),
    'softplus': lambda z, a: F.softplus(z),
    'swish': lambda z, a: z * torch.sigmoid(z),
}
DEFAULTS = {  # act: (def_alpha, def_gain)
    'linear': (0, 1), 'relu': (0, math.sqrt(2)), 'lrelu': (0.2, math.sqrt(2)), 'tanh': (0, 1), 'sigmoid': (0, 1),
    'elu': (0, 1), 'selu': (0, 1), 'softplus': (0, 1), 'swish': (0, math.sqrt(2)),
}


def plain_bias_act(x, b, dim, act, alpha, gain, clamp):
    def_alpha, def_gain = DEFAULTS[act]
    alpha = def_alpha if alpha is None else alpha
    gain = def_gain if gain is None else gain
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x + b.reshape(shape)
    y = PLAIN[act](x, alpha) * gain
    return y if clamp is None else y.clamp(-clamp, clamp)


def _inputs(shape=(3, 4, 5, 2), dim=1, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=dtype) * 2
    b = torch.randn([shape[dim]], generator=gen, dtype=dtype)
    return x.requires_grad_(True), b.requires_grad_(True)


def _first_and_second(fn, x, b, seed=1):
    """Values, first derivatives and second derivatives (through random directions) of fn(x, b)."""
    gen = torch.Generator().manual_seed(seed)
    y = fn(x, b)
    r = torch.randn(y.shape, generator=gen, dtype=y.dtype)
    gx, gb = torch.autograd.grad((y * r).sum(), [x, b], create_graph=True)
    s = torch.randn(gx.shape, generator=gen, dtype=y.dtype)
    t = torch.randn(gb.shape, generator=gen, dtype=y.dtype)
    second = (gx * s).sum() + (gb * t).sum()
    if second.requires_grad:
        hx, hb = torch.autograd.grad(second, [x, b], allow_unused=True)
    else:   # first derivatives that are constant (linear activation)
        hx = hb = None
    hx = torch.zeros_like(x) if hx is None else hx
    hb = torch.zeros_like(b) if hb is None else hb
    return [t.detach() for t in (y, gx, gb, hx, hb)]


def test_activation_table():
    assert list(B.activation_funcs) == list(DEFAULTS)
    for act, (def_alpha, def_gain) in DEFAULTS.items():
        spec = B.activation_funcs[act]
        assert spec.def_alpha == pytest.approx(def_alpha) and spec.def_gain == pytest.approx(def_gain)
        assert spec.ref in ('', 'x', 'y') and isinstance(spec.has_2nd_grad, bool)
        z = torch.linspace(-3, 3, 13, dtype=torch.float64)
        assert torch.allclose(spec.func(z, alpha=def_alpha), PLAIN[act](z, def_alpha))


@pytest.mark.parametrize('act', list(DEFAULTS))
@pytest.mark.parametrize('clamp', [None, 0.9])
def test_matches_plain_torch_to_second_order(act, clamp):
    for dim, shape in [(1, (3, 4, 5, 2)), (3, (2, 3, 2, 5)), (0, (6, 7))]:
        x, b = _inputs(shape, dim)
        ours = _first_and_second(lambda x, b: B.bias_act(x, b, dim=dim, act=act, clamp=clamp, impl='ref'), x, b)
        theirs = _first_and_second(lambda x, b: plain_bias_act(x, b, dim, act, None, None, clamp), x, b)
        for name, u, v in zip(['y', 'dx', 'db', 'd2x', 'd2b'], ours, theirs):
            assert torch.allclose(u, v, rtol=1e-10, atol=1e-10), f'{act} clamp={clamp} dim={dim}: {name} differs'


@pytest.mark.parametrize('act, alpha, gain', [
    ('lrelu', -0.3, None), ('lrelu', 0.0, 2.0), ('lrelu', 0.1, -1.5), ('relu', None, -2.0), ('relu', None, 0.0),
    ('tanh', None, -0.5), ('sigmoid', None, 3.0), ('softplus', None, 0.0), ('elu', None, 1.7), ('swish', None, 0.5),
])
def test_unusual_alpha_and_gain(act, alpha, gain):
    x, b = _inputs((2, 3, 4), dim=2)
    ours = _first_and_second(lambda x, b: B.bias_act(x, b, dim=2, act=act, alpha=alpha, gain=gain, clamp=1.1,
                                                     impl='ref'), x, b)
    theirs = _first_and_second(lambda x, b: plain_bias_act(x, b, 2, act, alpha, gain, 1.1), x, b)
    for name, u, v in zip(['y', 'dx', 'db', 'd2x', 'd2b'], ours, theirs):
        assert torch.allclose(u, v, rtol=1e-10, atol=1e-10), f'{act} alpha={alpha} gain={gain}: {name} differs'


@pytest.mark.parametrize('act', list(DEFAULTS))
def test_gradcheck_gradgradcheck(act):
    x, b = _inputs((2, 3, 2, 2), seed=4)
    for clamp in (None, 1.3):
        def fn(x, b):
            return B.bias_act(x, b, act=act, clamp=clamp, impl='ref')
        assert torch.autograd.gradcheck(fn, (x, b))
        assert torch.autograd.gradgradcheck(fn, (x, b))


def test_third_order_raises():
    x, b = _inputs((2, 3), seed=2)
    y = B.bias_act(x, b, act='tanh', impl='ref')
    gx, = torch.autograd.grad(y.sum(), x, create_graph=True)
    hx, = torch.autograd.grad(gx.square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match='third order'):
        torch.autograd.grad(hx.sum(), x)
    # lrelu is piecewise linear: no second-order term, and higher orders are exactly zero.
    y = B.bias_act(x, b, act='lrelu', impl='ref')
    gx, = torch.autograd.grad((y * y).sum(), x, create_graph=True)
    hx, = torch.autograd.grad(gx.square().sum(), x, create_graph=True)
    t, = torch.autograd.grad(hx.sum(), x)
    z = x.detach().requires_grad_(True)
    yz = plain_bias_act(z, b.detach(), 1, 'lrelu', None, None, None)
    gz, = torch.autograd.grad((yz * yz).sum(), z, create_graph=True)
    hz, = torch.autograd.grad(gz.square().sum(), z, create_graph=True)
    tz, = torch.autograd.grad(hz.sum(), z)
    assert torch.allclose(t, tz)


def test_float32_channels_last_and_shortcuts():
    x, b = _inputs((2, 8, 3, 3), dtype=torch.float32)
    xc = x.detach().contiguous(memory_format=torch.channels_last)
    y = B.bias_act(xc, b.detach(), act='lrelu', clamp=2.0, impl='ref')
    assert y.dtype == torch.float32 and y.is_contiguous(memory_format=torch.channels_last)
    ref = plain_bias_act(x.detach().double(), b.detach().double(), 1, 'lrelu', None, None, 2.0)
    assert torch.allclose(y.double(), ref, atol=1e-6)
    assert B.bias_act(x, act='linear', impl='ref') is x                   # identity costs nothing
    assert torch.allclose(B.bias_act(x, act='linear', gain=3.0, impl='ref'), x * 3)
    b16 = b.detach().half()
    assert B.bias_act(x.detach(), b16, impl='ref').dtype == torch.float32   # bias follows x's dtype
    empty = torch.zeros([0, 8, 3, 3], requires_grad=True)
    out = B.bias_act(empty, b, act='lrelu', impl='ref')
    assert out.shape == empty.shape
    out.sum().backward()
    assert empty.grad.shape == empty.shape


def test_backward_keeps_only_what_it_needs():
    # lrelu keeps its output, not its input: the input may be modified in place after the call.
    x, b = _inputs((2, 3, 4), seed=3)
    z = x * 1.0
    y = B.bias_act(z, b, act='lrelu', impl='ref')
    z.mul_(0)
    y.sum().backward()
    assert x.grad is not None and b.grad is not None


def test_bad_arguments():
    x = torch.zeros([2, 3, 4])
    with pytest.raises(ValueError, match="unknown act 'gelu'"):
        B.bias_act(x, act='gelu')
    with pytest.raises(ValueError, match='clamp must be None or >= 0'):
        B.bias_act(x, act='relu', clamp=-1)
    with pytest.raises(ValueError, match=r'b has 4 elements but x.shape\[1\] = 3'):
        B.bias_act(x, torch.zeros(4))
    with pytest.raises(ValueError, match='1-D'):
        B.bias_act(x, torch.zeros(3, 1))
    with pytest.raises(ValueError, match='out of range'):
        B.bias_act(x, torch.zeros(3), dim=3)
    with pytest.raises(ValueError, match="impl must be 'ref' or 'cuda'"):
        B.bias_act(x, impl='fast')
    with pytest.raises(TypeError):
        B.bias_act([1.0, 2.0])
    assert torch.equal(B.bias_act(x, torch.ones(4), dim=-1, impl='ref'), x + 1)


def test_cuda_request_on_cpu_tensor_uses_reference_silently():
    B._plugin.reset()
    x, b = _inputs((2, 3, 4), seed=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        y1 = B.bias_act(x, b, act='lrelu', impl='cuda')
        y2 = B.bias_act(x, b, act='tanh', impl='cuda')
    assert not [w for w in caught if issubclass(w.category, custom_ops.CustomOpFallbackWarning)]
    assert torch.equal(y1, B.bias_act(x, b, act='lrelu', impl='ref'))
    assert torch.equal(y2, B.bias_act(x, b, act='tanh', impl='ref'))
    B._plugin.reset()


def test_unbuildable_plugin_warns_once_and_returns_none():
    class FakeCudaTensor:   # stands in for a CUDA tensor: only the device is looked at before building
        device = torch.device('cuda')
    B._plugin.reset()
    custom_ops.reset(B._plugin.module_name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        assert B._plugin.select('cuda', FakeCudaTensor()) is None
        assert B._plugin.select('cuda', FakeCudaTensor()) is None
    fallback = [w for w in caught if issubclass(w.category, custom_ops.CustomOpFallbackWarning)]
    assert len(fallback) == 1 and 'bias_act_plugin' in str(fallback[0].message)
    B._plugin.reset()
    custom_ops.reset(B._plugin.module_name)


@pytest.mark.parametrize('act', ['lrelu', 'swish', 'sigmoid'])
def test_plugin_contract_is_used_when_available(monkeypatch, act):
    # A stand-in extension implementing the documented kernel contract with the reference kernel.
    grads_seen = set()

    class FakePlugin:
        @staticmethod
        def bias_act(x, b, xref, yref, dy, grad, dim, act_idx, alpha, gain, clamp):
            for t in (x, b, xref, yref, dy):
                assert isinstance(t, torch.Tensor) and (t.numel() == 0 or t.is_contiguous())
            grads_seen.add(grad)
            return B._ref_kernel(x, b, xref, yref, dy, grad, dim, act_idx, alpha, gain, clamp)

    monkeypatch.setattr(B._plugin, 'select', lambda impl, x: FakePlugin if impl == 'cuda' else None)
    x, b = _inputs((2, 3, 4), seed=6)
    xt = x.detach().transpose(0, 2).requires_grad_(True)   # non-contiguous on purpose
    ours = _first_and_second(lambda x, b: B.bias_act(x, b, act=act, clamp=1.5, impl='cuda'), xt, b)
    theirs = _first_and_second(lambda x, b: plain_bias_act(x, b, 1, act, None, None, 1.5), xt, b)
    for u, v in zip(ours, theirs):
        assert torch.allclose(u, v, rtol=1e-10, atol=1e-10)
    assert grads_seen == ({0, 1} if act == 'lrelu' else {0, 1, 2})


def test_bias_gradient_of_a_1d_input():
    # x of shape [C] with b along dim 0: db must keep C entries (the sum runs over no dimension).
    x, b = _inputs(shape=(5,), dim=0)
    y = B.bias_act(x, b, dim=0, act='tanh', impl='ref')
    w = torch.randn([5], dtype=torch.float64)
    gx, gb = torch.autograd.grad((y * w).sum(), [x, b])
    expected = w * (1 - torch.tanh(x.detach() + b.detach()) ** 2)
    torch.testing.assert_close(gb, expected)
    torch.testing.assert_close(gx, expected)
