"""Assorted torch helpers: shape assertions, cached constants, parameter copying, DDP checks,
an infinite distributed sampler and a module summary table."""

from __future__ import annotations

import contextlib
import importlib
import re
from typing import Any, Iterator, Sequence

import numpy as np
import torch

# ----------------------------------------------------------------------------
# Cached constant tensors. Networks call this every forward pass for things like filters;
# caching avoids a host-to-device copy each time.

_constant_cache: dict[tuple, torch.Tensor] = {}


def constant(value: Any, shape: Sequence[int] | None = None, dtype: torch.dtype | None = None,
             device: torch.device | str | None = None, memory_format: torch.memory_format | None = None) -> torch.Tensor:
    """A tensor with the given value, cached per (value, shape, dtype, device, memory_format).

    The result must not be modified in place: it is shared by every caller with the same key.
    """
    arr = np.asarray(value)
    if shape is not None:
        shape = tuple(int(s) for s in shape)
    if dtype is None:
        dtype = torch.get_default_dtype() if arr.dtype.kind == 'f' else torch.from_numpy(np.zeros(1, arr.dtype)).dtype
    device = torch.device('cpu') if device is None else torch.device(device)
    if memory_format is None:
        memory_format = torch.contiguous_format
    key = (arr.shape, arr.dtype.str, arr.tobytes(), shape, dtype, device, memory_format)
    tensor = _constant_cache.get(key)
    if tensor is None:
        tensor = torch.as_tensor(arr.copy(), dtype=dtype, device=device)
        if shape is not None:
            tensor, _ = torch.broadcast_tensors(tensor, torch.empty(shape))
        tensor = tensor.contiguous(memory_format=memory_format)
        _constant_cache[key] = tensor
    return tensor


# ----------------------------------------------------------------------------
# Shape assertions that say what was got and what was expected.


def assert_shape(tensor: torch.Tensor, ref_shape: Sequence[int | None], name: str = 'tensor') -> None:
    """Check that `tensor` has `len(ref_shape)` dims and matches every non-None entry of `ref_shape`."""
    got = tuple(tensor.shape)
    if len(got) != len(ref_shape):
        raise AssertionError(f'Wrong number of dimensions for {name}: got {len(got)} {list(got)}, '
                             f'expected {len(ref_shape)} {list(ref_shape)}')
    for idx, (size, ref) in enumerate(zip(got, ref_shape)):
        if ref is None:
            continue
        if isinstance(ref, torch.Tensor):
            ref = int(ref)
        if int(size) != int(ref):
            raise AssertionError(f'Wrong size for dimension {idx} of {name}: got {int(size)}, expected {int(ref)} '
                                 f'(shape {list(got)} vs expected {list(ref_shape)})')


# ----------------------------------------------------------------------------
# Profiling label for a function, visible in torch.profiler traces.


def profiled_function(fn):
    def decorator(*args, **kwargs):
        with torch.autograd.profiler.record_function(fn.__name__):
            return fn(*args, **kwargs)
    decorator.__name__ = fn.__name__
    decorator.__doc__ = fn.__doc__
    decorator.__wrapped__ = fn
    return decorator


# ----------------------------------------------------------------------------
# Infinite sampler: deterministic, resumable, sharded across ranks.


class InfiniteSampler(torch.utils.data.Sampler):
    """Yields dataset indices forever.

    The global stream is a sequence of epochs; epoch `e` is a permutation of all indices drawn from
    `seed + e` (or the identity when shuffle=False). The stream is cut into blocks of `block_size`
    positions and rank `r` of `R` takes blocks r, r+R, r+2R, ... With block_size = the per-rank batch,
    the ranks' batches of one step are consecutive slices of what a single process would see, so a
    multi-process run and a single process with the same total batch see the same images.
    `start` is the number of global positions already consumed; a resumed run passes the image count
    it stopped at and sees exactly the images an uninterrupted run would have seen next.
    """

    def __init__(self, dataset, rank: int = 0, num_replicas: int = 1, shuffle: bool = True, seed: int = 0,
                 start: int = 0, block_size: int = 1):
        super().__init__()
        size = len(dataset)
        if size <= 0:
            raise ValueError('InfiniteSampler: the dataset is empty')
        if not 0 <= rank < num_replicas:
            raise ValueError(f'InfiniteSampler: rank must be in [0, {num_replicas}), got {rank}')
        if start < 0 or block_size < 1:
            raise ValueError(f'InfiniteSampler: need start >= 0 and block_size >= 1, got {start} and {block_size}')
        self.size = size
        self.rank = rank
        self.num_replicas = num_replicas
        self.shuffle = shuffle
        self.seed = seed
        self.start = int(start)
        self.block_size = int(block_size)

    def _epoch_order(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.size)
        return np.random.RandomState((self.seed + epoch) % (1 << 32)).permutation(self.size)

    def _positions(self) -> Iterator[int]:
        b, R = self.block_size, self.num_replicas
        block = self.start // b
        block += (self.rank - block) % R           # first block >= start's block that belongs to this rank
        first = True
        while True:
            lo = block * b
            for pos in range(max(lo, self.start) if first else lo, lo + b):
                yield pos
            first = False
            block += R

    def __iter__(self) -> Iterator[int]:
        epoch = -1
        order = None
        for pos in self._positions():
            e, offset = divmod(pos, self.size)
            if e != epoch:
                epoch, order = e, self._epoch_order(e)
            yield int(order[offset])


# ----------------------------------------------------------------------------
# Parameters and buffers.


def params_and_buffers(module: torch.nn.Module) -> list[torch.Tensor]:
    assert isinstance(module, torch.nn.Module)
    return list(module.parameters()) + list(module.buffers())


def named_params_and_buffers(module: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    assert isinstance(module, torch.nn.Module)
    return list(module.named_parameters()) + list(module.named_buffers())


@torch.no_grad()
def copy_params_and_buffers(src_module: torch.nn.Module, dst_module: torch.nn.Module, require_all: bool = False) -> None:
    """Copy every parameter and buffer of `src_module` into the same-named tensor of `dst_module`.

    With require_all=True, a tensor of dst that src lacks is an error (named in the message).
    """
    src = dict(named_params_and_buffers(src_module))
    for name, tensor in named_params_and_buffers(dst_module):
        if name in src:
            if tuple(src[name].shape) != tuple(tensor.shape):
                raise ValueError(f'copy_params_and_buffers: {name} has shape {list(src[name].shape)} in the source '
                                 f'but {list(tensor.shape)} in the destination')
            tensor.copy_(src[name].detach()).requires_grad_(tensor.requires_grad)
        elif require_all:
            raise ValueError(f'copy_params_and_buffers: {name} is missing from the source module')


def init_process_group(**kwargs) -> None:
    """torch.distributed.init_process_group(**kwargs), with torch._dynamo imported first.

    Some modules that torch._dynamo imports take ``torch.distributed.group.WORLD`` as a default argument
    (torch 2.13: ``torch.distributed.fsdp.sharded_grad_scaler``). Imported after the group exists, they keep a
    reference to it, so destroy_process_group() can no longer free gloo's worker threads; a worker still
    releasing a finished collective at interpreter exit then needs the GIL and the process dies with
    SIGABRT ("terminate called without an active exception"). Checkpoint validation builds networks on the
    meta device, which imports torch._dynamo, so every process that loads a snapshot would hit this.
    Imported before, those defaults are None."""
    try:
        importlib.import_module('torch._dynamo')     # for its import-time side effects only, see above
    except ImportError:
        pass
    torch.distributed.init_process_group(**kwargs)


@contextlib.contextmanager
def ddp_sync(module: torch.nn.Module, sync: bool):
    """Inside, gradients of a DistributedDataParallel module are only all-reduced when `sync` is True."""
    if isinstance(module, torch.nn.parallel.DistributedDataParallel) and not sync:
        with module.no_sync():
            yield
    else:
        yield


def check_ddp_consistency(module: torch.nn.Module, ignore_regex: str | None = None) -> None:
    """Assert that every parameter and buffer equals rank 0's copy (NaNs compare equal to NaNs)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    for name, tensor in named_params_and_buffers(module):
        full_name = type(module).__name__ + '.' + name
        if ignore_regex is not None and re.fullmatch(ignore_regex, full_name):
            continue
        tensor = tensor.detach()
        if tensor.is_floating_point():
            tensor = torch.nan_to_num(tensor)
        other = tensor.clone()
        torch.distributed.broadcast(tensor=other, src=0)
        if not (tensor == other).all():
            raise AssertionError(f'{full_name} differs between rank {torch.distributed.get_rank()} and rank 0')


# ----------------------------------------------------------------------------
# Module summary table.


def _flatten_tensors(obj: Any) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [t for item in obj for t in _flatten_tensors(item)]
    if isinstance(obj, dict):
        return [t for item in obj.values() for t in _flatten_tensors(item)]
    return []


def print_module_summary(module: torch.nn.Module, inputs: Sequence[Any], max_nesting: int = 3,
                         skip_redundant: bool = True, file=None) -> Any:
    """Run `module(*inputs)` and print one row per submodule: parameters, buffers, output shape and dtype.

    Modules nested deeper than `max_nesting` are folded into their ancestor. With skip_redundant, rows
    that own no tensors and whose outputs repeat their child's are left out. Returns the outputs.
    """
    assert isinstance(module, torch.nn.Module)
    assert not isinstance(module, torch.jit.ScriptModule)
    assert isinstance(inputs, (tuple, list))

    entries: list[dict] = []
    nesting = [0]

    def pre_hook(_mod, _inputs):
        nesting[0] += 1

    def post_hook(mod, _inputs, outputs):
        nesting[0] -= 1
        if nesting[0] <= max_nesting:
            entries.append(dict(mod=mod, outputs=_flatten_tensors(outputs)))

    hooks = [m.register_forward_pre_hook(pre_hook) for m in module.modules()]
    hooks += [m.register_forward_hook(post_hook) for m in module.modules()]
    try:
        outputs = module(*inputs)
    finally:
        for hook in hooks:
            hook.remove()

    # Each tensor is counted in the first (innermost-finished) module that owns it.
    seen: set[int] = set()
    for e in entries:
        e['params'] = [t for t in e['mod'].parameters() if id(t) not in seen]
        e['buffers'] = [t for t in e['mod'].buffers() if id(t) not in seen]
        seen |= {id(t) for t in e['params'] + e['buffers']}
    if skip_redundant:
        entries = [e for e in entries if e['params'] or e['buffers'] or e['outputs']]
        out_ids: set[int] = set()
        kept = []
        for e in entries:
            ids = {id(t) for t in e['outputs']}
            if not e['params'] and not e['buffers'] and ids and ids <= out_ids:
                continue
            out_ids |= ids
            kept.append(e)
        entries = kept

    names = {mod: name for name, mod in module.named_modules()}
    rows = [['Parameters', 'Buffers', 'Output shape', 'Datatype', 'Module']]
    rows.append(['---'] * len(rows[0]))
    total_params = total_buffers = 0
    for e in entries:
        name = '<top-level>' if e['mod'] is module else names.get(e['mod'], type(e['mod']).__name__)
        n_params = sum(t.numel() for t in e['params'])
        n_buffers = sum(t.numel() for t in e['buffers'])
        total_params += n_params
        total_buffers += n_buffers
        shapes = [str(list(t.shape)) for t in e['outputs']] or ['-']
        dtypes = [str(t.dtype).split('.')[-1] for t in e['outputs']] or ['-']
        for idx, (shape, dtype) in enumerate(zip(shapes, dtypes)):
            label = name if len(shapes) == 1 else f'{name}:{idx}'     # stylegan2-ada's labels, as in Table 5
            rows.append([f'{n_params:,}' if idx == 0 and n_params else '-',
                         f'{n_buffers:,}' if idx == 0 and n_buffers else '-',
                         shape, dtype, label])
    rows.append(['---'] * len(rows[0]))
    rows.append([f'{total_params:,}', f'{total_buffers:,}', '-', '-', 'Total'])

    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = []
    for r in rows:
        if r[0] == '---':
            lines.append('  '.join('-' * w for w in widths))
        else:
            lines.append('  '.join(cell.rjust(w) if c < 2 else cell.ljust(w) for c, (cell, w) in enumerate(zip(r, widths))).rstrip())
    print('\n'.join(lines), file=file, flush=True)
    return outputs
