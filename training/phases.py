"""One training step as a sequence of phases: shared by the image training loop and the benchmarks.

A `StepRunner` owns the two optimisers and the phase list derived from the loss's rhythm
(``n_critic``, ``G_reg_interval``, ``D_reg_interval``): G phases run every ``n_critic`` steps, D phases
every step, lazy regularisation every ``interval`` of its phase with the loss multiplied by that
interval, and the optimisers' learning rate (and Adam's betas) rescaled by c = k/(k+1) as in
StyleGAN2. ``step()`` accumulates each phase's gradients over the rounds it is given, averages them
over processes, and applies them; the gradient is the mean over all rounds and ranks.

Updates are alternating by default: each due phase is applied before the next one is computed (G, then
D on the updated G), as in StyleGAN2's loop. ``simultaneous=True`` computes every due phase at the same
parameters and only then applies them all (the update of ALI's and PacGAN's released code); a phase then
leaves the buffers of the network it does not train as it found them, so BatchNorm running statistics
move once per step, with that network's own forward pass.
"""

from __future__ import annotations

import copy

import torch

import dnnlib


def make_optimizer(module: torch.nn.Module, opt_kwargs: dict, reg_interval: int | None) -> torch.optim.Optimizer:
    """Build the optimiser; with lazy regularisation, rescale lr and Adam's betas by c = k/(k+1)."""
    kwargs = dnnlib.EasyDict(copy.deepcopy(opt_kwargs))
    if 'betas' in kwargs:
        kwargs.betas = [float(b) for b in kwargs.betas]     # JSON may turn 0.0 into 0; Adam wants floats
    if reg_interval is not None:
        c = reg_interval / (reg_interval + 1)
        kwargs.lr = kwargs.lr * c
        if 'betas' in kwargs:
            kwargs.betas = [b ** c for b in kwargs.betas]
    return dnnlib.util.construct_class_by_name(module.parameters(), **kwargs)


class StepRunner:
    def __init__(self, loss, G: torch.nn.Module, D: torch.nn.Module, G_opt_kwargs: dict, D_opt_kwargs: dict,
                 num_gpus: int = 1, simultaneous: bool = False):
        self.loss = loss
        self.num_gpus = num_gpus
        self.simultaneous = bool(simultaneous)
        self.phases = []
        for name, module, opt_kwargs, reg_interval, main_interval in [
                ('G', G, G_opt_kwargs, loss.G_reg_interval, loss.n_critic),
                ('D', D, D_opt_kwargs, loss.D_reg_interval, 1)]:
            opt = make_optimizer(module, opt_kwargs, reg_interval)
            if reg_interval is None:
                self.phases.append(dnnlib.EasyDict(name=name + 'both', module=module, opt=opt,
                                                   interval=main_interval, gain=1))
            else:
                self.phases.append(dnnlib.EasyDict(name=name + 'main', module=module, opt=opt,
                                                   interval=main_interval, gain=1))
                self.phases.append(dnnlib.EasyDict(name=name + 'reg', module=module, opt=opt,
                                                   interval=reg_interval * main_interval, gain=reg_interval))
        self.optimizers = {'G': self.phases[0].opt, 'D': self.phases[-1].opt}
        if self.simultaneous and len(self.phases) != 2:
            raise ValueError('simultaneous updates need one phase per network: lazy regularisation '
                             f'(G_reg_interval {loss.G_reg_interval}, D_reg_interval {loss.D_reg_interval}) would '
                             'split a network\'s step in two')
        for phase in self.phases:
            phase.other = D if phase.module is G else G

    def step(self, batch_idx: int, real_img: list, real_c: list, gen_z: list, gen_c: list, cur_nimg: int) -> None:
        """Run the phases due at `batch_idx`.

        real_img / real_c: this rank's real batch split into rounds. gen_z / gen_c: one entry per phase,
        each split into the same rounds (phases that are not due ignore theirs).
        """
        num_rounds = len(real_img)
        due = [(phase, z, c) for phase, z, c in zip(self.phases, gen_z, gen_c) if batch_idx % phase.interval == 0]
        if not self.simultaneous:
            for phase, phase_gen_z, phase_gen_c in due:
                self._accumulate(phase, real_img, real_c, phase_gen_z, phase_gen_c, num_rounds, cur_nimg)
                self._apply(phase)
            return
        for phase, phase_gen_z, phase_gen_c in due:
            buffers = list(phase.other.buffers())
            kept = [b.detach().clone() for b in buffers]
            self._accumulate(phase, real_img, real_c, phase_gen_z, phase_gen_c, num_rounds, cur_nimg)
            with torch.no_grad():
                for b, k in zip(buffers, kept):
                    b.copy_(k)
        for phase, _z, _c in due:
            self._apply(phase)

    def _accumulate(self, phase, real_img, real_c, phase_gen_z, phase_gen_c, num_rounds, cur_nimg) -> None:
        phase.opt.zero_grad(set_to_none=True)
        phase.module.requires_grad_(True)
        for r_img, r_c, g_z, g_c in zip(real_img, real_c, phase_gen_z, phase_gen_c):
            self.loss.accumulate_gradients(phase=phase.name, real_img=r_img, real_c=r_c, gen_z=g_z, gen_c=g_c,
                                           gain=phase.gain / num_rounds, cur_nimg=cur_nimg)
        phase.module.requires_grad_(False)

    def _apply(self, phase) -> None:
        with torch.autograd.profiler.record_function(phase.name + '_opt'):
            params = [p for p in phase.module.parameters() if p.grad is not None]
            clean = dict(nan=0, posinf=1e5, neginf=-1e5)      # NaN -> 0, ±inf -> ±1e5
            if params and self.num_gpus > 1:
                # One all-reduce over the whole gradient, the mean over ranks, one clean-up.
                flat = torch.cat([p.grad.flatten() for p in params])
                torch.distributed.all_reduce(flat)
                flat /= self.num_gpus
                torch.nan_to_num(flat, **clean, out=flat)
                for p, g in zip(params, flat.split([p.numel() for p in params])):
                    p.grad = g.reshape(p.shape)
            else:
                # A single process cleans each gradient in place and skips the flat copy (measurable in the
                # benchmarks' small MLP steps on one CPU thread).
                for p in params:
                    p.grad.nan_to_num_(**clean)
            phase.opt.step()
        self.loss.post_step(phase.name, phase.module)

    def state_dict(self) -> dict:
        return {k: opt.state_dict() for k, opt in self.optimizers.items()}

    def load_state_dict(self, state: dict) -> None:
        """The optimisers' moments and step counts from a snapshot; the hyperparameters (lr, betas, eps) stay the
        configured ones, so a learning rate given on --resume takes effect (for an exact resume they are equal)."""
        for k, opt in self.optimizers.items():
            configured = [{h: v for h, v in group.items() if h != 'params'} for group in opt.param_groups]
            opt.load_state_dict(state[k])
            for group, hyper in zip(opt.param_groups, configured):
                group.update(hyper)


@torch.no_grad()
def update_ema(G_ema: torch.nn.Module, G: torch.nn.Module, cur_nimg: int, batch_size: int, ema_kimg: float,
               ema_rampup: float | None) -> None:
    """StyleGAN2's generator average: half-life `ema_kimg` thousand images, at most cur_nimg·ramp-up."""
    ema_nimg = ema_kimg * 1000
    if ema_rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * ema_rampup)
    ema_beta = 0.5 ** (batch_size / max(ema_nimg, 1e-8))
    for p_ema, p in zip(G_ema.parameters(), G.parameters()):
        p_ema.copy_(p.detach().lerp(p_ema, ema_beta))
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)
