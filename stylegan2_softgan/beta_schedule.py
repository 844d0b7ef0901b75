"""SoftGAN's dynamic borderline softening: the entropy weight β driven by the batch Earth Mover's
Distance between real and generated images (METHODS.md §1).

Every `interval` generator steps the schedule measures EMD_t between real and generated samples
(flattened pixels in [-1, 1], Euclidean ground cost, exact EMD). Two ways to measure:

    emd_samples = n     the `n` most recent generated samples (those of the last ceil(n / batch)
                        generator steps: no extra generator pass, so BatchNorm statistics and random
                        streams are left alone) against `n` fresh real samples from `real_source`;
                        when a measurement falls due before `n` samples have been seen it waits for them
    emd_samples = None  the generated and the real batch of that step (the rule of the first release)

The first measurement of a run is the reference EMD_ref. The floor EMD_floor is what a perfect generator
would get at this sample size:

    floor = 'real'      the mean batch EMD over `floor_pairs` pairs of disjoint real batches of the
                        measurement's size, measured once at the first measurement; its standard
                        deviation over the pairs is kept and logged (Loss/emd_floor_std) beside it
    floor = 'zero'      no floor (the paper's literal "scaled EMD")
    floor = a number    that number

The measurements are smoothed by an exponential moving average (decay `ema`), and

    s_t = clip((EMD_smooth − EMD_floor) / (EMD_ref − EMD_floor), 0, 1),    β_t = min(s_t, β_max)

with β_max = 1/(2 ln 2) (the paper's Proposition 4), which is also the initial value. When EMD_ref is
not above the floor the ratio is undefined; then s_t = 0 if EMD_smooth ≤ EMD_floor, else 1.

Why the defaults (floor averaged over 16 real pairs; the 2-D benchmarks also measure on 400 samples,
`emd_samples=400`, while train.py keeps the step's batch unless --beta-samples is given) and not the first
release's rule (one real pair, the step's own batch: `floor_pairs=1, emd_samples=None`, kept as an option):
a single real-vs-real EMD of 100 grid25 points is 0.85 ± 0.21 over draws, as large as the EMD of a
generator that misses a mode, so that rule could switch β off while modes were still missing. The
measurements and the benchmark that chose the default: docs/benchmarks/beta_schedule.md.

In a multi-process run the images of all ranks are gathered, rank 0 measures, and the resulting
numbers are broadcast, so β is bit-identical on every rank. With `fixed` set, β is that constant and
nothing is measured (ablations).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from .emd import batch_emd
from .host import training_stats   # the running codebase's (NVIDIA's inside its checkout), resolved at first use

BETA_MAX = 1.0 / (2.0 * math.log(2.0))    # 0.72135: upper bound and initial value of β
DEFAULT_FLOOR_PAIRS = 16                  # real-vs-real pairs averaged for the 'real' floor
DEFAULT_EMD_SAMPLES = None                # samples per EMD measurement; None = the step's own batch


def _world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class BetaSchedule:
    """The β schedule as its own object; its state goes into every checkpoint."""

    def __init__(self, device: torch.device | str = 'cpu',
                 real_source: Callable[[int], torch.Tensor] | None = None,  # draws n real images in [-1,1]
                 interval: int = 4,             # measure every `interval` generator steps
                 floor: str | float = 'real',   # 'real' (real-vs-real pairs), 'zero', or a number
                 ema: float = 0.9,              # EMA decay of the measured EMD (0: no smoothing)
                 fixed: float | None = None,    # constant β (no schedule, no measurements)
                 beta_max: float = BETA_MAX,    # upper bound and initial value
                 floor_pairs: int = DEFAULT_FLOOR_PAIRS,          # real-vs-real pairs averaged for the 'real' floor
                 emd_samples: int | None = DEFAULT_EMD_SAMPLES,   # samples per measurement; None = the step's batch
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
        if isinstance(floor_pairs, bool) or not isinstance(floor_pairs, int) or floor_pairs < 1:
            raise ValueError(f'beta floor_pairs must be an integer >= 1, got {floor_pairs!r}')
        self.floor_pairs = floor_pairs
        if emd_samples is not None and (isinstance(emd_samples, bool) or not isinstance(emd_samples, int)
                                        or emd_samples < 2):
            raise ValueError(f'beta emd_samples must be an integer >= 2 or None (the step\'s batch), got {emd_samples!r}')
        self.emd_samples = emd_samples
        if self.fixed is None and real_source is None and (self.floor_mode == 'real' or emd_samples is not None):
            raise ValueError('the beta schedule needs a source of real images (real_source) for its floor "real" '
                             'or its fresh real samples (emd_samples)')

        # State (saved in checkpoints).
        self.beta = self.fixed if self.fixed is not None else self.beta_max
        self.num_steps = 0              # generator steps seen
        self.num_measurements = 0
        self.emd_ref = float('nan')
        self.emd_floor = float('nan')
        self.emd_floor_std = float('nan')   # spread of the real-vs-real EMD over the floor's pairs
        self.emd_last = float('nan')
        self.emd_smooth = float('nan')
        self.due = False                # a measurement is due and waits for emd_samples generated samples
        self.recent: torch.Tensor | None = None   # the most recent generated samples (rank 0; emd_samples mode)
        self._last_nimg = None          # accumulation rounds of one step share cur_nimg

    # -- The rule itself (pure: tested against hand-made sequences). ---------------------------

    def beta_from(self, emd_smooth: float) -> float:
        span = self.emd_ref - self.emd_floor
        if span > 0:
            s = (emd_smooth - self.emd_floor) / span
        else:
            s = 0.0 if emd_smooth <= self.emd_floor else 1.0
        return min(min(max(s, 0.0), 1.0), self.beta_max)

    def update(self, emd: float, floor: float | None = None, floor_std: float | None = None) -> float:
        """Fold one measurement into the state and return the new β. `floor` (and its spread over the
        real pairs, `floor_std`) are used at the first one."""
        if self.num_measurements == 0:
            if self.floor_mode == 'real':
                if floor is None:
                    raise ValueError('the first measurement needs the real-vs-real floor')
                self.emd_floor = float(floor)
                self.emd_floor_std = float('nan') if floor_std is None else float(floor_std)
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

    def real_floor(self, m: int) -> tuple[float, float]:
        """(mean, standard deviation) of the EMD between two disjoint real batches of `m` samples over
        `floor_pairs` pairs (the standard deviation uses n − 1; it is NaN for a single pair)."""
        reals = self.real_source(2 * m * self.floor_pairs).to(self.device)
        values = [batch_emd(reals[2 * k * m:(2 * k + 1) * m], reals[(2 * k + 1) * m:(2 * k + 2) * m])
                  for k in range(self.floor_pairs)]
        std = float(torch.tensor(values, dtype=torch.float64).std()) if len(values) > 1 else float('nan')
        return float(sum(values) / len(values)), std

    def weight(self, logits: torch.Tensor) -> float:
        """The entropy weight for these logits: β (one number for the whole batch)."""
        del logits
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
        if self.fixed is None:
            self.due = self.due or step % self.interval == 0
            if self.emd_samples is None:
                if self.due:
                    self.due = False
                    self._measure(real_img.detach(), gen_img.detach())
            else:
                self._remember(gen_img.detach())
                if self.due and self.recent.shape[0] >= self.emd_samples:
                    self.due = False
                    self._measure(None, self.recent)
        training_stats.report0('Loss/beta', self.beta)

    def _remember(self, gen_img: torch.Tensor) -> None:
        """Keep the most recent `emd_samples` generated samples (gathered from all ranks)."""
        if _world()[1] > 1:
            gen_img = _all_gather(gen_img)
        gen_img = gen_img.to(self.device, torch.float32)
        self.recent = gen_img if self.recent is None else torch.cat([self.recent, gen_img])
        self.recent = self.recent[-self.emd_samples:]

    def _measure(self, real_img: torch.Tensor | None, gen_img: torch.Tensor) -> None:
        """One measurement; `real_img` None = fresh reals from real_source, as many as generated samples."""
        rank, world = _world()
        if world > 1 and real_img is not None:
            real_img = _all_gather(real_img)
            gen_img = _all_gather(gen_img)
        values = torch.full([3], float('nan'), dtype=torch.float64, device=self.device)
        if rank == 0:
            m = gen_img.shape[0]
            if real_img is None:
                real_img = self.real_source(m).to(self.device)
            values[0] = batch_emd(real_img, gen_img)
            if self.num_measurements == 0 and self.floor_mode == 'real':
                values[1], values[2] = self.real_floor(real_img.shape[0])
        if world > 1:
            torch.distributed.broadcast(values, src=0)
        emd, floor, floor_std = (float(v) for v in values)
        self.update(emd, None if math.isnan(floor) else floor, None if math.isnan(floor_std) else floor_std)
        training_stats.report0('Loss/emd', self.emd_last)
        training_stats.report0('Loss/emd_smooth', self.emd_smooth)
        training_stats.report0('Loss/emd_floor', self.emd_floor)
        if not math.isnan(self.emd_floor_std):
            training_stats.report0('Loss/emd_floor_std', self.emd_floor_std)

    # -- Checkpoint state. ---------------------------------------------------------------------

    _STATE_KEYS = ('beta', 'num_steps', 'num_measurements', 'emd_ref', 'emd_floor', 'emd_last', 'emd_smooth')
    _OPTIONAL_KEYS = {'emd_floor_std': float('nan'), 'due': False}   # absent from first-release checkpoints

    def state_dict(self) -> dict:
        """Numbers, the recent generated samples as a tensor under 'recent' (None if none), and the position of
        the real source when it can tell it (`state_dict()`)."""
        state = {k: getattr(self, k) for k in (*self._STATE_KEYS, *self._OPTIONAL_KEYS)}
        state['recent'] = None if self.recent is None else self.recent.detach().cpu().clone()
        if hasattr(self.real_source, 'state_dict'):      # the fresh reals of later measurements continue exactly
            state['real_source'] = self.real_source.state_dict()
        state['config'] = {'interval': self.interval, 'floor': self.floor_mode, 'ema': self.ema,
                           'fixed': self.fixed, 'beta_max': self.beta_max, 'floor_pairs': self.floor_pairs,
                           'emd_samples': self.emd_samples}
        return state

    def load_state_dict(self, state: dict) -> None:
        missing = [k for k in self._STATE_KEYS if k not in state]
        if missing:
            raise ValueError(f'beta schedule state lacks {missing}')
        for k in self._STATE_KEYS:
            value = state[k]
            setattr(self, k, int(value) if k.startswith('num_') else float(value))
        for k, default in self._OPTIONAL_KEYS.items():
            setattr(self, k, type(default)(state.get(k, default)))
        recent = state.get('recent')
        if recent is not None and not isinstance(recent, torch.Tensor):
            raise ValueError(f'beta schedule state: "recent" must be a tensor or None, got {type(recent).__name__}')
        self.recent = None if recent is None else recent.to(self.device, torch.float32)
        if state.get('real_source') is not None and hasattr(self.real_source, 'load_state_dict'):
            self.real_source.load_state_dict(state['real_source'])
        self._last_nimg = None


def _all_gather(x: torch.Tensor) -> torch.Tensor:
    parts = [torch.empty_like(x) for _ in range(torch.distributed.get_world_size())]
    torch.distributed.all_gather(parts, x.contiguous())
    return torch.cat(parts)
