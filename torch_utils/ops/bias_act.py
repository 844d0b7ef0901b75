"""Fused bias + activation + gain + clamp: ``clamp(gain * act(x + b), -clamp, clamp)``.

Both implementations share one pair of autograd Functions built around a *kernel* with the contract
below: the CUDA extension (``bias_act.cpp``/``bias_act.cu``/``bias_act.h`` beside this file, built by
``torch_utils.custom_ops`` on the first call with a CUDA tensor, never at import) provides
``plugin.bias_act`` with the same contract, and the reference kernel (``_ref_kernel``) defines what it
must compute. The plugin gets every tensor dense in one layout (contiguous, or channels_last when x
is), and computes in float32 for float16/bfloat16 tensors.

    kernel(x, b, xref, yref, dy, grad, dim, act, alpha, gain, clamp) -> Tensor

    Empty tensors (numel() == 0) mean "not given". ``b`` broadcasts along ``dim``; ``act`` is the
    ``cuda_idx`` of an entry of ``activation_funcs``; ``clamp < 0`` disables clamping.
    Write z = xref + b (the pre-activation) and y = yref (the forward output), and let
    D = dy/dz = gain * act'(z) * [|y| < clamp], expressed through z when ``xref`` is given and
    through y otherwise (the caller passes whichever the activation needs, plus y whenever clamping).
      grad=0: returns clamp(gain * act(x + b))
      grad=1: returns x * D
      grad=2: returns x * dy * dD/dz when xref is given, x * dy * dD/dy otherwise

Memory: activations whose derivative is a function of the output (relu, lrelu, tanh, sigmoid, elu,
selu, softplus) keep only the output for the backward pass; swish keeps the input.
Derivatives of first and second order are supported; a third order raises.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import torch
import torch.nn.functional as F

import dnnlib

from . import OpPlugin, check_impl

_SELU_SCALE = 1.0507009873554804934193349852946   # lambda of SELU (Klambauer et al. 2017)
_SELU_ALPHA = 1.6732632423543772848170429916717   # alpha of SELU

# ----------------------------------------------------------------------------
# Plain differentiable activations (what each entry means; also handy for users and tests).


def _linear(x, alpha=0.0):
    return x


def _relu(x, alpha=0.0):
    return F.relu(x)


def _lrelu(x, alpha=0.2):
    return F.leaky_relu(x, alpha)


def _tanh(x, alpha=0.0):
    return torch.tanh(x)


def _sigmoid(x, alpha=0.0):
    return torch.sigmoid(x)


def _elu(x, alpha=0.0):
    return F.elu(x)


def _selu(x, alpha=0.0):
    return F.selu(x)


def _softplus(x, alpha=0.0):
    return F.softplus(x)


def _swish(x, alpha=0.0):
    return F.silu(x)


def _entry(name, func, def_alpha, def_gain, cuda_idx, ref, has_2nd_grad):
    return dnnlib.EasyDict(name=name, func=func, def_alpha=def_alpha, def_gain=def_gain, cuda_idx=cuda_idx,
                           ref=ref, has_2nd_grad=has_2nd_grad)


# `alpha` is used by 'lrelu' only (negative slope); elu and selu use their standard constants.
# `ref` says what the backward pass keeps: 'y' = the output, 'x' = the input, '' = nothing.
activation_funcs = {
    'linear':   _entry('linear',   _linear,   0,   1,            1, '',  False),
    'relu':     _entry('relu',     _relu,     0,   math.sqrt(2), 2, 'y', False),
    'lrelu':    _entry('lrelu',    _lrelu,    0.2, math.sqrt(2), 3, 'y', False),
    'tanh':     _entry('tanh',     _tanh,     0,   1,            4, 'y', True),
    'sigmoid':  _entry('sigmoid',  _sigmoid,  0,   1,            5, 'y', True),
    'elu':      _entry('elu',      _elu,      0,   1,            6, 'y', True),
    'selu':     _entry('selu',     _selu,     0,   1,            7, 'y', True),
    'softplus': _entry('softplus', _softplus, 0,   1,            8, 'y', True),
    'swish':    _entry('swish',    _swish,    0,   math.sqrt(2), 9, 'x', True),
}
_by_idx = {spec.cuda_idx: spec for spec in activation_funcs.values()}

_plugin = OpPlugin('bias_act', 'bias_act_plugin', sources=['bias_act.cpp', 'bias_act.cu'], headers=['bias_act.h'])

# ----------------------------------------------------------------------------
# Public entry point.


def bias_act(x, b=None, dim=1, act='linear', alpha=None, gain=None, clamp=None, impl='cuda'):
    r"""Add bias `b` along dimension `dim` of `x`, apply `act`, multiply by `gain`, clamp to [-clamp, clamp].

    Args:
        x:      Input tensor of any shape.
        b:      1-D bias with ``x.shape[dim]`` elements, or None. Cast to ``x.dtype``.
        dim:    Dimension of `x` that `b` runs along (ignored when `b` is None).
        act:    Name of an entry of `activation_funcs` ('linear', 'relu', 'lrelu', 'tanh', 'sigmoid',
                'elu', 'selu', 'softplus', 'swish').
        alpha:  Negative slope of 'lrelu'; None = the entry's def_alpha. Ignored by other activations.
        gain:   Output scale; None = the entry's def_gain (sqrt(2) for relu, lrelu and swish).
        clamp:  Clamp the scaled output to [-clamp, clamp]; None = no clamping. Must be >= 0.
        impl:   'cuda' (the CUDA kernel for CUDA tensors when it can be built, else the reference
                with one warning) or 'ref'.

    Returns:
        Tensor with the shape, dtype and memory format of `x`.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f'bias_act: x must be a torch.Tensor, got {type(x).__name__}')
    check_impl('bias_act', impl)
    if act not in activation_funcs:
        raise ValueError(f'bias_act: unknown act {act!r}; expected one of {", ".join(activation_funcs)}')
    spec = activation_funcs[act]
    alpha = float(spec.def_alpha if alpha is None else alpha)
    gain = float(spec.def_gain if gain is None else gain)
    if clamp is not None and not float(clamp) >= 0:
        raise ValueError(f'bias_act: clamp must be None or >= 0, got {clamp}')
    clamp = -1.0 if clamp is None else float(clamp)

    if b is not None:
        if not isinstance(b, torch.Tensor) or b.ndim != 1:
            raise ValueError(f'bias_act: b must be a 1-D tensor, got {_describe(b)}')
        if not -x.ndim <= dim < x.ndim:
            raise ValueError(f'bias_act: dim={dim} is out of range for a {x.ndim}-D tensor')
        dim = dim % x.ndim
        if b.shape[0] != x.shape[dim]:
            raise ValueError(f'bias_act: b has {b.shape[0]} elements but x.shape[{dim}] = {x.shape[dim]} '
                             f'(x shape {list(x.shape)})')
        b = b.to(x.dtype)
    else:
        dim = 0

    if act == 'linear' and b is None and gain == 1 and clamp < 0:
        return x
    if x.numel() == 0:
        # Nothing to compute; the plain formula keeps shapes and autograd right at no cost.
        return _plain_bias_act(x, b, dim, spec, alpha, gain, clamp)

    plugin = _plugin.select(impl, x)
    params = _Params.make(spec, dim, alpha, gain, clamp, plugin)
    return _BiasAct.apply(x, b, params)


def _plain_bias_act(x, b, dim, spec, alpha, gain, clamp):
    """The definition written with ordinary differentiable torch ops."""
    if b is not None:
        x = x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    x = spec.func(x, alpha=alpha) * gain
    return x.clamp(-clamp, clamp) if clamp >= 0 else x


def _describe(obj) -> str:
    if isinstance(obj, torch.Tensor):
        return f'a tensor of shape {list(obj.shape)}'
    return f'{type(obj).__name__}'

# ----------------------------------------------------------------------------
# Autograd wrapper shared by the reference kernel and the CUDA plugin.


@dataclasses.dataclass(frozen=True)
class _Params:
    dim: int                 # dimension of x that b runs along
    idx: int                 # cuda_idx of the activation
    alpha: float             # lrelu slope
    gain: float              # output scale
    clamp: float             # clamp bound; < 0 = none
    mode: str                # what D is derived from: 'x' (input + bias), 'y' (output) or '' (constant)
    needs_y: bool            # keep y for the backward pass (mode 'y' or clamping)
    has_2nd: bool            # D varies with its reference (non-zero second derivative)
    kernel: Callable         # _ref_kernel or plugin.bias_act
    contiguous: bool         # the kernel needs dense inputs (CUDA plugin)

    @staticmethod
    def make(spec, dim, alpha, gain, clamp, plugin) -> '_Params':
        mode = spec.ref
        # The output determines the derivative only if act(z) can be recovered from y, which needs
        # gain != 0, and, for lrelu, a non-negative slope (otherwise y's sign no longer tells z's).
        if mode == 'y' and (gain == 0 or (spec.name == 'lrelu' and alpha < 0)):
            mode = 'x'
        has_2nd = spec.has_2nd_grad and gain != 0
        return _Params(dim=dim, idx=spec.cuda_idx, alpha=alpha, gain=gain, clamp=clamp, mode=mode,
                       needs_y=(mode == 'y' or clamp >= 0), has_2nd=has_2nd,
                       kernel=(plugin.bias_act if plugin is not None else _ref_kernel),
                       contiguous=plugin is not None)


def _prepare(t, p: _Params, like: torch.Tensor):
    """Turn an optional tensor into the kernel's argument: empty when absent, dense for the plugin."""
    if t is None:
        return like.new_empty([0])
    if p.contiguous:
        fmt = torch.channels_last if like.ndim == 4 and like.is_contiguous(memory_format=torch.channels_last) \
            and not like.is_contiguous() else torch.contiguous_format
        return t.contiguous(memory_format=fmt) if t.ndim == 4 else t.contiguous()
    return t


def _call(p: _Params, x, b, xref, yref, dy, grad):
    return p.kernel(_prepare(x, p, x), _prepare(b, p, x), _prepare(xref, p, x), _prepare(yref, p, x),
                    _prepare(dy, p, x), grad, p.dim, p.idx, p.alpha, p.gain, p.clamp)


def _sum_except(t: torch.Tensor, dim: int) -> torch.Tensor:
    dims = [i for i in range(t.ndim) if i != dim]
    return t.sum(dims) if dims else t    # sum([]) would reduce everything (a 1-D x has nothing to sum)


class _BiasAct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, b, p):  # pylint: disable=arguments-differ
        y = _call(p, x, b, None, None, None, 0)
        ctx.p = p
        keep_x = p.mode == 'x'
        ctx.save_for_backward(x if keep_x else None, b if keep_x else None, y if p.needs_y else None)
        return y

    @staticmethod
    def backward(ctx, dy):  # pylint: disable=arguments-differ
        p = ctx.p
        x, b, y = ctx.saved_tensors
        dx = db = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            dx = _BiasActGrad.apply(dy, x, b, y, p)
        if ctx.needs_input_grad[1]:
            db = _sum_except(dx, p.dim)
        return dx, db, None


class _BiasActGrad(torch.autograd.Function):
    """dx = dy * D, differentiable once more (w.r.t. dy, and w.r.t. x/b or y when D is not constant)."""

    @staticmethod
    def forward(ctx, dy, x, b, y, p):  # pylint: disable=arguments-differ
        dx = _call(p, dy, b, x, y, None, 1)
        ctx.p = p
        ctx.save_for_backward(dy if p.has_2nd else None, x, b, y)
        return dx

    @staticmethod
    def backward(ctx, d_dx):  # pylint: disable=arguments-differ
        p = ctx.p
        dy, x, b, y = ctx.saved_tensors
        d_dy = d_x = d_b = d_y = None
        if ctx.needs_input_grad[0]:
            d_dy = _BiasActGrad.apply(d_dx, x, b, y, p)   # dx is linear in dy
        if p.has_2nd and p.mode == 'x' and (ctx.needs_input_grad[1] or ctx.needs_input_grad[2]):
            d_z = _BiasActGrad2.apply(d_dx, dy, x, b, y, p)
            d_x = d_z if ctx.needs_input_grad[1] else None
            d_b = _sum_except(d_z, p.dim) if ctx.needs_input_grad[2] else None
        if p.has_2nd and p.mode == 'y' and ctx.needs_input_grad[3]:
            d_y = _BiasActGrad2.apply(d_dx, dy, None, None, y, p)
        return d_dy, d_x, d_b, d_y, None


class _BiasActGrad2(torch.autograd.Function):
    """d_dx * dy * dD/d(reference): the second-order term, the end of the line for differentiation.

    Its backward raises rather than returning nothing: a third-order derivative that needs this term
    must fail loudly, not come out silently incomplete.
    """

    @staticmethod
    def forward(ctx, d_dx, dy, x, b, y, p):  # pylint: disable=arguments-differ
        return _call(p, d_dx, b, x, y, dy, 2)

    @staticmethod
    def backward(ctx, _grad):  # pylint: disable=arguments-differ
        raise RuntimeError('bias_act: derivatives of third order are not supported')

# ----------------------------------------------------------------------------
# Reference kernel: plain PyTorch, written for few passes over memory (in-place steps on fresh
# tensors; the gain folded into the bias add where the activation commutes with it).


def _ref_kernel(x, b, xref, yref, dy, grad, dim, act, alpha, gain, clamp):
    spec = _by_idx[act]
    if grad == 0:
        return _ref_forward(x, b, dim, spec, alpha, gain, clamp)
    if xref.numel() > 0:
        out = _grad_from_z(x, _add_bias(xref, b, dim), dy, grad, spec, alpha, gain)
    else:
        out = _grad_from_y(x, yref, dy, grad, spec, alpha, gain)
    if clamp >= 0:
        # Zero where the output sits on a clamp bound (|y| >= clamp): the clamp's derivative.
        out = torch.ops.aten.hardtanh_backward(out, yref, -clamp, clamp)
    return out


def _add_bias(x, b, dim):
    if b.numel() == 0:
        return x
    return x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])


def _ref_forward(x, b, dim, spec, alpha, gain, clamp):
    name = spec.name
    has_bias = b.numel() > 0
    bias = b.reshape([-1 if i == dim else 1 for i in range(x.ndim)]) if has_bias else None
    # relu/lrelu/linear are positively homogeneous: act(g*z) = g*act(z) for g > 0, so the gain
    # can ride along with the bias add and costs no extra pass.
    fold_gain = name in ('linear', 'relu', 'lrelu') and gain > 0 and gain != 1
    if has_bias:
        y = torch.add(bias * gain, x, alpha=gain) if fold_gain else x + bias
    else:
        y = x * gain if fold_gain else x
    fresh = has_bias or fold_gain  # y is our own tensor and may be modified in place

    if name == 'relu':
        y = torch.relu_(y) if fresh else torch.relu(y)
    elif name == 'lrelu':
        y = F.leaky_relu_(y, alpha) if fresh else F.leaky_relu(y, alpha)
    elif name == 'tanh':
        y = y.tanh_() if fresh else torch.tanh(y)
    elif name == 'sigmoid':
        y = y.sigmoid_() if fresh else torch.sigmoid(y)
    elif name == 'elu':
        y = F.elu(y, inplace=fresh)
    elif name == 'selu':
        y = F.selu(y, inplace=fresh)
    elif name == 'softplus':
        y = F.softplus(y)
    elif name == 'swish':
        y = F.silu(y, inplace=fresh)
    else:
        assert name == 'linear'
    fresh = fresh or name != 'linear'

    if not fold_gain and gain != 1:
        y = y.mul_(gain) if fresh else y * gain
        fresh = True
    if clamp >= 0:
        y = y.clamp_(-clamp, clamp) if fresh else y.clamp(-clamp, clamp)
    return y


def _grad_from_y(g_in, y, dy, grad, spec, alpha, gain):
    """grad=1: g_in * D; grad=2: g_in * dy * dD/dy, with D written through the output y (gain != 0)."""
    name = spec.name
    if name == 'linear':
        assert grad == 1
        return g_in * gain
    if name in ('relu', 'lrelu'):
        assert grad == 1
        slope = alpha if name == 'lrelu' else 0.0
        # Sign of act(z) = sign of z for slope >= 0; the gain may flip it.
        ref = y if gain > 0 else -y
        if slope > 0:
            out = torch.ops.aten.leaky_relu_backward(g_in, ref, slope, True)
        else:
            out = torch.ops.aten.threshold_backward(g_in, ref, 0)
        return out.mul_(gain) if gain != 1 else out
    a = y if gain == 1 else y * (1.0 / gain)   # act(z) where y is not clamped
    if grad == 1:
        if name == 'tanh':
            d = (1 - a * a) * gain
        elif name == 'sigmoid':
            d = a * (1 - a) * gain
        elif name == 'elu':
            d = torch.where(a > 0, torch.ones_like(a), a + 1) * gain
        elif name == 'selu':
            d = torch.where(a > 0, torch.full_like(a, _SELU_SCALE), a + _SELU_SCALE * _SELU_ALPHA) * gain
        elif name == 'softplus':
            d = -torch.expm1(-a) * gain         # sigmoid(z) = 1 - exp(-softplus(z))
        else:
            raise AssertionError(f'activation {name} has no output-based derivative')
        return g_in * d
    # Second order: dD/dy = (dD/da) / gain.
    if name == 'tanh':
        dd = a * -2
    elif name == 'sigmoid':
        dd = 1 - 2 * a
    elif name in ('elu', 'selu'):
        dd = (a <= 0).to(a.dtype)
    elif name == 'softplus':
        dd = torch.exp(-a)
    else:
        raise AssertionError(f'activation {name} has no output-based second derivative')
    return g_in * dy * dd


def _grad_from_z(g_in, z, dy, grad, spec, alpha, gain):
    """grad=1: g_in * D; grad=2: g_in * dy * dD/dz, with D written through the pre-activation z."""
    name = spec.name
    if grad == 1:
        if name == 'linear':
            d = torch.full_like(z, gain)
        elif name in ('relu', 'lrelu'):
            slope = alpha if name == 'lrelu' else 0.0
            d = torch.where(z > 0, torch.full_like(z, gain), torch.full_like(z, gain * slope))
        elif name == 'tanh':
            t = torch.tanh(z)
            d = (1 - t * t) * gain
        elif name == 'sigmoid':
            s = torch.sigmoid(z)
            d = s * (1 - s) * gain
        elif name == 'elu':
            d = torch.where(z > 0, torch.ones_like(z), torch.exp(z)) * gain
        elif name == 'selu':
            d = torch.where(z > 0, torch.full_like(z, _SELU_SCALE), _SELU_SCALE * _SELU_ALPHA * torch.exp(z)) * gain
        elif name == 'softplus':
            d = torch.sigmoid(z) * gain
        elif name == 'swish':
            s = torch.sigmoid(z)
            d = s * (1 + z * (1 - s)) * gain
        else:
            raise AssertionError(name)
        return g_in * d
    if name in ('linear', 'relu', 'lrelu'):
        return torch.zeros_like(g_in)
    if name == 'tanh':
        t = torch.tanh(z)
        dd = -2 * t * (1 - t * t)
    elif name == 'sigmoid':
        s = torch.sigmoid(z)
        dd = s * (1 - s) * (1 - 2 * s)
    elif name == 'elu':
        dd = torch.where(z > 0, torch.zeros_like(z), torch.exp(z))
    elif name == 'selu':
        dd = torch.where(z > 0, torch.zeros_like(z), _SELU_SCALE * _SELU_ALPHA * torch.exp(z))
    elif name == 'softplus':
        s = torch.sigmoid(z)
        dd = s * (1 - s)
    elif name == 'swish':
        s = torch.sigmoid(z)
        dd = s * (1 - s) * (2 + z * (1 - 2 * s))
    else:
        raise AssertionError(name)
    return g_in * dy * (dd * gain)
