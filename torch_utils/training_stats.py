"""Training statistics reported from anywhere and aggregated across processes.

Any code may call ``report('Loss/G/main', tensor)``; the values accumulate as moments (count, sum,
sum of squares) in this process. A ``Collector`` later turns the moments accumulated since its last
``update()`` into mean / std / count, summing over all processes when torch.distributed is
initialised (gloo or NCCL). Non-finite values are dropped (and counted separately), so one NaN
does not poison a tick's averages.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import numpy as np
import torch

import dnnlib

_NUM_MOMENTS = 4        # count, sum, sum of squares, number of dropped non-finite values
_lock = threading.Lock()
_counters: dict[str, torch.Tensor] = {}       # name -> float64 moments accumulated in this process
_sync_device: torch.device | None = None      # device used for all-reduce (CUDA for NCCL, CPU for gloo)


def init_multiprocessing(rank: int = 0, sync_device: torch.device | str | None = None) -> None:
    """Tell the module which device to use when summing across processes (None: CPU, right for gloo)."""
    global _sync_device
    del rank  # every rank participates equally; kept for interface compatibility
    _sync_device = torch.device(sync_device) if sync_device is not None else None


def _moments(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        t = value.detach().flatten().to(device='cpu', dtype=torch.float64)
    else:   # Python numbers stay float64 (torch.as_tensor would round them to float32)
        t = torch.as_tensor(np.asarray(value, dtype=np.float64)).flatten()
    finite = torch.isfinite(t)
    t_ok = t[finite]
    return torch.stack([
        torch.tensor(float(t_ok.numel()), dtype=torch.float64),
        t_ok.sum(),
        t_ok.square().sum(),
        torch.tensor(float(t.numel() - t_ok.numel()), dtype=torch.float64),
    ])


def report(name: str, value: Any) -> Any:
    """Accumulate the elements of `value` (number, list, array or tensor) under `name`; returns `value`."""
    if not isinstance(name, str) or not name:
        raise ValueError(f'training_stats.report: name must be a non-empty string, got {name!r}')
    moments = _moments(value)
    with _lock:
        if name in _counters:
            _counters[name] += moments
        else:
            _counters[name] = moments
    return value


def report0(name: str, value: Any) -> Any:
    """Like report(), but only rank 0 contributes: use for values that are identical on all ranks."""
    rank = torch.distributed.get_rank() if torch.distributed.is_available() and torch.distributed.is_initialized() else 0
    report(name, value if rank == 0 else [])
    return value


def _is_distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized() \
        and torch.distributed.get_world_size() > 1


class Collector:
    """Collects the statistics whose names match `regex`.

    ``update()`` closes the current interval: afterwards ``mean(name)``, ``std(name)`` and ``num(name)``
    describe the values reported since the previous update, summed over every process. In a
    distributed run every rank must call ``update()`` at the same point (it is a collective).
    With keep_previous=True a statistic that received no values keeps its last value instead of NaN.
    """

    def __init__(self, regex: str = '.*', keep_previous: bool = True):
        self._regex = re.compile(regex)
        self._keep_previous = keep_previous
        self._cumulative: dict[str, torch.Tensor] = {}   # totals seen at the last update
        self._moments: dict[str, torch.Tensor] = {}      # interval moments computed at the last update
        self.update()
        self._moments = {}

    def names(self) -> list[str]:
        return sorted(name for name in _counters if self._regex.fullmatch(name))

    def update(self) -> None:
        with _lock:
            local = {name: t.clone() for name, t in _counters.items() if self._regex.fullmatch(name)}
        names = sorted(local)
        if _is_distributed():
            # Ranks may have reported different names; agree on the union first.
            gathered: list[Any] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(gathered, names)
            names = sorted(set().union(*gathered))
            stacked = torch.stack([local.get(n, torch.zeros(_NUM_MOMENTS, dtype=torch.float64)) for n in names]) \
                if names else torch.zeros(0, _NUM_MOMENTS, dtype=torch.float64)
            device = _sync_device or torch.device('cpu')
            stacked = stacked.to(device)
            torch.distributed.all_reduce(stacked)
            stacked = stacked.cpu()
            totals = {n: stacked[i] for i, n in enumerate(names)}
        else:
            totals = local

        new_moments = {}
        for name in names:
            total = totals[name]
            delta = total - self._cumulative.get(name, torch.zeros(_NUM_MOMENTS, dtype=torch.float64))
            self._cumulative[name] = total
            if delta[0] > 0 or not self._keep_previous or name not in self._moments:
                new_moments[name] = delta
            else:
                new_moments[name] = self._moments[name]
        self._moments = new_moments

    def _get(self, name: str) -> torch.Tensor:
        if name not in self._moments:
            return torch.zeros(_NUM_MOMENTS, dtype=torch.float64)
        return self._moments[name]

    def num(self, name: str) -> int:
        return int(self._get(name)[0])

    def num_nonfinite(self, name: str) -> int:
        return int(self._get(name)[3])

    def mean(self, name: str) -> float:
        m = self._get(name)
        return float('nan') if m[0] == 0 else float(m[1] / m[0])

    def std(self, name: str) -> float:
        m = self._get(name)
        if m[0] == 0:
            return float('nan')
        mean = m[1] / m[0]
        var = m[2] / m[0] - mean * mean
        return float(np.sqrt(max(float(var), 0.0)))

    def as_dict(self) -> dnnlib.EasyDict:
        """{name: EasyDict(num, mean, std)} for every statistic of the last interval."""
        return dnnlib.EasyDict({name: dnnlib.EasyDict(num=self.num(name), mean=self.mean(name), std=self.std(name))
                                for name in self._moments})

    def __getitem__(self, name: str) -> float:
        return self.mean(name)
