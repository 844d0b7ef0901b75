"""SoftGAN (seed 000, METHODS.md §1): a discriminator that learns a fuzzy concept of "real".

With membership μ = σ(l) and fuzzy entropy H(μ), the discriminator maximises

    V(D, G) = E_r[μ + β·H(μ)] + E_f[(1 − μ) + β·H(μ)]

(so L_D = −V), and the generator minimises E_f[1 − μ(G(z))] (the paper's eq. 7), or optionally the
non-saturating −log μ(G(z)). β comes from the EMD-driven schedule (stylegan2_softgan.beta_schedule)
or is fixed. Everything else of StyleGAN2's objective stays: lazy R1, path length, style mixing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from training.loss import LogitLoss, register_loss

SCHEDULE_CLASS = 'stylegan2_softgan.beta_schedule.BetaSchedule'


def beta_schedule_kwargs(beta: float | None = None, interval: int = 4, floor='real', ema: float = 0.9) -> dict:
    """Constructor kwargs of the β schedule (JSON-able), as train.py's --beta* options set them."""
    return dict(class_name=SCHEDULE_CLASS, fixed=beta, interval=interval, floor=floor, ema=ema)


class SoftGANLoss(LogitLoss):
    """Fuzzy-concept discriminator with the dynamic borderline softening β."""

    def __init__(self, device, G, D,
                 g_loss: str = 'linear',          # generator term: 'linear' E[1 − μ] (paper) or 'ns' E[−log μ]
                 beta: float | None = None,       # fixed β (no schedule); None = EMD-driven schedule
                 beta_interval: int = 4,          # generator steps between EMD measurements
                 beta_floor='real',               # 'real', 'zero' or a number: the EMD a perfect generator gets
                 beta_ema: float = 0.9,           # EMA decay of the measured EMD
                 **kwargs):
        if g_loss not in ('linear', 'ns'):
            raise ValueError(f'SoftGAN g_loss must be "linear" or "ns", got {g_loss!r}')
        if 'beta_schedule' in kwargs:
            raise ValueError('SoftGANLoss builds its own beta schedule; use beta/beta_interval/beta_floor/beta_ema')
        self.g_loss = g_loss
        super().__init__(device, G, D,
                         beta_schedule=beta_schedule_kwargs(beta, beta_interval, beta_floor, beta_ema), **kwargs)

    def loss_G(self, gen_logits):
        if self.g_loss == 'ns':
            return F.softplus(-gen_logits)
        return torch.sigmoid(-gen_logits)            # 1 − μ

    def loss_D_real(self, real_logits):
        return -torch.sigmoid(real_logits)            # −μ (coverage of reals); the entropy bonus is added by LogitLoss

    def loss_D_gen(self, gen_logits):
        return -torch.sigmoid(-gen_logits)            # −(1 − μ) (coverage of fakes by the negated concept)


register_loss('soft', 'stylegan2_softgan.softgan.SoftGANLoss',
              'SoftGAN: fuzzy coverage + β·entropy, β driven by batch EMD; StyleGAN2 regularisers kept')
