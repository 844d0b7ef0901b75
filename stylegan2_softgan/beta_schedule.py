"""SoftGAN's dynamic borderline softening: the entropy weight β driven by the batch Earth Mover's
Distance between real and generated images (METHODS.md §1).

Every `interval` generator steps the schedule measures EMD_t between the real batch and the generated
batch of that step (flattened pixels in [-1, 1], Euclidean ground cost, exact EMD). The first
measurement of a run is the reference EMD_ref; the floor EMD_floor is the batch EMD between two
disjoint real batches of the same size (what a perfect generator would get), or 0, or a given number.
The measurements are smoothed by an exponential moving average (decay `ema`), and

    s_t = clip((EMD_smooth − EMD_floor) / (EMD_ref − EMD_floor), 0, 1),    β_t = min(s_t, β_max)

with β_max = 1/(2 ln 2) (the paper's Proposition 4), which is also the initial value. When EMD_ref is
not above the floor the ratio is undefined; then s_t = 0 if EMD_smooth ≤ EMD_floor, else 1.

In a multi-process run the images of all ranks are gathered, rank 0 measures, and the resulting
numbers are broadcast, so β is bit-identical on every rank. With `fixed` set, β is that constant and
nothing is measured (ablations).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from metrics.emd import batch_emd
from torch_utils import training_stats

BETA_MAX = 1.0 / (2.0 * math.log(2.0))    # 0.72135: upper bound and initial value of β


def _world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class BetaSchedule:
    """The β schedule as its own object; its state goes into every checkpoint."""

    def __init__(self, device: torch.device | str = 'cpu',
                 real_source: Callable[[int], torch.Tensor] | None = None,  # draws n real images in [-1,1] (for the floor)
                 interval: int = 4,             # measure every `interval` generator steps
                 floor: str | float = 'real',   # 'real' (two disjoint real batches), 'zero', or a number
                 ema: float = 0.9,              # EMA decay of the measured EMD (0: no smoothing)
                 fixed: float | None = None,    # constant β (no schedule, no measurements)
                 beta_max: float = BETA_MAX,    # upper bound and initial value
                 ):
        self.device = torch.device(device)
        self.real_source = real_source
        if int(interval) < 1:
            raise ValueError(f'beta interval must be >= 1 generator step, got {interval}')
        self.interval = int(interval)
        if isinstance(floor, str) and floor not in ('real', 'zero'):
            raise ValueError(f'beta floor must be "real", "zero" or a number, got {floor!r}')
        if not isinstance(floor, str) and not (float(floor) >= 0 and math.isfinite(float(floor))):
            raise ValueError(f'beta floor must be a finite number >= 0, got {floor!r}')
        self.floor_mode = floor
        if not 0.0 <= float(ema) < 1.0:
            raise ValueError(f'beta EMA decay must be in [0, 1), got {ema}')
        self.ema = float(ema)
        if not 0.0 < float(beta_max) <= BETA_MAX:
            raise ValueError(f'beta_max must be in (0, {BETA_MAX:.5f}], got {beta_max}')
        self.beta_max = float(beta_max)
        if fixed is not None and not 0.0 <= float(fixed) <= self.beta_max:
            raise ValueError(f'fixed beta must be in [0, {self.beta_max:.5f}], got {fixed}')
        self.fixed = None if fixed is None else float(fixed)
        if self.fixed is None and self.floor_mode == 'real' and real_source is None:
            raise ValueError('beta floor "real" needs a source of real images (real_source)')

        # State (saved in checkpoints).
        self.beta = self.fixed if self.fixed is not None else self.beta_max
        self.num_steps = 0              # generator steps seen
        self.num_measurements = 0
        self.emd_ref = float('nan')
        self.emd_floor = float('nan')
        self.emd_last = float('nan')
        self.emd_smooth = float('nan')
        self._last_nimg = None          # accumulation rounds of one step share cur_nimg

    # -- The rule itself (pure: tested against hand-made sequences). ---------------------------

    def beta_from(self, emd_smooth: float) -> float:
        span = self.emd_ref - self.emd_floor
        if span > 0:
            s = (emd_smooth - self.emd_floor) / span
        else:
            s = 0.0 if emd_smooth <= self.emd_floor else 1.0
        return min(min(max(s, 0.0), 1.0), self.beta_max)

    def update(self, emd: float, floor: float | None = None) -> float:
        """Fold one measurement into the state and return the new β. `floor` is used at the first one."""
        if self.num_measurements == 0:
            if self.floor_mode == 'real':
                if floor is None:
                    raise ValueError('the first measurement needs the real-vs-real floor')
                self.emd_floor = float(floor)
            elif self.floor_mode == 'zero':
                self.emd_floor = 0.0
            else:
                self.emd_floor = float(self.floor_mode)
            self.emd_ref = float(emd)
            self.emd_smooth = float(emd)
        else:
            self.emd_smooth = self.ema * self.emd_smooth + (1.0 - self.ema) * float(emd)
        self.emd_last = float(emd)
        self.num_measurements += 1
        self.beta = self.beta_from(self.emd_smooth)
        return self.beta

    # -- Training hook. ------------------------------------------------------------------------

    def on_generator_step(self, real_img: torch.Tensor, gen_img: torch.Tensor, cur_nimg: int | None = None) -> None:
        """Called by the loss in each generator main pass with that pass's real and generated images.

        Only the first accumulation round of a step counts (rounds of one step share `cur_nimg`).
        """
        if cur_nimg is not None:
            if cur_nimg == self._last_nimg:
                return
            self._last_nimg = cur_nimg
        step = self.num_steps
        self.num_steps += 1
        if self.fixed is None and step % self.interval == 0:
            self._measure(real_img.detach(), gen_img.detach())
        training_stats.report0('Loss/beta', self.beta)

    def _measure(self, real_img: torch.Tensor, gen_img: torch.Tensor) -> None:
        rank, world = _world()
        if world > 1:
            real_img = _all_gather(real_img)
            gen_img = _all_gather(gen_img)
        values = torch.zeros(2, dtype=torch.float64, device=self.device)
        if rank == 0:
            emd = batch_emd(real_img, gen_img)
            floor = None
            if self.num_measurements == 0 and self.floor_mode == 'real':
                m = real_img.shape[0]
                reals = self.real_source(2 * m).to(self.device)
                floor = batch_emd(reals[:m], reals[m:])
            values[0] = emd
            values[1] = float('nan') if floor is None else floor
        if world > 1:
            torch.distributed.broadcast(values, src=0)
        emd, floor = float(values[0]), float(values[1])
        self.update(emd, None if math.isnan(floor) else floor)
        training_stats.report0('Loss/emd', self.emd_last)
        training_stats.report0('Loss/emd_smooth', self.emd_smooth)
        training_stats.report0('Loss/emd_floor', self.emd_floor)

    # -- Checkpoint state. ---------------------------------------------------------------------

    _STATE_KEYS = ('beta', 'num_steps', 'num_measurements', 'emd_ref', 'emd_floor', 'emd_last', 'emd_smooth')

    def state_dict(self) -> dict:
        state = {k: getattr(self, k) for k in self._STATE_KEYS}
        state['config'] = {'interval': self.interval, 'floor': self.floor_mode, 'ema': self.ema,
                           'fixed': self.fixed, 'beta_max': self.beta_max}
        return state

    def load_state_dict(self, state: dict) -> None:
        missing = [k for k in self._STATE_KEYS if k not in state]
        if missing:
            raise ValueError(f'beta schedule state lacks {missing}')
        for k in self._STATE_KEYS:
            value = state[k]
            setattr(self, k, int(value) if k.startswith('num_') else float(value))
        self._last_nimg = None


def _all_gather(x: torch.Tensor) -> torch.Tensor:
    parts = [torch.empty_like(x) for _ in range(torch.distributed.get_world_size())]
    torch.distributed.all_gather(parts, x.contiguous())
    return torch.cat(parts)
