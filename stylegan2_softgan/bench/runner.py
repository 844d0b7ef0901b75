"""One benchmark run: train a G/D pair with one objective on one data set for a fixed budget, record
curves over training and score the result.

Everything that trains comes from the project: the loss class and its defaults from the `--loss`
registry (training.loss.get_loss_spec), the networks from training.architectures (built by class name),
and the phases, optimisers, n_critic and lazy regularisation from training.phases.StepRunner, exactly as
the image training loop uses them. The budget is counted in *generator* updates, so objectives with
n_critic > 1 (WGAN, SW-GAN, WGAN-GP) get their extra critic steps on top, as their papers count iterations.

A run is a pure function of its configuration (a JSON-able dict, see protocols.make_run_config): the
global RNGs are seeded from the run's seed before the networks are built, and the latents, real
batches, β-floor batches and evaluation samples each come from their own generator seeded from it.
On the CPU with a given number of threads two runs of one configuration give identical results.
"""

from __future__ import annotations

import copy
import json
import os
import platform
import random
import time

import numpy as np
import torch

import dnnlib
from metrics.emd import batch_emd
from stylegan2_softgan.bench import data2d, protocols, scoring
from training.phases import StepRunner

RESULT_FORMAT = 'ganmc-bench-run'
RESULT_VERSION = 1

def environment() -> dict:
    """The machine and software a result was computed with (stored beside it, not part of its config)."""
    return dict(machine=platform.machine(), processor=platform.processor(), cpu_count=os.cpu_count(),
                torch=torch.__version__, python=platform.python_version(), numpy=np.__version__)


# ----------------------------------------------------------------------------
# Seeding.


def _generator(seed: int, stream: int) -> torch.Generator:
    """A torch generator for one random stream of a run (streams never share numbers)."""
    sub = int(np.random.default_rng([int(seed), int(stream), 0xBE7C]).integers(0, 2 ** 62))
    return torch.Generator().manual_seed(sub)


STREAM_LATENT, STREAM_REAL, STREAM_FLOOR, STREAM_EVAL, STREAM_TRUE, STREAM_BN_REFRESH = range(6)


def seed_everything(seed: int) -> None:
    random.seed(int(seed))
    np.random.seed(int(seed) % (2 ** 32))
    torch.manual_seed(int(seed))


# ----------------------------------------------------------------------------
# Data streams.


class PointStream:
    """Batches of a fixed 2-D training set, epoch by epoch in a seeded random order (PacGAN's protocol)."""

    def __init__(self, points: np.ndarray, batch: int, generator: torch.Generator):
        self.points = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32))
        self.batch = int(batch)
        self.generator = generator
        self._order = torch.empty(0, dtype=torch.int64)
        self._pos = 0

    def next(self) -> torch.Tensor:
        parts, need = [], self.batch
        while need > 0:
            if self._pos >= len(self._order):
                self._order = torch.randperm(len(self.points), generator=self.generator)
                self._pos = 0
            take = self._order[self._pos:self._pos + need]
            self._pos += len(take)
            need -= len(take)
            parts.append(take)
        return self.points[torch.cat(parts)]


class PointSource:
    """real_source for the β floor: n points drawn with replacement from the training set (the empirical
    distribution; with replacement because the finite-sample set may hold fewer than 2·batch points)."""

    def __init__(self, points: np.ndarray, generator: torch.Generator):
        self.points = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32))
        self.generator = generator

    def __call__(self, n: int) -> torch.Tensor:
        return self.points[torch.randint(len(self.points), [n], generator=self.generator)]


class ImageStream:
    """Batches (and the β floor's real_source) of stacked digits, drawn fresh from the MNIST digits."""

    def __init__(self, source, batch: int, generator: torch.Generator):
        self.source = source
        self.batch = int(batch)
        self.generator = generator

    def next(self) -> torch.Tensor:
        return self.source.sample(self.batch, self.generator)

    def __call__(self, n: int) -> torch.Tensor:
        return self.source.sample(n, self.generator)


# ----------------------------------------------------------------------------
# Generation.


@torch.no_grad()
def generate(G: torch.nn.Module, n: int, generator: torch.Generator, batch: int = 2500) -> torch.Tensor:
    """n samples from G in evaluation mode (BatchNorm running statistics, as TF DCGAN's sampler), float."""
    was_training = G.training
    G.eval()
    out = []
    for s in range(0, n, batch):
        m = min(batch, n - s)
        z = torch.randn([m, G.z_dim], generator=generator)
        out.append(G(z, torch.zeros([m, G.c_dim])).to(torch.float32))
    G.train(was_training)
    return torch.cat(out)


@torch.no_grad()
def refreshed_batchnorm(G: torch.nn.Module, batches: int, batch: int, generator: torch.Generator,
                        momentum: float | None = None) -> torch.nn.Module:
    """A copy of G whose BatchNorm population statistics have been moved `batches` times towards the
    statistics of G's own batches of `batch` latents at its current parameters (training-mode passes
    without gradients; `momentum` overrides each layer's own). PacGAN's 2-D code does this before every
    evaluation (its per-epoch "train" monitor: 50 batches of 100 with momentum 0.05); G itself is left
    unchanged, parameters and statistics."""
    if batches < 1 or batch < 2:
        raise ValueError(f'refreshed_batchnorm: need batches >= 1 and batch >= 2, got {batches} and {batch}')
    H = copy.deepcopy(G)
    norms = [m for m in H.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        raise ValueError('refreshed_batchnorm: the generator has no BatchNorm layer')
    if momentum is not None:
        for m in norms:
            m.momentum = float(momentum)
    H.train()
    for _ in range(int(batches)):
        z = torch.randn([int(batch), H.z_dim], generator=generator)
        H(z, torch.zeros([int(batch), H.c_dim]))
    H.eval()
    return H


# ----------------------------------------------------------------------------
# Evaluation per suite.


class Evaluator2D:
    """Scores of 2-D samples, curves included (GS against a real reference computed once)."""

    def __init__(self, cfg, train_points: np.ndarray):
        self.cfg = cfg
        self.data = data2d.get_dataset(cfg.dataset, cfg.get('train_size'))
        self.train_points = train_points
        rng = np.random.default_rng([int(cfg.seed), STREAM_TRUE])
        n = int(cfg.num_eval)
        self.true_a = self.data.sample_true(n, rng)
        self.true_b = self.data.sample_true(n, rng)
        self.gs = cfg.get('gs')
        self._real_rlts = None

    def _mode_scores(self, samples: np.ndarray) -> dict:
        """Mode scores where non-finite samples (a diverged generator) count as not high quality."""
        finite = np.isfinite(samples).all(axis=1)
        if finite.all():
            return scoring.mode_scores(samples, self.data.means, self.data.sigma)
        if finite.any():
            s = scoring.mode_scores(samples[finite], self.data.means, self.data.sigma)
        else:
            k = len(self.data.means)
            s = dict(num_modes=k, modes_captured=0, hq_fraction=0.0, reverse_kl=None, hq_counts=[0] * k)
        s.update(num_samples=int(len(samples)), hq_fraction=s['hq_fraction'] * float(finite.mean()))
        return s

    def curve_point(self, samples: np.ndarray, real_batch: torch.Tensor) -> dict:
        out = {}
        finite = bool(np.isfinite(samples).all())
        if self.data.kind == 'mixture':
            s = self._mode_scores(samples)
            out.update(modes_captured=s['modes_captured'], hq_fraction=s['hq_fraction'], reverse_kl=s['reverse_kl'])
        elif self.data.kind == 'finite' and finite:
            out['near_train_fraction'] = scoring.near_training_fraction(samples, self.train_points, 3 * self.data.sigma)
        out['batch_emd'] = batch_emd(torch.from_numpy(samples[:len(real_batch)]), real_batch) if finite else None
        if self.gs and finite:
            out['geometry_score'] = self.geometry_score(samples)
        return out

    def geometry_score(self, samples: np.ndarray) -> float:
        from metrics.geometry_score import geometry_score, rlts
        gs = self.gs
        if self._real_rlts is None:
            self._real_rlts = rlts(self.true_a[:gs['num_samples']], L0=gs['L0'], gamma=gs['gamma'], n=gs['n'], seed=1)
        return geometry_score(self._real_rlts, rlts(samples[:gs['num_samples']], L0=gs['L0'], gamma=gs['gamma'],
                                                    n=gs['n'], seed=2))

    def final(self, samples: np.ndarray) -> dict:
        finite = np.isfinite(samples).all(axis=1)
        out = dict(nonfinite_fraction=float(1 - finite.mean()))
        if self.data.kind == 'mixture':
            out.update(self._mode_scores(samples))
        if not finite.all():
            return out      # distances to the true distribution are undefined for a diverged generator
        if self.data.kind == 'mixture':
            out.update(scoring.emd_to_true(samples, self.true_a, self.true_b))
        elif self.data.kind == 'finite':
            out.update(scoring.finite_sample_scores(samples, self.train_points, self.data.sigma, self.true_a,
                                                    self.true_b))
        else:
            out.update(scoring.emd_to_true(samples, self.true_a, self.true_b))
        if self.gs:
            out['geometry_score'] = self.geometry_score(samples)
        return out


class EvaluatorDigits:
    """Scores of stacked-digit samples (3 channels: modes and KL; 1 channel: digit balance)."""

    def __init__(self, cfg, classifier):
        self.cfg = cfg
        self.predict = classifier.predict

    def _scores(self, images: torch.Tensor) -> dict:
        from stylegan2_softgan.bench.stacked_mnist import label_channels
        # A diverged generator's NaN pixels are shown to the classifier as black.
        digits = label_channels(self.predict, torch.nan_to_num(images, nan=-1.0, posinf=1.0, neginf=-1.0))
        if digits.shape[1] == 1:
            return scoring.digit_balance(digits[:, 0])
        return scoring.stacked_mode_scores(digits)

    def curve_point(self, images: torch.Tensor, real_batch: torch.Tensor) -> dict:
        out = self._scores(images[:int(self.cfg.num_curve)])
        out.pop('counts', None)
        fake = images[:len(real_batch)]
        out['batch_emd'] = batch_emd(fake, real_batch) if bool(torch.isfinite(fake).all()) else None
        return out

    def final(self, images: torch.Tensor) -> dict:
        return self._scores(images)


# ----------------------------------------------------------------------------
# The run.


def initialise(module: torch.nn.Module, init: dict) -> None:
    """A protocol's own initialisation (PacGAN's released 2-D code): every Linear weight from N(0, std²) and
    its bias 0, drawn from the global stream in module order; BatchNorm running-statistics momentum."""
    unknown = set(init) - {'weight_std', 'bn_momentum'}
    if unknown:
        raise ValueError(f'unknown initialisation settings {sorted(unknown)}')
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.Linear) and 'weight_std' in init:
                m.weight.normal_(0.0, float(init['weight_std']))
                if m.bias is not None:
                    m.bias.zero_()
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and 'bn_momentum' in init:
                m.momentum = float(init['bn_momentum'])


def build_loss_and_nets(cfg, real_source, device):
    G = dnnlib.util.construct_class_by_name(**cfg.G_kwargs).train().requires_grad_(False).to(device)
    D = dnnlib.util.construct_class_by_name(**cfg.D_kwargs).train().requires_grad_(False).to(device)
    if cfg.get('init'):
        initialise(G, cfg.init)
        initialise(D, cfg.init)
    loss = dnnlib.util.construct_class_by_name(device=device, G=G, D=D, real_source=real_source, **cfg.loss_kwargs)
    return G, D, loss


class SeedRun:
    """The per-seed parts of a run: the seeded random streams, the data, the networks as built for this
    seed, the curve and the final scores. Shared by the per-seed trainer (`run`) and the vectorised one
    (stylegan2_softgan.bench.vectorised), which trains several seeds' networks stacked."""

    def __init__(self, cfg: dict, classifier=None, device=torch.device('cpu')):
        cfg = dnnlib.EasyDict(copy.deepcopy(cfg))
        self.cfg = cfg
        self.t_start = time.time()
        seed_everything(cfg.seed)
        self.latent_gen = _generator(cfg.seed, STREAM_LATENT)
        self.real_gen = _generator(cfg.seed, STREAM_REAL)
        self.floor_gen = _generator(cfg.seed, STREAM_FLOOR)
        self.batch = int(cfg.batch)
        self.simultaneous = update_rule(cfg) == 'simultaneous'
        self.train_points = None
        if cfg.suite == '2d':
            data = data2d.get_dataset(cfg.dataset, cfg.get('train_size'))
            self.train_points = data.train_set(cfg.seed)
            self.stream = PointStream(self.train_points, self.batch, self.real_gen)
            self.real_source = PointSource(self.train_points, self.floor_gen)
            self.evaluator = Evaluator2D(cfg, self.train_points)
        else:
            from stylegan2_softgan.bench.stacked_mnist import StackedDigits, load_mnist
            if classifier is None:
                raise ValueError(f'the {cfg.suite} suite needs the MNIST classifier')
            x_train, y_train, _x_test, _y_test = load_mnist(cfg.data_path)
            source = StackedDigits(x_train, y_train, channels=int(cfg.channels), resolution=int(cfg.resolution))
            self.stream = ImageStream(source, self.batch, self.real_gen)
            self.real_source = ImageStream(source, self.batch, self.floor_gen)
            self.evaluator = EvaluatorDigits(cfg, classifier)
        self.G, self.D, self.loss = build_loss_and_nets(cfg, self.real_source, device)
        self.curve = []
        self.eval_time = 0.0

    def next_inputs(self, num_phases: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """This step's real batch and latents [num_phases, batch, z_dim], drawn from the seed's streams:
        one batch of latents per phase, or with simultaneous updates one batch shared by all phases (the
        same fakes for G's and D's gradients, as in ALI's algorithm)."""
        real = self.stream.next().to(device)
        if self.simultaneous:
            z = torch.randn([1, self.batch, self.G.z_dim], generator=self.latent_gen)
            return real, z.expand(num_phases, -1, -1).contiguous().to(device)
        gen_z = torch.randn([num_phases, self.batch, self.G.z_dim], generator=self.latent_gen).to(device)
        return real, gen_z

    def evaluation_copy(self, G: torch.nn.Module, step: int | None) -> torch.nn.Module:
        """G as it is scored: G itself, or with the configuration's `eval_bn_refresh` a copy whose BatchNorm
        statistics were refreshed from latents of the run's own refresh stream (one per curve point, another
        for the final score), so the training streams and G are untouched."""
        refresh = self.cfg.get('eval_bn_refresh')
        if not refresh:
            return G
        stream = STREAM_BN_REFRESH if step is None else STREAM_BN_REFRESH * 1_000_003 + step
        return refreshed_batchnorm(G, int(refresh['batches']), int(refresh['batch']),
                                   _generator(self.cfg.seed, stream), refresh.get('momentum'))

    def evaluate(self, G: torch.nn.Module, step: int, beta: float | None, say) -> None:
        """One curve point of generator G after `step` generator steps."""
        cfg = self.cfg
        t0 = time.time()
        gen = _generator(cfg.seed, STREAM_EVAL * 1_000_003 + step)
        samples = generate(self.evaluation_copy(G, step), int(cfg.num_curve), gen)
        real_batch = self.stream.source.sample(self.batch, gen) if cfg.suite != '2d' else \
            torch.from_numpy(self.train_points[torch.randint(len(self.train_points), [self.batch],
                                                             generator=gen).numpy()])
        point = dict(step=step)
        point.update(self.evaluator.curve_point(samples.numpy() if cfg.suite == '2d' else samples, real_batch))
        point['beta'] = None if beta is None else float(beta)
        self.curve.append(point)
        self.eval_time += time.time() - t0
        say(f'step {step}/{cfg.steps}: {format_point(point)} ({time.time() - self.t_start:.0f} s)')

    def finish(self, G: torch.nn.Module, train_time: float, d_steps: int, g_steps: int, **timing) -> dict:
        """Final scores of generator G and the JSON-able result."""
        cfg = self.cfg
        t0 = time.time()
        samples = generate(self.evaluation_copy(G, None), int(cfg.num_eval), _generator(cfg.seed, STREAM_EVAL))
        final = self.evaluator.final(samples.numpy() if cfg.suite == '2d' else samples)
        if cfg.suite != '2d' and int(cfg.channels) == 1:
            final['first_step_all_digits'] = scoring.first_iteration_all_present(self.curve)
        final_time = time.time() - t0
        result = dict(format=RESULT_FORMAT, version=RESULT_VERSION, config=dict(cfg), final=final, curve=self.curve,
                      environment=environment(),
                      timing=dict(train_s=train_time, curve_eval_s=self.eval_time, final_eval_s=final_time,
                                  total_s=time.time() - self.t_start, d_steps=d_steps, g_steps=g_steps,
                                  threads=torch.get_num_threads(), **timing))
        if cfg.get('save_samples'):
            if cfg.suite == '2d':
                result['_samples'] = samples.numpy()
            else:
                from metrics.metric_utils import to_uint8
                result['_samples'] = to_uint8(samples[:64]).numpy()
        return result


def run(cfg: dict, classifier=None, progress=None) -> dict:
    """Train and score one configuration; returns the JSON-able result (see the module docstring)."""
    device = torch.device('cpu')
    say = progress if progress is not None else (lambda msg: None)
    seed_run = SeedRun(cfg, classifier, device)
    cfg, G, loss = seed_run.cfg, seed_run.G, seed_run.loss
    step_runner = StepRunner(loss, G, seed_run.D, cfg.G_opt, cfg.D_opt, simultaneous=seed_run.simultaneous)
    num_phases = len(step_runner.phases)
    n_critic = int(loss.n_critic)
    beta_schedule = getattr(loss, 'beta_schedule', None)

    def evaluate(step: int) -> None:
        seed_run.evaluate(G, step, None if beta_schedule is None else beta_schedule.beta, say)

    t_train = time.time()
    gen_steps = 0
    batch_idx = 0
    evaluate(0)
    no_c = torch.zeros([seed_run.batch, 0], device=device)
    while gen_steps < int(cfg.steps):
        real, gen_z = seed_run.next_inputs(num_phases, device)
        step_runner.step(batch_idx, [real], [no_c], [[z] for z in gen_z], [[no_c] for _ in range(num_phases)],
                         cur_nimg=batch_idx * seed_run.batch)
        if batch_idx % n_critic == 0:
            gen_steps += 1
            if gen_steps % int(cfg.eval_every) == 0 or gen_steps == int(cfg.steps):
                evaluate(gen_steps)
        batch_idx += 1
    train_time = time.time() - t_train - seed_run.eval_time
    return seed_run.finish(G, train_time, batch_idx, gen_steps)


def reference(cfg: dict, classifier=None) -> dict:
    """The scores of samples of the real distribution itself, scored exactly like a run's samples: what a
    perfect generator would get with this many samples (and, for images, this classifier)."""
    cfg = dnnlib.EasyDict(copy.deepcopy(cfg))
    if cfg.suite == '2d':
        data = data2d.get_dataset(cfg.dataset, cfg.get('train_size'))
        train_points = data.train_set(cfg.seed)
        evaluator = Evaluator2D(dnnlib.EasyDict(cfg, gs=None), train_points)
        samples = data.sample_true(int(cfg.num_eval), np.random.default_rng([int(cfg.seed), 0x7EF]))
        final = evaluator.final(samples)
    else:
        from stylegan2_softgan.bench.stacked_mnist import StackedDigits, load_mnist
        x_train, _y, _x, _y2 = load_mnist(cfg.data_path)
        source = StackedDigits(x_train, channels=int(cfg.channels), resolution=int(cfg.resolution))
        images = source.sample(int(cfg.num_eval), _generator(cfg.seed, 0x7EF))
        final = EvaluatorDigits(cfg, classifier).final(images)
    keep = ('suite', 'dataset', 'protocol', 'seed', 'num_eval', 'train_size', 'channels', 'resolution')
    return dict(format=RESULT_FORMAT + '-reference', version=RESULT_VERSION,
                config={k: cfg[k] for k in keep if k in cfg}, final=final)


# ----------------------------------------------------------------------------
# Files.


def format_point(point: dict) -> str:
    """A curve point's scalar scores as `name value` pairs (the step and per-mode lists left out)."""
    return ' '.join(f'{k} {v:.3g}' if isinstance(v, float) else f'{k} {v}' for k, v in point.items()
                    if k != 'step' and v is not None and not isinstance(v, list))


def protocol_label(cfg) -> str:
    """The protocol's name, marked when every objective was given the protocol's optimiser, when the
    updates are not the ones the protocol prescribes, when G was scored with training's BatchNorm
    statistics where the protocol refreshes them, and when Adam's β1 was overridden."""
    label = cfg['protocol'] + ('' if cfg.get('optimizers', 'preset') == 'preset' else '-sameopt')
    update = update_rule(cfg)
    label += '' if update == protocols.protocol_update(cfg['suite'], cfg['protocol']) else f'-{update}'
    if protocols.protocol_eval_bn_refresh(cfg['suite'], cfg['protocol']) and not cfg.get('eval_bn_refresh'):
        label += '-runningbn'
    return label + ('' if cfg.get('adam_beta1') is None else f'-beta1-{float(cfg["adam_beta1"]):g}')


def update_rule(cfg) -> str:
    """'simultaneous' or 'alternating' (a configuration without the key is alternating)."""
    return cfg.get('update_rule', 'alternating')


def run_paths(outdir: str, cfg) -> tuple[str, str]:
    """(JSON path, samples .npz path) of a run inside an output folder."""
    folder = os.path.join(outdir, 'runs', protocol_label(cfg), cfg['dataset'])
    stem = f'{cfg["objective"]}-seed{cfg["seed"]}'
    return os.path.join(folder, stem + '.json'), os.path.join(folder, stem + '.npz')


def reference_path(outdir: str, cfg) -> str:
    return os.path.join(outdir, 'runs', protocol_label(cfg), cfg['dataset'], 'reference.json')


def to_json(result: dict) -> str:
    return json.dumps({k: v for k, v in result.items() if not k.startswith('_')}, indent=1, sort_keys=True,
                      allow_nan=True) + '\n'


def save_result(outdir: str, result: dict) -> str:
    json_path, npz_path = run_paths(outdir, result['config'])
    if '_samples' in result:
        with dnnlib.util.atomic_output(npz_path) as f:
            np.savez_compressed(f, samples=result['_samples'])
    elif os.path.exists(npz_path):
        os.remove(npz_path)
    text = to_json(result).encode('utf-8')
    dnnlib.util.atomic_write_bytes(json_path, text)
    return json_path


def load_result(path: str) -> dict:
    with open(path, encoding='utf-8') as f:
        result = json.load(f)
    if not isinstance(result, dict) or result.get('format') != RESULT_FORMAT:
        raise ValueError(f'{path}: not a benchmark run result ({RESULT_FORMAT})')
    return result


def existing_result(outdir: str, cfg) -> dict | None:
    """The stored result of exactly this configuration, or None (absent, unreadable or another config)."""
    json_path, npz_path = run_paths(outdir, cfg)
    if not os.path.isfile(json_path):
        return None
    try:
        result = load_result(json_path)
    except (ValueError, OSError):
        return None
    if json.loads(json.dumps(dict(cfg))) != result.get('config'):
        return None
    if cfg.get('save_samples') and not os.path.isfile(npz_path):
        return None
    return result
