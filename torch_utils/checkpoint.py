"""Snapshots as data: atomic writes, safe loads, networks rebuilt from JSON configs.

A snapshot file (``network-snapshot-NNNNNN.pt``, see snapshot_name) is a ``torch.save``d dict made only of tensors,
numbers, strings, lists, tuples and dicts, so it loads with ``torch.load(weights_only=True)``, which
never executes code stored in the file. Layout::

    {
      'format':  'stylegan2-softgan-snapshot',
      'version': 1,
      'modules': {'G': {'config': '<json>', 'state_dict': {...}}, 'D': ..., 'G_ema': ..., 'augment_pipe': ...},
      'meta':    '<json>',            # training_set_kwargs, cur_nimg, options ... (JSON text)
      'state':   {...},               # optional full training state: optimizers, RNG, schedules
    }

Module configs come from ``torch_utils.persistence.get_config`` and are rebuilt by registered class
name only.

``load_snapshot`` is the one place where a file becomes trusted data: it checks the whole layout (keys,
types, registered class names, every tensor's shape against a network built from its config on the
``meta`` device, so an absurd dimension allocates nothing) and that every weight is finite, and turns
any problem into one ``CheckpointError`` line naming the file and the field.
"""

from __future__ import annotations

import glob
import json
import os
import re
from typing import Any

import torch

import dnnlib
from torch_utils import persistence

FORMAT = 'stylegan2-softgan-snapshot'
VERSION = 1
SNAPSHOT_RE = re.compile(r'^network-snapshot-' + dnnlib.util.KIMG_TAG_RE + r'\.pt$')


def snapshot_name(cur_nimg: int, exact: bool = False) -> str:
    """stylegan2-ada's ``network-snapshot-000004.pt`` (whole kimg, after 4008 images too), or with `exact`
    ``network-snapshot-000004.008.pt``: the training loop asks for exact names when its ticks are shorter
    than 1 kimg, where whole-kimg names would repeat. Both forms sort by image count."""
    return f'network-snapshot-{dnnlib.util.kimg_tag(cur_nimg, exact)}.pt'


def snapshot_nimg(path: str) -> int | None:
    """The image count in a snapshot's file name (either form), or None for another name."""
    m = SNAPSHOT_RE.match(os.path.basename(os.fspath(path)))
    return dnnlib.util.nimg_from_kimg_tag(m.group(1), m.group(2)) if m else None


class CheckpointError(ValueError):
    """The file is not a loadable snapshot of this project (message names the file and the problem)."""


# Largest integer a module config may hold (channel counts, latent sizes, resolutions), checked before a
# network is built at all; real ones stay far below (channel_base is 32768 in StyleGAN2's presets).
MAX_CONFIG_INT = 1 << 20
# Entries of the training state that resuming reads, and their types.
STATE_SCHEMA = {'cur_nimg': int, 'batch_idx': int, 'cur_tick': int, 'optimizers': dict, 'loss': dict,
                'rng': list}


# ----------------------------------------------------------------------------
# Atomic writes.


def atomic_save(obj: Any, path: str) -> None:
    """torch.save to a temporary file in the same folder, fsync, then rename over `path`.

    A process killed at any moment leaves either the old file or the new one, never a partial file
    under the final name.
    """
    path = os.fspath(path)
    try:
        with dnnlib.util.atomic_output(path, fsync=True) as f:
            torch.save(obj, f)
    except RuntimeError as e:   # torch.save wraps a failed write (ENOSPC, EIO) in a chain of RuntimeErrors
        cause = e
        while cause is not None and not isinstance(cause, OSError):
            cause = cause.__cause__ or cause.__context__
        if cause is None:
            raise
        raise OSError(cause.errno, cause.strerror, path) from None


# ----------------------------------------------------------------------------
# Packing and unpacking modules.


def pack_module(module: torch.nn.Module) -> dict:
    """{'config': json, 'state_dict': cpu tensors} for a persistent module."""
    config = persistence.get_config(module)
    state = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
    return {'config': json.dumps(config), 'state_dict': state}


def unpack_module(packed: dict, device: torch.device | str = 'cpu', strict: bool = True, **override_kwargs) -> torch.nn.Module:
    """Rebuild a module from pack_module output (constructor by registered name, then load_state_dict)."""
    if not isinstance(packed, dict) or 'config' not in packed or 'state_dict' not in packed:
        raise CheckpointError('module entry must hold "config" and "state_dict"')
    try:
        config = json.loads(packed['config']) if isinstance(packed['config'], str) else packed['config']
    except json.JSONDecodeError as e:
        raise CheckpointError(f'module config is not valid JSON ({e})') from None
    module = persistence.build(config, **override_kwargs)
    missing, unexpected = module.load_state_dict(packed['state_dict'], strict=False)
    if strict and (missing or unexpected):
        raise CheckpointError(f'{config["class_name"]}: state dict does not match the network '
                              f'(missing {list(missing)[:5]}, unexpected {list(unexpected)[:5]})')
    return module.to(device)


# ----------------------------------------------------------------------------
# Snapshot files.


def save_snapshot(path: str, modules: dict[str, torch.nn.Module | None], meta: dict | None = None,
                  state: dict | None = None) -> None:
    """Write a snapshot atomically. `meta` must be JSON-able; `state` must be weights_only-loadable."""
    meta = dict(meta or {})
    try:
        meta_json = json.dumps(meta)
    except (TypeError, ValueError) as e:
        raise TypeError(f'snapshot meta must be JSON-able ({e})') from None
    obj = {
        'format': FORMAT,
        'version': VERSION,
        'modules': {name: pack_module(m) for name, m in modules.items() if m is not None},
        'meta': meta_json,
    }
    if state is not None:
        obj['state'] = state
    atomic_save(obj, path)


def resolve_snapshot_path(path: str) -> str:
    """Where a network argument points: a run folder means its newest complete snapshot, a URL its cached
    download (a failed download raises CheckpointError with one line), a stylegan2-ada resume name
    (ffhq256 ...) NVIDIA's published file; anything else is returned as is."""
    from torch_utils import legacy  # noqa: PLC0415 - legacy imports this module
    path = legacy.resolve_pretrained(os.fspath(path))
    if dnnlib.util.is_url(path, allow_file_urls=True):
        try:
            return dnnlib.util.open_url(path, return_filename=True)
        except OSError as e:
            raise CheckpointError(str(e)) from None
    if os.path.isdir(path):
        return find_latest_snapshot(path)
    return path


def load_snapshot(path: str, map_location: str | torch.device = 'cpu', require_state: bool = False) -> dict:
    """Load and validate a snapshot as plain data (never executing code from it). Returns the raw dict with
    'meta' decoded. `path` may be a snapshot file, a URL or a run folder (its newest snapshot).
    `require_state`: the training state must be complete (resuming)."""
    path = resolve_snapshot_path(path)
    if not os.path.isfile(path):
        raise CheckpointError(f'{path}: no such file')
    from torch_utils import legacy  # noqa: PLC0415 - legacy imports this module
    try:
        if legacy.is_pickle_file(path):     # NVIDIA's network-snapshot-*.pkl, imported as data
            obj = legacy.load_nvidia_pickle(path)
        else:
            obj = torch.load(path, map_location=map_location, weights_only=True)
    except legacy.LegacyError as e:
        raise CheckpointError(f'{path}: NVIDIA pickle: {e}') from None
    except Exception as e:  # noqa: BLE001 - any unpickling refusal or corruption is reported the same way
        raise CheckpointError(f'{path}: not a loadable snapshot: {_first_line(e)}') from None
    if not isinstance(obj, dict) or obj.get('format') != FORMAT:
        raise CheckpointError(f'{path}: not a {FORMAT} file')
    if obj.get('version') != VERSION:
        raise CheckpointError(f'{path}: snapshot version {obj.get("version")} is not supported (expected {VERSION})')
    obj = dict(obj)
    _validate(obj, path, require_state)
    return obj


def _validate(obj: dict, path: str, require_state: bool) -> None:
    """Check a loaded snapshot in place (meta is decoded); CheckpointError '<path>: <field>: <problem>'."""
    def fail(field: str, problem: str):
        raise CheckpointError(f'{path}: {field}: {problem}')

    meta = obj.get('meta', '{}')
    if not isinstance(meta, str):
        fail('meta', f'expected JSON text, got {type(meta).__name__}')
    try:
        meta = json.loads(meta or '{}')
    except json.JSONDecodeError as e:
        fail('meta', f'not valid JSON ({e})')
    if not isinstance(meta, dict):
        fail('meta', f'expected a JSON object, got {type(meta).__name__}')
    obj['meta'] = meta
    if 'training_set_kwargs' in meta:
        try:
            persistence.check_data_kwargs(meta['training_set_kwargs'])
        except ValueError as e:
            fail('meta.training_set_kwargs', str(e))
    if 'cur_nimg' in meta and not _is_count(meta['cur_nimg']):
        fail('meta.cur_nimg', f'expected an integer >= 0, got {meta["cur_nimg"]!r}')

    modules = obj.get('modules')
    if not isinstance(modules, dict):
        fail('modules', 'missing' if modules is None else f'expected a dict, got {type(modules).__name__}')
    for name, packed in modules.items():
        _validate_module(packed, f'modules.{name}', fail)

    state = obj.get('state')
    if state is None:
        if require_state:
            fail('state', 'missing: the file holds networks only and cannot be resumed (use it with generate.py '
                          'or calc_metrics.py, or as a starting point of a new run)')
        return
    if not isinstance(state, dict):
        fail('state', f'expected a dict, got {type(state).__name__}')
    if require_state:
        for key, kind in STATE_SCHEMA.items():
            if key not in state:
                fail(f'state.{key}', 'missing')
            if not isinstance(state[key], kind) or (kind is int and not _is_count(state[key])):
                fail(f'state.{key}', f'expected {"an integer >= 0" if kind is int else kind.__name__}, '
                                     f'got {type(state[key]).__name__}')
        if not state['rng'] or not all(isinstance(r, dict) for r in state['rng']):
            fail('state.rng', 'expected a non-empty list of per-process RNG states')


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _validate_module(packed, field: str, fail) -> None:
    """One packed module: registered class, sane config, state dict matching the network it describes, finite."""
    if not isinstance(packed, dict) or 'config' not in packed or 'state_dict' not in packed:
        fail(field, 'expected {"config": ..., "state_dict": ...}')
    config = packed['config']
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except json.JSONDecodeError as e:
            fail(f'{field}.config', f'not valid JSON ({e})')
    if not isinstance(config, dict) or set(config) != {'class_name', 'init_kwargs'} \
            or not isinstance(config['init_kwargs'], dict):
        fail(f'{field}.config', 'expected {"class_name": ..., "init_kwargs": {...}}')
    try:
        cls = persistence.lookup_class(config['class_name'])
    except ValueError as e:
        fail(f'{field}.config.class_name', str(e))
    if not issubclass(cls, torch.nn.Module):
        fail(f'{field}.config.class_name', f'{config["class_name"]} is not a network')
    for key, value in _walk(config['init_kwargs'], f'{field}.config.init_kwargs'):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) > MAX_CONFIG_INT:
            fail(key, f'{value} is out of range (at most {MAX_CONFIG_INT})')
    state_dict = packed['state_dict']
    if not isinstance(state_dict, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                   for k, v in state_dict.items()):
        fail(f'{field}.state_dict', 'expected a dict of named tensors')

    # The shapes the config implies, from a network built on the meta device (no memory for weights);
    # a class whose constructor needs real values is built on the CPU (its sizes were bounded above).
    try:
        try:
            with torch.device('meta'):
                expected = persistence.build(config).state_dict()
        except (RuntimeError, NotImplementedError):
            expected = persistence.build(config).state_dict()
    except Exception as e:  # noqa: BLE001 - any constructor failure means the config is not one we wrote
        fail(f'{field}.config', f'cannot build {config["class_name"]} ({_first_line(e)})')
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    if missing or unexpected:
        fail(f'{field}.state_dict', f'does not match {config["class_name"]} (missing {missing[:3]}, unexpected {unexpected[:3]})')
    for key, tensor in state_dict.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            fail(f'{field}.state_dict[{key!r}]', f'shape {list(tensor.shape)}, but the config gives {list(expected[key].shape)}')
    bad = nonfinite_tensors(state_dict)
    if bad:
        fail(f'{field}.state_dict', f'{len(bad)} of {len(state_dict)} tensors hold NaN or Inf (e.g. {bad[0]!r}); '
                                    f'the run diverged before this snapshot, use an earlier one')


def nonfinite_tensors(state_dict: dict) -> list[str]:
    """Names of the floating-point tensors of a state dict that hold NaN or Inf."""
    return [k for k, t in state_dict.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]


def _walk(value, where: str):
    """(field path, leaf) pairs of a JSON value."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, f'{where}.{k}')
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, f'{where}[{i}]')
    else:
        yield where, value


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def load_network(path: str, key: str = 'G_ema', device: str | torch.device = 'cpu') -> torch.nn.Module:
    """Rebuild one network (default the EMA generator) from a snapshot, in eval mode without gradients."""
    snap = load_snapshot(path)
    if key not in snap['modules']:
        raise CheckpointError(f'{path}: snapshot has no {key!r} (it has {sorted(snap["modules"])})')
    net = unpack_module(snap['modules'][key], device=device)
    net.eval().requires_grad_(False)
    return net


def load_snapshot_meta(path: str) -> dict:
    """The JSON metadata of a snapshot (training_set_kwargs, cur_nimg, ...)."""
    return load_snapshot(path)['meta']


def list_snapshots(run_dir: str) -> list[str]:
    """Complete snapshot files in a run folder, oldest first (by image count)."""
    found = []
    for path in glob.glob(os.path.join(glob.escape(run_dir), 'network-snapshot-*.pt')):
        nimg = snapshot_nimg(path)
        if nimg is not None:
            found.append((nimg, path))
    return [p for _, p in sorted(found)]


def find_latest_snapshot(run_dir: str) -> str:
    """The newest snapshot in `run_dir` that loads completely (a damaged newest one is skipped)."""
    if not os.path.isdir(run_dir):
        raise CheckpointError(f'{run_dir}: not a run folder')
    for path in reversed(list_snapshots(run_dir)):
        try:
            load_snapshot(path)
        except CheckpointError:
            continue
        return path
    raise CheckpointError(f'{run_dir}: contains no complete network-snapshot-*.pt')
