"""Low-level ops for StyleGAN2-style networks: fused bias + activation, FIR up/down-sampling,
resampling convolutions, fused multiply-add and convolution / grid-sample wrappers whose
gradients of gradients work.

Ops that have (or will have) a CUDA kernel take ``impl='ref'|'cuda'``. The reference is pure PyTorch,
fast on CPU, and correct for first and second derivatives; it is also what runs whenever the kernel
cannot be used. ``OpPlugin`` holds the policy shared by those ops: nothing is compiled at import, the
extension is built lazily on the first CUDA call, and every fallback warns exactly once.

Importing this package imports no op module; use ``from torch_utils.ops import bias_act``.
"""

from __future__ import annotations

import os
import threading
from typing import Any

SOURCE_DIR = os.path.dirname(os.path.abspath(__file__))  # where the (future) .cpp/.cu sources live

IMPLS = ('ref', 'cuda')


def check_impl(op_name: str, impl: Any) -> None:
    """Raise a one-line ValueError unless `impl` is one of IMPLS."""
    if impl not in IMPLS:
        raise ValueError(f"{op_name}: impl must be 'ref' or 'cuda', got {impl!r}")


class OpPlugin:
    """The lazily built CUDA extension of one op, and the fallback policy around it.

    ``select(impl, x)`` returns the loaded extension when ``impl == 'cuda'``, ``x`` lives on a CUDA
    device and the extension can be built; otherwise None, which tells the caller to use its reference
    implementation. A tensor on another device simply takes the reference (the kernels are CUDA
    kernels: that is dispatch, not a failure, as in stylegan2-ada). A CUDA tensor whose extension
    cannot be built falls back with one warning per op, given by ``custom_ops.try_get_plugin``
    (category ``torch_utils.custom_ops.CustomOpFallbackWarning``).
    """

    def __init__(self, op_name: str, module_name: str, sources: list[str], headers: list[str] | None = None,
                 **build_kwargs):
        self.op_name = op_name                  # public name used in messages, e.g. 'bias_act'
        self.module_name = module_name          # extension module name passed to custom_ops
        self.sources = list(sources)            # source file names, relative to SOURCE_DIR
        self.headers = list(headers or [])      # header file names, relative to SOURCE_DIR
        self.build_kwargs = build_kwargs        # extra arguments for torch.utils.cpp_extension.load
        self._lock = threading.Lock()
        self._tried = False
        self._plugin = None

    def select(self, impl: str, x: Any) -> Any | None:
        check_impl(self.op_name, impl)
        if impl == 'ref':
            return None
        if x.device.type != 'cuda':
            return None
        return self.load()

    def load(self) -> Any | None:
        """Build or fetch the extension once; None (after custom_ops' single warning) when unavailable."""
        if not self._tried:
            with self._lock:
                if not self._tried:
                    from torch_utils import custom_ops
                    self._plugin = custom_ops.try_get_plugin(self.module_name, sources=self.sources,
                                                             headers=self.headers, source_dir=SOURCE_DIR,
                                                             **self.build_kwargs)
                    self._tried = True
        return self._plugin

    def reset(self) -> None:
        """Forget the loaded extension (tests use this)."""
        with self._lock:
            self._tried = False
            self._plugin = None
