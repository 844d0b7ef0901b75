"""Lazy building of C++/CUDA extensions with ninja, cached per source digest and device.

Nothing is compiled at import. The first call to ``get_plugin`` for a module builds it through
``torch.utils.cpp_extension.load`` into a folder named after a digest of the sources, the torch/CUDA
versions and the device's compute capability, so a second process (or a second run) reuses the
build. ``try_get_plugin`` never raises: when the build is impossible (no CUDA, no compiler, no
ninja, missing sources) or fails, it warns once per module and returns None so that the op can use
its reference implementation.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import warnings
from typing import Any

import dnnlib

DISABLE_ENV_VAR = 'GANMC_DISABLE_CUSTOM_OPS'   # set to 1 to force every plugin to fall back
VERBOSE_ENV_VAR = 'GANMC_VERBOSE_CUSTOM_OPS'   # set to 1 to see the compiler's output


class CustomOpFallbackWarning(UserWarning):
    """An optimised op could not be loaded; its reference implementation is used instead."""


_lock = threading.Lock()
_plugins: dict[str, Any] = {}          # module name -> loaded extension
_failures: dict[str, str] = {}         # module name -> reason (so a failed build is not retried every call)


def _source_digest(paths: list[str], extra: list[str]) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(os.path.basename(path).encode('utf-8'))
        with open(path, 'rb') as f:
            h.update(f.read())
    for item in extra:
        h.update(item.encode('utf-8'))
    return h.hexdigest()[:16]


def build_dir_for(module_name: str, digest: str) -> str:
    root = os.environ.get('TORCH_EXTENSIONS_DIR') or dnnlib.make_cache_dir_path('torch_extensions')
    return os.path.join(root, f'{module_name}-{digest}')


def get_plugin(module_name: str, sources: list[str], headers: list[str] | None = None,
               source_dir: str | None = None, **build_kwargs) -> Any:
    """Build (once) and return the extension `module_name`; raises RuntimeError with the reason on failure."""
    with _lock:
        if module_name in _plugins:
            return _plugins[module_name]
        if module_name in _failures:
            raise RuntimeError(_failures[module_name])
        try:
            plugin = _build(module_name, sources, headers or [], source_dir, build_kwargs)
        except Exception as e:  # noqa: BLE001 - any build failure becomes the recorded reason
            reason = f'{type(e).__name__}: {e}'.strip().splitlines()[0]
            _failures[module_name] = f'cannot build custom op {module_name}: {reason}'
            raise RuntimeError(_failures[module_name]) from e
        _plugins[module_name] = plugin
        return plugin


def try_get_plugin(module_name: str, sources: list[str], headers: list[str] | None = None,
                   source_dir: str | None = None, **build_kwargs) -> Any | None:
    """Like get_plugin, but returns None (after one warning per module) when the extension is unavailable."""
    already_failed = module_name in _failures
    try:
        return get_plugin(module_name, sources, headers, source_dir, **build_kwargs)
    except RuntimeError as e:
        if not already_failed:
            warnings.warn(f'{e}; falling back to the reference implementation', CustomOpFallbackWarning, stacklevel=2)
        return None


def reset(module_name: str | None = None) -> None:
    """Forget loaded plugins and recorded failures (tests use this to re-trigger the warning path)."""
    with _lock:
        for d in (_plugins, _failures):
            if module_name is None:
                d.clear()
            else:
                d.pop(module_name, None)


def _build(module_name: str, sources: list[str], headers: list[str], source_dir: str | None,
           build_kwargs: dict) -> Any:
    if os.environ.get(DISABLE_ENV_VAR, '') not in ('', '0'):
        raise RuntimeError(f'custom ops are disabled by {DISABLE_ENV_VAR}')
    import torch
    import torch.utils.cpp_extension as cpp_extension

    if source_dir is not None:
        sources = [os.path.join(source_dir, s) for s in sources]
        headers = [os.path.join(source_dir, h) for h in headers]
    missing = [p for p in sources + headers if not os.path.isfile(p)]
    if missing:
        raise RuntimeError(f'source file {missing[0]} is missing')
    if any(s.endswith('.cu') for s in sources) and not torch.cuda.is_available():
        raise RuntimeError('CUDA is not available')
    if not cpp_extension.is_ninja_available():
        raise RuntimeError('ninja is not installed (pip install ninja)')
    compiler = os.environ.get('CXX', 'c++')
    if shutil.which(compiler) is None:
        raise RuntimeError(f'no C++ compiler found ({compiler})')

    extra = [torch.__version__, str(torch.version.cuda), repr(sorted(build_kwargs.items()))]
    if torch.cuda.is_available():
        extra.append(torch.cuda.get_device_name())
        extra.append('sm_%d%d' % torch.cuda.get_device_capability())
    digest = _source_digest(sources + headers, extra)
    build_dir = build_dir_for(module_name, digest)
    os.makedirs(build_dir, exist_ok=True)
    verbose = os.environ.get(VERBOSE_ENV_VAR, '') not in ('', '0')
    return cpp_extension.load(name=module_name, sources=sources, build_directory=build_dir,
                              verbose=verbose, **build_kwargs)
