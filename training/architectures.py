"""Registry of `--arch` presets: name -> builder of (G_kwargs, D_kwargs) for construct_class_by_name.

    G_kwargs, D_kwargs = build_arch_kwargs('resnet', resolution=32, img_channels=3, c_dim=0, spectral_norm=True)
    G = dnnlib.util.construct_class_by_name(**G_kwargs)

Presets (seed 000 Tables 2, 3, 5 and Fig. 10; BENCHMARKS.md):

    stylegan2       style G (skip) + StyleGAN2 D (resnet), stylegan2-ada's networks (Table 5 at 256x256)
    style-linear    style G + "linear" DCGAN-style D (Fig. 10, third combination)
    dcgan           "linear" G + "linear" D, SNGAN's standard CNN (Fig. 10, first combination)
    resnet          ResNet G + skip D with residual blocks, SNGAN-style (Fig. 10, second combination)
    cnn             the small CNN of Table 2 (32x32 only)
    resnet-t3       the ResNet G and D of Table 3 (32x32 only)
    dcgan-stacked   stacked-MNIST DCGAN: setup='veegan' (VEEGAN / PacGAN) or 'unrolled' (Unrolled GAN's small
                    nets; d_capacity=0.25 is PacGAN's "D = 1/4 G"), 28x28 or 32x32
    mlp             2-D data: PacGAN's G (4 x 400 ReLU + BN) + a ReLU MLP D (3 x 200)
    mlp-maxout      2-D data: PacGAN's G + PacGAN's maxout D (3 x 200 units, 5 pieces)

Every builder takes (resolution, img_channels, c_dim) plus its own keyword knobs (listed by `describe_archs()`);
an unknown preset, an unknown knob or an impossible combination raises ValueError with one line. The 2-D
presets take resolution=None and img_channels=None.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Callable

import dnnlib

# ----------------------------------------------------------------------------
# The registry.


@dataclasses.dataclass(frozen=True)
class ArchSpec:
    name: str                       # the --arch value
    description: str                # one line for --help
    builder: Callable               # builder(resolution, img_channels, c_dim, **knobs) -> (G_kwargs, D_kwargs)
    knobs: dict                     # knob name -> default value (JSON-able)
    check: Callable                 # check(resolution, img_channels) -> None, raises ValueError


_registry: dict[str, ArchSpec] = {}
_NAME_RE = re.compile(r'^[a-z][a-z0-9]*(-[a-z0-9]+)*$')


def register_arch(name: str, builder: Callable, description: str, knobs: dict, check: Callable) -> ArchSpec:
    """Add a preset. Names are lower-case words joined by '-'; duplicates and bad knobs are refused."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(f'architecture name {name!r} must be lower-case letters/digits joined by "-"')
    if name in _registry:
        raise ValueError(f'architecture {name!r} is already registered')
    if not callable(builder) or not callable(check):
        raise ValueError(f'architecture {name!r}: builder and check must be callable')
    if not isinstance(description, str) or not description or '\n' in description:
        raise ValueError(f'architecture {name!r}: description must be one non-empty line')
    if not isinstance(knobs, dict) or not all(isinstance(k, str) and k.isidentifier() for k in knobs):
        raise ValueError(f'architecture {name!r}: knobs must be a dict keyed by identifiers')
    for reserved in ('resolution', 'img_channels', 'c_dim'):
        if reserved in knobs:
            raise ValueError(f'architecture {name!r}: knob {reserved!r} is a reserved argument')
    try:
        json.dumps(knobs)
    except (TypeError, ValueError) as e:
        raise ValueError(f'architecture {name!r}: knob defaults must be JSON-able ({e})') from None
    spec = ArchSpec(name=name, description=description, builder=builder, knobs=dict(knobs), check=check)
    _registry[name] = spec
    return spec


def list_archs() -> list[str]:
    return list(_registry)


def get_arch(name: str) -> ArchSpec:
    if name not in _registry:
        raise ValueError(f'unknown architecture {name!r}; valid: {", ".join(_registry)}')
    return _registry[name]


def describe_archs() -> str:
    """One line per preset with its knobs and their defaults (for --help texts)."""
    lines = []
    for spec in _registry.values():
        knobs = ', '.join(f'{k}={v!r}' for k, v in spec.knobs.items())
        lines.append(f'{spec.name}: {spec.description} [{knobs}]')
    return '\n'.join(lines)


def build_arch_kwargs(name: str, resolution: int | None, img_channels: int | None, c_dim: int = 0,
                      **knobs) -> tuple[dnnlib.EasyDict, dnnlib.EasyDict]:
    """(G_kwargs, D_kwargs), each an EasyDict with class_name and JSON-able constructor arguments.

    Knobs left out (or passed as None) take the preset's defaults.
    """
    spec = get_arch(name)
    unknown = sorted(set(knobs) - set(spec.knobs))
    if unknown:
        valid = ', '.join(spec.knobs) or 'none'
        raise ValueError(f'architecture {name!r} has no option {unknown[0]!r}; valid: {valid}')
    if not isinstance(c_dim, int) or isinstance(c_dim, bool) or c_dim < 0:
        raise ValueError(f'c_dim must be an integer >= 0, got {c_dim!r}')
    spec.check(resolution, img_channels)
    values = dict(spec.knobs)
    values.update({k: v for k, v in knobs.items() if v is not None})
    G_kwargs, D_kwargs = spec.builder(resolution=resolution, img_channels=img_channels, c_dim=c_dim, **values)
    return dnnlib.EasyDict(G_kwargs), dnnlib.EasyDict(D_kwargs)


# ----------------------------------------------------------------------------
# Resolution checks.


def _is_pow2(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0 and value & (value - 1) == 0


def _image_check(name: str, allowed: Callable[[int], bool], allowed_text: str) -> Callable:
    def check(resolution, img_channels):
        if not isinstance(img_channels, int) or isinstance(img_channels, bool) or img_channels < 1:
            raise ValueError(f'architecture {name!r} needs images with >= 1 channel, got img_channels={img_channels!r}')
        if not (isinstance(resolution, int) and allowed(resolution)):
            raise ValueError(f'architecture {name!r} is defined for resolution {allowed_text}, got {resolution!r}')
    return check


def _points_check(name: str) -> Callable:
    def check(resolution, img_channels):
        if resolution is not None or img_channels is not None:
            raise ValueError(f'architecture {name!r} is for 2-D point data: pass resolution=None and '
                             f'img_channels=None (got {resolution!r}, {img_channels!r})')
    return check


def _check_number(arch: str, knob: str, value, minimum=0, integer=False, exclusive=False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and integer:
        ok = isinstance(value, int)
    if ok:
        ok = value > minimum if exclusive else value >= minimum
    if not ok:
        kind = 'an integer' if integer else 'a number'
        rel = '>' if exclusive else '>='
        raise ValueError(f'architecture {arch!r}: {knob} must be {kind} {rel} {minimum}, got {value!r}')


# ----------------------------------------------------------------------------
# StyleGAN2 pieces.


def _style_generator(resolution, img_channels, c_dim, channel_base, channel_max, map_layers, z_dim, w_dim,
                     num_fp16_res, conv_clamp, g_architecture, reduced_dtype, fp16_channels_last):
    return dict(class_name='training.networks.Generator', z_dim=z_dim, c_dim=c_dim, w_dim=w_dim,
                img_resolution=resolution, img_channels=img_channels,
                mapping_kwargs=dict(num_layers=map_layers),
                synthesis_kwargs=dict(channel_base=channel_base, channel_max=channel_max, num_fp16_res=num_fp16_res,
                                      conv_clamp=conv_clamp, architecture=g_architecture, reduced_dtype=reduced_dtype,
                                      fp16_channels_last=fp16_channels_last))


_STYLE_KNOBS = dict(channel_base=None, channel_max=512, map_layers=2, z_dim=512, w_dim=512, num_fp16_res=4,
                    conv_clamp=256, g_architecture='skip', reduced_dtype='auto', fp16_channels_last=False)


def _style_defaults(name, resolution, knobs):
    """stylegan2-ada's 'auto' configuration: channel_base 32768 from 512x512 up, 16384 below."""
    if knobs['channel_base'] is None:
        knobs['channel_base'] = 32768 if resolution >= 512 else 16384
    for knob in ('channel_base', 'channel_max', 'map_layers', 'z_dim', 'w_dim'):
        _check_number(name, knob, knobs[knob], 1, integer=True)
    _check_number(name, 'num_fp16_res', knobs['num_fp16_res'], 0, integer=True)
    if knobs['conv_clamp'] is not None:
        _check_number(name, 'conv_clamp', knobs['conv_clamp'], 0, exclusive=True)
    if knobs['g_architecture'] not in ('orig', 'skip', 'resnet'):
        raise ValueError(f"architecture {name!r}: g_architecture must be 'orig', 'skip' or 'resnet', "
                         f"got {knobs['g_architecture']!r}")
    if knobs['reduced_dtype'] not in ('auto', 'float16', 'bfloat16'):
        raise ValueError(f"architecture {name!r}: reduced_dtype must be 'auto', 'float16' or 'bfloat16', "
                         f"got {knobs['reduced_dtype']!r}")


def _build_stylegan2(resolution, img_channels, c_dim, d_architecture, mbstd_group, mbstd_channels, **knobs):
    _style_defaults('stylegan2', resolution, knobs)
    if d_architecture not in ('orig', 'skip', 'resnet'):
        raise ValueError(f"architecture 'stylegan2': d_architecture must be 'orig', 'skip' or 'resnet', "
                         f"got {d_architecture!r}")
    _check_number('stylegan2', 'mbstd_group', mbstd_group, 1, integer=True)
    _check_number('stylegan2', 'mbstd_channels', mbstd_channels, 0, integer=True)
    G = _style_generator(resolution, img_channels, c_dim, **knobs)
    D = dict(class_name='training.networks.Discriminator', c_dim=c_dim, img_resolution=resolution,
             img_channels=img_channels, architecture=d_architecture, channel_base=knobs['channel_base'],
             channel_max=knobs['channel_max'], num_fp16_res=knobs['num_fp16_res'], conv_clamp=knobs['conv_clamp'],
             reduced_dtype=knobs['reduced_dtype'],
             block_kwargs=dict(fp16_channels_last=knobs['fp16_channels_last']),
             epilogue_kwargs=dict(mbstd_group_size=mbstd_group, mbstd_num_channels=mbstd_channels))
    return G, D


def _build_style_linear(resolution, img_channels, c_dim, d_channel_base, d_channel_max, spectral_norm, **knobs):
    _style_defaults('style-linear', resolution, knobs)
    G = _style_generator(resolution, img_channels, c_dim, **knobs)
    D = _dcgan_d(resolution, img_channels, c_dim, d_channel_base, d_channel_max, spectral_norm, 'style-linear')
    return G, D


# ----------------------------------------------------------------------------
# DCGAN ("linear") and ResNet pieces.


def _dcgan_base(resolution, channel_base):
    # 32x32: SNGAN's standard CNN (G 512-256-128-64, D 64-128-256-512); 64x64: DCGAN's widths (1024 ... 64).
    return 64 * resolution if channel_base is None else channel_base


def _dcgan_d(resolution, img_channels, c_dim, channel_base, channel_max, spectral_norm, name):
    channel_base = _dcgan_base(resolution, channel_base)
    _check_number(name, 'channel_base', channel_base, 1, integer=True)
    _check_number(name, 'channel_max', channel_max, 1, integer=True)
    return dict(class_name='training.networks_paper.DCGANDiscriminator', c_dim=c_dim, img_resolution=resolution,
                img_channels=img_channels, channel_base=channel_base, channel_max=channel_max,
                spectral_norm=bool(spectral_norm))


def _build_dcgan(resolution, img_channels, c_dim, z_dim, channel_base, channel_max, spectral_norm):
    _check_number('dcgan', 'z_dim', z_dim, 1, integer=True)
    base = _dcgan_base(resolution, channel_base)
    _check_number('dcgan', 'channel_base', base, 1, integer=True)
    _check_number('dcgan', 'channel_max', channel_max, 1, integer=True)
    G = dict(class_name='training.networks_paper.DCGANGenerator', z_dim=z_dim, c_dim=c_dim, img_resolution=resolution,
             img_channels=img_channels, channel_base=base, channel_max=channel_max)
    D = _dcgan_d(resolution, img_channels, c_dim, base, channel_max, spectral_norm, 'dcgan')
    return G, D


def _resnet_pair(name, resolution, img_channels, c_dim, z_dim, channel_base, channel_max, spectral_norm,
                 d_architecture):
    _check_number(name, 'z_dim', z_dim, 1, integer=True)
    base = 128 * resolution if channel_base is None else channel_base
    _check_number(name, 'channel_base', base, 1, integer=True)
    _check_number(name, 'channel_max', channel_max, 1, integer=True)
    G = dict(class_name='training.networks_paper.ResNetGenerator', z_dim=z_dim, c_dim=c_dim, img_resolution=resolution,
             img_channels=img_channels, channel_base=base, channel_max=channel_max)
    D = dict(class_name='training.networks_paper.ResNetDiscriminator', c_dim=c_dim, img_resolution=resolution,
             img_channels=img_channels, architecture=d_architecture, channel_base=base, channel_max=channel_max,
             num_plain_blocks=2, spectral_norm=bool(spectral_norm))
    return G, D


def _build_resnet(resolution, img_channels, c_dim, z_dim, channel_base, channel_max, spectral_norm):
    return _resnet_pair('resnet', resolution, img_channels, c_dim, z_dim, channel_base, channel_max, spectral_norm,
                        'skip')


def _build_resnet_t3(resolution, img_channels, c_dim, spectral_norm):
    return _resnet_pair('resnet-t3', resolution, img_channels, c_dim, 128, 4096, 128, spectral_norm, 'resnet')


def _build_cnn(resolution, img_channels, c_dim, width, spectral_norm):
    _check_number('cnn', 'width', width, 1, integer=True)
    G = dict(class_name='training.networks_paper.CNNGenerator', z_dim=128, c_dim=c_dim, img_resolution=resolution,
             img_channels=img_channels, width=width)
    D = dict(class_name='training.networks_paper.CNNDiscriminator', c_dim=c_dim, img_resolution=resolution,
             img_channels=img_channels, width=width, spectral_norm=bool(spectral_norm))
    return G, D


# Widths of the stacked-MNIST setups (PacGAN's code): VEEGAN's DCGAN (TensorFlow DCGAN, gf = df = 64) and the
# Unrolled-GAN networks, whose D widths [8, 16, 32] are scaled by d_capacity (0.5 and 0.25 in PacGAN).
_STACKED_SETUPS = {
    'veegan': dict(z_dim=100, g_channels=[512, 256, 128, 64], kernel_size=5, final_conv=False,
                   d_channels=[64, 128, 256, 512], first_bn=False, lrelu_slope=0.2),
    'unrolled': dict(z_dim=100, g_channels=[64, 32, 16, 8], kernel_size=3, final_conv=True,
                     d_channels=[8, 16, 32], first_bn=True, lrelu_slope=0.3),
}


def _build_dcgan_stacked(resolution, img_channels, c_dim, setup, d_capacity, pack):
    if setup not in _STACKED_SETUPS:
        raise ValueError(f"architecture 'dcgan-stacked': setup must be one of {', '.join(_STACKED_SETUPS)}, "
                         f"got {setup!r}")
    _check_number('dcgan-stacked', 'd_capacity', d_capacity, 0, exclusive=True)
    _check_number('dcgan-stacked', 'pack', pack, 1, integer=True)
    if pack > 1 and c_dim > 0:
        raise ValueError(f"architecture 'dcgan-stacked': pack={pack} cannot be combined with conditioning")
    s = _STACKED_SETUPS[setup]
    d_channels = [max(1, round(ch * d_capacity)) for ch in s['d_channels']]
    G = dict(class_name='training.networks_paper.StackedMNISTGenerator', z_dim=s['z_dim'], c_dim=c_dim,
             img_resolution=resolution, img_channels=img_channels, channels=list(s['g_channels']),
             kernel_size=s['kernel_size'], final_conv=s['final_conv'])
    D = dict(class_name='training.networks_paper.StackedMNISTDiscriminator', c_dim=c_dim, img_resolution=resolution,
             img_channels=img_channels, channels=d_channels, kernel_size=s['kernel_size'], first_bn=s['first_bn'],
             lrelu_slope=s['lrelu_slope'], pack=pack)
    return G, D


def _mlp_pair(name, c_dim, data_dim, z_dim, d_activation, pack):
    for knob, value in (('data_dim', data_dim), ('z_dim', z_dim), ('pack', pack)):
        _check_number(name, knob, value, 1, integer=True)
    if pack > 1 and c_dim > 0:
        raise ValueError(f'architecture {name!r}: pack={pack} cannot be combined with conditioning')
    G = dict(class_name='training.networks_paper.MLPGenerator', z_dim=z_dim, c_dim=c_dim, data_dim=data_dim,
             hidden_features=400, num_layers=4, batchnorm=True)
    D = dict(class_name='training.networks_paper.MLPDiscriminator', c_dim=c_dim, data_dim=data_dim,
             hidden_features=200, num_layers=3, activation=d_activation, maxout_pieces=5, pack=pack)
    return G, D


def _build_mlp(resolution, img_channels, c_dim, data_dim, z_dim, pack):
    del resolution, img_channels
    return _mlp_pair('mlp', c_dim, data_dim, z_dim, 'relu', pack)


def _build_mlp_maxout(resolution, img_channels, c_dim, data_dim, z_dim, pack):
    del resolution, img_channels
    return _mlp_pair('mlp-maxout', c_dim, data_dim, z_dim, 'maxout', pack)


# ----------------------------------------------------------------------------
# Registrations.

_POW2_TEXT = 'a power of two from {} to 1024'


def _pow2_between(lo):
    return lambda r: _is_pow2(r) and lo <= r <= 1024


register_arch('stylegan2', _build_stylegan2, 'style G + StyleGAN2 D (stylegan2-ada networks; Table 5 at 256x256)',
              dict(_STYLE_KNOBS, d_architecture='resnet', mbstd_group=4, mbstd_channels=1),
              _image_check('stylegan2', _pow2_between(4), _POW2_TEXT.format(4)))
register_arch('style-linear', _build_style_linear, 'style G + linear DCGAN-style D (Fig. 10)',
              dict(_STYLE_KNOBS, d_channel_base=None, d_channel_max=512, spectral_norm=False),
              _image_check('style-linear', _pow2_between(8), _POW2_TEXT.format(8)))
register_arch('dcgan', _build_dcgan, 'linear G + linear D, SNGAN standard CNN (Fig. 10)',
              dict(z_dim=128, channel_base=None, channel_max=1024, spectral_norm=True),
              _image_check('dcgan', _pow2_between(8), _POW2_TEXT.format(8)))
register_arch('resnet', _build_resnet, 'ResNet G + skip D with residual blocks, SNGAN-style (Fig. 10)',
              dict(z_dim=128, channel_base=None, channel_max=128, spectral_norm=True),
              _image_check('resnet', _pow2_between(16), _POW2_TEXT.format(16)))
register_arch('cnn', _build_cnn, 'small CNN of Table 2 (32x32)', dict(width=128, spectral_norm=False),
              _image_check('cnn', lambda r: r == 32, '32 (Table 2 defines no other)'))
register_arch('resnet-t3', _build_resnet_t3, 'ResNet G and D of Table 3 (32x32)', dict(spectral_norm=False),
              _image_check('resnet-t3', lambda r: r == 32, '32 (Table 3 defines no other)'))
register_arch('dcgan-stacked', _build_dcgan_stacked, 'stacked-MNIST DCGAN (VEEGAN/PacGAN, Unrolled GAN D capacity)',
              dict(setup='veegan', d_capacity=1.0, pack=1),
              _image_check('dcgan-stacked', lambda r: r in (28, 32), '28 or 32 (stacked MNIST, optionally padded)'))
register_arch('mlp', _build_mlp, '2-D data: PacGAN G (4x400 ReLU+BN) + ReLU MLP D (3x200)',
              dict(data_dim=2, z_dim=2, pack=1), _points_check('mlp'))
register_arch('mlp-maxout', _build_mlp_maxout, '2-D data: PacGAN G + maxout D (3x200 units, 5 pieces)',
              dict(data_dim=2, z_dim=2, pack=1), _points_check('mlp-maxout'))

