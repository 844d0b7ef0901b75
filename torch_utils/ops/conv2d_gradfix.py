"""``conv2d`` / ``conv_transpose2d`` with the signatures of torch.nn.functional, plus
``no_weight_gradients()``: while it is active, backward passes through these convolutions do not
propagate a gradient to their weights.

StyleGAN2's path-length regulariser differentiates the generator's output w.r.t. the latent codes
(``create_graph=True``) inside this context; the weights receive their gradient later, when the penalty
itself is backpropagated outside the context. The convolutions are torch's own, so derivatives of any
order work (R1 needs the gradient of the input gradient w.r.t. the weights), and autograd still skips
work it does not need: under ``torch.autograd.grad(..., inputs=...)`` a weight gradient that leads to
none of the inputs is never computed.

How: the weight passes through an identity autograd node whose backward reads the context's state
*when the backward pass runs* (as the regulariser needs: the forward pass happens outside the
context) and returns no gradient while it is active. The state is a process-wide depth counter that is
only changed by the context manager, in try/finally, so nesting works and an exception restores it.
Backward passes run on autograd's own threads for CUDA tensors, which is why the state is not
thread-local: do not run an unrelated backward pass concurrently with the context active.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F


class _WeightGradState:
    depth = 0   # number of active no_weight_gradients(disable=True) contexts


_state = _WeightGradState()


@contextlib.contextmanager
def no_weight_gradients(disable=True):
    """Within the block, backward passes give no gradient to the weights of this module's convolutions.

    ``disable=False`` makes the context a no-op (handy for ``with no_weight_gradients(do_pl_reg):``).
    Nestable; the previous state is restored even when an exception escapes.
    """
    if not disable:
        yield
        return
    _state.depth += 1
    try:
        yield
    finally:
        _state.depth -= 1


def weight_gradients_disabled() -> bool:
    """True while a no_weight_gradients(disable=True) context is active."""
    return _state.depth > 0


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.nn.functional.conv2d, honouring no_weight_gradients()."""
    return F.conv2d(input, _gate(weight), bias, stride, padding, dilation, groups)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """torch.nn.functional.conv_transpose2d, honouring no_weight_gradients()."""
    return F.conv_transpose2d(input, _gate(weight), bias, stride, padding, output_padding, groups, dilation)


def _gate(weight):
    if isinstance(weight, torch.Tensor) and weight.requires_grad and torch.is_grad_enabled():
        return _WeightGate.apply(weight)
    return weight


class _WeightGate(torch.autograd.Function):
    """Identity whose backward drops the gradient while no_weight_gradients() is active."""

    @staticmethod
    def forward(ctx, weight):  # pylint: disable=arguments-differ
        return weight.view_as(weight)

    @staticmethod
    def backward(ctx, grad):  # pylint: disable=arguments-differ
        if _state.depth > 0:
            return None
        return grad
