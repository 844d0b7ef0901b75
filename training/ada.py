"""Adaptive discriminator augmentation: the controller that moves the augmentation probability p.

Every `interval` training steps, p moves by ``sign(r_t − target) · (batch · interval) / (speed_kimg · 1000)``
where r_t is the mean of sign(D(real)) over the reals seen since the last adjustment (all ranks), as in
stylegan2-ada; p never goes below 0. ``r_t`` is read from the 'Loss/signs/real' statistic that every
logit loss reports.

For exact resume, the signs seen since the last adjustment are part of the state: ``state_dict()``
closes the current interval (a collective in multi-process runs, so every rank must call it at the
same step) and carries its sums over, and the next adjustment adds them in.
"""

from __future__ import annotations

import torch

from torch_utils import training_stats

SIGNS_STAT = 'Loss/signs/real'


class AdaController:
    def __init__(self, augment_pipe: torch.nn.Module,
                 target: float = 0.6,         # target value of E[sign(D(real))]
                 interval: int = 4,           # adjust p every this many steps
                 speed_kimg: float = 500,     # p can go from 0 to 1 in this many kimg
                 batch_size: int = 32,        # images per step (all ranks together)
                 ):
        if not hasattr(augment_pipe, 'p'):
            raise ValueError('adaptive augmentation needs an augment pipe with a probability buffer `p`')
        if not -1.0 <= float(target) <= 1.0:
            raise ValueError(f'ADA target must be in [-1, 1], got {target}')
        if int(interval) < 1 or float(speed_kimg) <= 0:
            raise ValueError('ADA interval must be >= 1 and speed_kimg > 0')
        self.augment_pipe = augment_pipe
        self.target = float(target)
        self.interval = int(interval)
        self.step_size = batch_size * self.interval / (float(speed_kimg) * 1000)
        self.stats = training_stats.Collector(regex=SIGNS_STAT, keep_previous=False)
        self.carry_num = 0.0
        self.carry_sum = 0.0
        self.last_rt = float('nan')

    def _close_interval(self) -> tuple[float, float]:
        self.stats.update()
        num = self.stats.num(SIGNS_STAT)
        total = self.stats.mean(SIGNS_STAT) * num if num else 0.0
        return float(num), float(total)

    def maybe_adjust(self, batch_idx: int) -> None:
        """Call after every step with the index of the step just taken."""
        if batch_idx % self.interval != 0:
            return
        num, total = self._close_interval()
        num += self.carry_num
        total += self.carry_sum
        self.carry_num = self.carry_sum = 0.0
        if num == 0:
            return
        self.last_rt = total / num
        adjust = (1.0 if self.last_rt > self.target else -1.0 if self.last_rt < self.target else 0.0) * self.step_size
        p = self.augment_pipe.p
        p.copy_((p + adjust).clamp(min=0.0))

    def state_dict(self) -> dict:
        num, total = self._close_interval()
        self.carry_num += num
        self.carry_sum += total
        return {'carry_num': self.carry_num, 'carry_sum': self.carry_sum, 'last_rt': self.last_rt}

    def load_state_dict(self, state: dict) -> None:
        self.carry_num = float(state['carry_num'])
        self.carry_sum = float(state['carry_sum'])
        self.last_rt = float(state['last_rt'])
