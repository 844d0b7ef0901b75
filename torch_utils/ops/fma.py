"""Fused multiply-add ``a * b + c`` with broadcasting."""

from __future__ import annotations

import torch


def fma(a, b, c):
    """Return ``a * b + c`` (shapes broadcast) in one pass over memory.

    ``torch.addcmul`` computes it without materialising ``a * b`` and its autograd formula reduces each
    gradient to its operand's broadcast shape; derivatives of any order work.
    """
    for name, t in (('a', a), ('b', b), ('c', c)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f'fma: {name} must be a torch.Tensor, got {type(t).__name__}')
    return torch.addcmul(c, a, b)
