"""SoftGAN as a loss class of NVIDIA's own training loops (stylegan2-ada-pytorch and stylegan3).

In NVIDIA's ``train.py`` one line changes the objective::

    c.loss_kwargs.class_name = 'stylegan2_softgan.nvidia_plugin.StyleGAN3SoftGANLoss'      # stylegan3
    args.loss_kwargs.class_name = 'stylegan2_softgan.nvidia_plugin.StyleGAN2ADASoftGANLoss'  # stylegan2-ada-pytorch

with this package installed (``pip install -e .`` of this repository) so that ``stylegan2_softgan`` is
importable from their checkout. Their loop then calls the class exactly as it calls its StyleGAN2Loss:

    stylegan2-ada-pytorch: ``__init__(device, G_mapping, G_synthesis, D, augment_pipe=None, style_mixing_prob,
                           r1_gamma, pl_batch_shrink, pl_decay, pl_weight)`` and
                           ``accumulate_gradients(phase, real_img, real_c, gen_z, gen_c, sync, gain)``;
    stylegan3:             ``__init__(device, G, D, augment_pipe=None, r1_gamma, style_mixing_prob, pl_weight,
                           pl_batch_shrink, pl_decay, pl_no_weight_grad, blur_init_sigma, blur_fade_kimg)`` and
                           ``accumulate_gradients(phase, real_img, real_c, gen_z, gen_c, gain, cur_nimg)``.

The adversarial terms are SoftGAN's (stylegan2_softgan.soft_terms, shared with SoftGANLoss), weighted by β:
by default the constant 1/(2 ln 2), as ``train.py --loss=soft`` (docs/benchmarks/beta_schedule.md says why);
``beta=None`` selects the EMD-driven schedule (stylegan2_softgan.beta_schedule.BetaSchedule). R1, path length
and style mixing are StyleGAN2's, with the phase names, lazy-regularisation gains and statistic names of
NVIDIA's loops. Extra keyword arguments select SoftGAN's options: ``g_loss``, ``beta`` (a fixed β, or None for
the schedule), and the schedule's ``beta_interval``, ``beta_floor``, ``beta_ema``, ``beta_floor_pairs``,
``beta_emd_samples`` (as SoftGANLoss).

Three things differ from running inside this project:

* NVIDIA's top-level packages ``training``, ``torch_utils``, ``dnnlib`` and ``metrics`` shadow ours there, so
  this module imports nothing through those names: only torch, numpy and modules of this package.
* Statistics go to the *host's* ``torch_utils.training_stats``, resolved when first reported (stylegan2_softgan.host):
  NVIDIA's loop reads ``Loss/signs/real`` from it for ADA, and its logs show ``Loss/*`` and ``Loss/beta``.
* NVIDIA's loop gives a loss no source of real images. With ``beta=None``, the β schedule's floor and fresh real samples are
  taken from the real batches this loss sees in its discriminator phases (kept on the CPU as 8-bit pixels,
  which is exact for images that NVIDIA's loop made from 8-bit data). Until enough have been seen for the
  floor (2 · m · floor_pairs images, m the measurement's size), β stays at its initial value β_max and the
  schedule does not count steps.

stylegan3's ``blur_init_sigma`` / ``blur_fade_kimg`` blur the discriminator's inputs with a Gaussian whose σ
fades linearly from blur_init_sigma to 0 over the first blur_fade_kimg thousand images (the kernel is
2^(−(x/σ)²) over |x| ≤ ⌊3σ⌋, normalised, applied separably with zero padding).
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
import torch.nn.functional as F

from . import soft_terms
from .beta_schedule import BETA_MAX, DEFAULT_EMD_SAMPLES, DEFAULT_FLOOR_PAIRS, BetaSchedule
from .host import no_weight_gradients, training_stats

G_PHASES = ('Gmain', 'Greg', 'Gboth')
D_PHASES = ('Dmain', 'Dreg', 'Dboth')


# ----------------------------------------------------------------------------
# Pieces.


def gaussian_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable blur of NCHW images with taps 2^(−(x/σ)²), |x| ≤ ⌊3σ⌋, normalised; zero padding, same size."""
    if sigma <= 0:
        return img
    radius = int(np.floor(sigma * 3))
    if radius < 1:
        return img
    x = torch.arange(-radius, radius + 1, device=img.device, dtype=torch.float32)
    taps = torch.exp2(-(x / sigma).square())
    taps = (taps / taps.sum()).to(img.dtype)
    channels = img.shape[1]
    kx = taps.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    ky = taps.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)
    img = F.conv2d(img, kx, padding=(0, radius), groups=channels)
    return F.conv2d(img, ky, padding=(radius, 0), groups=channels)


class SeenRealImages:
    """The most recent real images passed to the loss, as the β schedule's ``real_source``.

    ``source(n)`` returns the n most recently seen images (distinct images of the stream, newest last) in
    [-1, 1]. Stored on the CPU as uint8 pixel values (x + 1) · 127.5."""

    def __init__(self, capacity: int = 0):
        self.capacity = int(capacity)
        self.images: torch.Tensor | None = None

    def __len__(self):
        return 0 if self.images is None else int(self.images.shape[0])

    def add(self, img: torch.Tensor) -> None:
        if self.capacity <= 0:
            return
        pixels = ((img.detach().float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).cpu()
        self.images = pixels if self.images is None else torch.cat([self.images, pixels])
        self.images = self.images[-self.capacity:]

    def __call__(self, n: int) -> torch.Tensor:
        if n > len(self):
            raise ValueError(f'asked for {n} real images, only {len(self)} seen so far')
        return self.images[len(self) - n:].float() / 127.5 - 1


def _ddp_sync(module: torch.nn.Module, sync: bool):
    """Gradient synchronisation only on the last accumulation round (DistributedDataParallel modules)."""
    if sync or not isinstance(module, torch.nn.parallel.DistributedDataParallel):
        return contextlib.nullcontext()
    return module.no_sync()


# ----------------------------------------------------------------------------
# The shared algorithm.


class _SoftGANPluginLoss:
    """Phases, terms and statistics shared by both conventions; subclasses say how G and D are called."""

    def __init__(self, device, D, augment_pipe=None, r1_gamma=10, style_mixing_prob=0.9, pl_weight=2,
                 pl_batch_shrink=2, pl_decay=0.01, pl_no_weight_grad=False,
                 g_loss: str = 'linear', beta: float | None = BETA_MAX, beta_interval: int = 4, beta_floor='real',
                 beta_ema: float = 0.9, beta_floor_pairs: int = DEFAULT_FLOOR_PAIRS,
                 beta_emd_samples: int | None = DEFAULT_EMD_SAMPLES):
        super().__init__()
        if g_loss not in soft_terms.G_LOSSES:
            raise ValueError(f'SoftGAN g_loss must be one of {", ".join(soft_terms.G_LOSSES)}, got {g_loss!r}')
        self.device = torch.device(device)
        self.D = D
        self.augment_pipe = augment_pipe
        self.r1_gamma = float(r1_gamma)
        self.style_mixing_prob = float(style_mixing_prob)
        self.pl_weight = float(pl_weight)
        self.pl_batch_shrink = int(pl_batch_shrink)
        self.pl_decay = float(pl_decay)
        self.pl_no_weight_grad = bool(pl_no_weight_grad)
        self.pl_mean = torch.zeros([], device=self.device)
        self.g_loss = g_loss
        self.reals = SeenRealImages()
        self.beta_schedule = BetaSchedule(device=self.device, real_source=self.reals, interval=beta_interval,
                                          floor=beta_floor, ema=beta_ema, fixed=beta, floor_pairs=beta_floor_pairs,
                                          emd_samples=beta_emd_samples)
        self._g_step = 0            # generator steps seen (a new one starts when a G phase follows another phase)
        self._last_phase = None

    # -- How the networks are called (convention-specific). --------------------------------------

    def mapping(self, z, c, update_emas, mixing=False):
        raise NotImplementedError

    def synthesis(self, ws, update_emas):
        raise NotImplementedError

    def discriminate(self, img, c, update_emas, blur_sigma):
        raise NotImplementedError

    def sync_context(self, module, sync):
        return contextlib.nullcontext()

    # -- Networks with style mixing and augmentation. ----------------------------------------------

    def run_G(self, z, c, update_emas=False, sync=True):
        with self.sync_context('mapping', sync):
            ws = self.mapping(z, c, update_emas)
            if self.style_mixing_prob > 0 and ws.shape[1] > 1:
                cutoff = int(torch.randint(1, ws.shape[1], [], device='cpu'))
                if float(torch.rand([], device='cpu')) < self.style_mixing_prob:
                    ws2 = self.mapping(torch.randn_like(z), c, False, mixing=True)
                    ws = torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)
        with self.sync_context('synthesis', sync):
            img = self.synthesis(ws, update_emas)
        return img, ws

    def run_D(self, img, c, blur_sigma=0.0, update_emas=False, sync=True):
        img = gaussian_blur(img, blur_sigma)
        if self.augment_pipe is not None:
            img = self.augment_pipe(img)
        with self.sync_context('D', sync):
            return self.discriminate(img, c, update_emas, blur_sigma)

    # -- β and statistics. ---------------------------------------------------------------------------

    def _reals_needed(self, m: int) -> int:
        s = self.beta_schedule
        if s.fixed is not None:
            return 0
        need = s.emd_samples or 0
        if s.floor_mode == 'real' and s.num_measurements == 0:
            need += 2 * m * s.floor_pairs
        return need

    def _schedule_step(self, real_img, gen_img, step_key):
        s = self.beta_schedule
        m = s.emd_samples or gen_img.shape[0]
        if self.reals.capacity == 0 and s.fixed is None:
            self.reals.capacity = (s.emd_samples or 0) + (2 * m * s.floor_pairs if s.floor_mode == 'real' else 0)
        if len(self.reals) < self._reals_needed(m):
            training_stats.report0('Loss/beta', s.beta)
            return
        s.on_generator_step(real_img, gen_img, step_key)

    def entropy_bonus(self, logits, kind):
        entropy = soft_terms.membership_entropy(logits)
        training_stats.report(f'Loss/entropy/{kind}', entropy)
        return -self.beta_schedule.weight(logits) * entropy

    # -- The phases. --------------------------------------------------------------------------------

    def _accumulate(self, phase, real_img, real_c, gen_z, gen_c, gain, sync=True, blur_sigma=0.0, step_key=None):
        if phase not in G_PHASES + D_PHASES:
            raise ValueError(f'unknown phase {phase!r}; expected one of {G_PHASES + D_PHASES}')
        new_g_step = phase in ('Gmain', 'Gboth') and self._last_phase not in ('Gmain', 'Gboth')
        self._last_phase = phase
        if new_g_step:
            self._g_step += 1
        do_Gmain = phase in ('Gmain', 'Gboth')
        do_Dmain = phase in ('Dmain', 'Dboth')
        do_Gpl = phase in ('Greg', 'Gboth') and self.pl_weight != 0
        do_Dr1 = phase in ('Dreg', 'Dboth') and self.r1_gamma != 0

        if do_Gmain:
            gen_img, _ = self.run_G(gen_z, gen_c, sync=(sync and not do_Gpl))
            gen_logits = self.run_D(gen_img, gen_c, blur_sigma=blur_sigma, sync=False)
            training_stats.report('Loss/scores/fake', gen_logits)
            training_stats.report('Loss/signs/fake', gen_logits.sign())
            loss_Gmain = soft_terms.generator_term(gen_logits, self.g_loss)
            training_stats.report('Loss/G/loss', loss_Gmain)
            loss_Gmain.mean().mul(gain).backward()
            self._schedule_step(real_img, gen_img.detach(), self._g_step if step_key is None else step_key)

        if do_Gpl:
            batch = max(gen_z.shape[0] // self.pl_batch_shrink, 1)
            gen_img, gen_ws = self.run_G(gen_z[:batch], gen_c[:batch], sync=sync)
            pl_noise = torch.randn_like(gen_img) / np.sqrt(gen_img.shape[2] * gen_img.shape[3])
            with no_weight_gradients(self.pl_no_weight_grad):
                pl_grads = torch.autograd.grad(outputs=[(gen_img * pl_noise).sum()], inputs=[gen_ws],
                                               create_graph=True, only_inputs=True)[0]
            pl_lengths = pl_grads.square().sum(2).mean(1).sqrt()
            pl_mean = self.pl_mean.lerp(pl_lengths.mean(), self.pl_decay)
            self.pl_mean.copy_(pl_mean.detach())
            pl_penalty = (pl_lengths - pl_mean).square()
            training_stats.report('Loss/pl_penalty', pl_penalty)
            loss_Gpl = pl_penalty * self.pl_weight
            training_stats.report('Loss/G/reg', loss_Gpl)
            # The zero term keeps every synthesis output in the graph (DDP expects all parameters to get gradients).
            (gen_img[:, 0, 0, 0] * 0 + loss_Gpl).mean().mul(gain).backward()

        loss_Dgen = 0
        if do_Dmain:
            with torch.no_grad():
                gen_img, _ = self.run_G(gen_z, gen_c, update_emas=True, sync=False)
            gen_logits = self.run_D(gen_img, gen_c, blur_sigma=blur_sigma, update_emas=True, sync=False)
            training_stats.report('Loss/scores/fake', gen_logits)
            training_stats.report('Loss/signs/fake', gen_logits.sign())
            loss_Dgen = soft_terms.discriminator_fake_term(gen_logits) + self.entropy_bonus(gen_logits, 'fake')
            loss_Dgen.mean().mul(gain).backward()

        if do_Dmain or do_Dr1:
            if do_Dmain:
                self.reals.add(real_img)
            real_tmp = real_img.detach().requires_grad_(do_Dr1)
            real_logits = self.run_D(real_tmp, real_c, blur_sigma=blur_sigma, sync=sync)
            training_stats.report('Loss/scores/real', real_logits)
            training_stats.report('Loss/signs/real', real_logits.sign())
            loss = 0
            if do_Dmain:
                loss_Dreal = soft_terms.discriminator_real_term(real_logits) + self.entropy_bonus(real_logits, 'real')
                training_stats.report('Loss/D/loss', loss_Dgen + loss_Dreal)
                loss = loss_Dreal
            if do_Dr1:
                with no_weight_gradients():
                    r1_grads = torch.autograd.grad(outputs=[real_logits.sum()], inputs=[real_tmp], create_graph=True,
                                                   only_inputs=True)[0]
                r1_penalty = r1_grads.square().sum([1, 2, 3])
                loss_Dr1 = r1_penalty * (self.r1_gamma / 2)
                training_stats.report('Loss/r1_penalty', r1_penalty)
                training_stats.report('Loss/D/reg', loss_Dr1)
                loss = loss + loss_Dr1
            (real_logits * 0 + loss).mean().mul(gain).backward()


# ----------------------------------------------------------------------------
# The two conventions.


class StyleGAN2ADASoftGANLoss(_SoftGANPluginLoss):
    """SoftGAN in stylegan2-ada-pytorch's loop (its training.loss.StyleGAN2Loss calling convention)."""

    def __init__(self, device, G_mapping, G_synthesis, D, augment_pipe=None, style_mixing_prob=0.9, r1_gamma=10,
                 pl_batch_shrink=2, pl_decay=0.01, pl_weight=2, **softgan_kwargs):
        # stylegan2-ada's path-length pass always skips conv weight gradients (it has no option for it).
        super().__init__(device, D, augment_pipe=augment_pipe, r1_gamma=r1_gamma, style_mixing_prob=style_mixing_prob,
                         pl_weight=pl_weight, pl_batch_shrink=pl_batch_shrink, pl_decay=pl_decay,
                         pl_no_weight_grad=True, **softgan_kwargs)
        self.G_mapping = G_mapping
        self.G_synthesis = G_synthesis

    def mapping(self, z, c, update_emas, mixing=False):
        # stylegan2-ada's mapping updates its W average in every training pass but the style-mixing one.
        return self.G_mapping(z, c, skip_w_avg_update=True) if mixing else self.G_mapping(z, c)

    def synthesis(self, ws, update_emas):
        return self.G_synthesis(ws)

    def discriminate(self, img, c, update_emas, blur_sigma):
        return self.D(img, c)

    def sync_context(self, which, sync):
        module = {'mapping': self.G_mapping, 'synthesis': self.G_synthesis, 'D': self.D}[which]
        return _ddp_sync(module, sync)

    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, sync, gain):
        self._accumulate(phase, real_img, real_c, gen_z, gen_c, gain, sync=sync)


class StyleGAN3SoftGANLoss(_SoftGANPluginLoss):
    """SoftGAN in stylegan3's loop (its training.loss.StyleGAN2Loss calling convention), with its
    discriminator-input blur (blur_init_sigma fading to 0 over blur_fade_kimg)."""

    def __init__(self, device, G, D, augment_pipe=None, r1_gamma=10, style_mixing_prob=0, pl_weight=0,
                 pl_batch_shrink=2, pl_decay=0.01, pl_no_weight_grad=False, blur_init_sigma=0, blur_fade_kimg=0,
                 **softgan_kwargs):
        super().__init__(device, D, augment_pipe=augment_pipe, r1_gamma=r1_gamma, style_mixing_prob=style_mixing_prob,
                         pl_weight=pl_weight, pl_batch_shrink=pl_batch_shrink, pl_decay=pl_decay,
                         pl_no_weight_grad=pl_no_weight_grad, **softgan_kwargs)
        self.G = G
        self.blur_init_sigma = float(blur_init_sigma)
        self.blur_fade_kimg = float(blur_fade_kimg)
        if not (self.blur_init_sigma >= 0 and math.isfinite(self.blur_init_sigma)):
            raise ValueError(f'blur_init_sigma must be a finite number >= 0, got {blur_init_sigma!r}')
        if not (self.blur_fade_kimg >= 0 and math.isfinite(self.blur_fade_kimg)):
            raise ValueError(f'blur_fade_kimg must be a finite number >= 0, got {blur_fade_kimg!r}')

    def blur_sigma(self, cur_nimg: int) -> float:
        if self.blur_fade_kimg <= 0:
            return 0.0
        return max(1.0 - cur_nimg / (self.blur_fade_kimg * 1e3), 0.0) * self.blur_init_sigma

    def mapping(self, z, c, update_emas, mixing=False):
        return self.G.mapping(z, c, update_emas=update_emas and not mixing)

    def synthesis(self, ws, update_emas):
        return self.G.synthesis(ws, update_emas=update_emas)

    def discriminate(self, img, c, update_emas, blur_sigma):
        return self.D(img, c, update_emas=update_emas)

    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, gain, cur_nimg):
        self._accumulate(phase, real_img, real_c, gen_z, gen_c, gain, blur_sigma=self.blur_sigma(cur_nimg),
                         step_key=cur_nimg)
