"""The benchmark protocols: which networks, budget and optimisers each suite uses, and how a run's
configuration is assembled from the objective registry.

Suites and their data sets:

    2d        ring8, grid25, swissroll, gaussian          (data2d)
    stacked   stacked-full, stacked-quarter               stacked MNIST, D at full / ¼ capacity
    digits    mnist                                       one-channel MNIST: digit balance over training

Protocols:

    quick     small networks and a fixed budget chosen so that one run takes a minute or two on one
              CPU thread (measured times: the "train s / run" column of docs/benchmarks/results.md)
    standard  2-D suite only: PacGAN's 2-D experiment exactly as its released configuration defines it
              (github.com/fjxmlzn/PacGAN, synthetic_data_experiments/2D{Grid,Ring}_GAN&PacGAN/config.py and
              pacgan_task.py): z ~ N(0, I₂); G 2 → 4 × (400, BatchNorm, ReLU) → 2; D 3 maxout layers of
              200 units × 5 pieces → 1; every weight drawn from N(0, 0.02²), biases 0; BatchNorm population
              statistics updated with momentum 0.05; Adam lr 1e-4, β1 0.8 (β2 0.999) for G and D; batch 100;
              a fixed training set of 100,000 points seen for 400 epochs (400,000 steps); scores on 2,500
              samples, high quality within 3σ; simultaneous updates (ALI's training algorithm, which
              PacGAN's code uses: G's and D's gradients are both taken at the current parameters, from one
              batch of fakes, and applied together). The benchmark's comparisons are calibrated against
              PacGAN's table only once `ns` reproduces PacGAN's GAN row under this protocol (docs/benchmarks/).
              `--updates=alternating` runs it with the alternating updates of the other protocols (G's step,
              then D's on the updated G), stored as `standard-alternating`. `--adam-beta1=0.2` runs it with
              the other reading of blocks' Adam(beta1=0.8) (see the 'standard' entry below), stored as
              `standard-beta1-0.2`. Scores follow PacGAN's evaluation too: before every curve point and the
              final score, G's BatchNorm population statistics are refreshed at its current parameters (its
              per-epoch monitor: 50 training-mode passes of 100 latents, momentum 0.05; recorded in the
              configuration as `eval_bn_refresh`). `--eval-bn=running` scores with training's running
              statistics instead, as the runs made before 2026-12-07 did, stored as `standard-runningbn`.
    full      the published setups: PacGAN's 2-D networks and budget (G 4×400 ReLU+BN, maxout D 3×200×5,
              Adam 1e-4 β1 0.8, batch 100, 400 epochs of 100k samples = 400k steps), PacGAN's VEEGAN
              stacked-MNIST setup (DCGAN, batch 64, Adam 2e-4 β1 0.5, 50 epochs of 128k samples) and its
              Unrolled-GAN setup with D = ¼ G (batch 128, D 2e-4 / G 1e-4, β (0.5, 0.99), z 256, 500k steps)

Objectives are built from the `--loss` registry: the registered class and defaults, with the
StyleGAN-only regularisers off (path length, style mixing: our networks are not style generators) and
R1 off unless the objective registers its own r1_gamma (PacGAN's baseline GAN has no penalty; penalties
that define a method, such as WGAN-GP's or fake-as-real's, are part of that method's loss). The
objective's own optimiser preset (RMSProp for WGAN and SW-GAN ...) replaces the protocol's Adam, as in
train.py. Everything else (networks, data, budget in generator steps, seeds) is identical for all.
"""

from __future__ import annotations

import copy
import shlex

import dnnlib
from stylegan2_softgan.softgan import beta_schedule_kwargs
from training import architectures
from training.loss import LogitLoss, get_loss_spec

DEFAULT_OBJECTIVES = ('ns', 'soft', 'far', 'swgan', 'wgan-gp', 'hinge', 'ms')
PROTOCOLS = ('quick', 'standard', 'full')

SUITES = {
    '2d': ('ring8', 'grid25', 'swissroll', 'gaussian'),
    'stacked': ('stacked-full', 'stacked-quarter'),
    'digits': ('mnist',),
}

# Geometry Score settings of the curves (metrics.geometry_score): witness complexes on 1000 samples,
# 64 landmarks, γ = 1/128, 10 landmark draws per point (fewer than the paper's 100, to keep a curve cheap).
GS_CURVE = dict(num_samples=1000, L0=64, gamma=1.0 / 128, n=10)

# ----------------------------------------------------------------------------
# Protocol tables.

_ADAM_PACGAN_2D = dict(class_name='torch.optim.Adam', lr=1e-4, betas=[0.8, 0.999])

_2D = {
    # Measured on the shared 2-core machine (one thread): about 6-10 ms per generator step for n_critic = 1
    # objectives, so 10k steps take one to two minutes (n_critic = 5 objectives: about 3-5 minutes). PacGAN's
    # Adam 1e-4 is meant for 400k steps; at 10k steps ns reached 7/8 ring modes with 85% (lr 1e-3) or 55%
    # (lr 3e-4) high-quality samples, soft 4/8 (1e-3) or 6/8 (3e-4), and on grid25 ns 17 and 18, soft 8 and 21
    # modes. 3e-4 was kept: between PacGAN's rate and the rate that favoured ns, and nearer the registered
    # presets of the other objectives (RMSProp 5e-5 / 1e-4, Adam 1e-4). Only ns and soft, seed 0, were tried.
    'quick': dict(steps=10_000, batch=100, eval_every=500, num_eval=2500, num_curve=2500, train_size=100_000,
                  G=dict(hidden_features=128, num_layers=3), D=dict(hidden_features=128, num_layers=3,
                                                                    activation='relu'),
                  opt=dict(class_name='torch.optim.Adam', lr=3e-4, betas=[0.8, 0.999])),
    'full': dict(steps=400_000, batch=100, eval_every=10_000, num_eval=2500, num_curve=2500, train_size=100_000,
                 G=dict(hidden_features=400, num_layers=4), D=dict(hidden_features=200, num_layers=3,
                                                                   activation='maxout', maxout_pieces=5),
                 opt=_ADAM_PACGAN_2D),
    # PacGAN's released configuration (see the module docstring): 'full' plus its initialisation, its
    # BatchNorm momentum and its simultaneous updates. Its Adam is blocks' Adam(1e-4, beta1=0.8): since
    # blocks' commit aa06451 (2017-01-24, a year before PacGAN's code was published) that is torch's
    # β1 = 0.8; blocks releases before it weighted the *new* gradient by beta1 (torch β1 = 0.2), which is
    # the convention ALI's mixture script, whose settings PacGAN's reuse, was written in (2016). Curve
    # points every 5000 steps so that the late-training mean has 10 points in the last 50,000 steps.
    'standard': dict(steps=400_000, batch=100, eval_every=5000, num_eval=2500, num_curve=2500, train_size=100_000,
                     G=dict(hidden_features=400, num_layers=4), D=dict(hidden_features=200, num_layers=3,
                                                                       activation='maxout', maxout_pieces=5),
                     opt=_ADAM_PACGAN_2D, init=dict(weight_std=0.02, bn_momentum=0.05), update='simultaneous',
                     eval_bn_refresh=dict(batches=50, batch=100, momentum=0.05)),
}

# How G's BatchNorm population statistics are set for evaluation: 'protocol' (what the protocol prescribes:
# for 'standard' PacGAN's refresh, 50 training-mode passes of 100 latents with momentum 0.05 at G's current
# parameters before every curve point and the final score; for the others the running statistics of
# training) or 'running' (training's running statistics whatever the protocol says). A configuration records
# `eval_bn_refresh` only when the statistics are refreshed, so the others, and their stored runs, stay as
# they were.
EVAL_BN_POLICIES = ('protocol', 'running')


def protocol_eval_bn_refresh(suite: str, protocol: str) -> dict | None:
    """The BatchNorm refresh a protocol prescribes before evaluation (None: training's statistics)."""
    table = _2D if suite == '2d' else {}
    return copy.deepcopy(table.get(protocol, {}).get('eval_bn_refresh'))


# How G and D are updated (training.phases.StepRunner): 'alternating' (the image trainer's loop, every
# protocol but 'standard') or 'simultaneous'. A configuration records `update_rule` only when it is
# 'simultaneous', so the configurations, and the stored runs, of alternating protocols stay as they were.
UPDATE_POLICIES = ('protocol', 'alternating')


def protocol_update(suite: str, protocol: str) -> str:
    """The update rule a protocol prescribes for a suite."""
    table = _2D if suite == '2d' else {}
    return table.get(protocol, {}).get('update', 'alternating')


# The quick image protocols use the Unrolled-GAN networks (G 64-32-16-8 channels, 3x3; D 8-16-32 channels, or
# 2-4-8 at ¼ capacity): PacGAN's VEEGAN-setup DCGAN costs about 3 s per step on this CPU. Measured: about 60 ms
# per generator step on one thread (110 ms when the machine is shared), plus ~20 s to label 26,000 samples.
# With DCGAN's Adam lr 2e-4 the samples were still grey noise after 3000 steps; with lr 1e-3 digits form
# within 1500 steps, so the quick protocol uses 1e-3 for a 2000-step budget.
_ADAM_QUICK_IMAGES = dict(class_name='torch.optim.Adam', lr=1e-3, betas=[0.5, 0.999])

_STACKED = {
    'quick': dict(steps=2000, batch=64, eval_every=500, num_eval=26_000, num_curve=2600, resolution=28,
                  setups={'stacked-full': dict(setup='unrolled', d_capacity=1.0),
                          'stacked-quarter': dict(setup='unrolled', d_capacity=0.25)},
                  opt=_ADAM_QUICK_IMAGES),
    'full': dict(steps=None, batch=None, eval_every=5000, num_eval=26_000, num_curve=2600, resolution=28,
                 setups={'stacked-full': dict(setup='veegan', d_capacity=1.0, steps=100_000, batch=64,
                                              G_opt=dict(class_name='torch.optim.Adam', lr=2e-4, betas=[0.5, 0.999]),
                                              D_opt=dict(class_name='torch.optim.Adam', lr=2e-4, betas=[0.5, 0.999])),
                         'stacked-quarter': dict(setup='unrolled', d_capacity=0.25, steps=500_000, batch=128,
                                                 z_dim=256, num_eval=25_600,
                                                 G_opt=dict(class_name='torch.optim.Adam', lr=1e-4, betas=[0.5, 0.99]),
                                                 D_opt=dict(class_name='torch.optim.Adam', lr=2e-4, betas=[0.5, 0.99]))},
                 opt=None),
}

# Digit balance (seed 003): curves every 100 steps on 500 samples, the final balance on 10,000.
_DIGITS = {
    'quick': dict(steps=2000, batch=64, eval_every=100, num_eval=10_000, num_curve=500, resolution=28,
                  setup=dict(setup='unrolled', d_capacity=1.0), opt=_ADAM_QUICK_IMAGES),
    'full': dict(steps=100_000, batch=64, eval_every=1000, num_eval=10_000, num_curve=1000, resolution=28,
                 setup=dict(setup='veegan', d_capacity=1.0),
                 opt=dict(class_name='torch.optim.Adam', lr=2e-4, betas=[0.5, 0.999])),
}

# ----------------------------------------------------------------------------
# Objectives.

# Settings an objective's method prescribes for a kind of data, applied on top of its registered defaults.
# Fake-as-real: M0 = N/4 of the real batch for 2-D data (seed 002 §6: 16 of 64; METHODS §3), N/2 for images.
# RpGAN's γ (R1 and R2 alike) is not given by R3GAN for these data; chosen a priori, not tuned: γ = 1 for the
# 2-D points (spread over ±4), γ = 0.05 for images in [-1, 1] (the order of R3GAN's CIFAR-10 setting).
_RPGAN_GAMMA = {'2d': 1.0, 'stacked': 0.05, 'digits': 0.05}
SUITE_OVERRIDES = {
    suite: {'rpgan': dict(r1_gamma=gamma), 'rpgan-eb': dict(r1_gamma=gamma)} for suite, gamma in _RPGAN_GAMMA.items()
}
SUITE_OVERRIDES['2d']['far'] = dict(m0=0.25)
# SoftGAN's EMD on 2-D points is measured on 400 samples (4 batches) against fresh reals: at 100 points the
# real-vs-real EMD of grid25 is 0.85 ± 0.21, at 400 it is 0.44 ± 0.10, below the 0.90 of a generator that
# misses 4 of the 25 modes (docs/benchmarks/beta_schedule.md).
BENCH_EMD_SAMPLES_2D = 400
SUITE_OVERRIDES['2d']['soft-emd'] = dict(beta_emd_samples=BENCH_EMD_SAMPLES_2D)
SUITE_OVERRIDES['2d']['rpgan-eb'] = dict(r1_gamma=_RPGAN_GAMMA['2d'],
                                         beta_schedule=beta_schedule_kwargs(emd_samples=BENCH_EMD_SAMPLES_2D))


def loss_kwargs_for(objective: str) -> dnnlib.EasyDict:
    """class_name + kwargs of an objective for the benchmark networks (see the module docstring)."""
    spec = get_loss_spec(objective)
    kwargs = dnnlib.EasyDict(class_name=spec.class_name, **copy.deepcopy(spec.defaults))
    cls = dnnlib.util.get_obj_by_name(spec.class_name)
    if isinstance(cls, type) and issubclass(cls, LogitLoss):
        kwargs.setdefault('r1_gamma', 0.0)
        kwargs.setdefault('pl_weight', 0.0)
        kwargs.setdefault('style_mixing_prob', 0.0)
    return kwargs


OPTIMIZER_POLICIES = ('preset', 'protocol')


def optimizers_for(objective: str, default_opt: dict, policy: str = 'preset') -> tuple[dict, dict]:
    """(G_opt, D_opt): the objective's registered optimisers where it has them ('preset', as train.py), or
    the protocol's optimiser for every objective ('protocol', an ablation of the optimiser's effect)."""
    if policy not in OPTIMIZER_POLICIES:
        raise ValueError(f'unknown optimiser policy {policy!r}; expected one of {", ".join(OPTIMIZER_POLICIES)}')
    spec = get_loss_spec(objective)
    use_preset = policy == 'preset'
    G_opt = spec.G_opt if use_preset and spec.G_opt is not None else default_opt
    D_opt = spec.D_opt if use_preset and spec.D_opt is not None else default_opt
    return copy.deepcopy(G_opt), copy.deepcopy(D_opt)


# ----------------------------------------------------------------------------
# Run configurations.


def datasets_of(suite: str) -> tuple[str, ...]:
    if suite not in SUITES:
        raise ValueError(f'unknown suite {suite!r}; expected one of {", ".join(SUITES)}')
    return SUITES[suite]


def suite_of(dataset: str) -> str:
    for suite, names in SUITES.items():
        if dataset in names:
            return suite
    raise ValueError(f'unknown data set {dataset!r}; expected one of '
                     f'{", ".join(n for names in SUITES.values() for n in names)}')


def make_run_config(dataset: str, objective: str, seed: int, protocol: str = 'quick', steps: int | None = None,
                    eval_every: int | None = None, data_path: str | None = None, gs_curve: bool = False,
                    save_samples: bool = False, optimizers: str = 'preset',
                    updates: str = 'protocol', adam_beta1: float | None = None,
                    eval_bn: str = 'protocol') -> dnnlib.EasyDict:
    """The JSON-able configuration of one run. `steps` / `eval_every` override the protocol's budget and
    curve interval; `optimizers` is 'preset' or 'protocol' (see optimizers_for); `updates` is 'protocol'
    (the protocol's update rule) or 'alternating' (alternating updates whatever the protocol says);
    `adam_beta1` replaces β1 of G's and D's optimisers, which must both be Adam (recorded in the
    configuration as `adam_beta1` only when given, so other configurations stay as they were); `eval_bn`
    is 'protocol' or 'running' (see EVAL_BN_POLICIES)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f'unknown protocol {protocol!r}; expected one of {", ".join(PROTOCOLS)}')
    if updates not in UPDATE_POLICIES:
        raise ValueError(f'unknown update policy {updates!r}; expected one of {", ".join(UPDATE_POLICIES)}')
    if eval_bn not in EVAL_BN_POLICIES:
        raise ValueError(f'--eval-bn={eval_bn}: expected one of {", ".join(EVAL_BN_POLICIES)}')
    suite = suite_of(dataset)
    cfg = dnnlib.EasyDict(suite=suite, dataset=dataset, objective=objective, seed=int(seed), protocol=protocol)
    cfg.loss_kwargs = loss_kwargs_for(objective)
    cfg.loss_kwargs.update(copy.deepcopy(SUITE_OVERRIDES.get(suite, {}).get(objective, {})))

    if suite != '2d' and protocol == 'standard':
        raise ValueError(f'protocol "standard" is PacGAN\'s 2-D setting; {dataset!r} is in the {suite} suite '
                         f'(use quick or full)')
    if suite == '2d':
        p = copy.deepcopy(_2D[protocol])
        G_kwargs, D_kwargs = architectures.build_arch_kwargs('mlp-maxout', None, None, c_dim=0)
        G_kwargs.update(p['G'])
        D_kwargs.update(p['D'])
        cfg.update(steps=p['steps'], batch=p['batch'], eval_every=p['eval_every'], num_eval=p['num_eval'],
                   num_curve=p['num_curve'], train_size=p['train_size'])
        cfg.G_opt, cfg.D_opt = optimizers_for(objective, p['opt'], optimizers)
        cfg.gs = dict(GS_CURVE) if gs_curve else None
        if 'init' in p:
            cfg.init = p['init']
    else:
        table = _STACKED if suite == 'stacked' else _DIGITS
        p = copy.deepcopy(table[protocol])
        setup = p['setups'][dataset] if suite == 'stacked' else p['setup']
        channels = 3 if suite == 'stacked' else 1
        G_kwargs, D_kwargs = architectures.build_arch_kwargs('dcgan-stacked', p['resolution'], channels, c_dim=0,
                                                             setup=setup['setup'], d_capacity=setup['d_capacity'])
        if 'z_dim' in setup:
            G_kwargs.z_dim = setup['z_dim']
        cfg.update(steps=setup.get('steps', p['steps']), batch=setup.get('batch', p['batch']),
                   eval_every=p['eval_every'], num_eval=setup.get('num_eval', p['num_eval']),
                   num_curve=p['num_curve'], channels=channels, resolution=p['resolution'], data_path=data_path,
                   arch=dict(setup=setup['setup'], d_capacity=setup['d_capacity']))
        cfg.G_opt, _ = optimizers_for(objective, setup.get('G_opt', p['opt']), optimizers)
        _, cfg.D_opt = optimizers_for(objective, setup.get('D_opt', p['opt']), optimizers)
        cfg.gs = None
    if adam_beta1 is not None:
        _set_adam_beta1(cfg, objective, adam_beta1)
    cfg.G_kwargs = G_kwargs
    cfg.D_kwargs = D_kwargs
    if steps is not None:
        cfg.steps = int(steps)
    if eval_every is not None:
        cfg.eval_every = int(eval_every)
    if not cfg.steps or not cfg.eval_every:
        raise ValueError(f'protocol {protocol!r} has no budget for {dataset!r}: pass steps and eval_every')
    cfg.eval_every = min(int(cfg.eval_every), int(cfg.steps))
    cfg.save_samples = bool(save_samples)
    cfg.optimizers = optimizers
    if updates == 'protocol' and protocol_update(suite, protocol) == 'simultaneous':
        cfg['update_rule'] = 'simultaneous'
    refresh = protocol_eval_bn_refresh(suite, protocol)
    if eval_bn == 'protocol' and refresh is not None:
        cfg['eval_bn_refresh'] = refresh
    return _plain(cfg)


def _set_adam_beta1(cfg: dict, objective: str, beta1: float) -> None:
    """Replace β1 of both optimisers of `cfg` (both must be Adam) and record the override."""
    beta1 = float(beta1)
    if not 0.0 <= beta1 < 1.0:
        raise ValueError(f'--adam-beta1={beta1:g}: expected a number in [0, 1)')
    for name in ('G_opt', 'D_opt'):
        opt = cfg[name]
        if opt.get('class_name') != 'torch.optim.Adam':
            raise ValueError(f'--adam-beta1: objective {objective!r} trains {name[0]} with '
                             f'{opt.get("class_name")}, not Adam (leave it out of --objectives)')
        opt['betas'] = [beta1, float(opt.get('betas', [0.9, 0.999])[1])]
    cfg['adam_beta1'] = beta1


def make_run_configs(datasets, objectives, seeds, protocol: str = 'quick', steps: int | None = None,
                     eval_every: int | None = None, data_path: str | None = None, gs: bool = True,
                     optimizers: str = 'preset', updates: str = 'protocol',
                     adam_beta1: float | None = None, eval_bn: str = 'protocol') -> list[dnnlib.EasyDict]:
    """The configurations of one bench command, in the order it trains them: data set, then objective, then
    seed. Seed 0 saves its samples and, on 2-D data with `gs`, records the Geometry Score curve; MNIST's
    path goes only into the configurations of data sets that read it."""
    return [make_run_config(d, obj, seed, protocol, steps=steps, eval_every=eval_every,
                            data_path=data_path if suite_of(d) != '2d' else None,
                            gs_curve=gs and seed == 0 and suite_of(d) == '2d', save_samples=(seed == 0),
                            optimizers=optimizers, updates=updates, adam_beta1=adam_beta1, eval_bn=eval_bn)
            for d in datasets for obj in objectives for seed in seeds]


# How commands.txt spells the bench's program; the options follow it.
BENCH_COMMAND = 'python -m stylegan2_softgan.bench'


def bench_command(suite, protocol, objectives, seeds, first_seed, datasets, outdir, data, steps, eval_every,
                  threads=1, gs=True, optimizers='preset', updates='protocol', adam_beta1=None,
                  eval_bn='protocol') -> str:
    """The bench command line with these options, every option that shapes the runs spelled out (the
    form commands.txt records)."""
    args = [f'--suite={",".join(suite)}', f'--protocol={protocol}', f'--objectives={",".join(objectives)}',
            f'--seeds={seeds}']
    if first_seed:
        args.append(f'--first-seed={first_seed}')
    if datasets:
        args.append(f'--datasets={",".join(datasets)}')
    if data is not None:
        args.append(f'--data={data}')
    if steps is not None:
        args.append(f'--steps={steps}')
    if eval_every is not None:
        args.append(f'--eval-every={eval_every}')
    if threads != 1:
        args.append(f'--threads={threads}')
    if not gs:
        args.append('--no-gs')
    if optimizers != 'preset':
        args.append(f'--optimizers={optimizers}')
    if updates != 'protocol':
        args.append(f'--updates={updates}')
    if adam_beta1 is not None:
        args.append(f'--adam-beta1={float(adam_beta1):g}')
    if eval_bn != 'protocol':
        args.append(f'--eval-bn={eval_bn}')
    args.append(f'--outdir={outdir}')
    return f'{BENCH_COMMAND} {shlex.join(args)}'


def _plain(obj):
    """EasyDicts and tuples -> plain dicts and lists, so a config equals its JSON round trip."""
    if isinstance(obj, dict):
        return dnnlib.EasyDict({k: _plain(v) for k, v in obj.items()})
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj
