"""Upsample, pad, FIR-filter and downsample batches of 2-D images (``upfirdn2d``) and its wrappers.

``upfirdn2d(x, f, up, down, padding)`` computes, per channel and separately for x and y:

1. insert ``up - 1`` zeros after every pixel (the result is ``up`` times larger),
2. pad with zeros (negative padding crops),
3. convolve with the FIR filter ``f`` (correlate when ``flip_filter=True``), keeping only outputs
   whose footprint lies inside the padded image, and multiply by ``gain``,
4. keep every ``down``-th pixel, starting with the first.

The reference kernel computes exactly that but never materialises the zero-inserted image or the
pixels that step 4 throws away: upsampling is a depthwise transposed convolution with stride ``up``,
downsampling a depthwise convolution with stride ``down``, and padding is folded into the convolution
where it is symmetric. Long 1-D (separable) filters run as two 1-D passes; short ones as one 2-D pass,
which is faster on CPU. The gradient of the op is the same op with up and down swapped and the filter
flipped, so every derivative order runs through the same fast kernel.

The CUDA extension (``upfirdn2d.cpp``/``upfirdn2d.cu``/``upfirdn2d.h`` beside this file, built by
``torch_utils.custom_ops`` on the first call with a CUDA tensor, never at import) slots in by providing

    plugin.upfirdn2d(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter, gain)

with a contiguous float32 2-D filter ``f`` of shape [fh, fw] and x contiguous or channels_last (the
output keeps x's format), computing what ``_ref_kernel`` computes; a 1-D filter runs as two passes.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from . import OpPlugin, check_impl

_plugin = OpPlugin('upfirdn2d', 'upfirdn2d_plugin', sources=['upfirdn2d.cpp', 'upfirdn2d.cu'],
                   headers=['upfirdn2d.h'])

# 1-D filters with at least this many taps run as two 1-D passes in the reference kernel; shorter ones
# as their outer product. On CPU (oneDNN depthwise convolution, AVX-512, 1-2 threads) one 2-D pass beat
# two 1-D passes for up to 12 taps, for 3-channel images as for 128-channel feature maps; at 16 taps
# the 2-D downsampling pass fell off a cliff (4x slower).
SEPARABLE_MIN_TAPS = 13

# ----------------------------------------------------------------------------
# Argument parsing.


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _parse_scaling(scaling, name='up'):
    if _is_int(scaling):
        scaling = [scaling, scaling]
    if not isinstance(scaling, (list, tuple)) or len(scaling) != 2 or not all(_is_int(s) for s in scaling):
        raise ValueError(f'{name} must be an int or a list [x, y] of ints, got {scaling!r}')
    sx, sy = int(scaling[0]), int(scaling[1])
    if sx < 1 or sy < 1:
        raise ValueError(f'{name} factors must be >= 1, got {scaling!r}')
    return sx, sy


def _parse_padding(padding):
    if _is_int(padding):
        padding = [padding, padding]
    if not isinstance(padding, (list, tuple)) or len(padding) not in (2, 4) or not all(_is_int(p) for p in padding):
        raise ValueError(f'padding must be an int, [x, y] or [x0, x1, y0, y1] of ints, got {padding!r}')
    if len(padding) == 2:
        padx, pady = padding
        padding = [padx, padx, pady, pady]
    return tuple(int(p) for p in padding)


def _get_filter_size(f):
    """(width, height) of a filter; a 1-D filter of n taps is n x n."""
    if f is None:
        return 1, 1
    if not isinstance(f, torch.Tensor) or f.ndim not in (1, 2):
        raise ValueError(f'f must be None, or a 1-D or 2-D tensor (see setup_filter), got {_describe(f)}')
    fw, fh = int(f.shape[-1]), int(f.shape[0])
    if fw < 1 or fh < 1:
        raise ValueError(f'f must not be empty, got shape {list(f.shape)}')
    return fw, fh


def _describe(obj) -> str:
    if isinstance(obj, torch.Tensor):
        return f'a tensor of shape {list(obj.shape)}'
    return type(obj).__name__

# ----------------------------------------------------------------------------


def setup_filter(f, device=torch.device('cpu'), normalize=True, flip_filter=False, gain=1, separable=None):
    r"""Make a float32 FIR filter for `upfirdn2d()`.

    Args:
        f:           Filter taps: None (identity), a scalar, a 1-D list/array/tensor (separable taps)
                     or a 2-D one [height, width].
        device:      Device of the result.
        normalize:   Scale so that the taps sum to 1 (a constant image keeps its value).
        flip_filter: Flip the filter.
        gain:        Overall gain of the filter (a separable filter gets gain ** 0.5 per axis).
        separable:   Return a 1-D separable filter? None = only for 1-D input with >= 8 taps; a short
                     1-D filter becomes its 2-D outer product.

    Returns:
        Float32 tensor [taps] (separable) or [height, width].
    """
    if f is None:
        f = 1
    # Worked out on the CPU whatever the ambient default device: under torch.device('meta') (checkpoint
    # validation builds networks there) the taps stay real numbers and the meta kernels are never reached.
    f = torch.as_tensor(f, dtype=torch.float32, device='cpu').detach().clone()
    if f.ndim not in (0, 1, 2):
        raise ValueError(f'setup_filter: f must be a scalar, 1-D or 2-D, got shape {list(f.shape)}')
    if f.numel() == 0:
        raise ValueError('setup_filter: f must not be empty')
    if f.ndim == 0:
        f = f[None]
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if separable and f.ndim != 1:
        raise ValueError(f'setup_filter: separable=True needs 1-D taps, got shape {list(f.shape)}')
    if normalize:
        total = f.sum()
        if total == 0:
            raise ValueError('setup_filter: cannot normalize a filter whose taps sum to zero (pass normalize=False)')
        f = f / total
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return f.to(device=device)

# ----------------------------------------------------------------------------


def upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1, impl='cuda'):
    r"""Upsample by zero insertion, pad, FIR-filter and downsample a batch of images.

    Args:
        x:           Tensor [batch, channels, height, width] (float16/32/64).
        f:           FIR filter: a 2-D tensor [fh, fw], a 1-D tensor of separable taps, or None
                     (identity). Usually from `setup_filter()`. Gradients w.r.t. f are not supported.
        up:          Upsampling factor: int or [x, y].
        down:        Downsampling factor: int or [x, y].
        padding:     Padding of the upsampled image: int, [x, y] or [x0, x1, y0, y1]; negative crops.
        flip_filter: False = convolution, True = correlation.
        gain:        Scale of the result.
        impl:        'cuda' (CUDA kernel for CUDA tensors when available, else the reference with one
                     warning) or 'ref'.

    Returns:
        Tensor [batch, channels, out_height, out_width] with
        out_height = (height * up_y + pad_y0 + pad_y1 - fh) // down_y + 1 (and likewise for the width).
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f'upfirdn2d: x must be a 4-D tensor [N, C, H, W], got {_describe(x)}')
    check_impl('upfirdn2d', impl)
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    if not isinstance(f, torch.Tensor):
        raise TypeError(f'upfirdn2d: f must be a tensor or None (see setup_filter), got {type(f).__name__}')
    _get_filter_size(f)
    if not f.is_floating_point():
        raise ValueError(f'upfirdn2d: f must be a floating-point tensor, got {f.dtype}')
    if f.requires_grad:
        raise ValueError('upfirdn2d: gradients w.r.t. the filter f are not supported; pass f.detach()')
    upx, upy = _parse_scaling(up, 'up')
    downx, downy = _parse_scaling(down, 'down')
    padx0, padx1, pady0, pady1 = _parse_padding(padding)
    fw, fh = _get_filter_size(f)
    _, _, in_h, in_w = x.shape
    for axis, size, u, p0, p1, k in (('height', in_h, upy, pady0, pady1, fh), ('width', in_w, upx, padx0, padx1, fw)):
        if size * u + p0 + p1 < k:
            raise ValueError(f'upfirdn2d: empty output {axis}: input {axis} {size} upsampled x{u}, padded '
                             f'[{p0}, {p1}] is shorter than the filter ({k} taps)')

    plugin = _plugin.select(impl, x)
    kernel = functools.partial(_cuda_kernel, plugin) if plugin is not None else _ref_kernel
    f = f.to(device=x.device)
    if plugin is not None:
        f = f.to(torch.float32)             # the kernel contract
    elif x.dtype == torch.float64:
        f = f.to(torch.float64)             # no float32 rounding in the outer product below

    if f.ndim == 1 and (plugin is not None or f.numel() >= SEPARABLE_MIN_TAPS):
        horizontal = _Params(upx, 1, downx, 1, padx0, padx1, 0, 0, bool(flip_filter), float(gain), kernel)
        vertical = _Params(1, upy, 1, downy, 0, 0, pady0, pady1, bool(flip_filter), 1.0, kernel)
        x = _UpFirDn2d.apply(x, f[None, :], horizontal)
        return _UpFirDn2d.apply(x, f[:, None], vertical)
    if f.ndim == 1:
        f = torch.outer(f, f)
    params = _Params(upx, upy, downx, downy, padx0, padx1, pady0, pady1, bool(flip_filter), float(gain), kernel)
    return _UpFirDn2d.apply(x, f, params)


def filter2d(x, f, padding=0, flip_filter=False, gain=1, impl='cuda'):
    r"""Filter images with `f`; the output has the input's size, plus `padding` (int, [x, y] or
    [x0, x1, y0, y1], negative crops)."""
    padx0, padx1, pady0, pady1 = _parse_padding(padding)
    fw, fh = _get_filter_size(f)
    p = [padx0 + fw // 2, padx1 + (fw - 1) // 2, pady0 + fh // 2, pady1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)


def upsample2d(x, f, up=2, padding=0, flip_filter=False, gain=1, impl='cuda'):
    r"""Upsample images by `up` (int or [x, y]) with the interpolation filter `f`; the output is `up` times
    the input's size plus `padding`. The gain is multiplied by up_x * up_y to make up for the zeros."""
    upx, upy = _parse_scaling(up, 'up')
    padx0, padx1, pady0, pady1 = _parse_padding(padding)
    fw, fh = _get_filter_size(f)
    p = [padx0 + (fw + upx - 1) // 2, padx1 + (fw - upx) // 2, pady0 + (fh + upy - 1) // 2, pady1 + (fh - upy) // 2]
    return upfirdn2d(x, f, up=[upx, upy], padding=p, flip_filter=flip_filter, gain=gain * upx * upy, impl=impl)


def downsample2d(x, f, down=2, padding=0, flip_filter=False, gain=1, impl='cuda'):
    r"""Downsample images by `down` (int or [x, y]) with the anti-aliasing filter `f`; the output is the
    input's size (plus `padding`, counted in input pixels) divided by `down`."""
    downx, downy = _parse_scaling(down, 'down')
    padx0, padx1, pady0, pady1 = _parse_padding(padding)
    fw, fh = _get_filter_size(f)
    p = [padx0 + (fw - downx + 1) // 2, padx1 + (fw - downx) // 2,
         pady0 + (fh - downy + 1) // 2, pady1 + (fh - downy) // 2]
    return upfirdn2d(x, f, down=[downx, downy], padding=p, flip_filter=flip_filter, gain=gain, impl=impl)

# ----------------------------------------------------------------------------
# Autograd: the op is linear in x, and its adjoint is another upfirdn2d.


@dataclasses.dataclass(frozen=True)
class _Params:
    upx: int
    upy: int
    downx: int
    downy: int
    padx0: int
    padx1: int
    pady0: int
    pady1: int
    flip_filter: bool
    gain: float
    kernel: Callable     # _ref_kernel, or _cuda_kernel bound to the plugin

    def transposed(self, in_h, in_w, out_h, out_w, fh, fw) -> '_Params':
        """Parameters of the adjoint op, mapping an output-sized gradient back to the input's size.

        The adjoint zero-inserts by `down`, correlates where the forward convolved (full convolution,
        hence the fw - 1 padding), crops the forward padding and keeps every `up`-th pixel; the right
        padding also drops the up - 1 trailing pixels that the final subsampling would discard.
        """
        return _Params(
            upx=self.downx, upy=self.downy, downx=self.upx, downy=self.upy,
            padx0=fw - self.padx0 - 1, padx1=in_w * self.upx - out_w * self.downx + self.padx0 - self.upx + 1,
            pady0=fh - self.pady0 - 1, pady1=in_h * self.upy - out_h * self.downy + self.pady0 - self.upy + 1,
            flip_filter=not self.flip_filter, gain=self.gain, kernel=self.kernel)


class _UpFirDn2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, f, p):  # pylint: disable=arguments-differ
        y = p.kernel(x, f, p.upx, p.upy, p.downx, p.downy, p.padx0, p.padx1, p.pady0, p.pady1, p.flip_filter, p.gain)
        ctx.save_for_backward(f)
        ctx.p = p
        ctx.in_size = (int(x.shape[2]), int(x.shape[3]))
        return y

    @staticmethod
    def backward(ctx, dy):  # pylint: disable=arguments-differ
        if not ctx.needs_input_grad[0]:
            return None, None, None
        f, = ctx.saved_tensors
        q = ctx.p.transposed(*ctx.in_size, int(dy.shape[2]), int(dy.shape[3]), int(f.shape[0]), int(f.shape[1]))
        return _UpFirDn2d.apply(dy, f, q), None, None

# ----------------------------------------------------------------------------
# CUDA kernel call: the plugin takes x contiguous or channels_last (gradients can arrive with any
# strides, e.g. expanded from a sum) and a contiguous filter.


def _cuda_kernel(plugin, x, f, *args):
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    x = x.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    return plugin.upfirdn2d(x, f.contiguous(), *args)

# ----------------------------------------------------------------------------
# Reference kernel (plain PyTorch): one depthwise (transposed) convolution per call.


def _ref_kernel(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter, gain):
    channels = x.shape[1]
    w = f.to(device=x.device, dtype=x.dtype)
    if gain != 1:
        w = w * gain
    fh, fw = w.shape
    if upx == 1 and upy == 1:
        # conv2d correlates, so a convolution needs the flipped filter.
        w = w if flip_filter else w.flip([0, 1])
        w = w.expand(channels, 1, fh, fw).contiguous()
        # The symmetric part of the padding is free inside conv2d; the rest is an explicit pad/crop.
        qx, qy = max(min(padx0, padx1), 0), max(min(pady0, pady1), 0)
        extra = [padx0 - qx, padx1 - qx, pady0 - qy, pady1 - qy]
        x = _pad_crop(x, extra)
        return F.conv2d(x, w, stride=(downy, downx), padding=(qy, qx), groups=channels)

    # Upsampling: a transposed convolution with stride `up` over the un-inserted image equals the full
    # convolution of the zero-inserted image; it starts fh - 1 - pad0 samples before the output we want
    # and ends fh - up - pad1 samples after it. Its own padding/output_padding take as much of that
    # cropping as they can; the remainder is an explicit crop (or pad).
    w = w.flip([0, 1]) if flip_filter else w
    w = w.expand(channels, 1, fh, fw).contiguous()
    (py, opy, ey0, ey1) = _transposed_crop(fh, upy, pady0, pady1)
    (px, opx, ex0, ex1) = _transposed_crop(fw, upx, padx0, padx1)
    y = F.conv_transpose2d(x, w, stride=(upy, upx), padding=(py, px), output_padding=(opy, opx), groups=channels)
    y = _pad_crop(y, [ex0, ex1, ey0, ey1])
    if downx > 1 or downy > 1:
        y = y[:, :, ::downy, ::downx].contiguous()
    return y


def _transposed_crop(k, up, pad0, pad1):
    """(padding, output_padding, extra_pad0, extra_pad1) for conv_transpose along one axis."""
    crop0 = k - 1 - pad0
    crop1 = k - up - pad1
    p = max(0, min(crop0, crop1 + up - 1))
    op = min(max(0, p - crop1), up - 1)
    return p, op, p - crop0, p - op - crop1


def _pad_crop(x, pads):
    """Zero-pad [x0, x1, y0, y1] (negative entries crop) with the same meaning as upfirdn2d's padding:
    positive padding first, then cropping, so a crop may eat into the padding of the other side."""
    if not any(pads):
        return x
    if all(p >= 0 for p in pads) or all(p <= 0 for p in pads):
        return F.pad(x, list(pads))
    x = F.pad(x, [max(p, 0) for p in pads])
    x0, x1, y0, y1 = (max(-p, 0) for p in pads)
    return x[:, :, y0:x.shape[2] - y1, x0:x.shape[3] - x1]
