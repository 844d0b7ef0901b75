"""Modules of the codebase that is running, resolved when first used rather than at import.

This package's β schedule and its NVIDIA-convention loss classes (nvidia_plugin) must also run inside
NVIDIA's stylegan2-ada-pytorch or stylegan3 checkouts, whose top-level packages (``torch_utils``,
``training``, ``dnnlib``, ``metrics``) share our packages' names but are different code. Importing them at
module level would either fail there or bind our modules where the host's are wanted. A `HostModule`
imports its dotted name on first attribute access: in this project that is our module, inside NVIDIA's
checkout it is theirs (so that, e.g., statistics go to the ``training_stats`` their loop reads).
"""

from __future__ import annotations

import contextlib
import importlib


class HostModule:
    """Lazy stand-in for a module of the running codebase: ``HostModule('torch_utils.training_stats').report``."""

    def __init__(self, name: str):
        object.__setattr__(self, '_name', name)

    def module(self):
        return importlib.import_module(self._name)

    def __getattr__(self, attr):
        return getattr(self.module(), attr)

    def __repr__(self):
        return f'HostModule({self._name!r})'


training_stats = HostModule('torch_utils.training_stats')
conv2d_gradfix = HostModule('torch_utils.ops.conv2d_gradfix')


def no_weight_gradients(enabled: bool = True):
    """The host's ``conv2d_gradfix.no_weight_gradients`` context (skips conv weight gradients inside double
    backward passes, an optimisation), or a no-op when the host has none."""
    if not enabled:
        return contextlib.nullcontext()
    try:
        fn = conv2d_gradfix.no_weight_gradients
    except (ImportError, AttributeError):
        return contextlib.nullcontext()
    return fn()
