"""Mode-seeking regularisation (MSGAN, Mao et al. 2019; seed 004 §4; METHODS.md §5).

The generator's batch is split into two halves that play the roles of z1 and z2: pair i is
(z_i, z_{i+n}) with n = ⌊batch/2⌋. With

    r = mean|G(z1) − G(z2)| / mean|z1 − z2|        (means over every element of the halves)

the generator loss gains λ_ms / (r + ε), which falls as the outputs for different latents move apart.
Both halves still go through the adversarial term, so the discriminator's judgement covers every
generated sample and the regulariser costs no extra generator pass. (With an odd batch the last
sample takes part in the adversarial term only.)

λ_ms is constant, or grows: λ(cur_nimg) = λ0 + Δ·⌊cur_nimg / (K·1000)⌋, the report's "start at 0.05,
add 0.01 every 10 epochs". λ is a pure function of the image count, so there is no state to save
and a resumed run continues the same schedule.

Decisions: the distances are L1 means (MSGAN's reference implementation and METHODS §5); the
distance in latent space is measured on z (not w) for every generator family; ε = 1e-5 as MSGAN.
"""

from __future__ import annotations

import math

import torch

from torch_utils import training_stats

CLASS_NAME = 'stylegan2_softgan.mode_seeking.ModeSeeking'


def mode_seeking_kwargs(lam: float, delta: float = 0.0, every_kimg: float | None = None, eps: float = 1e-5) -> dict:
    """Constructor kwargs (JSON-able) for LogitLoss(mode_seeking=...), as train.py's --ms-* options set them."""
    return dict(class_name=CLASS_NAME, lam=lam, delta=delta, every_kimg=every_kimg, eps=eps)


def ms_ratio(img1: torch.Tensor, img2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """r = mean|img1 − img2| / mean|z1 − z2| (a scalar that carries img's graph)."""
    if img1.shape != img2.shape or z1.shape != z2.shape or img1.shape[0] != z1.shape[0]:
        raise ValueError(f'mode seeking needs paired halves, got images {tuple(img1.shape)} / {tuple(img2.shape)} '
                         f'and latents {tuple(z1.shape)} / {tuple(z2.shape)}')
    return (img1 - img2).abs().mean() / (z1 - z2).abs().mean().to(img1.dtype)


class ModeSeeking:
    """λ_ms/(r + ε) for the generator, with λ_ms constant or growing in steps of Δ every K kimg."""

    def __init__(self,
                 lam: float = 0.05,                 # λ0: the weight at the start (seed 004 §4.3.2: 0.05 was best)
                 delta: float = 0.0,                # Δ: added every `every_kimg` (seed 004 §4.4: 0.01 per 10 epochs)
                 every_kimg: float | None = None,   # K: the step of the schedule in kimg; None = constant λ
                 eps: float = 1e-5,                 # ε in λ/(r + ε) (MSGAN)
                 ):
        for name, value in (('lam', lam), ('delta', delta)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f'mode seeking {name} must be a finite number >= 0, got {value!r}')
        if every_kimg is not None and not (isinstance(every_kimg, (int, float)) and every_kimg > 0):
            raise ValueError(f'mode seeking every_kimg must be > 0 or None, got {every_kimg!r}')
        if delta > 0 and every_kimg is None:
            raise ValueError('mode seeking delta > 0 needs every_kimg (the schedule step in kimg)')
        if not eps > 0:
            raise ValueError(f'mode seeking eps must be > 0, got {eps!r}')
        self.lam = float(lam)
        self.delta = float(delta)
        self.every_kimg = None if every_kimg is None else float(every_kimg)
        self.eps = float(eps)

    def lam_at(self, cur_nimg: int) -> float:
        """λ_ms after `cur_nimg` real images."""
        if self.every_kimg is None or self.delta == 0:
            return self.lam
        return self.lam + self.delta * math.floor(cur_nimg / (self.every_kimg * 1000))

    def penalty(self, gen_img: torch.Tensor, gen_z: torch.Tensor, cur_nimg: int) -> torch.Tensor:
        """λ_ms/(r + ε) for the batch (scalar with G's graph); reports r, λ and the term."""
        n = gen_img.shape[0] // 2
        if n < 1:
            raise ValueError(f'mode seeking needs at least 2 generated samples per accumulation round, '
                             f'got {gen_img.shape[0]}')
        r = ms_ratio(gen_img[:n], gen_img[n:2 * n], gen_z[:n], gen_z[n:2 * n])
        lam = self.lam_at(cur_nimg)
        term = lam / (r + self.eps)
        training_stats.report('Loss/ms_ratio', r.detach())
        training_stats.report0('Loss/ms_lambda', lam)
        training_stats.report('Loss/G/ms', term.detach())
        return term
