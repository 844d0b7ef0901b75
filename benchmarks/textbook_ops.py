"""Textbook versions of the resampling and activation ops, the baseline our optimised CPU paths are
measured against.

They compute each op from its definition with ordinary torch calls, the way the original codebase's
reference (non-CUDA) ops do: upfirdn2d by explicit zero insertion, padding and a depthwise conv2d
with the full 2-D filter (a separable filter gets one 1-D pass per axis), then subsampling by
slicing; bias_act as separate add, activation, scale and clamp, each with its own autograd node.

`textbook_ops()` swaps them into torch_utils.ops for the duration of a `with` block, so the whole
network (conv2d_resample, the synthesis and discriminator blocks) runs on them: that is the
"textbook" side of `benchmarks/train_step.py --ops=ours,textbook`.
"""

from __future__ import annotations

import contextlib

import torch.nn.functional as F

from torch_utils.ops import bias_act as bias_act_module
from torch_utils.ops import upfirdn2d as upfirdn2d_module


def textbook_bias_act(x, b=None, dim=1, act='linear', alpha=None, gain=None, clamp=None, impl='ref'):
    spec = bias_act_module.activation_funcs[act]
    alpha = spec.def_alpha if alpha is None else alpha
    gain = spec.def_gain if gain is None else gain
    if b is not None:
        x = x + b.to(x.dtype).reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    x = spec.func(x, alpha=alpha)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def textbook_upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1, impl='ref'):
    upx, upy = upfirdn2d_module._parse_scaling(up, 'up')
    downx, downy = upfirdn2d_module._parse_scaling(down, 'down')
    px0, px1, py0, py1 = upfirdn2d_module._parse_padding(padding)
    n, c, h, w = x.shape
    if upx > 1 or upy > 1:     # zero insertion, materialised
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
        x = x.reshape(n, c, h * upy, w * upx)
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0):x.shape[2] - max(-py1, 0), max(-px0, 0):x.shape[3] - max(-px1, 0)]
    if f is not None:
        f = f.to(x.dtype)
        if not flip_filter:
            f = f.flip(list(range(f.ndim)))
        if f.ndim == 2:
            x = F.conv2d(x, (f * gain)[None, None].repeat(c, 1, 1, 1), groups=c)
        else:
            taps = (f * gain ** 0.5)[None, None].repeat(c, 1, 1)
            x = F.conv2d(x, taps.unsqueeze(2), groups=c)
            x = F.conv2d(x, taps.unsqueeze(3), groups=c)
    elif gain != 1:
        x = x * gain
    return x[:, :, ::downy, ::downx]


@contextlib.contextmanager
def textbook_ops():
    """Run torch_utils.ops.upfirdn2d / bias_act (and everything built on them) on the textbook versions."""
    saved = upfirdn2d_module.upfirdn2d, bias_act_module.bias_act
    # Looked up at call time, so a test can wrap them.
    upfirdn2d_module.upfirdn2d = lambda *args, **kwargs: textbook_upfirdn2d(*args, **kwargs)
    bias_act_module.bias_act = lambda *args, **kwargs: textbook_bias_act(*args, **kwargs)
    try:
        yield
    finally:
        upfirdn2d_module.upfirdn2d, bias_act_module.bias_act = saved
