"""Which implementation of bias_act and upfirdn2d the networks run on, for side-by-side timings.

    ours      the default dispatch: the CUDA kernels for CUDA tensors, the reference elsewhere
    ref       the reference ops (plain PyTorch), also for CUDA tensors
    compile   the reference ops with their kernels compiled by torch.compile: each call of
              bias_act._ref_kernel / upfirdn2d._ref_kernel runs a compiled graph (inside the ops'
              autograd Functions, so first and second derivatives still work, which compiling the
              whole network would not give: R1 and path length need double backward)
    textbook  the definitions written with ordinary torch ops (benchmarks/textbook_ops.py)

`op_mode(name)` swaps the module attributes that the networks look up at call time for the duration
of a `with` block. The compile backend is inductor unless GANMC_COMPILE_BACKEND names another
('eager' runs dynamo's tracing without code generation: the CPU smoke tests use it).
"""

from __future__ import annotations

import contextlib
import functools
import os

import torch

from benchmarks.textbook_ops import textbook_ops
from torch_utils.ops import bias_act as bias_act_module
from torch_utils.ops import upfirdn2d as upfirdn2d_module

MODES = ('ours', 'ref', 'compile', 'textbook')
BACKEND_ENV_VAR = 'GANMC_COMPILE_BACKEND'
RECOMPILE_LIMIT = 512    # every (activation, gradient order, factor, padding) combination is its own graph

_compiled: dict[str, dict] = {}   # backend -> {'bias_act': fn, 'upfirdn2d': fn}


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f'unknown ops mode {mode!r}; expected one of {", ".join(MODES)}')


def compiled_kernels(backend: str | None = None) -> dict:
    """torch.compile'd reference kernels (built once per backend; compilation itself happens on first call)."""
    backend = backend or os.environ.get(BACKEND_ENV_VAR, '') or 'inductor'
    if backend not in _compiled:
        config = torch._dynamo.config
        for name in ('recompile_limit', 'cache_size_limit'):
            if hasattr(config, name):
                setattr(config, name, max(getattr(config, name), RECOMPILE_LIMIT))
        for name in ('accumulated_recompile_limit', 'accumulated_cache_size_limit'):
            if hasattr(config, name):
                setattr(config, name, max(getattr(config, name), 4 * RECOMPILE_LIMIT))
        _compiled[backend] = {
            'bias_act': torch.compile(bias_act_module._ref_kernel, backend=backend, dynamic=True),
            'upfirdn2d': torch.compile(upfirdn2d_module._ref_kernel, backend=backend, dynamic=True),
        }
    return _compiled[backend]


@contextlib.contextmanager
def op_mode(mode: str):
    """Run torch_utils.ops.bias_act / upfirdn2d (and everything built on them) in the given mode."""
    check_mode(mode)
    if mode == 'ours':
        yield
        return
    if mode == 'textbook':
        with textbook_ops():
            yield
        return
    saved = (bias_act_module.bias_act, upfirdn2d_module.upfirdn2d, bias_act_module._ref_kernel,
             upfirdn2d_module._ref_kernel)
    bias_act_module.bias_act = functools.partial(_forced_ref, saved[0])
    upfirdn2d_module.upfirdn2d = functools.partial(_forced_ref, saved[1])
    if mode == 'compile':
        kernels = compiled_kernels()
        bias_act_module._ref_kernel = kernels['bias_act']
        upfirdn2d_module._ref_kernel = kernels['upfirdn2d']
    try:
        yield
    finally:
        (bias_act_module.bias_act, upfirdn2d_module.upfirdn2d, bias_act_module._ref_kernel,
         upfirdn2d_module._ref_kernel) = saved


def _forced_ref(op, *args, **kwargs):
    kwargs['impl'] = 'ref'
    return op(*args, **kwargs)
