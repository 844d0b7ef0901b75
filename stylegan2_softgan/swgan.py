"""SW-GAN (seed 003; METHODS.md §4): a WGAN critic with weight clipping, and a generator moved along the
Stein variational gradient (SVGD) direction, which adds the generated samples' entropy to WGAN's
generator objective.

For the m generated samples x_i = G(z_i) of a generator step, with the critic f and the RBF kernel
k(a, b) = exp(−‖a − b‖²/h),

    φ(x_i) = (1/m) Σ_j [ α·k(x_j, x_i)·∇_{x_j} f(x_j) + ρ·∇_{x_j} k(x_j, x_i) ]

where ∇_{x_j} k(x_j, x_i) = (2/h)(x_i − x_j)·k(x_j, x_i) pushes x_i away from x_j (repulsion ρ), and the
first term pulls samples up the critic (attraction α). The bandwidth follows the paper's median
heuristic: h = rep²/log m with rep = 0.6 × the median pairwise distance of the current samples.
θ moves along (∂x/∂θ)ᵀ φ(x), implemented as the surrogate loss −(1/m) Σ_i ⟨x_i, stopgrad(φ(x_i))⟩.

Decisions:
* The median runs over the m(m−1)/2 distinct pairs and averages the two middle values for an even
  count (numpy's median). With m = 1 or all samples identical h is undefined; then h = 1 (every kernel
  value is 1 and the repulsion vanishes whatever h is).
* ∇_x f comes from `run_D` on a detached copy of the generated batch, so augmentation (when enabled)
  is applied as in every other discriminator evaluation; with minibatch-std layers the critic's value
  for one sample depends on the others and ∇_{x_j} f is the gradient of Σ_i f(x_i).
* Samples are flattened to vectors (pixels in the generator's range) for the kernel.
* `Loss/G/loss` reports WGAN's −f(G(z)) for comparison with the other objectives; the surrogate's own
  value has an arbitrary offset and is not reported.
"""

from __future__ import annotations

import math

import torch

from torch_utils import training_stats
from training.loss import register_loss

from .objectives import RMSPROP_WGAN, WGANLoss


def median_bandwidth(x: torch.Tensor, scale: float = 0.6) -> float:
    """h = (scale · median pairwise distance)² / log m for points x [m, d]."""
    m = x.shape[0]
    if m < 2:
        return 1.0
    dist = torch.nn.functional.pdist(x.reshape(m, -1))
    rep = scale * float(torch.quantile(dist.to(torch.float64), 0.5))
    h = rep * rep / math.log(m)
    return h if h > 0 else 1.0


def svgd_direction(x: torch.Tensor, score: torch.Tensor, alpha: float = 2.0, rho: float = 0.5,
                   h: float | None = None) -> tuple[torch.Tensor, float]:
    """φ(x_i) for particles x [m, d] with scores ∇f(x) [m, d]; returns (φ [m, d], h)."""
    if x.ndim != 2 or score.shape != x.shape:
        raise ValueError(f'SVGD needs particles [m, d] and scores of the same shape, got {tuple(x.shape)} and '
                         f'{tuple(score.shape)}')
    m = x.shape[0]
    if h is None:
        h = median_bandwidth(x)
    sq = torch.cdist(x, x, compute_mode='donot_use_mm_for_euclid_dist').square()
    K = torch.exp(-sq / h)                                   # symmetric: K[i, j] = k(x_j, x_i)
    attraction = K @ score                                   # Σ_j k(x_j, x_i) ∇f(x_j)
    repulsion = (2.0 / h) * (x * K.sum(dim=1, keepdim=True) - K @ x)   # Σ_j (2/h)(x_i − x_j) k(x_j, x_i)
    return (alpha * attraction + rho * repulsion) / m, h


class SWGANLoss(WGANLoss):
    """WGAN critic (clipping c, n_critic) + SVGD generator update with attraction α and repulsion ρ."""

    def __init__(self, device, G, D,
                 alpha: float = 2.0,           # attraction: weight of k·∇f (seed 003: 2)
                 rho: float = 0.5,             # repulsion: weight of ∇k (seed 003 calls it β: 0.5)
                 bandwidth_scale: float = 0.6,  # rep = scale × median pairwise distance (seed 003: 0.6)
                 **kwargs):
        for name, value in (('alpha', alpha), ('rho', rho)):
            if not (isinstance(value, (int, float)) and value >= 0 and math.isfinite(value)):
                raise ValueError(f'SW-GAN {name} must be a finite number >= 0, got {value!r}')
        if not (isinstance(bandwidth_scale, (int, float)) and bandwidth_scale > 0):
            raise ValueError(f'SW-GAN bandwidth_scale must be > 0, got {bandwidth_scale!r}')
        self.alpha = float(alpha)
        self.rho = float(rho)
        self.bandwidth_scale = float(bandwidth_scale)
        super().__init__(device, G, D, **kwargs)

    def generator_loss(self, gen_img, gen_c):
        x = gen_img.detach().requires_grad_(True)
        logits = self.run_D(x, gen_c)
        training_stats.report('Loss/scores/fake', logits)
        training_stats.report('Loss/signs/fake', self.logit_signs(logits))
        training_stats.report('Loss/G/loss', self.loss_G(logits).detach())
        score = torch.autograd.grad(outputs=[logits.sum()], inputs=[x], only_inputs=True)[0]
        flat = x.detach().reshape(x.shape[0], -1)
        h = median_bandwidth(flat, self.bandwidth_scale)
        phi, _ = svgd_direction(flat, score.reshape(flat.shape), self.alpha, self.rho, h=h)
        training_stats.report('Loss/svgd/bandwidth', h)
        training_stats.report('Loss/svgd/phi_norm', phi.norm(dim=1))
        return -(gen_img.reshape(phi.shape) * phi.to(gen_img.dtype)).sum(dim=1).mean()


register_loss('swgan', 'stylegan2_softgan.swgan.SWGANLoss',
              'SW-GAN: WGAN critic (clip 0.01, n_critic 5) + SVGD generator (α = 2, ρ = 0.5), RMSProp 5e-5',
              G_opt=RMSPROP_WGAN, D_opt=RMSPROP_WGAN, clip=0.01, n_critic=5, alpha=2.0, rho=0.5, r1_gamma=0.0)
