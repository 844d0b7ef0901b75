"""The loss interface of the training loop, the shared machinery of logit-based GAN losses, and
StyleGAN2's non-saturating logistic loss with lazy R1 and path-length regularisation.

The training loop knows nothing about any particular objective. It builds the loss by class name
and, for each phase it runs, calls ``accumulate_gradients(phase, ...)`` once per accumulation
round, then all-reduces and applies the gradients. Phases are StyleGAN2's:

    Gmain / Dmain   the adversarial terms (every step)
    Greg  / Dreg    lazy regularisation (every `G_reg_interval` / `D_reg_interval` steps)
    Gboth / Dboth   main and regularisation together (when the interval is None)

A loss declares its rhythm through attributes the loop reads: ``n_critic`` (discriminator steps per
generator step), ``G_reg_interval`` and ``D_reg_interval``. ``post_step(phase, module)`` runs after
each optimiser step (WGAN's weight clipping uses it). ``state_dict()``/``load_state_dict()`` carry
whatever the loss accumulates across steps (path-length mean, β schedule) through checkpoints.
"""

from __future__ import annotations

import abc
import copy
import re
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

import dnnlib
from torch_utils import training_stats
from torch_utils.ops import conv2d_gradfix

PHASES = ('Gmain', 'Greg', 'Gboth', 'Dmain', 'Dreg', 'Dboth')

# ----------------------------------------------------------------------------
# Interface.


class Loss(abc.ABC):
    """What the training loop needs from an objective."""

    n_critic: int = 1                       # discriminator steps per generator step
    G_reg_interval: int | None = None       # lazy interval of Greg; None = regularise inside Gboth
    D_reg_interval: int | None = None       # lazy interval of Dreg; None = regularise inside Dboth

    @abc.abstractmethod
    def accumulate_gradients(self, phase: str, real_img: torch.Tensor, real_c: torch.Tensor, gen_z: torch.Tensor,
                             gen_c: torch.Tensor, gain: float, cur_nimg: int) -> None:
        """Add this phase's gradients (times `gain`) for one accumulation round to the parameters' .grad."""

    def post_step(self, phase: str, module: torch.nn.Module) -> None:
        """Called after the optimiser step of `phase` on `module`."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        if state:
            raise ValueError(f'{type(self).__name__} keeps no state but the checkpoint has {sorted(state)}')


# ----------------------------------------------------------------------------
# Helpers shared by every logit loss.


def fuzzy_entropy(logits: torch.Tensor) -> torch.Tensor:
    """H(μ) = −μ ln μ − (1−μ) ln(1−μ) with μ = σ(l), computed stably from the logit (METHODS §1)."""
    return torch.sigmoid(logits) * F.softplus(-logits) + torch.sigmoid(-logits) * F.softplus(logits)


def is_style_generator(G: torch.nn.Module) -> bool:
    """Does G split into mapping(z, c) -> ws and synthesis(ws) (needed for style mixing and path length)?"""
    return hasattr(G, 'mapping') and hasattr(G, 'synthesis') and hasattr(G, 'num_ws')


class LogitLoss(Loss):
    """Machinery shared by losses whose discriminator returns a logit: generator and discriminator
    evaluation (style mixing, augmentation), lazy R1, path-length regularisation, and an optional
    β-weighted fuzzy-entropy bonus for the discriminator (METHODS §1, last paragraph).

    Subclasses define the adversarial terms as per-sample losses of the logits:
    ``loss_G(gen_logits)``, ``loss_D_real(real_logits)``, ``loss_D_gen(gen_logits)``.

    Hooks for objectives that need more than per-sample terms (stylegan2_softgan.objectives and friends):
    ``generator_loss(gen_img, gen_c)`` returns the generator's main loss (a scalar) from the images
    (SW-GAN replaces it by its SVGD surrogate); ``accumulate_D_extra(...)`` adds discriminator terms
    that need the real and the generated batch together (WGAN-GP's penalty on interpolates);
    ``logit_signs(logits)`` says on which side of the decision boundary each output lies (ADA reads the
    reals' mean sign). A mode-seeking regulariser (`mode_seeking`, METHODS §5) adds λ/(r + ε) to the
    generator loss of any subclass.

    Zero-centred gradient penalties: R1 (γ1/2·‖∇_x D(x)‖² on reals, `r1_gamma`) and R2 (the same on
    generated samples, `r2_gamma`), each a mean over the batch, applied together in the D regularisation
    phase: every step when `D_reg_interval` is None, else lazily every `D_reg_interval` steps with the
    penalty multiplied by the interval (StyleGAN2's lazy regularisation).

    Paired objectives (class attribute ``paired = True``, e.g. RpGAN) compare each real with one generated
    sample: they define ``loss_D_pair(real_logits, gen_logits)`` and ``loss_G_pair(real_logits,
    gen_logits)`` instead of the three per-sample terms, and the discriminator's main terms, entropy
    bonus and (when due) R1 and R2 are taken in one pass over both batches.
    """

    paired = False                              # see the class docstring

    def __init__(self, device, G, D, augment_pipe=None, real_source=None,
                 r1_gamma: float = 10.0,           # R1 weight γ (the penalty is γ/2·‖∇D‖²); 0 disables
                 r2_gamma: float = 0.0,            # R2 weight (γ/2·‖∇D‖² on generated samples); 0 disables
                 style_mixing_prob: float = 0.9,   # probability of mixing two latents (style generators only)
                 pl_weight: float = 0.0,           # path-length regularisation weight; 0 disables
                 pl_batch_shrink: int = 2,         # the path-length pass uses batch // shrink samples
                 pl_decay: float = 0.01,           # EMA decay of the path-length target
                 pl_no_weight_grad: bool = False,  # skip conv weight gradients in the path-length inner grad
                 G_reg_interval: int | None = 4,   # lazy interval of the path-length regulariser (None: every step)
                 D_reg_interval: int | None = 16,  # lazy interval of R1 and R2 (None: every step)
                 n_critic: int = 1,                # discriminator steps per generator step
                 beta_schedule: dict | None = None,  # kwargs (with class_name) of a β schedule that turns on the entropy bonus
                 mode_seeking: dict | None = None,   # kwargs (with class_name) of a mode-seeking regulariser; None = off
                 ):
        super().__init__()
        self.device = torch.device(device)
        self.G = G
        self.D = D
        self.augment_pipe = augment_pipe
        self.r1_gamma = float(r1_gamma)
        self.r2_gamma = float(r2_gamma)
        for name, value in (('r1_gamma', self.r1_gamma), ('r2_gamma', self.r2_gamma)):
            if not (value >= 0 and np.isfinite(value)):
                raise ValueError(f'{name} must be a finite number >= 0, got {value!r}')
        self.style_mixing_prob = float(style_mixing_prob)
        self.pl_weight = float(pl_weight)
        self.pl_batch_shrink = int(pl_batch_shrink)
        self.pl_decay = float(pl_decay)
        self.pl_no_weight_grad = bool(pl_no_weight_grad)
        self.pl_mean = torch.zeros([], device=self.device)
        self.G_reg_interval = G_reg_interval if self.pl_weight != 0 else None
        self.D_reg_interval = D_reg_interval if (self.r1_gamma != 0 or self.r2_gamma != 0) else None
        if int(n_critic) < 1:
            raise ValueError(f'n_critic must be >= 1, got {n_critic}')
        self.n_critic = int(n_critic)
        if self.pl_batch_shrink < 1:
            raise ValueError(f'pl_batch_shrink must be >= 1, got {pl_batch_shrink}')
        style = is_style_generator(G)
        if self.pl_weight != 0 and not style:
            raise ValueError(f'path-length regularisation needs a style generator (mapping + synthesis); '
                             f'{type(G).__name__} has none: set pl_weight=0')
        if not style:
            self.style_mixing_prob = 0.0
        self.beta_schedule = None
        if beta_schedule is not None:
            self.beta_schedule = dnnlib.util.construct_class_by_name(device=self.device, real_source=real_source,
                                                                     **beta_schedule)
        self.mode_seeking = None
        if mode_seeking is not None:
            self.mode_seeking = dnnlib.util.construct_class_by_name(**mode_seeking)

    # -- Adversarial terms: per-sample losses of the logits. ------------------------------------

    @abc.abstractmethod
    def loss_G(self, gen_logits: torch.Tensor) -> torch.Tensor:
        """Per-sample generator loss."""

    @abc.abstractmethod
    def loss_D_real(self, real_logits: torch.Tensor) -> torch.Tensor:
        """Per-sample discriminator loss on real images."""

    @abc.abstractmethod
    def loss_D_gen(self, gen_logits: torch.Tensor) -> torch.Tensor:
        """Per-sample discriminator loss on generated images."""

    # -- Network evaluation. ---------------------------------------------------------------------

    def run_G(self, z: torch.Tensor, c: torch.Tensor, update_emas: bool = False):
        """Generated images and, for style generators, the per-layer latents ws (else None)."""
        if not is_style_generator(self.G):
            return self.G(z, c), None
        ws = self.G.mapping(z, c, update_emas=update_emas)
        if self.style_mixing_prob > 0:
            with torch.autograd.profiler.record_function('style_mixing'):
                num_ws = ws.shape[1]
                cutoff = int(torch.randint(1, num_ws, [], device='cpu')) if num_ws > 1 else num_ws
                if float(torch.rand([], device='cpu')) >= self.style_mixing_prob:
                    cutoff = num_ws
                if cutoff < num_ws:
                    ws2 = self.G.mapping(torch.randn_like(z), c, update_emas=False)
                    ws = torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)
        img = self.G.synthesis(ws)
        return img, ws

    def run_D(self, img: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if self.augment_pipe is not None:
            img = self.augment_pipe(img)
        return self.D(img, c)

    def logit_signs(self, logits: torch.Tensor) -> torch.Tensor:
        """+1 where the discriminator calls the input real, −1 where it calls it fake (ADA's statistic)."""
        return logits.sign()

    # -- The phases. -----------------------------------------------------------------------------

    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, gain, cur_nimg):
        if phase not in PHASES:
            raise ValueError(f'unknown phase {phase!r}; expected one of {PHASES}')
        do_Gmain = phase in ('Gmain', 'Gboth')
        do_Dmain = phase in ('Dmain', 'Dboth')
        do_Gpl = phase in ('Greg', 'Gboth') and self.pl_weight != 0
        do_Dr1 = phase in ('Dreg', 'Dboth') and self.r1_gamma != 0
        do_Dr2 = phase in ('Dreg', 'Dboth') and self.r2_gamma != 0

        if self.paired and do_Dmain:
            gen_img = self.accumulate_D_paired(real_img, real_c, gen_z, gen_c, gain, do_Dr1, do_Dr2)
            self.accumulate_D_extra(real_img, real_c, gen_img, gen_c, gain)
            return
        if do_Gmain:
            self.accumulate_G_main(real_img, real_c, gen_z, gen_c, gain, cur_nimg)
        if do_Gpl:
            self.accumulate_G_pl(gen_z, gen_c, gain)
        loss_Dgen = gen_img = None
        if do_Dmain or do_Dr2:
            loss_Dgen, gen_img = self.accumulate_D_gen(gen_z, gen_c, gain, do_Dmain=do_Dmain, do_Dr2=do_Dr2)
        if do_Dmain or do_Dr1:
            loss_Dreal = self.accumulate_D_real(real_img, real_c, gain, do_Dmain=do_Dmain, do_Dr1=do_Dr1)
            if do_Dmain:
                training_stats.report('Loss/D/loss', loss_Dgen + loss_Dreal)
        if do_Dmain:
            self.accumulate_D_extra(real_img, real_c, gen_img, gen_c, gain)

    def accumulate_G_main(self, real_img, real_c, gen_z, gen_c, gain, cur_nimg=None):
        with torch.autograd.profiler.record_function('Gmain_forward'):
            gen_img, _ = self.run_G(gen_z, gen_c)
            if self.paired:
                loss_Gmain = self.paired_generator_loss(gen_img, gen_c, real_img, real_c)
            else:
                loss_Gmain = self.generator_loss(gen_img, gen_c)
            if self.mode_seeking is not None:
                loss_Gmain = loss_Gmain + self.mode_seeking.penalty(gen_img, gen_z, 0 if cur_nimg is None else cur_nimg)
        with torch.autograd.profiler.record_function('Gmain_backward'):
            loss_Gmain.mul(gain).backward()
        if self.beta_schedule is not None:
            self.beta_schedule.on_generator_step(real_img, gen_img.detach(), cur_nimg)

    def generator_loss(self, gen_img: torch.Tensor, gen_c: torch.Tensor) -> torch.Tensor:
        """The generator's adversarial loss (mean over the batch) for images that carry G's graph."""
        gen_logits = self.run_D(gen_img, gen_c)
        training_stats.report('Loss/scores/fake', gen_logits)
        training_stats.report('Loss/signs/fake', self.logit_signs(gen_logits))
        loss_Gmain = self.loss_G(gen_logits)
        training_stats.report('Loss/G/loss', loss_Gmain)
        return loss_Gmain.mean()

    def paired_generator_loss(self, gen_img, gen_c, real_img, real_c) -> torch.Tensor:
        """The generator's loss of a paired objective: D scores the real batch too, without a graph (the
        real logits do not depend on G)."""
        gen_logits = self.run_D(gen_img, gen_c)
        with torch.no_grad():
            real_logits = self.run_D(real_img.detach(), real_c)
        if real_logits.shape != gen_logits.shape:
            raise ValueError(f'{type(self).__name__} pairs reals with generated samples: got {tuple(real_logits.shape)} '
                             f'real and {tuple(gen_logits.shape)} generated outputs')
        training_stats.report('Loss/scores/fake', gen_logits)
        training_stats.report('Loss/signs/fake', self.logit_signs(gen_logits))
        loss_Gmain = self.loss_G_pair(real_logits, gen_logits)
        training_stats.report('Loss/G/loss', loss_Gmain)
        return loss_Gmain.mean()

    def loss_D_pair(self, real_logits: torch.Tensor, gen_logits: torch.Tensor) -> torch.Tensor:
        """Per-pair discriminator loss of a paired objective."""
        raise NotImplementedError(f'{type(self).__name__} is not a paired objective')

    def loss_G_pair(self, real_logits: torch.Tensor, gen_logits: torch.Tensor) -> torch.Tensor:
        """Per-pair generator loss of a paired objective."""
        raise NotImplementedError(f'{type(self).__name__} is not a paired objective')

    def input_gradient_penalty(self, logits: torch.Tensor, inputs: torch.Tensor, name: str) -> torch.Tensor:
        """Per-input ‖∇_x Σ logits‖² (R1 on reals, R2 on generated samples); reports it as Loss/{name}_penalty."""
        with torch.autograd.profiler.record_function(name + '_grads'), conv2d_gradfix.no_weight_gradients():
            grads = torch.autograd.grad(outputs=[logits.sum()], inputs=[inputs], create_graph=True, only_inputs=True)[0]
        penalty = grads.square().sum(dim=list(range(1, grads.ndim)))
        training_stats.report(f'Loss/{name}_penalty', penalty)
        return penalty

    def penalty_term(self, kind: str, logits: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """The batch mean of γ/2·‖∇_x D‖²: R1 ('r1', reals, γ = r1_gamma) or R2 ('r2', generated, r2_gamma);
        reports the weighted per-input values as Loss/D/reg (R1) or Loss/D/reg2 (R2)."""
        gamma = self.r1_gamma if kind == 'r1' else self.r2_gamma
        weighted = self.input_gradient_penalty(logits, inputs, kind) * (gamma / 2)
        training_stats.report('Loss/D/reg' if kind == 'r1' else 'Loss/D/reg2', weighted)
        return weighted.mean()

    def side_terms(self, side: str, logits, inputs, do_main: bool, do_penalty: bool):
        """(scalar loss, per-sample main term) of one side ('real' or 'fake') of an unpaired discriminator
        step: the main term with its entropy bonus, and R1 (reals) or R2 (generated) when due. Means are
        taken per term: with a packing discriminator there are fewer logits than images."""
        loss = 0.0
        main = torch.zeros_like(logits)
        if do_main:
            term = self.loss_D_real(logits) if side == 'real' else self.loss_D_gen(logits)
            main = term + self.entropy_bonus(logits, side)
            loss = loss + main.mean()
        if do_penalty:
            loss = loss + self.penalty_term('r1' if side == 'real' else 'r2', logits, inputs)
        return loss, main

    def accumulate_D_paired(self, real_img, real_c, gen_z, gen_c, gain, do_Dr1=False, do_Dr2=False):
        """Main terms of a paired objective with its entropy bonus and the penalties that are due; returns
        the generated images."""
        with torch.autograd.profiler.record_function('Dpaired_forward'):
            with torch.no_grad():
                gen_img, _ = self.run_G(gen_z, gen_c, update_emas=True)
            gen_tmp = gen_img.detach().requires_grad_(do_Dr2)
            real_tmp = real_img.detach().requires_grad_(do_Dr1)
            gen_logits = self.run_D(gen_tmp, gen_c)
            real_logits = self.run_D(real_tmp, real_c)
            if real_logits.shape != gen_logits.shape:
                raise ValueError(f'{type(self).__name__} pairs reals with generated samples: got '
                                 f'{tuple(real_logits.shape)} real and {tuple(gen_logits.shape)} generated outputs')
            training_stats.report('Loss/scores/real', real_logits)
            training_stats.report('Loss/signs/real', self.logit_signs(real_logits))
            loss_D = (self.loss_D_pair(real_logits, gen_logits) + self.entropy_bonus(real_logits, 'real')
                      + self.entropy_bonus(gen_logits, 'fake'))
            training_stats.report('Loss/D/loss', loss_D)
            loss = loss_D.mean()
            if do_Dr1:
                loss = loss + self.penalty_term('r1', real_logits, real_tmp)
            if do_Dr2:
                loss = loss + self.penalty_term('r2', gen_logits, gen_tmp)
        with torch.autograd.profiler.record_function('Dpaired_backward'):
            loss.mul(gain).backward()
        return gen_img

    def accumulate_G_pl(self, gen_z, gen_c, gain):
        with torch.autograd.profiler.record_function('Gpl_forward'):
            batch_size = max(gen_z.shape[0] // self.pl_batch_shrink, 1)
            gen_img, gen_ws = self.run_G(gen_z[:batch_size], gen_c[:batch_size])
            pl_noise = torch.randn_like(gen_img) / np.sqrt(gen_img.shape[2] * gen_img.shape[3])
            with torch.autograd.profiler.record_function('pl_grads'), \
                    conv2d_gradfix.no_weight_gradients(self.pl_no_weight_grad):
                pl_grads = torch.autograd.grad(outputs=[(gen_img * pl_noise).sum()], inputs=[gen_ws],
                                               create_graph=True, only_inputs=True)[0]
            pl_lengths = pl_grads.square().sum(2).mean(1).sqrt()
            pl_mean = self.pl_mean.lerp(pl_lengths.mean(), self.pl_decay)
            self.pl_mean.copy_(pl_mean.detach())
            pl_penalty = (pl_lengths - pl_mean).square()
            training_stats.report('Loss/pl_penalty', pl_penalty)
            loss_Gpl = pl_penalty * self.pl_weight
            training_stats.report('Loss/G/reg', loss_Gpl)
        with torch.autograd.profiler.record_function('Gpl_backward'):
            loss_Gpl.mean().mul(gain).backward()

    def entropy_bonus(self, logits: torch.Tensor, kind: str) -> torch.Tensor:
        """Per-sample −β·H(σ(l)) when a β schedule is attached, else 0; reports the entropy."""
        entropy = fuzzy_entropy(logits)
        training_stats.report(f'Loss/entropy/{kind}', entropy)
        if self.beta_schedule is None:
            return torch.zeros_like(logits)
        return -self.beta_schedule.weight(logits) * entropy

    def accumulate_D_gen(self, gen_z, gen_c, gain, do_Dmain=True, do_Dr2=False):
        """The discriminator's term on generated images (and R2 when due); returns the per-sample main
        term and the images."""
        name = 'Dgen' if do_Dmain and not do_Dr2 else 'Dr2' if do_Dr2 and not do_Dmain else 'Dgen_Dr2'
        with torch.autograd.profiler.record_function(name + '_forward'):
            with torch.no_grad():
                gen_img, _ = self.run_G(gen_z, gen_c, update_emas=do_Dmain)
            gen_tmp = gen_img.detach().requires_grad_(True) if do_Dr2 else gen_img
            gen_logits = self.run_D(gen_tmp, gen_c)
            loss, loss_Dgen = self.side_terms('fake', gen_logits, gen_tmp, do_Dmain, do_Dr2)
        with torch.autograd.profiler.record_function(name + '_backward'):
            loss.mul(gain).backward()
        return loss_Dgen.detach(), gen_img

    def accumulate_D_extra(self, real_img, real_c, gen_img, gen_c, gain):
        """Discriminator terms that need the real and the generated batch together (none here)."""

    def accumulate_D_real(self, real_img, real_c, gain, do_Dmain=True, do_Dr1=False):
        name = 'Dreal' if do_Dmain and not do_Dr1 else 'Dr1' if do_Dr1 and not do_Dmain else 'Dreal_Dr1'
        with torch.autograd.profiler.record_function(name + '_forward'):
            real_img_tmp = real_img.detach().requires_grad_(do_Dr1)
            real_logits = self.run_D(real_img_tmp, real_c)
            training_stats.report('Loss/scores/real', real_logits)
            training_stats.report('Loss/signs/real', self.logit_signs(real_logits))
            loss, loss_Dreal = self.side_terms('real', real_logits, real_img_tmp, do_Dmain, do_Dr1)
        with torch.autograd.profiler.record_function(name + '_backward'):
            loss.mul(gain).backward()
        return loss_Dreal.detach()

    # -- State. ----------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        state = {'pl_mean': self.pl_mean.detach().cpu().clone()}
        if self.beta_schedule is not None:
            state['beta_schedule'] = self.beta_schedule.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        state = dict(state)
        if 'pl_mean' in state:
            self.pl_mean.copy_(state.pop('pl_mean').to(self.device))
        if 'beta_schedule' in state:
            if self.beta_schedule is None:
                raise ValueError('the checkpoint has a β schedule but this loss has none')
            self.beta_schedule.load_state_dict(state.pop('beta_schedule'))
        elif self.beta_schedule is not None:
            raise ValueError('this loss has a β schedule but the checkpoint holds no state for it')
        if state:
            raise ValueError(f'{type(self).__name__}: unexpected loss state entries {sorted(state)}')


# ----------------------------------------------------------------------------
# StyleGAN2's objective (METHODS §2).


class StyleGAN2Loss(LogitLoss):
    """Non-saturating logistic loss: L_D = softplus(−l_real) + softplus(l_fake), L_G = softplus(−l_fake)."""

    def loss_G(self, gen_logits):
        return F.softplus(-gen_logits)

    def loss_D_real(self, real_logits):
        return F.softplus(-real_logits)

    def loss_D_gen(self, gen_logits):
        return F.softplus(gen_logits)


# ----------------------------------------------------------------------------
# The registry of objectives selectable with train.py --loss.

_LOSSES: dict[str, dnnlib.EasyDict] = {}


def register_loss(name: str, class_name: str, description: str, G_opt: dict | None = None, D_opt: dict | None = None,
                  **defaults: Any) -> None:
    """Register an objective under a `--loss` name: the loss class, its default kwargs, and optionally the
    optimisers it is meant to train with (kwargs with class_name; None = the configuration's Adam)."""
    if not re.fullmatch(r'[a-z][a-z0-9\-]*', name):
        raise ValueError(f'invalid loss name {name!r}: use lower-case letters, digits and "-"')
    if name in _LOSSES and _LOSSES[name].class_name != class_name:
        raise ValueError(f'loss name {name!r} is already registered for {_LOSSES[name].class_name}')
    if not re.fullmatch(r'[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+', class_name):
        raise ValueError(f'invalid class name {class_name!r} for loss {name!r}')
    for label, opt in (('G_opt', G_opt), ('D_opt', D_opt)):
        if opt is not None and not (isinstance(opt, dict) and 'class_name' in opt and 'lr' in opt):
            raise ValueError(f'loss {name!r}: {label} must be a dict with class_name and lr')
    _LOSSES[name] = dnnlib.EasyDict(class_name=class_name, description=description, defaults=dict(defaults),
                                    G_opt=G_opt, D_opt=D_opt)


def list_losses() -> list[str]:
    return sorted(_LOSSES)


def get_loss_spec(name: str) -> dnnlib.EasyDict:
    if name not in _LOSSES:
        raise ValueError(f'unknown loss {name!r}; expected one of {", ".join(list_losses())}')
    spec = _LOSSES[name]
    return dnnlib.EasyDict(copy.deepcopy(dict(spec)))


register_loss('stylegan2', 'training.loss.StyleGAN2Loss',
              'StyleGAN2: non-saturating logistic loss, lazy R1, path length, style mixing')
