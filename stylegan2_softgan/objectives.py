"""The base objectives of the source papers as LogitLoss subclasses (METHODS.md §6), each selectable with
`train.py --loss=NAME` and usable with every architecture family (style generators or plain G(z, c)):

    ns          non-saturating logistic loss (DCGAN): StyleGAN2's terms without R1 by default
    ms          ns plus the mode-seeking regulariser (stylegan2_softgan.mode_seeking)
    hinge       SNGAN's hinge loss
    rpgan       R3GAN's regularised relativistic pairing loss: RpGAN + R1 + R2, both every step
    fgan-kl, fgan-rkl, fgan-js
                f-GAN with the output activation g_f and conjugate f* of seed 004 Table 1
    wgan        WGAN: linear critic, weight clipping after every critic step, n_critic = 5, RMSProp
    wgan-gp     WGAN-GP: the gradient penalty λ·(‖∇f(x̂)‖ − 1)² on real/fake interpolates, n_critic = 5

FAR (stylegan2_softgan.far) and SW-GAN (stylegan2_softgan.swgan) live in their own modules.

Every objective keeps LogitLoss's generic parts: style mixing, path length (with style generators, as the
configuration sets it), the optional β-weighted entropy bonus, and the mode-seeking hook. R1 is off by
default for all of them (the sources use none; `--gamma` turns it back on) since each brings its own
view of how the discriminator is kept in check.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from torch_utils import training_stats
from torch_utils.ops import conv2d_gradfix
from training.loss import LogitLoss, register_loss

from .mode_seeking import mode_seeking_kwargs
from .softgan import beta_schedule_kwargs

# ----------------------------------------------------------------------------
# Non-saturating, hinge.


class HingeLoss(LogitLoss):
    """SNGAN's hinge loss: L_D = relu(1 − l_real) + relu(1 + l_fake), L_G = −l_fake."""

    def __init__(self, device, G, D, r1_gamma: float = 0.0, **kwargs):
        super().__init__(device, G, D, r1_gamma=r1_gamma, **kwargs)

    def loss_G(self, gen_logits):
        return -gen_logits

    def loss_D_real(self, real_logits):
        return F.relu(1 - real_logits)

    def loss_D_gen(self, gen_logits):
        return F.relu(1 + gen_logits)


# ----------------------------------------------------------------------------
# RpGAN (R3GAN).


class RpGANLoss(LogitLoss):
    """R3GAN's relativistic pairing loss (Huang et al., NeurIPS 2024): the i-th real sample is paired with
    the i-th generated one, and with l_r, l_f their logits

        L_D = softplus(l_f − l_r),    L_G = softplus(l_r − l_f),

    plus the zero-centred penalties R1 (on reals) and R2 (on generated samples), γ/2·E‖∇_x D‖² each with
    the same γ, applied every step (R3GAN reports that lazy R1/R2 fails on StackedMNIST and on the
    25-Gaussian mixture). `r2_gamma=None` means "the same γ as R1"; `D_reg_interval` makes them lazy.
    SoftGAN's entropy bonus (a β schedule) adds −β·H(σ(l)) per real and per generated logit.
    """

    paired = True

    def __init__(self, device, G, D, r1_gamma: float = 10.0, r2_gamma: float | None = None,
                 D_reg_interval: int | None = None, **kwargs):
        super().__init__(device, G, D, r1_gamma=r1_gamma, r2_gamma=r1_gamma if r2_gamma is None else r2_gamma,
                         D_reg_interval=D_reg_interval, **kwargs)

    def loss_D_pair(self, real_logits, gen_logits):
        return F.softplus(gen_logits - real_logits)

    def loss_G_pair(self, real_logits, gen_logits):
        return F.softplus(real_logits - gen_logits)

    def _unpaired(self, *args):
        raise NotImplementedError('RpGAN has no per-sample terms: each term pairs a real with a generated sample '
                                  '(loss_D_pair, loss_G_pair)')

    loss_G = loss_D_real = loss_D_gen = _unpaired


# ----------------------------------------------------------------------------
# f-GAN.


class FDivergence:
    """One row of seed 004 Table 1 (Nowozin et al. 2016): the generator function f, its derivative,
    the discriminator's output activation g_f, the convex conjugate f*, and the threshold f'(1).

    `conjugate_of_activation(v)` is f*(g_f(v)) in a closed form that stays finite for every logit v
    (e.g. JS: −log(2 − e^{g}) = softplus(v) − log 2); `conjugate(t)` is the textbook f* on its domain.
    """

    def __init__(self, name, f, f_prime, activation, conjugate, conjugate_of_activation, threshold, domain):
        self.name = name
        self.f = f                                              # f(u), u > 0
        self.f_prime = f_prime                                  # f'(u)
        self.activation = activation                            # g_f(v): logit -> dom f*
        self.conjugate = conjugate                              # f*(t)
        self.conjugate_of_activation = conjugate_of_activation  # f*(g_f(v)), stable
        self.threshold = threshold                              # f'(1): g_f above it means "real"
        self.domain = domain                                    # (lo, hi) of f*'s argument, open


LOG2 = math.log(2.0)

DIVERGENCES = {
    'kl': FDivergence(
        'Kullback-Leibler',
        f=lambda u: u * torch.log(u),
        f_prime=lambda u: torch.log(u) + 1,
        activation=lambda v: v,
        conjugate=lambda t: torch.exp(t - 1),
        conjugate_of_activation=lambda v: torch.exp(v - 1),
        threshold=1.0, domain=(-math.inf, math.inf)),
    'rkl': FDivergence(
        'reverse Kullback-Leibler',
        f=lambda u: -torch.log(u),
        f_prime=lambda u: -1 / u,
        activation=lambda v: -torch.exp(-v),
        conjugate=lambda t: -1 - torch.log(-t),
        conjugate_of_activation=lambda v: v - 1,               # −1 − log(e^{−v})
        threshold=-1.0, domain=(-math.inf, 0.0)),
    'js': FDivergence(
        'Jensen-Shannon',
        f=lambda u: -(u + 1) * torch.log((1 + u) / 2) + u * torch.log(u),
        f_prime=lambda u: torch.log(2 * u / (1 + u)),
        activation=lambda v: LOG2 - F.softplus(-v),
        conjugate=lambda t: -torch.log(2 - torch.exp(t)),
        conjugate_of_activation=lambda v: F.softplus(v) - LOG2,  # −log(2 − 2σ(v))
        threshold=0.0, domain=(-math.inf, LOG2)),
}


class FGANLoss(LogitLoss):
    """f-GAN (seed 004 §2, METHODS §6): D maximises E_r[g_f(l)] − E_f[f*(g_f(l))]; G maximises E_f[g_f(l)]
    (the f-GAN paper's alternative generator objective), so per sample

        L_D(real) = −g_f(l),   L_D(fake) = f*(g_f(l)),   L_G = −g_f(l).

    ADA's sign statistic uses the divergence's own boundary: sign(g_f(l) − f'(1)).
    """

    def __init__(self, device, G, D,
                 divergence: str = 'js',       # 'kl', 'rkl' or 'js' (seed 004 Table 1)
                 r1_gamma: float = 0.0,
                 **kwargs):
        if divergence not in DIVERGENCES:
            raise ValueError(f'f-GAN divergence must be one of {", ".join(DIVERGENCES)}, got {divergence!r}')
        self.divergence = divergence
        self.fdiv = DIVERGENCES[divergence]
        super().__init__(device, G, D, r1_gamma=r1_gamma, **kwargs)

    def loss_G(self, gen_logits):
        return -self.fdiv.activation(gen_logits)

    def loss_D_real(self, real_logits):
        return -self.fdiv.activation(real_logits)

    def loss_D_gen(self, gen_logits):
        return self.fdiv.conjugate_of_activation(gen_logits)

    def logit_signs(self, logits):
        return (self.fdiv.activation(logits) - self.fdiv.threshold).sign()


# ----------------------------------------------------------------------------
# WGAN and WGAN-GP.


class WGANLoss(LogitLoss):
    """WGAN (Arjovsky et al. 2017; METHODS §6): the discriminator is a critic f with linear output,
    L_D = −f(real) + f(fake), L_G = −f(fake), and every critic parameter is clipped to [−c, c] after each
    critic step (`post_step`) and once when the loss is built, so the constraint holds from the first step.

    Clipping acts on the stored parameters, all of them (weights, biases, and for StyleGAN2 networks the
    equalised-learning-rate weights before their runtime gain), as the reference implementation clamps
    every parameter of the critic; buffers are left alone.
    """

    def __init__(self, device, G, D,
                 clip: float | None = 0.01,    # weight clipping bound c; None = no clipping (then use a penalty)
                 r1_gamma: float = 0.0,
                 **kwargs):
        if clip is not None and not (isinstance(clip, (int, float)) and clip > 0 and math.isfinite(clip)):
            raise ValueError(f'weight clipping bound must be a finite number > 0 or None, got {clip!r}')
        self.clip = None if clip is None else float(clip)
        super().__init__(device, G, D, r1_gamma=r1_gamma, **kwargs)
        self.clip_weights(D)

    def clip_weights(self, module: torch.nn.Module) -> None:
        if self.clip is None:
            return
        with torch.no_grad():
            for p in module.parameters():
                p.clamp_(-self.clip, self.clip)

    def post_step(self, phase, module):
        if phase.startswith('D'):
            self.clip_weights(module)

    def loss_G(self, gen_logits):
        return -gen_logits

    def loss_D_real(self, real_logits):
        return -real_logits

    def loss_D_gen(self, gen_logits):
        return gen_logits


def gradient_norms(outputs: torch.Tensor, inputs: torch.Tensor, create_graph: bool = True) -> torch.Tensor:
    """‖∇_x Σ outputs‖ per discriminator output: with packing (k inputs per output) the k inputs' gradients
    form one vector, since the critic sees them as one point."""
    with conv2d_gradfix.no_weight_gradients():
        grads = torch.autograd.grad(outputs=[outputs.sum()], inputs=[inputs], create_graph=create_graph,
                                    only_inputs=True)[0]
    return grads.reshape(outputs.shape[0], -1).norm(dim=1)


class WGANGPLoss(WGANLoss):
    """WGAN-GP (Gulrajani et al. 2017; METHODS §6): WGAN's critic without clipping plus, every critic step,
    λ·E[(‖∇f(x̂)‖₂ − 1)²] on x̂ = ε·x_real + (1 − ε)·x_fake, ε ~ U[0, 1] per sample.

    The interpolates use the generated batch of the same critic step and the real labels (conditional
    models). The penalty's input gradient is taken before augmentation, like R1's.
    """

    def __init__(self, device, G, D,
                 gp_lambda: float = 10.0,      # λ of the gradient penalty (WGAN-GP: 10)
                 clip: float | None = None,
                 **kwargs):
        if not (isinstance(gp_lambda, (int, float)) and gp_lambda >= 0 and math.isfinite(gp_lambda)):
            raise ValueError(f'gradient penalty weight must be a finite number >= 0, got {gp_lambda!r}')
        self.gp_lambda = float(gp_lambda)
        super().__init__(device, G, D, clip=clip, **kwargs)

    def accumulate_D_extra(self, real_img, real_c, gen_img, gen_c, gain):
        if self.gp_lambda == 0:
            return
        if real_img.shape != gen_img.shape:
            raise ValueError(f'WGAN-GP interpolates need real and generated batches of one shape, got '
                             f'{tuple(real_img.shape)} and {tuple(gen_img.shape)}')
        with torch.autograd.profiler.record_function('Dgp_forward'):
            eps = torch.rand([real_img.shape[0]] + [1] * (real_img.ndim - 1), device=real_img.device,
                             dtype=real_img.dtype)
            x_hat = (eps * real_img.detach() + (1 - eps) * gen_img.detach()).requires_grad_(True)
            logits = self.run_D(x_hat, real_c)
            norms = gradient_norms(logits, x_hat)
            penalty = (norms - 1).square()
            training_stats.report('Loss/gp_penalty', penalty)
            loss_gp = penalty * self.gp_lambda
            training_stats.report('Loss/D/reg', loss_gp)
        with torch.autograd.profiler.record_function('Dgp_backward'):
            loss_gp.mean().mul(gain).backward()


# ----------------------------------------------------------------------------
# Registrations. Optimiser presets: the source papers' (train.py applies them unless --glr/--dlr).

RMSPROP_WGAN = dict(class_name='torch.optim.RMSprop', lr=5e-5)                   # WGAN Alg. 1; SW-GAN Alg. 1
ADAM_WGAN_GP = dict(class_name='torch.optim.Adam', lr=1e-4, betas=[0.0, 0.9], eps=1e-8)  # WGAN-GP Alg. 1

register_loss('ns', 'training.loss.StyleGAN2Loss',
              'non-saturating logistic loss (DCGAN); R1 off unless --gamma', r1_gamma=0.0)
register_loss('ms', 'training.loss.StyleGAN2Loss',
              'ns + mode-seeking regulariser λ/(r+ε), λ0 = 0.05 (seed 004)', r1_gamma=0.0,
              mode_seeking=mode_seeking_kwargs(0.05))
register_loss('hinge', 'stylegan2_softgan.objectives.HingeLoss', 'hinge loss (SNGAN)', r1_gamma=0.0)
register_loss('rpgan', 'stylegan2_softgan.objectives.RpGANLoss',
              "R3GAN: relativistic pairing loss + R1 + R2 (same γ, every step; γ from --gamma / the cfg)")
for _name, _div in (('fgan-kl', 'kl'), ('fgan-rkl', 'rkl'), ('fgan-js', 'js')):
    register_loss(_name, 'stylegan2_softgan.objectives.FGANLoss',
                  f'f-GAN, {DIVERGENCES[_div].name} (seed 004 Table 1)', divergence=_div, r1_gamma=0.0)
register_loss('wgan', 'stylegan2_softgan.objectives.WGANLoss',
              'WGAN: weight clipping c = 0.01, n_critic = 5, RMSProp 5e-5',
              G_opt=RMSPROP_WGAN, D_opt=RMSPROP_WGAN, clip=0.01, n_critic=5, r1_gamma=0.0)
register_loss('wgan-gp', 'stylegan2_softgan.objectives.WGANGPLoss',
              'WGAN-GP: λ = 10 on interpolates, n_critic = 5, Adam 1e-4 (0, 0.9)',
              G_opt=ADAM_WGAN_GP, D_opt=ADAM_WGAN_GP, gp_lambda=10.0, n_critic=5, r1_gamma=0.0)
register_loss('rpgan-eb', 'stylegan2_softgan.objectives.RpGANLoss',
              "RpGAN + R1 + R2 with SoftGAN's entropy bonus (β from the default EMD schedule)",
              beta_schedule=beta_schedule_kwargs())
