"""Bilinear ``grid_sample`` (zero padding, ``align_corners=False``) with working double backward.

ADA's geometric augmentations sample the image with ``grid_sample``, and the R1 penalty then needs the
gradient of the input gradient. Current torch differentiates ``grid_sample``'s backward natively, to
any order and w.r.t. both the input and the grid; whether it does is probed once, on the first call,
with a tiny float64 computation (no version checks). On a torch that cannot, a fallback whose backward
is itself differentiable w.r.t. the upstream gradient is used: there, second-order derivatives that
involve the grid (differentiating the grid gradient, or the input gradient w.r.t. the grid) raise a
RuntimeError instead of being silently wrong. ADA's grid never requires grad, so R1 works on both.
"""

from __future__ import annotations

import threading

import torch
import torch.nn.functional as F

_BILINEAR = 0   # interpolation_mode code of aten::grid_sampler_2d
_ZEROS = 0      # padding_mode code of aten::grid_sampler_2d

_probe_lock = threading.Lock()
_native_ok: bool | None = None


def grid_sample(input, grid):
    """``F.grid_sample(input, grid, mode='bilinear', padding_mode='zeros', align_corners=False)``.

    Args:
        input: Tensor [N, C, H, W].
        grid:  Tensor [N, H_out, W_out, 2] of (x, y) sample positions in [-1, 1], same dtype as input.
    """
    if not isinstance(input, torch.Tensor) or input.ndim != 4:
        raise ValueError(f'grid_sample: input must be a 4-D tensor [N, C, H, W], got {_describe(input)}')
    if not isinstance(grid, torch.Tensor) or grid.ndim != 4 or grid.shape[3] != 2 or grid.shape[0] != input.shape[0]:
        raise ValueError(f'grid_sample: grid must be a tensor [N, H_out, W_out, 2] with N = {input.shape[0]}, '
                         f'got {_describe(grid)}')
    if native_double_backward_supported():
        return F.grid_sample(input, grid, mode='bilinear', padding_mode='zeros', align_corners=False)
    return _GridSample2dForward.apply(input, grid)


def _describe(obj) -> str:
    if isinstance(obj, torch.Tensor):
        return f'a tensor of shape {list(obj.shape)}'
    return type(obj).__name__


def native_double_backward_supported() -> bool:
    """Whether torch's own grid_sample can be differentiated twice (w.r.t. input, grid and upstream grad)."""
    global _native_ok
    if _native_ok is None:
        with _probe_lock:
            if _native_ok is None:
                _native_ok = _probe_native()
    return _native_ok


def _probe_native() -> bool:
    with torch.enable_grad():
        x = torch.linspace(-1, 1, 8, dtype=torch.float64).reshape(1, 2, 2, 2).requires_grad_(True)
        g = torch.tensor([[[[0.1, -0.3], [0.7, 0.2]]]], dtype=torch.float64, requires_grad=True)
        go = torch.ones([1, 2, 1, 2], dtype=torch.float64, requires_grad=True)
        try:
            y = F.grid_sample(x, g, mode='bilinear', padding_mode='zeros', align_corners=False)
            gx, gg = torch.autograd.grad(y, [x, g], go, create_graph=True)
            torch.autograd.grad((gx.square().sum() + gg.square().sum()), [go, g, x], allow_unused=True)
        except (RuntimeError, NotImplementedError):
            return False
    return True

# ----------------------------------------------------------------------------
# Fallback for a torch without a derivative of grid_sampler_2d_backward.


class _GridSample2dForward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, grid):  # pylint: disable=arguments-differ
        ctx.save_for_backward(input, grid)
        return F.grid_sample(input, grid, mode='bilinear', padding_mode='zeros', align_corners=False)

    @staticmethod
    def backward(ctx, grad_output):  # pylint: disable=arguments-differ
        input, grid = ctx.saved_tensors
        grad_input, grad_grid = _GridSample2dBackward.apply(grad_output, input, grid,
                                                            ctx.needs_input_grad[0], ctx.needs_input_grad[1])
        return grad_input, grad_grid


class _GridSample2dBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, grad_output, input, grid, want_input, want_grid):  # pylint: disable=arguments-differ
        grad_input, grad_grid = torch.ops.aten.grid_sampler_2d_backward(
            grad_output, input, grid, _BILINEAR, _ZEROS, False, [bool(want_input), bool(want_grid)])
        ctx.save_for_backward(grid)
        ctx.set_materialize_grads(False)
        return (grad_input if want_input else None), (grad_grid if want_grid else None)

    @staticmethod
    def backward(ctx, grad2_grad_input, grad2_grad_grid):  # pylint: disable=arguments-differ
        grid, = ctx.saved_tensors
        if grad2_grad_grid is not None:
            raise RuntimeError('grid_sample_gradfix: differentiating the gradient w.r.t. the grid is not '
                               'supported by the fallback used on this torch version')
        if grad2_grad_input is not None and ctx.needs_input_grad[2]:
            raise RuntimeError('grid_sample_gradfix: second-order gradients w.r.t. the grid are not supported '
                               'by the fallback used on this torch version')
        grad2_grad_output = None
        if ctx.needs_input_grad[0] and grad2_grad_input is not None:
            # grad_input is linear in grad_output: its adjoint is grid_sample itself.
            grad2_grad_output = _GridSample2dForward.apply(grad2_grad_input, grid)
        # grad_input does not depend on input (the op is linear in input).
        return grad2_grad_output, None, None, None, None
