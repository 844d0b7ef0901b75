"""SoftGAN's per-sample terms of the paper variant (METHODS.md §1) as functions of the discriminator's logit l,
with the membership μ = σ(l). Pure torch, so that SoftGANLoss (softgan.py) and the NVIDIA-convention plugin
classes (nvidia_plugin.py) compute them with the same code.

    discriminator, real sample:       −μ                 (it maximises μ + β·H(μ) on reals)
    discriminator, generated sample:  −(1 − μ)           (and (1 − μ) + β·H(μ) on generated samples)
    generator ('linear', the paper):  1 − μ              ('ns': −log μ, the non-saturating alternative)
    fuzzy entropy:                    H(μ) = −μ ln μ − (1 − μ) ln(1 − μ)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

G_LOSSES = ('linear', 'ns')


def membership_entropy(logits: torch.Tensor) -> torch.Tensor:
    """H(σ(l)) from the logit: −ln μ = softplus(−l), −ln(1 − μ) = softplus(l), and 1 − μ = σ(−l) (no
    cancellation for large |l|). The same value as training.loss.fuzzy_entropy, which this package's plugin
    cannot import inside NVIDIA's checkouts (tests/test_nvidia_plugin.py checks that they agree)."""
    return torch.sigmoid(logits) * F.softplus(-logits) + torch.sigmoid(-logits) * F.softplus(logits)


def generator_term(gen_logits: torch.Tensor, g_loss: str = 'linear') -> torch.Tensor:
    if g_loss == 'linear':
        return torch.sigmoid(-gen_logits)
    if g_loss == 'ns':
        return F.softplus(-gen_logits)
    raise ValueError(f'SoftGAN g_loss must be one of {", ".join(G_LOSSES)}, got {g_loss!r}')


def discriminator_real_term(real_logits: torch.Tensor) -> torch.Tensor:
    return -torch.sigmoid(real_logits)


def discriminator_fake_term(gen_logits: torch.Tensor) -> torch.Tensor:
    return -torch.sigmoid(-gen_logits)
