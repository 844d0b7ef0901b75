"""The seeds of one objective trained in one process: S copies of G and D whose parameters are stacked
along a leading axis and evaluated with `torch.func.vmap` over `torch.func.functional_call`, so one
optimiser step updates all S copies.

Each seed keeps everything that makes a run a function of its configuration (runner.SeedRun): the
networks are built from that seed exactly as the per-seed trainer builds them, and its latents, real
batches, β-floor draws and evaluation samples come from its own random streams. The stacked step is
the per-seed step written for S copies at once:

    * inputs of the S seeds are concatenated ([S·B, ...]); the stacked modules split them into S groups,
      so BatchNorm statistics are per seed, and return [S·B, ...];
    * the losses' per-sample terms are averaged over S·B samples, so every phase's gain is multiplied
      by S: each copy's gradient is its own seed's gradient;
    * Adam, RMSProp, gradient clean-up and weight clipping act elementwise, so stacked parameters are
      updated as the S separate ones would be;
    * a β schedule is kept per seed (StackedSchedules) and weights each seed's entropy terms by its own β.

Only objectives built from per-sample (or per-pair) logit terms can be stacked: terms that look at the
whole batch (mode seeking, FAR's candidate selection, WGAN-GP's interpolates, SW-GAN's kernel) or draw
from the global random stream would mix the seeds; `check_stackable` refuses them. The results equal
the per-seed trainer's up to floating-point rounding (the summation order of a batched matrix product
differs), which tests/test_bench_vectorised.py checks.

A run can be checkpointed and resumed exactly (`Checkpoint`): the stacked networks, optimisers, loss
state, every seed's random streams, data order, curve and counters go into one torch file (loaded with
weights_only=True: tensors, numbers and strings only).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time

import torch
from torch.func import functional_call, vmap

import dnnlib
from training.loss import LogitLoss
from training.phases import StepRunner

from . import runner

CHECKPOINT_FORMAT = 'ganmc-bench-partial'
CHECKPOINT_VERSION = 1

# ----------------------------------------------------------------------------
# Stacked networks.


class StackedModule(torch.nn.Module):
    """S copies of one network with stacked parameters and buffers; forward(x [S·B, ...], c [S·B, ...])
    runs copy s on rows s·B .. (s+1)·B − 1."""

    _ATTRS = ('z_dim', 'c_dim', 'data_dim', 'img_resolution', 'img_channels', 'pack')

    def __init__(self, modules: list[torch.nn.Module]):
        super().__init__()
        if not modules:
            raise ValueError('StackedModule needs at least one module')
        kinds = {type(m) for m in modules}
        if len(kinds) != 1:
            raise ValueError(f'StackedModule needs copies of one network class, got {sorted(k.__name__ for k in kinds)}')
        self.num_copies = len(modules)
        self._template = [copy.deepcopy(modules[0])]        # in a list: not a submodule, its tensors are not ours
        self._param_names = [name for name, _ in modules[0].named_parameters()]
        self._buffer_names = [name for name, _ in modules[0].named_buffers()]
        for k, name in enumerate(self._param_names):
            values = [dict(m.named_parameters())[name].detach() for m in modules]
            self.register_parameter(f'p{k}', torch.nn.Parameter(torch.stack(values).clone(),
                                                                requires_grad=values[0].requires_grad))
        for k, name in enumerate(self._buffer_names):
            self.register_buffer(f'b{k}', torch.stack([dict(m.named_buffers())[name] for m in modules]).clone())
        for attr in self._ATTRS:
            if hasattr(modules[0], attr):
                setattr(self, attr, getattr(modules[0], attr))
        self.train(modules[0].training)

    def _tensors(self):
        params = {name: getattr(self, f'p{k}') for k, name in enumerate(self._param_names)}
        buffers = {name: getattr(self, f'b{k}') for k, name in enumerate(self._buffer_names)}
        return params, buffers

    def forward(self, x: torch.Tensor, c: torch.Tensor, **kwargs) -> torch.Tensor:
        S = self.num_copies
        if x.shape[0] % S != 0 or c.shape[0] != x.shape[0]:
            raise ValueError(f'stacked network of {S} copies: got {x.shape[0]} inputs and {c.shape[0]} labels, '
                             f'expected equal numbers divisible by {S}')
        template = self._template[0]
        template.train(self.training)
        params, buffers = self._tensors()
        if S == 1:
            # One copy: call it on views of the stacked tensors, without vmap. Gradients reach the stacked
            # parameters and BatchNorm's in-place updates the stacked buffers through the views; vmap would
            # only add its own overhead (docs/benchmarks/vectorised.md measures it).
            first = lambda tensors: {name: t[0] for name, t in tensors.items()}  # noqa: E731
            return functional_call(template, (first(params), first(buffers)), (x, c), kwargs)

        def one(p, b, xs, cs):
            return functional_call(template, (p, b), (xs, cs), kwargs)

        n = x.shape[0] // S
        out = vmap(one, randomness='error')(params, buffers, x.reshape(S, n, *x.shape[1:]),
                                           c.reshape(S, n, *c.shape[1:]))
        return out.reshape(-1, *out.shape[2:])

    def copy_of(self, s: int) -> torch.nn.Module:
        """Copy s as a plain module (for evaluation and for comparison with the per-seed trainer)."""
        module = copy.deepcopy(self._template[0])
        params, buffers = self._tensors()
        state = {name: t[s].detach().clone() for name, t in {**params, **buffers}.items()}
        module.load_state_dict(state)
        module.train(self.training)
        return module.requires_grad_(False)


class StackedSchedules:
    """One β schedule per copy, driven by that copy's samples; weight(logits) gives each row its copy's β."""

    def __init__(self, schedules: list):
        self.schedules = list(schedules)

    @property
    def num_copies(self) -> int:
        return len(self.schedules)

    def weight(self, logits: torch.Tensor) -> torch.Tensor:
        S = self.num_copies
        betas = torch.tensor([s.beta for s in self.schedules], dtype=logits.dtype, device=logits.device)
        return betas.repeat_interleave(logits.shape[0] // S).reshape(-1, *([1] * (logits.ndim - 1)))

    def on_generator_step(self, real_img: torch.Tensor, gen_img: torch.Tensor, cur_nimg: int | None = None) -> None:
        for schedule, real, gen in zip(self.schedules, real_img.chunk(self.num_copies),
                                       gen_img.chunk(self.num_copies)):
            schedule.on_generator_step(real, gen, cur_nimg)

    def state_dict(self) -> dict:
        return {'copies': [s.state_dict() for s in self.schedules]}

    def load_state_dict(self, state: dict) -> None:
        copies = state.get('copies')
        if not isinstance(copies, list) or len(copies) != self.num_copies:
            raise ValueError(f'stacked β schedules: expected the states of {self.num_copies} copies')
        for schedule, st in zip(self.schedules, copies):
            schedule.load_state_dict(st)


# The LogitLoss methods whose per-sample (or per-pair) form makes a loss stackable when not overridden.
_PER_SAMPLE_METHODS = ('accumulate_gradients', 'accumulate_G_main', 'generator_loss', 'paired_generator_loss',
                       'accumulate_D_gen', 'accumulate_D_real', 'accumulate_D_paired', 'accumulate_D_extra',
                       'side_terms', 'entropy_bonus', 'run_G', 'run_D')


def check_stackable(loss) -> None:
    """Refuse objectives whose terms are not per sample (they would mix the seeds when stacked)."""
    name = type(loss).__name__
    if not isinstance(loss, LogitLoss):
        raise ValueError(f'{name} is not a logit loss: the seeds cannot be stacked')
    changed = [m for m in _PER_SAMPLE_METHODS if getattr(type(loss), m) is not getattr(LogitLoss, m)]
    if changed:
        raise ValueError(f'{name} overrides {", ".join(changed)}: its terms may couple samples, so its seeds are '
                         f'trained one by one')
    if loss.mode_seeking is not None:
        raise ValueError(f'{name} has a mode-seeking term (pairs of samples): its seeds are trained one by one')
    if loss.pl_weight != 0 or loss.style_mixing_prob != 0 or loss.augment_pipe is not None:
        raise ValueError(f'{name}: path length, style mixing and augmentation draw from the global random stream')


def stackable(cfg: dict) -> bool:
    """Can this configuration's objective be trained stacked? (Builds nothing: checks the class.)"""
    cls = dnnlib.util.get_obj_by_name(cfg['loss_kwargs']['class_name'])
    if not (isinstance(cls, type) and issubclass(cls, LogitLoss)):
        return False
    if cfg['loss_kwargs'].get('mode_seeking') is not None:
        return False
    return all(getattr(cls, m) is getattr(LogitLoss, m) for m in _PER_SAMPLE_METHODS)


# ----------------------------------------------------------------------------
# Checkpoints of partial runs.


def config_key(cfgs: list[dict]) -> str:
    """A short hash of the configurations of a stacked run (all of them, seeds included)."""
    text = json.dumps([json.loads(json.dumps(dict(c))) for c in cfgs], sort_keys=True)
    return hashlib.sha1(text.encode('utf-8')).hexdigest()[:12]


def partial_path(partial_dir: str, cfgs: list[dict]) -> str:
    cfg = cfgs[0]
    seeds = [int(c['seed']) for c in cfgs]
    stem = f'{cfg["objective"]}-seeds{"-".join(map(str, seeds))}-{config_key(cfgs)}.pt'
    return os.path.join(partial_dir, runner.protocol_label(cfg), cfg['dataset'], stem)


def _stream_state(stream) -> dict:
    state = {'generator': stream.generator.get_state()}
    if isinstance(stream, runner.PointStream):
        state.update(order=stream._order.clone(), pos=int(stream._pos))
    return state


def _load_stream_state(stream, state: dict) -> None:
    stream.generator.set_state(state['generator'])
    if isinstance(stream, runner.PointStream):
        stream._order = state['order'].clone()
        stream._pos = int(state['pos'])


# ----------------------------------------------------------------------------
# The stacked run.


def run_stacked(cfgs: list[dict], classifier=None, progress=None, partial_dir: str | None = None,
                checkpoint_every: int | None = None, stop_after_s: float | None = None) -> list[dict] | None:
    """Train the configurations `cfgs` (one objective, data set and budget; different seeds) stacked.

    Returns their results (as runner.run would, one per configuration), or None when `stop_after_s`
    seconds of training have passed first; then the progress is in the checkpoint under `partial_dir`
    (written every `checkpoint_every` generator steps and on stopping), from which a later call with the
    same configurations continues exactly. A finished run deletes its checkpoint.
    """
    if not cfgs:
        raise ValueError('run_stacked needs at least one configuration')
    base = {k: v for k, v in cfgs[0].items() if k not in ('seed', 'save_samples', 'gs')}
    for cfg in cfgs[1:]:
        if {k: v for k, v in cfg.items() if k not in ('seed', 'save_samples', 'gs')} != base:
            raise ValueError('stacked runs must share everything but the seed (and what is saved)')
    if len({int(c['seed']) for c in cfgs}) != len(cfgs):
        raise ValueError('stacked runs need distinct seeds')
    device = torch.device('cpu')
    say = progress if progress is not None else (lambda msg: None)
    seeds = [runner.SeedRun(cfg, classifier, device) for cfg in cfgs]
    for seed_run in seeds:
        check_stackable(seed_run.loss)
    S = len(seeds)
    cfg = seeds[0].cfg
    G = StackedModule([r.G for r in seeds]).requires_grad_(False)
    D = StackedModule([r.D for r in seeds]).requires_grad_(False)
    loss = dnnlib.util.construct_class_by_name(device=device, G=G, D=D, real_source=seeds[0].real_source,
                                               **cfg.loss_kwargs)
    schedules = [getattr(r.loss, 'beta_schedule', None) for r in seeds]
    if schedules[0] is not None:
        loss.beta_schedule = StackedSchedules(schedules)
    step_runner = StepRunner(loss, G, D, cfg.G_opt, cfg.D_opt, simultaneous=seeds[0].simultaneous)
    for phase in step_runner.phases:
        phase.gain *= S              # per-sample means run over S·B samples: each copy gets its own gradient
    num_phases = len(step_runner.phases)
    n_critic = int(loss.n_critic)
    batch = seeds[0].batch

    def evaluate(step: int) -> None:
        for s, seed_run in enumerate(seeds):
            beta = None if schedules[s] is None else schedules[s].beta
            seed_run.evaluate(G.copy_of(s), step, beta, lambda msg, s=s: say(f'seed {cfgs[s]["seed"]} {msg}'))

    path = None if partial_dir is None else partial_path(partial_dir, cfgs)
    gen_steps = batch_idx = 0
    train_time = 0.0
    if path is not None and os.path.isfile(path):
        gen_steps, batch_idx, train_time = _load_checkpoint(path, cfgs, seeds, G, D, loss, step_runner)
        say(f'resumed from {path} at generator step {gen_steps}')
    else:
        evaluate(0)

    def save() -> None:
        if path is not None:
            _save_checkpoint(path, cfgs, seeds, G, D, loss, step_runner, gen_steps, batch_idx, train_time)

    no_c = torch.zeros([S * batch, 0], device=device)
    t_session = time.time()
    t_mark = time.time()
    eval_before = sum(r.eval_time for r in seeds)
    while gen_steps < int(cfg.steps):
        inputs = [r.next_inputs(num_phases, device) for r in seeds]
        real = torch.cat([r for r, _ in inputs])
        gen_z = torch.cat([z for _, z in inputs], dim=1)          # [num_phases, S·B, z_dim]
        step_runner.step(batch_idx, [real], [no_c], [[z] for z in gen_z], [[no_c] for _ in range(num_phases)],
                         cur_nimg=batch_idx * batch)
        batch_idx += 1
        if (batch_idx - 1) % n_critic != 0:
            continue
        gen_steps += 1
        if gen_steps % int(cfg.eval_every) == 0 or gen_steps == int(cfg.steps):
            evaluate(gen_steps)
        now = time.time()
        eval_now = sum(r.eval_time for r in seeds)
        train_time += (now - t_mark) - (eval_now - eval_before)
        t_mark, eval_before = now, eval_now
        if gen_steps < int(cfg.steps):
            if checkpoint_every and gen_steps % int(checkpoint_every) == 0:
                save()
            if stop_after_s is not None and now - t_session >= stop_after_s:
                save()
                say(f'stopped at generator step {gen_steps} of {cfg.steps}; progress kept in {path}')
                return None
    results = [r.finish(G.copy_of(s), train_time, batch_idx, gen_steps, stacked_seeds=S)
               for s, r in enumerate(seeds)]
    if path is not None and os.path.isfile(path):
        os.remove(path)
    return results


def _save_checkpoint(path, cfgs, seeds, G, D, loss, step_runner, gen_steps, batch_idx, train_time) -> None:
    state = dict(format=CHECKPOINT_FORMAT, version=CHECKPOINT_VERSION, configs=json.dumps(cfgs, sort_keys=True),
                 gen_steps=gen_steps, batch_idx=batch_idx, train_time=train_time,
                 G=G.state_dict(), D=D.state_dict(), optimizers=step_runner.state_dict(), loss=loss.state_dict(),
                 seeds=[dict(latent=r.latent_gen.get_state(), stream=_stream_state(r.stream),
                             floor=r.floor_gen.get_state(), curve=json.dumps(r.curve), eval_time=r.eval_time)
                        for r in seeds])
    with dnnlib.util.atomic_output(path) as f:
        torch.save(state, f)


def read_partial(path: str) -> dict:
    """The state a partial run's checkpoint holds, loaded as data (tensors and plain containers only)."""
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # pylint: disable=broad-except
        raise ValueError(f'{path}: not a partial benchmark run ({CHECKPOINT_FORMAT}): '
                         f'{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""}') from None
    if not isinstance(state, dict) or state.get('format') != CHECKPOINT_FORMAT:
        raise ValueError(f'{path}: not a partial benchmark run ({CHECKPOINT_FORMAT})')
    return state


def read_partial_of(path: str, cfgs: list[dict]) -> dict:
    """`read_partial`, refusing a checkpoint that holds the progress of configurations other than `cfgs`."""
    state = read_partial(path)
    try:
        recorded = json.loads(state.get('configs', 'null'))
    except (TypeError, ValueError):
        recorded = None
    if recorded != json.loads(json.dumps(cfgs, sort_keys=True)):
        raise ValueError(f'{path}: holds the progress of other configurations')
    return state


def _load_checkpoint(path, cfgs, seeds, G, D, loss, step_runner) -> tuple[int, int, float]:
    state = read_partial_of(path, cfgs)
    G.load_state_dict(state['G'])
    D.load_state_dict(state['D'])
    step_runner.load_state_dict(state['optimizers'])
    loss.load_state_dict(state['loss'])
    for seed_run, st in zip(seeds, state['seeds']):
        seed_run.latent_gen.set_state(st['latent'])
        seed_run.floor_gen.set_state(st['floor'])
        _load_stream_state(seed_run.stream, st['stream'])
        seed_run.curve = json.loads(st['curve'])
        seed_run.eval_time = float(st['eval_time'])
    return int(state['gen_steps']), int(state['batch_idx']), float(state['train_time'])
