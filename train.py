"""Train a GAN: stylegan2-ada-pytorch's command line plus --loss (SoftGAN and the other objectives),
the β schedule options and --arch.

Examples:

\b
  # The first run: embedded digits, SoftGAN, 128 kimg (about 5.5 minutes on 2 idle CPU cores).
  python train.py
\b
  # SoftGAN on your data with 4 GPUs.
  python train.py --outdir=runs --data=imagenet256.zip --gpus=4 --loss=soft
\b
  # Continue the newest run in runs/ exactly where it stopped.
  python train.py --outdir=runs --data=imagenet256.zip --gpus=4 --loss=soft --resume=latest
"""

from __future__ import annotations

import copy
import errno
import json
import os
import re
import sys
import tempfile

import click

import dnnlib
import stylegan2_softgan  # noqa: F401  (registers the objectives with the loss registry)
from dnnlib.cli import CommaSeparatedList, FiniteFloat, OneLineErrors, UserError
from training import architectures, augment, builtin_data, dataset as dataset_lib
from training.loss import get_loss_spec, list_losses

# ----------------------------------------------------------------------------
# Presets (stylegan2-ada's, plus 'digits' for the embedded data set).

CFG_SPECS = {
    'auto':      dict(ref_gpus=-1, kimg=25000,  mb=-1, mbstd=-1, fmaps=-1,  lrate=-1,     gamma=-1,   ema=-1,  ramp=0.05, map=2, pl=2, mix=0.9),
    'stylegan2': dict(ref_gpus=8,  kimg=25000,  mb=32, mbstd=4,  fmaps=1,   lrate=0.002,  gamma=10,   ema=10,  ramp=None, map=8, pl=2, mix=0.9),
    'paper256':  dict(ref_gpus=8,  kimg=25000,  mb=64, mbstd=8,  fmaps=0.5, lrate=0.0025, gamma=1,    ema=20,  ramp=None, map=8, pl=2, mix=0.9),
    'paper512':  dict(ref_gpus=8,  kimg=25000,  mb=64, mbstd=8,  fmaps=1,   lrate=0.0025, gamma=0.5,  ema=20,  ramp=None, map=8, pl=2, mix=0.9),
    'paper1024': dict(ref_gpus=8,  kimg=25000,  mb=32, mbstd=4,  fmaps=1,   lrate=0.002,  gamma=2,    ema=10,  ramp=None, map=8, pl=2, mix=0.9),
    'cifar':     dict(ref_gpus=2,  kimg=100000, mb=64, mbstd=32, fmaps=1,   lrate=0.0025, gamma=0.01, ema=500, ramp=0.05, map=2, pl=0, mix=0, d_arch='orig'),
    # The embedded 16x16 digits on a 2-core CPU in about 5.5 minutes, every digit in the samples (issue 15:
    # 32 channels throughout, R1 gamma 1, lr 0.002; 128 kimg since SoftGAN's default β became the constant
    # 0.7213, with which 96 kimg ended just outside the class-share band; benchmarks/default_run_digits.py
    # measures the class shares, docs/performance.md has the runs).
    'digits':    dict(ref_gpus=1,  kimg=128,    mb=32, mbstd=4,  fmaps=0.015625, lrate=0.002, gamma=1, ema=1, ramp=0.05, map=2, pl=0, mix=0, cmax=32, zdim=128, snap=6),
}

AUGPIPE_SPECS = augment.PRESETS     # blit, geom, color, ..., bgcfnc: stylegan2-ada's pipelines

DEFAULT_DATA = 'builtin:digits16'
STYLE_ARCHS = ('stylegan2', 'style-linear')

# ----------------------------------------------------------------------------
# Option resolution: CLI values -> one JSON-able dict for training_loop. Every check raises UserError
# (one line, exit 2) before anything is written.


def _cuda_device_count() -> int:
    import torch
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_data(c, data, cond, subset, mirror, seed):
    try:
        c.training_set_kwargs = dataset_lib.make_dataset_kwargs(data, use_labels=bool(cond), max_size=subset,
                                                                xflip=bool(mirror), random_seed=seed)
        ds = dataset_lib.open_dataset(c.training_set_kwargs)
    except (ValueError, OSError) as e:
        raise UserError(f'--data: {e}') from None
    try:
        info = dnnlib.EasyDict(name=ds.name, resolution=ds.resolution, channels=ds.num_channels,
                               label_dim=ds.label_dim, size=len(ds))
        dataset_lib.validate_sample(ds, seed=seed)
    except (ValueError, OSError) as e:
        raise UserError(f'--data: {e}') from None
    finally:
        ds.close()
    c.training_set_kwargs.resolution = info.resolution if 'resolution' in c.training_set_kwargs else None
    if c.training_set_kwargs.get('resolution') is None:
        c.training_set_kwargs.pop('resolution', None)
    return info


def resolve_spec(cfg, gpus, res):
    spec = dnnlib.EasyDict(CFG_SPECS[cfg])
    if cfg == 'auto':
        spec.ref_gpus = gpus
        spec.mb = max(min(gpus * min(4096 // res, 32), 64), gpus)
        spec.mbstd = min(spec.mb // gpus, 4)
        spec.fmaps = 1 if res >= 512 else 0.5
        spec.lrate = 0.002 if res >= 1024 else 0.0025
        spec.gamma = 0.0002 * (res ** 2) / spec.mb
        spec.ema = spec.mb * 10 / 32
    return spec


def resolve_networks(c, arch, info, spec, explicit):
    """G_kwargs / D_kwargs from the --arch preset with the cfg's and the user's knobs."""
    knobs = {}
    if arch in STYLE_ARCHS:
        knobs.update(channel_base=int(spec.fmaps * 32768), channel_max=int(spec.get('cmax', 512)), map_layers=spec.map)
        if 'zdim' in spec:
            knobs.update(z_dim=spec.zdim, w_dim=spec.zdim)
        if arch == 'stylegan2':
            knobs['mbstd_group'] = spec.mbstd
            if 'd_arch' in spec:
                knobs['d_architecture'] = spec.d_arch
    knobs.update({k: v for k, v in explicit.items() if v is not None})
    valid = architectures.get_arch(arch).knobs
    for knob, (flag, value) in _explicit_flags(explicit).items():
        if knob not in valid:
            raise UserError(f'{flag}: not available with --arch={arch} (its options: {", ".join(valid) or "none"})')
    knobs = {k: v for k, v in knobs.items() if k in valid}
    try:
        c.G_kwargs, c.D_kwargs = architectures.build_arch_kwargs(arch, info.resolution, info.channels,
                                                                 c_dim=info.label_dim, **knobs)
    except ValueError as e:
        raise UserError(f'--arch={arch}: {e}') from None


_KNOB_FLAGS = {'channel_base': '--cbase', 'channel_max': '--cmax', 'map_layers': '--map',
               'num_fp16_res': '--fp32', 'conv_clamp': '--fp32', 'fp16_channels_last': '--nhwc',
               'reduced_dtype': '--reduced-dtype',
               'mbstd_group': '--mbstd-group'}


def _explicit_flags(explicit):
    return {k: (_KNOB_FLAGS.get(k, k), v) for k, v in explicit.items() if v is not None}


def resolve_loss(c, loss, spec, arch, gamma, beta_opts, entropy_bonus, objective_opts=None):
    try:
        loss_spec = get_loss_spec(loss)
    except ValueError as e:
        raise UserError(f'--loss: {e}') from None
    if loss == 'far' and gamma is not None:
        raise UserError('--gamma: --loss=far has its own zero-centred penalty instead of R1; use --far-lambda')
    c.loss_kwargs = dnnlib.EasyDict(class_name=loss_spec.class_name, **loss_spec.defaults)
    style = arch in STYLE_ARCHS
    if 'r1_gamma' not in loss_spec.defaults or gamma is not None:
        c.loss_kwargs.r1_gamma = spec.gamma if gamma is None else gamma
    # Path length and style mixing need a style generator (mapping + synthesis).
    c.loss_kwargs.setdefault('pl_weight', float(spec.pl) if style else 0.0)
    c.loss_kwargs.setdefault('style_mixing_prob', float(spec.mix) if style else 0.0)
    beta, beta_interval, beta_floor, beta_ema, soft_g_loss, beta_pairs, beta_samples = beta_opts
    given = {name: value for name, value in [('--beta', beta), ('--beta-interval', beta_interval),
                                             ('--beta-floor', beta_floor), ('--beta-ema', beta_ema),
                                             ('--beta-pairs', beta_pairs), ('--beta-samples', beta_samples)]
             if value is not None}
    if loss_spec.class_name == 'stylegan2_softgan.softgan.SoftGANLoss':
        if entropy_bonus:
            raise UserError('--entropy-bonus: SoftGAN always has its entropy term; use it with other losses')
        if beta_interval is not None:
            c.loss_kwargs.beta_interval = beta_interval
        if beta_floor is not None:
            c.loss_kwargs.beta_floor = _parse_floor(beta_floor)
        if beta_ema is not None:
            c.loss_kwargs.beta_ema = beta_ema
        if soft_g_loss is not None:
            c.loss_kwargs.g_loss = soft_g_loss
        if beta_pairs is not None:
            c.loss_kwargs.beta_floor_pairs = beta_pairs
        if beta_samples is not None:
            c.loss_kwargs.beta_emd_samples = beta_samples
        schedule_flags = [name for name in given if name != '--beta']
        variant = (objective_opts or {}).get('soft_variant') or loss_spec.defaults.get('variant', 'paper')
        if variant == 'reference':
            if schedule_flags:
                raise UserError(f'{schedule_flags[0]}: --soft-variant=reference has a constant β and no EMD schedule')
            if beta == 'auto':
                raise UserError('--beta: --soft-variant=reference has a constant β (1 unless --beta gives a number), '
                                'not the EMD schedule "auto"')
            c.loss_kwargs.beta = None if beta is None else float(beta)     # None: the released code's β = 1
        elif beta == 'auto' or (beta is None and schedule_flags):
            c.loss_kwargs.beta = None       # the EMD schedule; a schedule option asks for it
        elif beta is not None:
            c.loss_kwargs.beta = float(beta)
        # else the objective's registered β: constant 1/(2 ln 2) for 'soft', the schedule for 'soft-emd'
    else:
        if soft_g_loss is not None:
            raise UserError(f'--soft-g-loss: only applies to --loss=soft (got --loss={loss})')
        if given and not entropy_bonus:
            raise UserError(f'{next(iter(given))}: only applies to --loss=soft or with --entropy-bonus=1')
        if entropy_bonus:
            from stylegan2_softgan.softgan import beta_schedule_kwargs
            c.loss_kwargs.beta_schedule = beta_schedule_kwargs(
                beta=None if beta in (None, 'auto') else float(beta),
                interval=beta_interval if beta_interval is not None else 4,
                floor=_parse_floor(beta_floor) if beta_floor is not None else 'real',
                ema=beta_ema if beta_ema is not None else 0.9,
                **({} if beta_pairs is None else {'floor_pairs': beta_pairs}),
                **({} if beta_samples is None else {'emd_samples': beta_samples}))
    _resolve_objective_opts(c, loss, objective_opts or {})
    return c.loss_kwargs


# Options of one objective: CLI name -> (flag, loss kwarg, the --loss values it applies to).
OBJECTIVE_FLAGS = {
    'far_m0': ('--far-m0', 'm0', ('far',)),
    'far_m1': ('--far-m1', 'm1', ('far',)),
    'far_lambda': ('--far-lambda', 'far_lambda', ('far',)),
    'clip': ('--clip', 'clip', ('wgan', 'swgan')),
    'gp_lambda': ('--gp-lambda', 'gp_lambda', ('wgan-gp',)),
    'svgd_alpha': ('--svgd-alpha', 'alpha', ('swgan',)),
    'svgd_rho': ('--svgd-rho', 'rho', ('swgan',)),
    'soft_variant': ('--soft-variant', 'variant', ('soft',)),
}


def _resolve_objective_opts(c, loss, opts):
    """--n-critic, mode seeking on top of any objective, and the per-objective knobs."""
    for name, (flag, kwarg, losses) in OBJECTIVE_FLAGS.items():
        value = opts.get(name)
        if value is None:
            continue
        if loss not in losses:
            raise UserError(f'{flag}: only applies to --loss={"/".join(losses)} (got --loss={loss})')
        c.loss_kwargs[kwarg] = value
    if opts.get('n_critic') is not None:
        c.loss_kwargs.n_critic = opts['n_critic']
    for name, kwarg in (('r2_gamma', 'r2_gamma'), ('reg_every', 'D_reg_interval')):
        if opts.get(name) is not None:
            if 'LogitLoss' not in _loss_bases(c.loss_kwargs.class_name):
                raise UserError(f'--{name.replace("_", "-")}: only applies to losses built on the logit-loss '
                                f'machinery (got --loss={loss})')
            c.loss_kwargs[kwarg] = opts[name] if name != 'reg_every' or opts[name] > 1 else None
    lam, delta, every = opts.get('ms_lambda'), opts.get('ms_delta'), opts.get('ms_every_kimg')
    preset = c.loss_kwargs.get('mode_seeking')
    if preset is None and lam is None:
        for flag, value in (('--ms-delta', delta), ('--ms-every-kimg', every)):
            if value is not None:
                raise UserError(f'{flag}: only applies with --ms-lambda or --loss=ms')
        return
    from stylegan2_softgan.mode_seeking import mode_seeking_kwargs
    preset = preset or {}
    lam = lam if lam is not None else preset.get('lam', 0.0)
    delta = delta if delta is not None else preset.get('delta', 0.0)
    every = every if every is not None else preset.get('every_kimg')
    if delta > 0 and every is None:
        raise UserError('--ms-delta: the schedule needs its step, --ms-every-kimg')
    if every is not None and delta == 0:
        raise UserError('--ms-every-kimg: only applies with --ms-delta > 0')
    if lam == 0 and delta == 0:
        c.loss_kwargs.pop('mode_seeking', None)     # --ms-lambda=0: no regulariser at all
        return
    c.loss_kwargs.mode_seeking = mode_seeking_kwargs(lam, delta, every)


def _loss_bases(class_name: str) -> list[str]:
    """Names of the classes a registered loss class derives from (itself included)."""
    return [cls.__name__ for cls in dnnlib.util.get_obj_by_name(class_name).__mro__]


def _parse_floor(value: str):
    if value in ('real', 'zero'):
        return value
    try:
        number = float(value)
    except ValueError:
        raise UserError(f'--beta-floor: expected "real", "zero" or a number >= 0, got {value!r}') from None
    if not 0 <= number < float('inf'):
        raise UserError(f'--beta-floor: expected a finite number >= 0, got {value!r}')
    return number


def _parse_beta(value):
    if value is None or value == 'auto':
        return value
    try:
        number = float(value)
    except ValueError:
        raise UserError(f'--beta: expected "auto" (the EMD schedule) or a number in [0, 0.7213], got {value!r}') from None
    from stylegan2_softgan.beta_schedule import BETA_MAX
    if not 0 <= number <= BETA_MAX:
        raise UserError(f'--beta: a fixed β must be in [0, {BETA_MAX:.4f}], got {value}')
    return number


def resolve_augment(c, aug, p, target, augpipe, resume):
    if aug == 'ada':
        c.ada_target = 0.6 if target is None else target
    elif target is not None:
        raise UserError('--target: only applies to --aug=ada')
    if aug == 'fixed' and p is None:
        raise UserError('--aug=fixed: needs --p')
    if p is not None:
        if aug != 'fixed' and resume is None:
            raise UserError('--p: only applies to --aug=fixed (or to override p when resuming)')
        c.augment_p = p
    if aug == 'noaug':
        if augpipe is not None:
            raise UserError('--augpipe: cannot be used with --aug=noaug')
        c.augment_kwargs = None
    else:
        c.augment_kwargs = dnnlib.EasyDict(class_name='training.augment.AugmentPipe',
                                           **AUGPIPE_SPECS[augpipe or 'bgc'])


def find_resume(resume: str, outdir: str) -> tuple[str, dict]:
    """The snapshot to resume from and its validated contents (the training state must be complete)."""
    from torch_utils import checkpoint
    try:
        path = resume
        if resume == 'latest':
            runs = sorted((d for d in os.listdir(outdir) if re.match(r'^\d+-', d)), reverse=True) \
                if os.path.isdir(outdir) else []
            for run in runs:
                if checkpoint.list_snapshots(os.path.join(outdir, run)):
                    path = checkpoint.find_latest_snapshot(os.path.join(outdir, run))
                    break
            else:
                raise UserError(f'--resume=latest: no run folder in {outdir} holds a snapshot')
        elif os.path.isdir(resume):
            path = checkpoint.find_latest_snapshot(resume)
        try:
            return path, checkpoint.load_snapshot(path, require_state=True)
        except checkpoint.CheckpointError:
            # NVIDIA's networks (a .pkl, URL or stylegan2-ada name such as ffhq256, or legacy.py's conversion)
            # hold no training state: resuming from them is transfer learning.
            snap = checkpoint.load_snapshot(path)
            if snap['meta'].get('imported_from') != 'nvidia-pickle':
                raise
            return path, snap
    except checkpoint.CheckpointError as e:
        raise UserError(f'--resume: {e}') from None


# ----------------------------------------------------------------------------
# Resuming: the snapshot carries the run's resolved options (meta.options). Options not given on the command
# line come from there; given ones either take effect or, where they would change what the snapshot's
# networks, objective or data order are, must equal the recorded value (README, "Options on --resume").

DATA_OPTIONS = ('data', 'cond', 'subset', 'mirror', 'seed')
# Given on --resume, these replace the recorded value: option -> resolved entries (paths into the options).
RESUME_TAKES_EFFECT = {
    'glr': [('G_opt_kwargs', 'lr')], 'dlr': [('D_opt_kwargs', 'lr')], 'gamma': [('loss_kwargs', 'r1_gamma')],
    'kimg': [('total_kimg',)], 'snap': [('image_snapshot_ticks',), ('network_snapshot_ticks',)],
    'metrics': [('metrics',)], 'tick': [('kimg_per_tick',)], 'p': [('augment_p',)], 'batch_gpu': [('batch_gpu',)],
}
# Given on --resume, these must leave the recorded entries unchanged (else: refused, one line).
_NETWORK_KEYS = [('G_kwargs',), ('D_kwargs',)]
_LOSS_KEYS = [('loss_kwargs',), ('G_opt_kwargs',), ('D_opt_kwargs',)]
RESUME_FIXED = {
    'loss': _LOSS_KEYS, 'arch': _NETWORK_KEYS, 'cbase': _NETWORK_KEYS, 'cmax': _NETWORK_KEYS, 'map_layers': _NETWORK_KEYS,
    'mbstd_group': _NETWORK_KEYS, 'fp32': _NETWORK_KEYS, 'nhwc': _NETWORK_KEYS, 'reduced_dtype': _NETWORK_KEYS,
    'freezed': _NETWORK_KEYS, 'cfg': _NETWORK_KEYS + [('batch_size',), ('ema_kimg',), ('ema_rampup',)],
    'batch': [('batch_size',)], 'seed': [('random_seed',)],
    'aug': [('augment_kwargs',), ('ada_target',)], 'augpipe': [('augment_kwargs',)], 'target': [('ada_target',)],
    **{name: _LOSS_KEYS for name in ('beta', 'beta_interval', 'beta_floor', 'beta_ema', 'soft_g_loss', 'soft_variant',
                                     'beta_pairs', 'beta_samples', 'r2_gamma', 'reg_every', 'entropy_bonus',
                                     'n_critic', 'ms_lambda', 'ms_delta', 'ms_every_kimg', *OBJECTIVE_FLAGS)},
}
# Entries of this machine and launch, never taken from the snapshot.
_MACHINE_KEYS = ('num_gpus', 'data_loader_kwargs', 'cudnn_benchmark', 'allow_tf32', 'deterministic', 'resume',
                 'training_set_kwargs', 'dist_timeout')


def resumed_defaults(kw: dict, given: set, snap: dict) -> dict:
    """The data options (--data, --cond, --subset, --mirror, --seed) of the snapshot's run where not given."""
    kw = dict(kw)
    recorded = snap['meta'].get('training_set_kwargs')
    options = snap['meta'].get('options') or {}
    if not recorded or 'state' not in snap:
        return kw
    if 'data' not in given:
        if recorded['class_name'] == 'training.dataset.DigitsDataset':
            data = builtin_data.builtin_name(int(recorded.get('resolution', 32)), int(recorded.get('channels', 1)))
        else:
            data = recorded.get('path')
        kw['data'] = None if data == DEFAULT_DATA else data
    for name, key in (('cond', 'use_labels'), ('subset', 'max_size'), ('mirror', 'xflip')):
        if name not in given and key in recorded:
            kw[name] = recorded[key]
    if 'seed' not in given and isinstance(options.get('random_seed'), int):
        kw['seed'] = options['random_seed']
    return kw


def _entry(options: dict, path: tuple):
    for key in path:
        if not isinstance(options, dict) or key not in options:
            return None
        options = options[key]
    return json.loads(json.dumps(options))


def _set_entry(options: dict, path: tuple, value) -> None:
    for key in path[:-1]:
        options = options.setdefault(key, {})
    options[path[-1]] = value


def apply_resume(c: dict, given: set, path: str, snap: dict, info) -> dnnlib.EasyDict:
    """Options of a resumed run: the snapshot's, with the given ones that take effect, after checking the data
    against the snapshot's networks and that the run has something left to train."""
    G_init = json.loads(snap['modules']['G']['config'])['init_kwargs'] if 'G' in snap['modules'] else {}
    want = dict(img_resolution=info.resolution, img_channels=info.channels, c_dim=info.label_dim)
    got = {k: G_init[k] for k in want if k in G_init}
    if any(got[k] != want[k] for k in got):
        def shape(d):
            return f'{d.get("img_resolution")}x{d.get("img_resolution")}, {d.get("img_channels")} channel(s), ' \
                   f'{d.get("c_dim") or "no"} label values'
        raise UserError(f'--data: {info.name} is {shape(want)}, but {path} was trained on {shape(got)}; '
                        f'resume on data of the same shape')
    recorded = snap['meta'].get('options') or {}
    fresh = json.loads(json.dumps(c))
    if recorded:
        for name, paths in RESUME_FIXED.items():
            if name in given and any(_entry(fresh, p) != _entry(recorded, p) for p in paths):
                flag = '--' + name.replace('_', '-') if name != 'map_layers' else '--map'
                raise UserError(f'{flag}: cannot change on --resume (it would change the networks, the objective or '
                                f'the data order that {os.path.basename(path)} continues); start a new run instead')
        merged = {k: v for k, v in recorded.items() if k not in ('run_dir', 'options_for_meta', 'num_threads')}
        merged.update({k: fresh[k] for k in _MACHINE_KEYS if k in fresh})
        for name, paths in RESUME_TAKES_EFFECT.items():
            if name in given or _entry(merged, paths[0]) is None:
                for p in paths:
                    _set_entry(merged, p, _entry(fresh, p))
        c = dnnlib.EasyDict(merged)
    if c['batch_size'] % c['num_gpus'] or c['batch_size'] % (c['batch_gpu'] * c['num_gpus']):
        per_gpu = c['batch_size'] // c['num_gpus']
        if c['batch_size'] % c['num_gpus'] or 'batch_gpu' in given:
            raise UserError(f'--gpus={c["num_gpus"]}: the resumed batch {c["batch_size"]} must be a multiple of '
                            f'batch-gpu × gpus ({c["batch_gpu"]} × {c["num_gpus"]})')
        c['batch_gpu'] = max(d for d in range(1, min(c['batch_gpu'], per_gpu) + 1) if per_gpu % d == 0)
    cur_nimg = snap['state']['cur_nimg']
    if c['total_kimg'] * 1000 <= cur_nimg:
        raise UserError(f'--kimg={c["total_kimg"]:g}: {path} is already at {cur_nimg / 1000:g} kimg, so there is '
                        f'nothing to train (--kimg is the total length; give more than {cur_nimg / 1000:g} to continue)')
    return c


def check_real_floor(c: dict, num_images: int) -> None:
    """The β schedule's 'real' EMD floor draws disjoint real batches; refuse a data set too small for them now
    rather than at the first measurement."""
    lk = c['loss_kwargs']
    schedule = lk.get('beta_schedule')
    if schedule is None and lk.get('class_name') == 'stylegan2_softgan.softgan.SoftGANLoss' and lk.get('beta') is None \
            and lk.get('variant', 'paper') == 'paper':
        from stylegan2_softgan.softgan import beta_schedule_kwargs
        schedule = beta_schedule_kwargs(**{k: lk[f'beta_{k}'] for k in ('floor', 'floor_pairs', 'emd_samples')
                                           if f'beta_{k}' in lk})
    if not schedule or schedule.get('floor') != 'real' or schedule.get('fixed') is not None:
        return
    m = schedule.get('emd_samples') or c['batch_gpu'] * c['num_gpus']
    need = 2 * m * schedule.get('floor_pairs', 1)
    if need > num_images:
        raise UserError(f'--data: the β schedule\'s real EMD floor compares {schedule.get("floor_pairs", 1)} pair(s) of '
                        f'disjoint real batches of {m} ({need} distinct images), but the training set has {num_images}; '
                        f'use more images, a smaller --beta-pairs, or --beta-floor=zero')


def check_transfer(c, snap: dict) -> None:
    """Transfer learning: the imported generator must fit the training data (checked before the run folder)."""
    import json
    kwargs = json.loads(snap['modules']['G_ema']['config'])['init_kwargs']
    for key in ('img_resolution', 'img_channels', 'c_dim'):
        if key in c.G_kwargs and kwargs.get(key) != c.G_kwargs[key]:
            raise UserError(f'--resume: the imported networks have {key}={kwargs.get(key)}, the training data needs '
                            f'{c.G_kwargs[key]}')
    for key in ('G', 'D', 'G_ema'):
        if key not in snap['modules']:
            raise UserError(f'--resume: the imported file has no {key} (transfer learning needs G, D and G_ema)')


# ----------------------------------------------------------------------------
# Launching: one process, N spawned processes, or torchrun.


def subprocess_fn(rank: int, c: dict, temp_dir: str) -> None:
    import torch
    from torch_utils import misc
    if c['num_gpus'] > 1:
        backend = 'nccl' if torch.cuda.is_available() else 'gloo'
        init_file = os.path.abspath(os.path.join(temp_dir, '.torch_distributed_init'))
        misc.init_process_group(backend=backend, init_method=f'file://{init_file}', rank=rank,
                                world_size=c['num_gpus'], timeout=_dist_timeout(c))
    try:
        train_one_line(rank, c)
    finally:
        if c['num_gpus'] > 1:
            torch.distributed.destroy_process_group()


def train_one_line(rank: int, c: dict) -> None:
    """training_loop, with the failures a user must act on (divergence, a bad image, a write error: disk full,
    no permission, read-only) turned into one line on stderr (from rank 0) and exit status 1."""
    import signal
    import torch
    from training import training_loop
    if torchrun_env() is not None:      # torchrun's agent stops the survivors of a lost node with SIGTERM
        signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        training_loop.training_loop(rank=rank, **c)
    except training_loop.TrainingStopped as e:
        _exit_one_line(rank, str(e))
    except (RuntimeError, _Terminated) as e:    # a peer died (connection closed) or hangs (timeout)
        if not isinstance(e, _Terminated) and not _collective_failed(e):
            raise
        lost = _lost_ranks(rank, c['num_gpus'])
        who = f'rank {", ".join(map(str, lost))}' if lost else 'another process'
        _exit_one_line(rank, f'lost {who} of {c["num_gpus"]} during training ({_first_line(e)}); this process '
                             f'stopped; continue with --resume=latest', always=True)
    except OSError as e:
        where = e.filename or c.get('run_dir')
        _exit_one_line(rank, f'{where}: {e.strerror or e}' + (f' (errno {errno.errorcode.get(e.errno, e.errno)})'
                                                             if e.errno else ''))


class _Terminated(Exception):
    """SIGTERM from torchrun's agent (it stops the remaining processes when one of them is lost)."""

    def __str__(self):
        return 'stopped by torchrun'


def _raise_terminated(signum, frame):
    raise _Terminated()


def _collective_failed(e: RuntimeError) -> bool:
    """A collective that lost its peers: torch's DistError, or gloo/NCCL's plain RuntimeError from a closed
    connection or a timeout."""
    import torch
    if isinstance(e, torch.distributed.DistError):
        return True
    text = str(e)
    return torch.distributed.is_initialized() and any(
        s in text for s in ('Connection closed by peer', 'Connection reset by peer', 'Timed out', 'timed out',
                            'NCCL communicator was aborted', 'gloo/transport'))


def _dist_timeout(c: dict):
    import datetime
    return datetime.timedelta(seconds=c.get('dist_timeout') or 600)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


def _lost_ranks(rank: int, world: int, wait_s: float = 2.0) -> list[int]:
    """Ranks that do not answer: with two processes the other one; else every surviving process marks itself in
    the process group's store, waits a moment, and reads which marks are missing (empty when the store is gone).
    Bounded by a few seconds: torchrun's agent kills what it stopped soon after."""
    import datetime
    import time
    import torch
    if world == 2:
        return [1 - rank]
    try:
        store = torch.distributed.distributed_c10d._get_default_store()     # noqa: SLF001 - the group's own store
        store.set_timeout(datetime.timedelta(seconds=wait_s))
        store.set(f'alive-after-failure/{rank}', '1')
        time.sleep(wait_s)
        return [r for r in range(world) if r != rank and not store.check([f'alive-after-failure/{r}'])]
    except Exception:  # noqa: BLE001 - the store may have died with its host
        return []


def _exit_one_line(rank: int, message: str, always: bool = False) -> None:
    if rank == 0 or always:
        print(f'Error: {message}', file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(1)     # skip interpreter teardown: nothing else may print, and peers' collectives must not hang us


def launch(c: dict) -> None:
    import torch
    if c['num_gpus'] == 1:
        subprocess_fn(0, c, '')
        return
    if not torch.cuda.is_available():      # CPU processes share the cores
        c['num_threads'] = max(1, (os.cpu_count() or 1) // c['num_gpus'])
    with tempfile.TemporaryDirectory() as temp_dir:
        try:
            torch.multiprocessing.spawn(fn=subprocess_fn, args=(c, temp_dir), nprocs=c['num_gpus'])
        except torch.multiprocessing.ProcessExitedException as e:
            if e.exit_code != 1:        # exit status 1: the process said why in one line already
                print(f'Error: process {e.error_index} of {c["num_gpus"]} was lost ({e}); the others were stopped; '
                      f'continue with --resume=latest', file=sys.stderr, flush=True)
            sys.exit(1)


def warn_cpu_processes(gpus: int) -> None:
    """On a machine without CUDA, --gpus=N starts N processes that split the cores between them; with one
    core or less each, gradient exchange costs more than it gains (2 processes on 2 cores measured 1.77x
    slower than one). Said once, by the launching process, before anything else happens."""
    cores = os.cpu_count() or 1
    if gpus < 2 or _cuda_device_count() or cores // gpus >= 2:
        return
    what = f'more processes than the {cores} CPU core(s)' if gpus > cores else \
        f'{gpus} processes of {cores // gpus} thread each on {cores} CPU cores'
    print(f'warning: --gpus={gpus} without CUDA runs {what}; on the CPU this is usually slower than --gpus=1, '
          f'which uses every core in one process', file=sys.stderr, flush=True)


def torchrun_env() -> tuple[int, int] | None:
    """(rank, world size) when started by torchrun, else None."""
    if 'RANK' in os.environ and 'WORLD_SIZE' in os.environ and 'LOCAL_RANK' in os.environ:
        return int(os.environ['RANK']), int(os.environ['WORLD_SIZE'])
    return None


# ----------------------------------------------------------------------------


@click.command(cls=OneLineErrors, help=__doc__)
# General.
@click.option('--outdir', help='Where to save the results', metavar='DIR', default='training-runs', show_default=True)
@click.option('--gpus', help='Number of GPUs (on a CPU-only machine: processes)', type=click.IntRange(min=1), default=1, show_default=True)
@click.option('--snap', help='Snapshot interval in ticks  [default: 50; 6 for --cfg=digits]', type=click.IntRange(min=1))
@click.option('--metrics', help='Comma-separated list, "none", or "auto" (fid50k_full on GPU with real data, else none)', type=CommaSeparatedList(), default='auto', show_default=True)
@click.option('--seed', help='Random seed', type=click.IntRange(min=0), default=0, show_default=True)
@click.option('-n', '--dry-run', help='Print the resolved training options and exit', is_flag=True)
# Data.
@click.option('--data', help=f'Training data: zip, folder, or builtin:digits<N>[-rgb] with N in {"|".join(map(str, builtin_data.DIGITS_RESOLUTIONS))}  [default: {DEFAULT_DATA}]', metavar='PATH')
@click.option('--cond', help='Train a conditional model on the dataset labels', type=bool, default=False, show_default=True)
@click.option('--subset', help='Train with only N images  [default: all]', type=click.IntRange(min=1), metavar='INT')
@click.option('--mirror', help='Enable dataset x-flips', type=bool, default=False, show_default=True)
# Base configuration.
@click.option('--cfg', help='Base config  [default: auto, or digits for the embedded data]', type=click.Choice(list(CFG_SPECS)))
@click.option('--gamma', help='Override R1 gamma', type=FiniteFloat(min=0))
@click.option('--kimg', help='Override training duration (thousands of images)', type=FiniteFloat(min=0, min_open=True))
@click.option('--batch', help='Override total batch size', type=click.IntRange(min=1))
@click.option('--batch-gpu', help='Images per accumulation round per GPU  [default: batch/gpus or the cfg value]', type=click.IntRange(min=1))
@click.option('--glr', help='Generator learning rate  [default: cfg]', type=FiniteFloat(min=0, min_open=True))
@click.option('--dlr', help='Discriminator learning rate  [default: cfg]', type=FiniteFloat(min=0, min_open=True))
@click.option('--cbase', help='Capacity multiplier (channel_base)', type=click.IntRange(min=1))
@click.option('--cmax', help='Max. feature maps (channel_max)', type=click.IntRange(min=1))
@click.option('--map', 'map_layers', help='Mapping network depth', type=click.IntRange(min=1))
@click.option('--mbstd-group', help='Minibatch std group size', type=click.IntRange(min=1))
@click.option('--tick', help='Progress interval in kimg', type=FiniteFloat(min=0, min_open=True), default=4, show_default=True)
# Objective and architecture.
@click.option('--loss', help='Objective', type=click.Choice(list_losses()), default='soft', show_default=True)
@click.option('--arch', help='Architecture family', type=click.Choice(architectures.list_archs()), default='stylegan2', show_default=True)
@click.option('--beta', help='SoftGAN β: a fixed value in [0, 0.7213], or "auto" (EMD schedule)  [default: 0.7213 for --loss=soft; auto with a --beta-* schedule option, --loss=soft-emd or --entropy-bonus]', metavar='auto|FLOAT')
@click.option('--beta-interval', help='Generator steps between EMD measurements  [default: 4]', type=click.IntRange(min=1))
@click.option('--beta-floor', help='EMD floor: real (mean over --beta-pairs real-vs-real pairs), zero, or a number  [default: real]', metavar='real|zero|FLOAT')
@click.option('--beta-ema', help='EMA decay of the measured EMD  [default: 0.9]', type=FiniteFloat(min=0, max=1, max_open=True))
@click.option('--soft-g-loss', help='SoftGAN generator term  [default: linear]', type=click.Choice(['linear', 'ns']))
@click.option('--soft-variant', help="SoftGAN: the paper's algorithm, or the authors' released toy code  [default: paper]", type=click.Choice(['paper', 'reference']))
@click.option('--beta-pairs', help="Real-vs-real batch pairs averaged for the 'real' EMD floor  [default: 16]", type=click.IntRange(min=1))
@click.option('--beta-samples', help="Samples per EMD measurement (the most recent generated ones vs fresh reals)  [default: the step's batch]", type=click.IntRange(min=2))
@click.option('--r2-gamma', help='R2 weight: zero-centred gradient penalty on generated samples, any logit loss  [default: 0; rpgan: = R1 gamma]', type=FiniteFloat(min=0))
@click.option('--reg-every', help='Apply R1/R2 every N discriminator steps (lazy), with the penalty scaled by N  [default: 16; rpgan: 1]', type=click.IntRange(min=1))
@click.option('--entropy-bonus', help="Add SoftGAN's β-weighted entropy term to another loss", type=bool, default=False, show_default=True)
@click.option('--n-critic', help="Discriminator steps per generator step  [default: the objective's, e.g. 5 for wgan]", type=click.IntRange(min=1))
@click.option('--ms-lambda', help='Mode-seeking weight λ0 on top of any objective  [default: off; 0.05 for --loss=ms]', type=FiniteFloat(min=0))
@click.option('--ms-delta', help='Mode-seeking schedule: add this to λ every --ms-every-kimg  [default: 0]', type=FiniteFloat(min=0))
@click.option('--ms-every-kimg', help='Mode-seeking schedule step in kimg', type=FiniteFloat(min=0, min_open=True))
@click.option('--far-m0', help='FAR: fraction of the real half replaced by the lowest-scored fakes  [default: 0.5]', type=FiniteFloat(min=0, max=1, max_open=True))
@click.option('--far-m1', help='FAR: candidates generated per real image (M1/N)  [default: 4]', type=click.IntRange(min=1))
@click.option('--far-lambda', help='FAR: weight of the zero-centred gradient penalty  [default: 10]', type=FiniteFloat(min=0))
@click.option('--clip', help='WGAN / SW-GAN weight clipping bound  [default: 0.01]', type=FiniteFloat(min=0, min_open=True))
@click.option('--gp-lambda', help='WGAN-GP gradient penalty weight  [default: 10]', type=FiniteFloat(min=0))
@click.option('--svgd-alpha', help='SW-GAN attraction α  [default: 2]', type=FiniteFloat(min=0))
@click.option('--svgd-rho', help='SW-GAN repulsion ρ  [default: 0.5]', type=FiniteFloat(min=0))
# Augmentation.
@click.option('--aug', help='Augmentation mode  [default: ada, noaug for the embedded data]', type=click.Choice(['noaug', 'ada', 'fixed']))
@click.option('--p', help='Augmentation probability for --aug=fixed', type=FiniteFloat(min=0, max=1))
@click.option('--target', help='ADA target value for --aug=ada', type=FiniteFloat(min=0, max=1))
@click.option('--augpipe', help='Augmentation pipeline  [default: bgc]', type=click.Choice(list(AUGPIPE_SPECS)))
# Resume and transfer.
@click.option('--resume', help='Continue exactly: a snapshot file, a run folder, or "latest" (newest in --outdir); or transfer learning from NVIDIA\'s networks: a .pkl, URL, or ffhq256|ffhq512|ffhq1024|celebahq256|lsundog256', metavar='PATH')
@click.option('--freezed', help='Freeze-D: number of frozen discriminator layers', type=click.IntRange(min=0), default=0, show_default=True)
# Performance.
@click.option('--fp32', help='Disable mixed precision', type=bool, default=False, show_default=True)
@click.option('--nhwc', help='Use NHWC memory format with FP16', type=bool, default=False, show_default=True)
@click.option('--reduced-dtype', help='Type of the mixed-precision layers: auto (float16 on CUDA, float32 on CPU), float16 or bfloat16', type=click.Choice(['auto', 'float16', 'bfloat16']))
@click.option('--nobench', help='Disable cuDNN benchmarking', type=bool, default=False, show_default=True)
@click.option('--allow-tf32', help='Allow TF32 matmuls and convolutions', type=bool, default=False, show_default=True)
@click.option('--workers', help='DataLoader worker processes  [default: 3 with a GPU, 0 on CPU]', type=click.IntRange(min=0))
@click.option('--deterministic', help='Deterministic algorithms (bit-exact repeatability, slower)', type=bool, default=False, show_default=True)
@click.option('--dist-timeout', help='Seconds a process waits for the others in a collective before it stops (a lost process)', type=click.IntRange(min=1), default=600, show_default=True)
def main(**kw):
    """Resolve, validate, write training_options.json into a new run folder, and train."""
    ctx = click.get_current_context()
    given = {name for name in kw if ctx.get_parameter_source(name) not in (None, click.core.ParameterSource.DEFAULT)}
    desc, c = resolve_options(_given=given, **kw)
    if kw['dry_run']:
        print(json.dumps(c, indent=2))
        print(f'Run folder would be: {dnnlib.util.make_run_dir(kw["outdir"], desc, create=False)}')
        return
    run(c, desc, kw['outdir'])


def resolve_options(_given=None, **kw):
    """CLI values -> (run description, options). `_given`: the options set on the command line (default:
    those that differ from their defaults); on --resume the others come from the snapshot."""
    c = dnnlib.EasyDict()
    given = set(_given) if _given is not None else \
        {p.name for p in main.params if kw.get(p.name) is not None and kw.get(p.name) != p.default}
    resume_path = resume_snap = None
    if kw.get('resume') is not None:
        resume_path, resume_snap = find_resume(kw['resume'], kw['outdir'])
        kw = resumed_defaults(kw, given, resume_snap)
    gpus = kw['gpus']
    env = torchrun_env()
    if env is not None:
        if kw['gpus'] not in (1, env[1]):
            raise UserError(f'--gpus={gpus}: under torchrun the world size ({env[1]}) is used; omit --gpus')
        gpus = env[1]
    elif _cuda_device_count() and gpus > _cuda_device_count():
        raise UserError(f'--gpus={gpus}: only {_cuda_device_count()} CUDA device(s) are visible')
    c.num_gpus = gpus

    data = kw['data'] or DEFAULT_DATA
    info = resolve_data(c, data, kw['cond'], kw['subset'], kw['mirror'], kw['seed'])
    desc = info.name
    if kw['cond']:
        desc += '-cond'
    if kw['subset']:
        desc += f'-subset{kw["subset"]}'
    if kw['mirror']:
        desc += '-mirror'

    cfg = kw['cfg'] or ('digits' if kw['data'] is None else 'auto')
    spec = resolve_spec(cfg, gpus, info.resolution)
    desc += f'-{cfg}' + (f'{gpus}' if cfg == 'auto' else '')

    explicit = dict(channel_base=kw['cbase'], channel_max=kw['cmax'], map_layers=kw['map_layers'],
                    mbstd_group=kw['mbstd_group'])
    if kw['fp32']:
        explicit.update(num_fp16_res=0, conv_clamp=None)
    if kw['nhwc']:
        explicit.update(fp16_channels_last=True)
    if kw['reduced_dtype'] is not None:
        if kw['fp32']:
            raise UserError('--reduced-dtype: cannot be combined with --fp32=1 (no reduced-precision layers)')
        explicit.update(reduced_dtype=kw['reduced_dtype'])
    resolve_networks(c, kw['arch'], info, spec, explicit)
    if kw['fp32'] and 'num_fp16_res' in architectures.get_arch(kw['arch']).knobs:
        c.G_kwargs.synthesis_kwargs['conv_clamp'] = None     # the builder treats None as "preset default"
        c.D_kwargs['conv_clamp'] = None
    if kw['freezed']:
        if 'block_kwargs' not in c.D_kwargs:
            raise UserError(f'--freezed: not available with --arch={kw["arch"]}')
        c.D_kwargs.block_kwargs['freeze_layers'] = kw['freezed']
        desc += f'-freezed{kw["freezed"]}'
    if kw['arch'] != 'stylegan2':
        desc += f'-{kw["arch"]}'

    # Optimisers: the objective's own preset where it has one (e.g. RMSProp for WGAN), else the cfg's Adam.
    loss_spec = get_loss_spec(kw['loss'])
    for key, preset, lr in (('G_opt_kwargs', loss_spec.G_opt, kw['glr']), ('D_opt_kwargs', loss_spec.D_opt, kw['dlr'])):
        opt = dnnlib.EasyDict(preset or dict(class_name='torch.optim.Adam', lr=spec.lrate, betas=[0.0, 0.99], eps=1e-8))
        if lr is not None:
            opt.lr = lr
        c[key] = opt
    beta = _parse_beta(kw['beta'])
    objective_opts = {name: kw[name] for name in ('n_critic', 'ms_lambda', 'ms_delta', 'ms_every_kimg',
                                                  'r2_gamma', 'reg_every', *OBJECTIVE_FLAGS)}
    resolve_loss(c, kw['loss'], spec, kw['arch'],
                 kw['gamma'], (beta, kw['beta_interval'], kw['beta_floor'], kw['beta_ema'], kw['soft_g_loss'],
                               kw['beta_pairs'], kw['beta_samples']),
                 kw['entropy_bonus'], objective_opts)
    desc += f'-{kw["loss"]}'
    if kw['gamma'] is not None:
        desc += f'-gamma{kw["gamma"]:g}'

    c.total_kimg = kw['kimg'] if kw['kimg'] is not None else spec.kimg
    c.batch_size = kw['batch'] if kw['batch'] is not None else spec.mb
    if c.batch_size % gpus != 0:
        raise UserError(f'--batch={c.batch_size}: must be divisible by --gpus={gpus}')
    per_gpu = c.batch_size // gpus
    if kw['batch'] is not None:
        desc += f'-batch{c.batch_size}'
        c.batch_gpu = per_gpu
    else:   # the cfg's per-GPU batch (a memory bound) but at most this run's share, and a divisor of it
        cap = min(max(spec.mb // spec.ref_gpus, 1), per_gpu)
        c.batch_gpu = max(d for d in range(1, cap + 1) if per_gpu % d == 0)
    if kw['batch_gpu'] is not None:
        c.batch_gpu = kw['batch_gpu']
    if c.batch_size % (c.batch_gpu * gpus) != 0:
        raise UserError(f'--batch-gpu={c.batch_gpu}: batch {c.batch_size} must be a multiple of batch-gpu × gpus '
                        f'({c.batch_gpu} × {gpus})')
    mbstd = c.D_kwargs.get('epilogue_kwargs', {}).get('mbstd_group_size')
    if mbstd is not None and c.batch_gpu % min(mbstd, c.batch_gpu) != 0:
        raise UserError(f'--mbstd-group={mbstd}: must divide the per-GPU batch {c.batch_gpu}')
    c.ema_kimg = spec.ema
    c.ema_rampup = spec.ramp
    c.kimg_per_tick = kw['tick']
    c.image_snapshot_ticks = c.network_snapshot_ticks = kw['snap'] or spec.get('snap', 50)
    c.random_seed = kw['seed']

    aug = kw['aug'] or ('noaug' if kw['data'] is None else 'ada')
    resolve_augment(c, aug, kw['p'], kw['target'], kw['augpipe'], kw['resume'])
    if kw['aug'] is not None:
        desc += f'-{aug}'

    if kw['resume'] is not None:
        c.resume, _snap = resume_path, resume_snap
        if 'state' not in _snap:
            check_transfer(c, _snap)
        else:   # a continued run keeps its run's name (its options come from the snapshot, see apply_resume)
            m = re.match(r'^\d+-(.+?)(-resume)*$', os.path.basename(os.path.dirname(os.path.abspath(resume_path))))
            desc = m.group(1) if m else desc
        desc += '-resume'

    metrics = kw['metrics']
    if metrics == ['auto']:
        metrics = ['fid50k_full'] if _cuda_device_count() and not kw['data'] is None else []
        from metrics.classifiers import DIGITS_CLASSIFIER_RESOLUTIONS, is_digits_dataset
        if is_digits_dataset(c.training_set_kwargs) and c.training_set_kwargs.get('resolution') in DIGITS_CLASSIFIER_RESOLUTIONS:
            metrics = ['cat_cov1k']     # the embedded digits: each digit's share of 1k samples (seconds on a CPU)
    if metrics:
        from metrics import metric_main
        bad = [m for m in metrics if not metric_main.is_valid_metric(m)]
        if bad:
            raise UserError(f'--metrics: unknown metric {bad[0]!r}; valid: {", ".join(metric_main.list_valid_metrics())}')
    c.metrics = metrics

    workers = kw['workers'] if kw['workers'] is not None else (3 if _cuda_device_count() else 0)
    c.data_loader_kwargs = dnnlib.EasyDict(pin_memory=bool(_cuda_device_count()), num_workers=workers,
                                           prefetch_factor=2)
    c.cudnn_benchmark = not kw['nobench']
    c.allow_tf32 = bool(kw['allow_tf32'])
    c.deterministic = bool(kw['deterministic'])
    c.dist_timeout = kw.get('dist_timeout') or 600
    if resume_snap is not None and 'state' in resume_snap:
        c = apply_resume(c, given, resume_path, resume_snap, info)
    check_real_floor(c, info.size)
    if env is None or env[0] == 0:      # once, after every check has passed
        warn_cpu_processes(gpus)
    return desc, c


def run(c: dict, desc: str, outdir: str) -> None:
    env = torchrun_env()
    c = copy.deepcopy(c)
    if env is None or env[0] == 0:
        remove_stale_temp_files(outdir, c.get('resume'))
    if env is None:
        run_dir = dnnlib.util.make_run_dir(outdir, desc)
        _write_options(run_dir, c)
        print(f'Training options written to {os.path.join(run_dir, "training_options.json")}')
        c['run_dir'] = run_dir
        c['options_for_meta'] = json.loads(json.dumps(c))
        launch(dict(c))
        return
    # torchrun: every process runs this script; rank 0 makes the run folder and tells the others.
    import torch
    from torch_utils import misc
    rank, world = env
    backend = 'nccl' if torch.cuda.is_available() else 'gloo'
    misc.init_process_group(backend=backend, timeout=_dist_timeout(c))
    if not torch.cuda.is_available():      # CPU processes of one machine share its cores, as with --gpus
        c['num_threads'] = max(1, (os.cpu_count() or 1) // int(os.environ.get('LOCAL_WORLD_SIZE', world)))
    holder = [None]
    if rank == 0:
        holder[0] = dnnlib.util.make_run_dir(outdir, desc)
        _write_options(holder[0], c)
    torch.distributed.broadcast_object_list(holder, src=0)
    c['run_dir'] = holder[0]
    c['options_for_meta'] = json.loads(json.dumps(c))
    try:
        train_one_line(rank, c)
    finally:
        torch.distributed.destroy_process_group()


def remove_stale_temp_files(outdir: str, resume: str | None) -> None:
    """Temporary files of killed snapshot/image writes in --outdir, its run folders and the resumed snapshot's
    folder (never a complete file: see dnnlib.util.remove_stale_temp_files)."""
    folders = {os.path.dirname(os.path.abspath(resume))} if resume else set()
    if os.path.isdir(outdir):
        folders.add(outdir)
        folders.update(os.path.join(outdir, d) for d in os.listdir(outdir) if re.match(r'^\d+-', d))
    removed = [p for folder in sorted(folders) for p in dnnlib.util.remove_stale_temp_files(folder)]
    if removed:
        print(f'Removed {len(removed)} temporary file(s) left by an interrupted write, e.g. {removed[0]}')


def _write_options(run_dir: str, c: dict) -> None:
    dnnlib.util.atomic_write_bytes(os.path.join(run_dir, 'training_options.json'), json.dumps(c, indent=2).encode('utf-8'))


if __name__ == '__main__':
    main()
