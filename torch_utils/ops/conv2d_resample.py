"""2-D convolution with optional up/down-sampling through an FIR filter (StyleGAN2's resampling convs).

``conv2d_resample(x, w, f, up, down, padding)`` equals, for every choice of arguments,

    upfirdn2d(x, f if up > 1 else None, up=up, padding=P, gain=up**2)   # zero-insert, pad, interpolate
    -> conv2d(., w, groups=groups)                                       # valid convolution
    -> upfirdn2d(., f, down=down) if down > 1                            # anti-alias, keep every down-th

where P is `padding` plus the shift that keeps the filter centred (see ``_resample_padding``). The
implementation picks a cheaper equivalent order: a strided convolution after filtering for
downsampling, a transposed strided convolution before filtering for upsampling (the zero-inserted image
is never built), and resampling on the cheaper side of a 1x1 convolution.
"""

from __future__ import annotations

import torch

from . import conv2d_gradfix, upfirdn2d
from .upfirdn2d import _get_filter_size, _is_int, _parse_padding


def conv2d_resample(x, w, f=None, up=1, down=1, padding=0, groups=1, flip_weight=True, flip_filter=False):
    r"""Convolve `x` with `w`, optionally upsampling by `up` before and downsampling by `down` after.

    Args:
        x:           Input tensor [batch, in_channels, height, width].
        w:           Weight [out_channels, in_channels // groups, kernel_height, kernel_width].
        f:           FIR filter for the resampling (from upfirdn2d.setup_filter), or None.
        up:          Integer upsampling factor.
        down:        Integer downsampling factor.
        padding:     Padding of the upsampled image: int, [x, y] or [x0, x1, y0, y1].
        groups:      Number of groups of the convolution.
        flip_weight: True = correlation (what torch.nn.functional.conv2d does), False = convolution.
        flip_filter: False = convolve with f, True = correlate.

    Returns:
        Tensor [batch, out_channels, out_height, out_width].
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f'conv2d_resample: x must be a 4-D tensor [N, C, H, W], got {_describe(x)}')
    if not isinstance(w, torch.Tensor) or w.ndim != 4:
        raise ValueError(f'conv2d_resample: w must be a 4-D tensor [out, in // groups, kh, kw], got {_describe(w)}')
    if w.dtype != x.dtype:
        raise ValueError(f'conv2d_resample: w has dtype {w.dtype} but x has {x.dtype}')
    for name, value in (('up', up), ('down', down), ('groups', groups)):
        if not _is_int(value) or value < 1:
            raise ValueError(f'conv2d_resample: {name} must be an int >= 1, got {value!r}')
    out_channels, in_channels_per_group, kh, kw = (int(s) for s in w.shape)
    if x.shape[1] != in_channels_per_group * groups or out_channels % groups != 0:
        raise ValueError(f'conv2d_resample: x has {x.shape[1]} channels, w expects {in_channels_per_group} x '
                         f'{groups} groups with {out_channels} outputs (w shape {list(w.shape)})')
    fw, fh = _get_filter_size(f)
    px0, px1, py0, py1 = _resample_padding(_parse_padding(padding), fw, fh, up, down)
    # The CUDA kernel where it can run; on other devices the reference, without a fallback warning,
    # since the caller asked for nothing in particular.
    impl = 'cuda' if x.device.type == 'cuda' else 'ref'

    # 1x1 kernel, downsampling only: resample first, so the convolution runs at the lower resolution.
    if kw == 1 and kh == 1 and down > 1 and up == 1:
        x = upfirdn2d.upfirdn2d(x, f, down=down, padding=[px0, px1, py0, py1], flip_filter=flip_filter,
                                impl=impl)
        return _conv(x, w, groups=groups, flip_weight=flip_weight)

    # 1x1 kernel, upsampling only: convolve at the lower resolution, then upsample.
    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d.upfirdn2d(x, f, up=up, padding=[px0, px1, py0, py1], gain=up ** 2, flip_filter=flip_filter,
                                   impl=impl)

    # Downsampling: filter (with all the padding), then a strided convolution computes only the
    # outputs that survive the subsampling.
    if down > 1 and up == 1:
        x = upfirdn2d.upfirdn2d(x, f, padding=[px0, px1, py0, py1], flip_filter=flip_filter, impl=impl)
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)

    # Upsampling: a transposed convolution with stride `up` is the convolution of the zero-inserted
    # image; the interpolation filter follows, with the padding shifted by the kernel's extent.
    if up > 1:
        if groups == 1:
            w = w.transpose(0, 1)
        else:
            w = w.reshape(groups, out_channels // groups, in_channels_per_group, kh, kw)
            w = w.transpose(1, 2)
            w = w.reshape(groups * in_channels_per_group, out_channels // groups, kh, kw)
        px0 -= kw - 1
        px1 -= kw - up
        py0 -= kh - 1
        py1 -= kh - up
        # Whatever cropping both sides need can be done by the transposed convolution itself.
        pxt = max(min(-px0, -px1), 0)
        pyt = max(min(-py0, -py1), 0)
        x = _conv(x, w, stride=up, padding=[pyt, pxt], groups=groups, transpose=True, flip_weight=not flip_weight)
        x = upfirdn2d.upfirdn2d(x, f, padding=[px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt], gain=up ** 2,
                                flip_filter=flip_filter, impl=impl)
        if down > 1:
            x = upfirdn2d.upfirdn2d(x, f, down=down, flip_filter=flip_filter, impl=impl)
        return x

    # No resampling and symmetric non-negative padding: a plain convolution.
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv(x, w, padding=[py0, px0], groups=groups, flip_weight=flip_weight)

    # Anything else (asymmetric or negative padding): pad/crop, then convolve.
    x = upfirdn2d.upfirdn2d(x, None, padding=[px0, px1, py0, py1], flip_filter=flip_filter, impl=impl)
    return _conv(x, w, groups=groups, flip_weight=flip_weight)


def _resample_padding(padding, fw, fh, up, down):
    """Add to the user's padding the shift that centres the filter for up- and downsampling."""
    px0, px1, py0, py1 = padding
    if up > 1:
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0 += (fh + up - 1) // 2
        py1 += (fh - up) // 2
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0 += (fh - down + 1) // 2
        py1 += (fh - down) // 2
    return px0, px1, py0, py1


def _conv(x, w, stride=1, padding=0, groups=1, transpose=False, flip_weight=True):
    """conv2d (or conv_transpose2d) through conv2d_gradfix; flip_weight=False flips w (convolution)."""
    kh, kw = int(w.shape[2]), int(w.shape[3])
    if not flip_weight and (kw > 1 or kh > 1):
        w = w.flip([2, 3])
    if transpose:
        return conv2d_gradfix.conv_transpose2d(x, w, stride=stride, padding=padding, groups=groups)
    return conv2d_gradfix.conv2d(x, w, stride=stride, padding=padding, groups=groups)


def _describe(obj) -> str:
    if isinstance(obj, torch.Tensor):
        return f'a tensor of shape {list(obj.shape)}'
    return type(obj).__name__
