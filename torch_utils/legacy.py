"""Reading NVIDIA's network pickles as data: no code from the file is run.

stylegan2-ada-pytorch and stylegan3 write ``network-snapshot-NNNNNN.pkl`` with ``pickle.dump`` of a
dict holding ``training_set_kwargs`` and the modules ``G``, ``D``, ``G_ema`` and ``augment_pipe``.
Each module is pickled through NVIDIA's persistence helper: a call of
``torch_utils.persistence._reconstruct_persistent_obj(meta)`` whose ``meta`` carries the Python
source of the class's module (``module_src``), the class name, and the module's ``__dict__`` (with
the constructor's ``_init_args``/``_init_kwargs``, parameters, buffers and child modules). NVIDIA's
own loader executes that source.

Here an unpickler resolves only an explicit allowlist of globals (tensor and storage rebuilding,
numpy array reconstruction, ``collections.OrderedDict``, dnnlib's ``EasyDict`` and the persistence
reconstructor); every other global is refused with one line naming it. The reconstructor is
replaced by a function that returns a plain `NvidiaRecord` (class name and state); the stored
source text is dropped unread. The module records are then mapped by class name to our own
registered classes (by their registered names, built through `torch_utils.persistence`), which are
constructed from the stored constructor keywords and must take every stored parameter and buffer
with the same name and shape.

The result has the layout of ``torch_utils.checkpoint.load_snapshot``: ``{'format', 'version',
'modules': {name: {'config', 'state_dict'}}, 'meta'}``, without ``'state'`` (an NVIDIA pickle holds
no optimiser, counters or random state: resuming from one is transfer learning).
"""

from __future__ import annotations

import collections
import io
import json
import os
import pickle
import warnings
from typing import Any

import numpy as np
import torch
import torch._utils  # noqa: F401 - the tensor rebuild functions named by pickles live here

import dnnlib
from torch_utils import persistence

# ----------------------------------------------------------------------------
# stylegan2-ada-pytorch's transfer-learning sources (its train.py --resume names).

PRETRAINED_URLS = {
    'ffhq256': 'https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/transfer-learning-source-nets/ffhq-res256-mirror-paper256-noaug.pkl',
    'ffhq512': 'https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/transfer-learning-source-nets/ffhq-res512-mirror-stylegan2-noaug.pkl',
    'ffhq1024': 'https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/transfer-learning-source-nets/ffhq-res1024-mirror-stylegan2-noaug.pkl',
    'celebahq256': 'https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/transfer-learning-source-nets/celebahq-res256-mirror-paper256-kimg100000-ada-target0.5.pkl',
    'lsundog256': 'https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/transfer-learning-source-nets/lsundog-res256-paper256-kimg100000-noaug.pkl',
}


class LegacyError(ValueError):
    """An NVIDIA pickle that cannot be imported safely or does not fit our networks (one-line message)."""


def resolve_pretrained(spec: str) -> str:
    """The URL of a stylegan2-ada-pytorch resume name (``ffhq256`` ...); anything else unchanged.

    An existing local file of that name wins over the published network."""
    if isinstance(spec, str) and spec in PRETRAINED_URLS and not os.path.exists(spec):
        return PRETRAINED_URLS[spec]
    return spec


def is_pickle_file(path: str) -> bool:
    """True when the file starts like a pickle of protocol 2 or newer (torch.save files are zip archives)."""
    with open(path, 'rb') as f:
        head = f.read(2)
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


# ----------------------------------------------------------------------------
# The restricted unpickler.


class NvidiaRecord:
    """What NVIDIA's persistence reconstructor would have turned into a live object: data only."""

    __slots__ = ('class_name', 'state')

    def __init__(self, class_name: str, state: dict):
        self.class_name = class_name
        self.state = state

    def __repr__(self):
        return f'NvidiaRecord({self.class_name})'


def _persistent_record(meta: Any) -> NvidiaRecord:
    # Stands in for NVIDIA's torch_utils.persistence._reconstruct_persistent_obj. meta['module_src'] is
    # source code written by whoever made the file: it is neither kept nor looked at.
    if not isinstance(meta, dict) or meta.get('type') != 'class':
        raise LegacyError('persistent object record is not a class record')
    class_name = meta.get('class_name')
    state = meta.get('state')
    if not isinstance(class_name, str) or not isinstance(state, dict):
        raise LegacyError('persistent object record lacks a class name or a state dict')
    return NvidiaRecord(class_name, state)


def _storage_from_bytes(data: Any):
    # torch pickles a storage as torch.save bytes: read them back with torch's own data-only loader.
    if not isinstance(data, (bytes, bytearray)):
        raise LegacyError('tensor storage record does not hold bytes')
    return torch.load(io.BytesIO(bytes(data)), map_location='cpu', weights_only=True)


def _allowed_globals() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {
        ('collections', 'OrderedDict'): collections.OrderedDict,
        ('torch._utils', '_rebuild_tensor_v2'): torch._utils._rebuild_tensor_v2,
        ('torch._utils', '_rebuild_parameter'): torch._utils._rebuild_parameter,
        ('torch.storage', '_load_from_bytes'): _storage_from_bytes,
        ('torch', 'Size'): torch.Size,
        ('numpy', 'ndarray'): np.ndarray,
        ('numpy', 'dtype'): np.dtype,
        ('dnnlib.util', 'EasyDict'): dnnlib.EasyDict,
        ('dnnlib', 'EasyDict'): dnnlib.EasyDict,
        ('torch_utils.persistence', '_reconstruct_persistent_obj'): _persistent_record,
    }
    for mod in ('numpy.core.multiarray', 'numpy._core.multiarray'):     # numpy 1.x / 2.x spellings
        allowed[(mod, '_reconstruct')] = _numpy_reconstruct
        allowed[(mod, 'scalar')] = _numpy_scalar
    for name in ('FloatStorage', 'DoubleStorage', 'HalfStorage', 'BFloat16Storage', 'LongStorage', 'IntStorage',
                 'ShortStorage', 'CharStorage', 'ByteStorage', 'BoolStorage'):
        allowed[('torch', name)] = getattr(torch, name)
    return allowed


def _numpy_reconstruct(subtype, shape, dtype_code):
    if subtype is not np.ndarray:
        raise LegacyError(f'refusing numpy array subtype {subtype!r}')
    return np.ndarray.__new__(np.ndarray, shape, dtype_code)


def _numpy_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise LegacyError(f'refusing numpy scalar of dtype {dtype!r}')
    return np.frombuffer(bytes(data), dtype=dtype, count=1)[0]


class _RestrictedUnpickler(pickle.Unpickler):
    allowed = None

    def find_class(self, module: str, name: str) -> Any:
        if type(self).allowed is None:
            type(self).allowed = _allowed_globals()
        obj = self.allowed.get((module, name))
        if obj is None:
            hint = ''
            if module.startswith('dnnlib.tflib'):
                hint = ' (a TensorFlow StyleGAN pickle: only the PyTorch stylegan2-ada / stylegan3 format is read)'
            raise LegacyError(f'refusing to load global {module}.{name}: not on the list of allowed '
                              f'tensor/array/record types{hint}')
        return obj

    def persistent_load(self, pid):
        raise LegacyError('refusing a persistent id in a network pickle')


def read_pickle(f) -> Any:
    """Unpickle an open binary file with the allowlist; NVIDIA's module records become `NvidiaRecord`s."""
    try:
        return _RestrictedUnpickler(f).load()
    except LegacyError:
        raise
    except Exception as e:  # noqa: BLE001 - any corruption is reported as one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise LegacyError(f'not a readable network pickle ({first})') from None


# ----------------------------------------------------------------------------
# Mapping NVIDIA's classes to ours.

# NVIDIA's top-level module classes -> our registered persistent class names (strings: torch_utils
# does not import training). stylegan2-ada-pytorch's training.networks and stylegan3's
# training.networks_stylegan2 use the same class names.
TOP_LEVEL_CLASSES = {
    'G': ('Generator', 'training.networks.Generator'),
    'G_ema': ('Generator', 'training.networks.Generator'),
    'D': ('Discriminator', 'training.networks.Discriminator'),
    'augment_pipe': ('AugmentPipe', 'training.augment.AugmentPipe'),
}

# Classes that may appear inside those modules (StyleGAN2's building blocks). Anything else inside,
# e.g. stylegan3-t/r's SynthesisInput, means an architecture we do not have.
STYLEGAN2_CLASSES = frozenset({
    'Generator', 'MappingNetwork', 'SynthesisNetwork', 'SynthesisBlock', 'SynthesisLayer', 'ToRGBLayer',
    'FullyConnectedLayer', 'Conv2dLayer', 'Discriminator', 'DiscriminatorBlock', 'DiscriminatorEpilogue',
    'MinibatchStdLayer', 'AugmentPipe',
})
STYLEGAN3_MARKERS = frozenset({'SynthesisInput'})

# Buffers that NVIDIA's AugmentPipe stores but ours derives from code (not saved): checked, then dropped.
DERIVED_BUFFERS = {'training.augment.AugmentPipe': ('Hz_geom', 'Hz_fbank')}

_GENERATOR_OWN_ARGS = ('z_dim', 'c_dim', 'w_dim', 'img_resolution', 'img_channels', 'mapping_kwargs', 'synthesis_kwargs')
# stylegan3's networks_stylegan2 choice of when to fuse the modulated convolution. Ours decides per call
# (same result within round-off), so the option is dropped.
_DROPPED_GENERATOR_ARGS = ('fused_modconv_default',)


def _to_json(value: Any, where: str) -> Any:
    """Constructor arguments and metadata as plain JSON values (numpy scalars, tuples, EasyDicts)."""
    if isinstance(value, (np.generic,)):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise LegacyError(f'{where}: non-string key in stored arguments')
        return {k: _to_json(v, f'{where}.{k}') for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json(v, where) for v in value]
    raise LegacyError(f'{where}: stored value of type {type(value).__name__} is not plain data')


def _walk_records(record: NvidiaRecord, prefix: str, classes: set, tensors: dict) -> None:
    """Collect the class names and the state-dict tensors (parameters and persistent buffers) of a tree."""
    classes.add(record.class_name)
    st = record.state
    non_persistent = st.get('_non_persistent_buffers_set') or set()
    for group in ('_parameters', '_buffers'):
        items = st.get(group) or {}
        if not isinstance(items, dict):
            raise LegacyError(f'{record.class_name}: {group} is not a dict')
        for name, tensor in items.items():
            if tensor is None or (group == '_buffers' and name in non_persistent):
                continue
            if not isinstance(tensor, torch.Tensor):
                raise LegacyError(f'{prefix}{name}: stored {group[1:-1]} is not a tensor')
            tensors[prefix + name] = tensor.detach()
    for name, child in (st.get('_modules') or {}).items():
        if child is None:
            continue
        if not isinstance(child, NvidiaRecord):
            raise LegacyError(f'{prefix}{name}: child module is not a persistent record')
        _walk_records(child, f'{prefix}{name}.', classes, tensors)


def _our_init_kwargs(our_name: str, record: NvidiaRecord, key: str) -> dict:
    st = record.state
    if st.get('_init_args'):
        raise LegacyError(f'{key} ({record.class_name}): stores positional constructor arguments; '
                          f'only keyword arguments can be mapped')
    kwargs = _to_json(dict(st.get('_init_kwargs') or {}), key)
    if our_name == 'training.networks.Generator':
        # stylegan3's networks_stylegan2.Generator takes the synthesis arguments flat.
        flat = {k: v for k, v in kwargs.items() if k not in _GENERATOR_OWN_ARGS and k not in _DROPPED_GENERATOR_ARGS}
        kwargs = {k: v for k, v in kwargs.items() if k in _GENERATOR_OWN_ARGS}
        if flat:
            kwargs['synthesis_kwargs'] = {**kwargs.get('synthesis_kwargs', {}), **flat}
    return kwargs


def convert_module(record: Any, key: str, built_cache: dict | None = None) -> dict:
    """One NVIDIA module record -> our packed module ``{'config': json, 'state_dict': {...}}``.

    Our class is built from the stored keywords and must hold exactly the stored parameters and buffers."""
    if not isinstance(record, NvidiaRecord):
        raise LegacyError(f'{key}: not one of NVIDIA\'s persistent modules (got {type(record).__name__})')
    nvidia_name, our_name = TOP_LEVEL_CLASSES[key]
    classes: set = set()
    tensors: dict = {}
    _walk_records(record, '', classes, tensors)
    sg3 = sorted(classes & STYLEGAN3_MARKERS)
    if sg3:
        raise LegacyError(f'{key}: a StyleGAN3 (-T/-R) network (class {sg3[0]}) is not supported; only StyleGAN2 '
                          f'networks (stylegan2-ada-pytorch, stylegan3 --cfg=stylegan2) can be imported')
    unknown = sorted(classes - STYLEGAN2_CLASSES)
    if record.class_name != nvidia_name or unknown:
        name = record.class_name if record.class_name != nvidia_name else unknown[0]
        raise LegacyError(f'{key}: class {name} is not one this project can import (expected NVIDIA\'s {nvidia_name} '
                          f'built from {", ".join(sorted(STYLEGAN2_CLASSES))})')

    config = {'class_name': our_name, 'init_kwargs': _our_init_kwargs(our_name, record, key)}
    config_json = json.dumps(config, sort_keys=True)
    cache = built_cache if built_cache is not None else {}
    if config_json not in cache:
        try:
            cache[config_json] = persistence.build(config)
        except (TypeError, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise LegacyError(f'{key}: our {our_name} cannot be built from the stored arguments ({first})') from None
    ours = cache[config_json]
    expected = ours.state_dict()

    for name in DERIVED_BUFFERS.get(our_name, ()):
        if name in tensors:
            stored = tensors.pop(name).float()
            mine = dict(ours.named_buffers())[name]
            if stored.shape != mine.shape or not torch.allclose(stored, mine.float(), atol=1e-6, rtol=0):
                raise LegacyError(f'{key}: stored buffer {name} differs from the one our {our_name} derives')

    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f'missing {missing[:4]}{" ..." if len(missing) > 4 else ""}')
        if unexpected:
            parts.append(f'unexpected {unexpected[:4]}{" ..." if len(unexpected) > 4 else ""}')
        raise LegacyError(f'{key}: stored tensors do not match our {our_name}: {", ".join(parts)}')
    for name, mine in expected.items():
        if tuple(tensors[name].shape) != tuple(mine.shape):
            raise LegacyError(f'{key}: {name} has shape {list(tensors[name].shape)} in the file, '
                              f'{list(mine.shape)} in our {our_name}')
    state = {name: tensors[name].to(dtype=expected[name].dtype).contiguous().clone() for name in expected}
    return {'config': config_json, 'state_dict': state}


W_AVG_SAMPLES = 10_000     # latents whose mean mapping output replaces a non-finite imported w_avg


class RecomputedWAvgWarning(UserWarning):
    """An imported generator's w_avg was not finite and has been recomputed from its mapping network."""


def _recompute_w_avg(packed: dict, key: str) -> bool:
    """Replace a non-finite ``mapping.w_avg`` of an imported generator whose weights are all finite by the mean
    of its mapping over `W_AVG_SAMPLES` latents (seed 0); True if it did.

    stylegan2-ada-pytorch's loop starts by printing a module summary, for which it runs G in training mode on
    ``torch.empty`` latents, and its mapping folds every training-mode batch into w_avg. Where that memory
    held NaN, w_avg stays NaN for the whole run while the weights train normally. NVIDIA's generate.py only
    reads w_avg for truncation; w_avg is meant to be the mean W, which this estimates directly."""
    from torch_utils import checkpoint  # noqa: PLC0415 - checkpoint dispatches here; import late
    state = packed['state_dict']
    if checkpoint.nonfinite_tensors(state) != ['mapping.w_avg']:
        return False    # all finite, or a diverged network (checkpoint validation refuses it as it refuses our own)
    w_avg = state['mapping.w_avg']
    config = json.loads(packed['config'])
    G = persistence.build(config)
    if G.c_dim > 0:
        raise LegacyError(f'{key}: mapping.w_avg holds NaN or Inf while every weight is finite (NVIDIA\'s loop can '
                          f'put uninitialised memory there); the mean W of a conditional generator depends on its '
                          f'training labels, so it cannot be recomputed here')
    G.load_state_dict({**state, 'mapping.w_avg': torch.zeros_like(w_avg)})
    z = torch.randn([W_AVG_SAMPLES, G.z_dim], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        w = torch.cat([G.mapping(chunk, None)[:, 0] for chunk in z.split(1000)])
    state['mapping.w_avg'] = w.mean(dim=0).to(w_avg.dtype)
    return True


def convert_pickle_data(data: Any) -> dict:
    """The unpickled dict of an NVIDIA snapshot -> our snapshot layout (see the module docstring)."""
    from torch_utils import checkpoint  # noqa: PLC0415 - checkpoint dispatches here; import late
    if not isinstance(data, dict):
        raise LegacyError(f'expected a dict of networks, got {type(data).__name__}')
    keys = [k for k in ('G', 'D', 'G_ema', 'augment_pipe') if data.get(k) is not None]
    if 'G_ema' not in keys:
        raise LegacyError(f'holds no G_ema network (keys: {sorted(map(str, data))})')
    built: dict = {}
    modules = {k: convert_module(data[k], k, built) for k in keys}
    meta: dict = {'imported_from': 'nvidia-pickle'}
    recomputed = [f'{k}.mapping.w_avg' for k in ('G', 'G_ema') if k in modules and _recompute_w_avg(modules[k], k)]
    if recomputed:
        meta['recomputed'] = {name: f'not finite in the file; the mean mapping output of {W_AVG_SAMPLES} latents '
                                    f'(seed 0)' for name in recomputed}
        warnings.warn(f'{", ".join(recomputed)}: not finite in the file; recomputed as the mean mapping output of '
                      f'{W_AVG_SAMPLES:,} latents (only truncation uses it)', RecomputedWAvgWarning, stacklevel=2)
    if isinstance(data.get('training_set_kwargs'), dict):
        # A record of what the network was trained on, never constructed here. Kept under our key when it
        # names one of our registered data classes with arguments it takes, else under a key of its own.
        kwargs = _to_json(dict(data['training_set_kwargs']), 'training_set_kwargs')
        try:
            persistence.check_data_kwargs(kwargs)
            meta['training_set_kwargs'] = kwargs
        except ValueError:
            meta['nvidia_training_set_kwargs'] = kwargs
    return {'format': checkpoint.FORMAT, 'version': checkpoint.VERSION, 'modules': modules,
            'meta': json.dumps(meta)}


_last_import: dict = {}


def load_nvidia_pickle(path: str) -> dict:
    """Import an NVIDIA ``.pkl`` (local path) into our snapshot file's layout ('meta' still JSON text, which
    ``checkpoint.load_snapshot`` validates and decodes like any snapshot's); LegacyError with one line on failure.

    The last file imported is remembered (by path, size and modification time), so that a caller asking
    first for a network and then for the metadata does not convert twice."""
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    if _last_import.get('key') != key:
        with open(path, 'rb') as f:
            data = read_pickle(f)
        converted = convert_pickle_data(data)
        _last_import.clear()
        _last_import.update(key=key, value=converted)
    value = _last_import['value']
    return {**value, 'modules': dict(value['modules'])}

