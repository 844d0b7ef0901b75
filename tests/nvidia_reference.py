"""Test helpers around NVIDIA's code and file format (not a test module).

* `nvidia_pickle_bytes` writes a pickle in NVIDIA's persistent-module format from our own modules (their
  class names are NVIDIA's), so tests can craft files: records made by a stand-in for NVIDIA's
  ``torch_utils.persistence._reconstruct_persistent_obj`` carrying a chosen ``module_src``.
* `stylegan3_copy` copies NVIDIA's unmodified stylegan3 (or stylegan2-ada-pytorch) tree (../shared/reference)
  to a temporary folder to run it beside ours, with a one-line stand-in for ``pkg_resources.parse_version`` when setuptools no
  longer ships pkg_resources (its only use there).
"""

from __future__ import annotations

import collections
import pickle
import shutil
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
REFERENCE = REPO_ROOT.parent / 'shared' / 'reference'
NVIDIA_PICKLES = REPO_ROOT.parent / 'shared' / 'data' / 'nvidia-pickles'


class Record:
    """Pickles as ``torch_utils.persistence._reconstruct_persistent_obj(meta)``, as NVIDIA's modules do."""

    def __init__(self, meta):
        self.meta = meta

    def __reduce__(self):
        return (_reconstruct_persistent_obj, (self.meta,))


def _reconstruct_persistent_obj(meta):  # pragma: no cover - only its name is written into the pickle
    raise AssertionError('stand-in; never called')


def module_record(module: torch.nn.Module, module_src: str = '# source\n', class_name: str | None = None,
                  init_kwargs: dict | None = None, extra_buffers: dict | None = None) -> Record:
    """A record of `module` shaped like NVIDIA's (its __dict__ with parameters, buffers, children)."""
    from torch_utils import persistence
    children = collections.OrderedDict((name, module_record(child, module_src))
                                       for name, child in module._modules.items())
    buffers = collections.OrderedDict(module._buffers)
    buffers.update(extra_buffers or {})
    state = {
        'training': module.training,
        '_parameters': collections.OrderedDict(module._parameters),
        '_buffers': buffers,
        '_non_persistent_buffers_set': set(module._non_persistent_buffers_set) - set(extra_buffers or {}),
        '_modules': children,
        '_init_args': (),
        '_init_kwargs': dict(persistence.get_init_kwargs(module)) if init_kwargs is None else init_kwargs,
    }
    return Record({'type': 'class', 'version': 6, 'module_src': module_src,
                   'class_name': class_name or type(module).__name__, 'state': state})


def nvidia_pickle_bytes(obj) -> bytes:
    """pickle.dumps with Record's function written under NVIDIA's global name."""
    import torch_utils.persistence as ours
    fn = _reconstruct_persistent_obj
    old = (fn.__module__, fn.__qualname__)
    fn.__module__, fn.__qualname__ = 'torch_utils.persistence', '_reconstruct_persistent_obj'
    had = hasattr(ours, '_reconstruct_persistent_obj')
    ours._reconstruct_persistent_obj = fn       # pickle checks that the name resolves to this object
    try:
        return pickle.dumps(obj, protocol=4)
    finally:
        fn.__module__, fn.__qualname__ = old
        if not had:
            del ours._reconstruct_persistent_obj


def stylegan3_copy(dest: Path, name: str = 'stylegan3') -> Path:
    """An unmodified copy of NVIDIA's stylegan3 (or `name`: stylegan2-ada-pytorch) tree in `dest` (skips the
    test when it is absent)."""
    src = REFERENCE / name
    if not src.is_dir():
        pytest.skip(f'NVIDIA reference tree {src} is absent')
    tree = dest / name
    shutil.copytree(src, tree, ignore=shutil.ignore_patterns('docs', '__pycache__', '*.pyc'))
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        shim = dest / 'shim'
        shim.mkdir()
        (shim / 'pkg_resources.py').write_text('from packaging.version import parse as parse_version\n')
    return tree


def python_path(tree: Path) -> str:
    """PYTHONPATH for a subprocess running NVIDIA's copy: the copy first, then the shim if any."""
    parts = [str(tree)]
    if (tree.parent / 'shim').is_dir():
        parts.append(str(tree.parent / 'shim'))
    return ':'.join(parts)
