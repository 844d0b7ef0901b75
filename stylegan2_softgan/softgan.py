"""SoftGAN (seed 000, METHODS.md §1): a discriminator that learns a fuzzy concept of "real".

With membership μ = σ(l) and fuzzy entropy H(μ), the discriminator maximises

    V(D, G) = E_r[μ + β·H(μ)] + E_f[(1 − μ) + β·H(μ)]

(so L_D = −V), and the generator minimises E_f[1 − μ(G(z))] (the paper's eq. 7), or optionally the
non-saturating −log μ(G(z)). β comes from the EMD-driven schedule (stylegan2_softgan.beta_schedule,
the class's default) or is fixed; the registered `soft` objective fixes it at 1/(2 ln 2), 'soft-emd' runs
the schedule. Everything else of StyleGAN2's objective stays: lazy R1, path length, style mixing.

`variant='reference'` is instead the algorithm of the authors' released toy code (liweileev/SoftGAN,
models/SoftGAN_toy2D_model.py and networks/toy2D_network.py), which is NOT the paper's:

    * the discriminator's output goes through a softplus, d = softplus(l) ∈ (0, ∞), not a sigmoid;
    * the entropy is taken on d clamped into [1e-8, 1]: H = −p ln p − q ln q with p = clamp(d, 1e-8, 1)
      and q = clamp(1 − d, 1e-8, 1), so H is 0 (with zero gradient) wherever d ≥ 1;
    * D maximises E_r[d + β·H] + E_f[−d + β·H]: a linear (WGAN-like) critic term on the unbounded d;
    * G minimises −E_f[d(G(z))];
    * β is a constant (1.0 in the released configuration, above the paper's bound 1/(2 ln 2)) and there
      is no EMD measurement at all.

The reference variant keeps the same regularisers as the paper variant (R1, R2 if asked for).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from torch_utils import training_stats

from training.loss import LogitLoss, register_loss

from . import soft_terms
from .beta_schedule import BETA_MAX, DEFAULT_EMD_SAMPLES, DEFAULT_FLOOR_PAIRS

SCHEDULE_CLASS = 'stylegan2_softgan.beta_schedule.BetaSchedule'


SOFT_VARIANTS = ('paper', 'reference')
REFERENCE_BETA = 1.0          # β of the authors' released toy configuration
REFERENCE_EPS = 1e-8          # clamp of the released code's entropy


def beta_schedule_kwargs(beta: float | None = None, interval: int = 4, floor='real', ema: float = 0.9,
                         floor_pairs: int = DEFAULT_FLOOR_PAIRS, emd_samples: int | None = DEFAULT_EMD_SAMPLES) -> dict:
    """Constructor kwargs of the β schedule (JSON-able), as train.py's --beta* options set them."""
    return dict(class_name=SCHEDULE_CLASS, fixed=beta, interval=interval, floor=floor, ema=ema,
                floor_pairs=floor_pairs, emd_samples=emd_samples)


def reference_entropy(d: torch.Tensor) -> torch.Tensor:
    """The released code's entropy of an unbounded output d: −p ln p − q ln q, p = clamp(d, ε, 1),
    q = clamp(1 − d, ε, 1)."""
    p = d.clamp(REFERENCE_EPS, 1.0)
    q = (1.0 - d).clamp(REFERENCE_EPS, 1.0)
    return -(p * p.log() + q * q.log())


class SoftGANLoss(LogitLoss):
    """Fuzzy-concept discriminator with the dynamic borderline softening β (see the module docstring
    for the paper and reference variants)."""

    def __init__(self, device, G, D,
                 g_loss: str = 'linear',          # generator term: 'linear' E[1 − μ] (paper) or 'ns' E[−log μ]
                 beta: float | None = None,       # fixed β (no schedule); None = EMD-driven schedule (paper), 1.0 (reference)
                 beta_interval: int = 4,          # generator steps between EMD measurements
                 beta_floor='real',               # 'real', 'zero' or a number: the EMD a perfect generator gets
                 beta_ema: float = 0.9,           # EMA decay of the measured EMD
                 beta_floor_pairs: int = DEFAULT_FLOOR_PAIRS,          # real-vs-real pairs of the 'real' floor
                 beta_emd_samples: int | None = DEFAULT_EMD_SAMPLES,   # samples per EMD measurement; None = the step's batch
                 variant: str = 'paper',          # 'paper' or 'reference' (the authors' released toy code)
                 **kwargs):
        if g_loss not in ('linear', 'ns'):
            raise ValueError(f'SoftGAN g_loss must be "linear" or "ns", got {g_loss!r}')
        if variant not in SOFT_VARIANTS:
            raise ValueError(f'SoftGAN variant must be one of {", ".join(SOFT_VARIANTS)}, got {variant!r}')
        if 'beta_schedule' in kwargs:
            raise ValueError('SoftGANLoss builds its own beta schedule; use beta/beta_interval/beta_floor/beta_ema')
        self.g_loss = g_loss
        self.variant = variant
        if variant == 'reference':
            if g_loss != 'linear':
                raise ValueError('the reference SoftGAN variant has its own generator term; g_loss does not apply')
            self.reference_beta = REFERENCE_BETA if beta is None else float(beta)
            if not (self.reference_beta >= 0 and math.isfinite(self.reference_beta)):
                raise ValueError(f'the reference SoftGAN variant needs a constant β >= 0, got {beta!r}')
            super().__init__(device, G, D, **kwargs)
            return
        super().__init__(device, G, D, beta_schedule=beta_schedule_kwargs(
            beta, beta_interval, beta_floor, beta_ema, beta_floor_pairs, beta_emd_samples), **kwargs)

    def loss_G(self, gen_logits):
        if self.variant == 'reference':
            return -F.softplus(gen_logits)           # −d
        return soft_terms.generator_term(gen_logits, self.g_loss)    # 1 − μ ('linear') or −log μ ('ns')

    def _reference_term(self, logits, sign, kind):
        d = F.softplus(logits)
        entropy = reference_entropy(d)
        training_stats.report(f'Loss/entropy/{kind}', entropy)
        return -(sign * d + self.reference_beta * entropy)

    def loss_D_real(self, real_logits):
        if self.variant == 'reference':
            return self._reference_term(real_logits, 1.0, 'real')    # −(d + βH)
        return soft_terms.discriminator_real_term(real_logits)    # −μ (coverage of reals); LogitLoss adds the entropy bonus

    def loss_D_gen(self, gen_logits):
        if self.variant == 'reference':
            return self._reference_term(gen_logits, -1.0, 'fake')    # −(−d + βH)
        return soft_terms.discriminator_fake_term(gen_logits)     # −(1 − μ) (coverage of fakes by the negated concept)

    def logit_signs(self, logits):
        if self.variant == 'reference':
            return (F.softplus(logits) - 0.5).sign()   # d above ½: the clamped membership calls it real
        return logits.sign()


# The default β is the constant 1/(2 ln 2), the EMD schedule's own starting value: the benchmark's decision
# rule names it (docs/benchmarks/beta_schedule.md). train.py's --beta=auto, or any --beta-* schedule option,
# selects the EMD schedule instead, as 'soft-emd' spells it out.
register_loss('soft', 'stylegan2_softgan.softgan.SoftGANLoss',
              'SoftGAN: fuzzy coverage + β·entropy with constant β = 1/(2 ln 2) (--beta=auto: the EMD schedule); '
              'StyleGAN2 regularisers kept', beta=BETA_MAX)
register_loss('soft-emd', 'stylegan2_softgan.softgan.SoftGANLoss',
              'SoftGAN with the paper\'s EMD-driven β (floor: mean of 16 real pairs); StyleGAN2 regularisers kept',
              beta_floor='real', beta_floor_pairs=DEFAULT_FLOOR_PAIRS)

# The authors' released toy algorithm, and the β-schedule variants the default was chosen from
# (docs/benchmarks/beta_schedule.md); each spells out every schedule input so that its stored benchmark
# runs stay valid whatever the default becomes.
register_loss('soft-reference', 'stylegan2_softgan.softgan.SoftGANLoss',
              "SoftGAN as the authors' released toy code: softplus output, clamped entropy, constant β = 1",
              variant='reference')
register_loss('soft-beta-fixed', 'stylegan2_softgan.softgan.SoftGANLoss',
              'SoftGAN with a constant β = 1/(2 ln 2) (no schedule)', beta=BETA_MAX)
register_loss('soft-floor-zero', 'stylegan2_softgan.softgan.SoftGANLoss',
              'SoftGAN, schedule without a floor (scaled EMD), 400-sample EMD', beta_floor='zero',
              beta_emd_samples=400)
register_loss('soft-floor-multi', 'stylegan2_softgan.softgan.SoftGANLoss',
              'SoftGAN, floor = mean of 16 real-vs-real EMDs, 400-sample EMD', beta_floor='real',
              beta_floor_pairs=16, beta_emd_samples=400)
register_loss('soft-floor-single', 'stylegan2_softgan.softgan.SoftGANLoss',
              "SoftGAN, the first release's schedule: one real-vs-real floor, the step's batch",
              beta_floor='real', beta_floor_pairs=1, beta_emd_samples=None)
