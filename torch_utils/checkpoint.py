"""Snapshots as data: atomic writes, safe loads, networks rebuilt from JSON configs.

A snapshot file (``network-snapshot-NNNNNN.pt``) is a ``torch.save``d dict made only of tensors,
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
SNAPSHOT_RE = re.compile(r'^network-snapshot-(\d+)\.pt$')


class CheckpointError(ValueError):
    """The file is not a loadable snapshot of this project (message names the file and the problem)."""


# ----------------------------------------------------------------------------
# Atomic writes.


def atomic_save(obj: Any, path: str) -> None:
    """torch.save to a temporary file in the same folder, fsync, then rename over `path`.

    A process killed at any moment leaves either the old file or the new one, never a partial file
    under the final name.
    """
    with dnnlib.util.atomic_output(os.fspath(path), fsync=True) as f:
        torch.save(obj, f)


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


def load_snapshot(path: str, map_location: str | torch.device = 'cpu') -> dict:
    """Load a snapshot as plain data (never executing code from it). Returns the raw dict with 'meta' decoded."""
    from torch_utils import legacy  # noqa: PLC0415 - legacy imports this module
    path = legacy.resolve_pretrained(os.fspath(path))    # stylegan2-ada resume names (ffhq256 ...)
    if dnnlib.util.is_url(path, allow_file_urls=True):
        try:
            path = dnnlib.util.open_url(path, return_filename=True)
        except OSError as e:
            raise CheckpointError(str(e)) from None
    if not os.path.isfile(path):
        raise CheckpointError(f'{path}: no such file')
    try:
        if legacy.is_pickle_file(path):     # NVIDIA's network-snapshot-*.pkl, imported as data
            obj = legacy.load_nvidia_pickle(path)
        else:
            obj = torch.load(path, map_location=map_location, weights_only=True)
    except legacy.LegacyError as e:
        raise CheckpointError(f'{path}: NVIDIA pickle: {e}') from None
    except Exception as e:  # noqa: BLE001 - any unpickling refusal or corruption is reported the same way
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f'{path}: not a loadable snapshot: {first}') from None
    if not isinstance(obj, dict) or obj.get('format') != FORMAT:
        raise CheckpointError(f'{path}: not a {FORMAT} file')
    if obj.get('version') != VERSION:
        raise CheckpointError(f'{path}: snapshot version {obj.get("version")} is not supported (expected {VERSION})')
    obj = dict(obj)
    obj['meta'] = json.loads(obj.get('meta') or '{}')
    return obj


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
        m = SNAPSHOT_RE.match(os.path.basename(path))
        if m:
            found.append((int(m.group(1)), path))
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
