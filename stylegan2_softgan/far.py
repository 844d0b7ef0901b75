"""Fake-as-real with a zero-centred gradient penalty (seed 002 §5, eq. 11; METHODS.md §3).

In every discriminator step with N real images (one accumulation round):

1. draw M1 candidates G(z) without gradients and score them with the discriminator;
2. keep the M0 with the *lowest* logits, D_FAR: where many generated samples crowd one real sample
   the discriminator's output is low (seed 002 Proposition 2), and those are the samples whose
   gradients explode;
3. the "real" half is N0 = N − M0 reals plus D_FAR, the fake half the usual M = N generated images;
4. L_D = −(1/N)[Σ log σ(l(x_i)) + Σ log σ(l(f_i))] − (1/M) Σ log(1 − σ(l(y_i))) + λ·(1/N) Σ ‖∇_c l(c_i)‖²
   over c_i ∈ reals ∪ D_FAR;
5. the generator is non-saturating, −log σ(l(G(z))).

Decisions (the paper is silent or states them for its own batch):

* M0 is a fraction of the round's real batch, `m0` (M0 = ⌊m0·N + ½⌋, at most N − 1): 0.5 is the paper's
  image setting (32 of 64), 0.25 its 2-D setting (16 of 64). M1 is a multiple of N, `m1` (the paper:
  256 = 4 × 64), so the candidates are generated and scored in chunks of N, which keeps minibatch-std
  groups intact.
* The zero-centred penalty replaces StyleGAN2's lazy R1 (it is the paper's penalty, on reals and the
  selected fakes) and runs in every discriminator step, with weight λ (not λ/2); r1_gamma must be 0.
* Candidates get fresh latents from the global torch RNG (saved in snapshots) and labels drawn from the
  round's generated labels; they are scored through `run_D`, i.e. with augmentation, the view the
  discriminator is trained on. Candidate generation does not update the tracked W average.
* The ADA statistic and `Loss/scores/real` cover the true reals only; the selected fakes' logits are
  reported as `Loss/scores/far`.
* FAR needs one discriminator output per sample, so it refuses packed discriminators (pack > 1).
"""

from __future__ import annotations

import math

import torch

from torch_utils import training_stats
from torch_utils.ops import conv2d_gradfix
from training.loss import PHASES, StyleGAN2Loss, register_loss


def lowest_scored(logits: torch.Tensor, count: int) -> torch.Tensor:
    """Indices of the `count` smallest logits (eq. 11: top M0 of −D(f))."""
    logits = logits.reshape(-1)
    if not 0 <= count <= logits.numel():
        raise ValueError(f'cannot pick {count} of {logits.numel()} candidates')
    return torch.topk(-logits, count, sorted=True).indices


class FARLoss(StyleGAN2Loss):
    """Fake-as-real discriminator batches with a zero-centred gradient penalty; non-saturating generator."""

    def __init__(self, device, G, D,
                 m0: float = 0.5,             # M0/N: fraction of the real half replaced by selected fakes
                 m1: int = 4,                 # M1/N: candidates generated per real image
                 far_lambda: float = 10.0,    # λ of the zero-centred penalty on reals ∪ D_FAR (seed 002: 10)
                 r1_gamma: float = 0.0,       # must stay 0: the zero-centred penalty replaces R1
                 **kwargs):
        if not (isinstance(m0, (int, float)) and 0 <= m0 < 1):
            raise ValueError(f'FAR m0 (fraction of the real half) must be in [0, 1), got {m0!r}')
        if not (isinstance(m1, int) and not isinstance(m1, bool) and m1 >= 1):
            raise ValueError(f'FAR m1 (candidates per real image) must be an integer >= 1, got {m1!r}')
        if not (isinstance(far_lambda, (int, float)) and far_lambda >= 0 and math.isfinite(far_lambda)):
            raise ValueError(f'FAR penalty weight must be a finite number >= 0, got {far_lambda!r}')
        if r1_gamma != 0:
            raise ValueError('FAR has its own zero-centred penalty on reals and selected fakes; '
                             'set its weight with far_lambda and leave r1_gamma at 0')
        self.m0 = float(m0)
        self.m1 = int(m1)
        self.far_lambda = float(far_lambda)
        super().__init__(device, G, D, r1_gamma=0.0, **kwargs)

    def counts(self, n: int) -> tuple[int, int]:
        """(M0, M1) for a round of n real images."""
        m0 = min(int(math.floor(self.m0 * n + 0.5)), n - 1)
        return max(m0, 0), self.m1 * n

    def sample_candidates(self, num: int, gen_z: torch.Tensor, gen_c: torch.Tensor):
        """Latents and labels of `num` candidates (labels resampled from this round's generated labels)."""
        z = torch.randn([num, gen_z.shape[1]], device=gen_z.device, dtype=gen_z.dtype)
        idx = torch.randint(gen_c.shape[0], [num], device=gen_c.device)
        return z, gen_c[idx]

    def select_fake_as_real(self, n: int, gen_z: torch.Tensor, gen_c: torch.Tensor):
        """Generate M1 candidates in chunks of n, score them, return the M0 lowest (images, labels, logits)."""
        m0, m1 = self.counts(n)
        cand_z, cand_c = self.sample_candidates(m1, gen_z, gen_c)
        images, logits = [], []
        with torch.no_grad():
            for z, c in zip(cand_z.split(n), cand_c.split(n)):
                img, _ = self.run_G(z, c, update_emas=False)
                score = self.run_D(img, c)
                if score.shape[0] != img.shape[0]:
                    raise ValueError(f'FAR needs one discriminator output per sample; the discriminator returned '
                                     f'{score.shape[0]} for {img.shape[0]} (packing is not supported)')
                images.append(img)
                logits.append(score.reshape(-1))
        images, logits = torch.cat(images), torch.cat(logits)
        idx = lowest_scored(logits, m0)
        training_stats.report('Loss/far/candidates', logits)
        return images[idx], cand_c[idx], logits[idx]

    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, gain, cur_nimg):
        if phase not in PHASES:
            raise ValueError(f'unknown phase {phase!r}; expected one of {PHASES}')
        if phase.startswith('G'):
            super().accumulate_gradients(phase, real_img, real_c, gen_z, gen_c, gain, cur_nimg)
            return
        if phase == 'Dreg':
            return          # the penalty is part of every main step; FAR has no lazy term
        loss_Dgen, _ = self.accumulate_D_gen(gen_z, gen_c, gain)
        loss_Dreal = self.accumulate_D_far(real_img, real_c, gen_z, gen_c, gain)
        training_stats.report('Loss/D/loss', loss_Dgen.reshape(-1).mean() + loss_Dreal.reshape(-1).mean())

    def accumulate_D_far(self, real_img, real_c, gen_z, gen_c, gain):
        """The real half (N0 reals + D_FAR) with the zero-centred penalty; returns the per-output loss."""
        n = real_img.shape[0]
        m0, _ = self.counts(n)
        with torch.autograd.profiler.record_function('Dfar_forward'):
            x, c = real_img[:n - m0].detach(), real_c[:n - m0]
            if m0 > 0:
                far_img, far_c, _ = self.select_fake_as_real(n, gen_z, gen_c)
                x = torch.cat([x, far_img.to(x.dtype)])
                c = torch.cat([c, far_c.to(c.dtype)])
            x = x.requires_grad_(self.far_lambda != 0)
            logits = self.run_D(x, c)
            if logits.shape[0] != n:
                raise ValueError(f'FAR needs one discriminator output per sample; the discriminator returned '
                                 f'{logits.shape[0]} for {n} (packing is not supported)')
            flat = logits.reshape(-1)
            training_stats.report('Loss/scores/real', flat[:n - m0])
            training_stats.report('Loss/signs/real', self.logit_signs(flat[:n - m0]))
            if m0 > 0:
                training_stats.report('Loss/scores/far', flat[n - m0:])
            loss = self.loss_D_real(logits) + self.entropy_bonus(logits, 'real')
            total = loss.mean()
            if self.far_lambda != 0:
                with conv2d_gradfix.no_weight_gradients():
                    grads = torch.autograd.grad(outputs=[logits.sum()], inputs=[x], create_graph=True,
                                                only_inputs=True)[0]
                penalty = grads.square().reshape(n, -1).sum(dim=1)
                training_stats.report('Loss/far/penalty', penalty)
                training_stats.report('Loss/D/reg', penalty * self.far_lambda)
                total = total + penalty.mean() * self.far_lambda
        with torch.autograd.profiler.record_function('Dfar_backward'):
            total.mul(gain).backward()
        return loss.detach()


register_loss('far', 'stylegan2_softgan.far.FARLoss',
              'fake-as-real: M0 lowest-scored of M1 candidates as reals, zero-centred GP λ = 10 (seed 002)',
              G_opt=dict(class_name='torch.optim.RMSprop', lr=1e-4, alpha=0.99),
              D_opt=dict(class_name='torch.optim.RMSprop', lr=1e-4, alpha=0.99),
              m0=0.5, m1=4, far_lambda=10.0, r1_gamma=0.0)
