"""The SoftGAN paper's other architecture families, with the StyleGAN2 networks' call interface.

Families (seed 000 Tables 2-3 and Fig. 10; BENCHMARKS.md):

* `DCGANGenerator` / `DCGANDiscriminator`: the "linear" G and D of Fig. 10, i.e. SNGAN's standard CNN
  (dense -> 4x4, 4x4 stride-2 transposed convolutions with BatchNorm + ReLU, 3x3 convolution, tanh;
  D: pairs of 3x3 and 4x4 stride-2 convolutions with leaky ReLU 0.1, a 3x3 convolution at 4x4, dense).
  Channels at resolution r are min(channel_base // r, channel_max) in both.
* `CNNGenerator` / `CNNDiscriminator`: the small CNN of Table 2 (WGAN-GP's DCGAN for CIFAR-10), 32x32 only.
* `ResNetGenerator` / `ResNetDiscriminator`: Table 3 (WGAN-GP / SNGAN ResNet for CIFAR-10) generalised to
  any power-of-two resolution >= 8. The discriminator is 'resnet' (Table 3) or 'skip' (Fig. 10e: the same
  residual blocks, with the image, average-pooled, added through a 1x1 convolution at every resolution).
* `MLPGenerator` / `MLPDiscriminator`: 2-D data (PacGAN: G 4 x 400 ReLU + BatchNorm; D 3 maxout layers of
  200 units with 5 pieces, or ReLU / leaky-ReLU hidden layers), with PacGAN packing.
* `StackedMNISTGenerator` / `StackedMNISTDiscriminator`: the TensorFlow DCGAN used for stacked MNIST by
  VEEGAN / PacGAN (5x5 kernels, gf = df = 64) and the small Unrolled-GAN networks of PacGAN's "D = 1/4 G"
  experiment; 28x28 or 32x32.

Interface shared with `training.networks`: every G has z_dim, c_dim, img_resolution, img_channels and
`G(z, c)`; image generators return NCHW float in [-1, 1] (tanh); the 2-D `MLPGenerator` returns [N, data_dim]
(unbounded) and has img_resolution = img_channels = None. Every D has c_dim and `D(x, c)` -> [N, 1] logits
([N / pack, 1] when packing). Generators accept the StyleGAN2 keyword arguments that callers pass to any G
(truncation_psi must stay 1 since there is no mapping network; noise_mode, update_emas and force_fp32 have no
effect) and discriminators accept update_emas / force_fp32, so every loss and script works with every family.

Conditioning (c_dim > 0; c is the one-hot or soft label vector [N, c_dim] of stylegan2-ada's data sets):
generators concatenate c to z (a learned embedding would be absorbed by the first linear layer anyway);
discriminators add a projection term <embed(c), h> on their last feature vector h (Miyato & Koyama 2018),
as SNGAN's conditional variant does. Packing (pack > 1) and conditioning cannot be combined.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from torch_utils import misc
from torch_utils import persistence

NOISE_MODES = ('random', 'const', 'none')


# ----------------------------------------------------------------------------
# Shared helpers.


def _check_pow2(cls_name: str, name: str, value, minimum: int) -> int:
    if not isinstance(value, int) or value < minimum or value & (value - 1):
        raise ValueError(f'{cls_name}: {name} must be a power of two >= {minimum}, got {value!r}')
    return int(math.log2(value))


def _channel_table(cls_name: str, channel_base: int, channel_max: int, img_resolution: int,
                   lowest: int) -> dict[int, int]:
    """{r: min(channel_base // r, channel_max)} for r = 2^lowest .. img_resolution; every entry must be >= 1."""
    log2 = int(math.log2(img_resolution))
    ch = {2 ** i: min(channel_base // 2 ** i, channel_max) for i in range(lowest, log2 + 1)}
    if min(ch.values()) < 1:
        raise ValueError(f'{cls_name}: channel_base={channel_base} gives no channels at {img_resolution}x{img_resolution}')
    return ch


def _check_positive_int(cls_name: str, name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f'{cls_name}: {name} must be a positive integer, got {value!r}')


def _check_c_dim(cls_name: str, c_dim) -> None:
    if not isinstance(c_dim, int) or isinstance(c_dim, bool) or c_dim < 0:
        raise ValueError(f'{cls_name}: c_dim must be an integer >= 0, got {c_dim!r}')


def _sn(module: torch.nn.Module, enabled: bool) -> torch.nn.Module:
    """Spectral normalisation (one power iteration per training forward pass), as SNGAN."""
    return torch.nn.utils.parametrizations.spectral_norm(module) if enabled else module


def _init_dcgan(module: torch.nn.Module) -> None:
    """DCGAN's initialisation: weights N(0, 0.02), biases 0, BatchNorm scale 1."""
    for m in module.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
            torch.nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                torch.nn.init.zeros_(m.bias)
        elif isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            torch.nn.init.ones_(m.weight)
            torch.nn.init.zeros_(m.bias)


def _init_xavier(module: torch.nn.Module) -> None:
    """Glorot-uniform weights and zero biases, as the SNGAN / WGAN-GP ResNets."""
    for m in module.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            torch.nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                torch.nn.init.zeros_(m.bias)


class _GeneratorInterface(torch.nn.Module):
    """Input checks and the keyword arguments every generator accepts."""

    z_dim: int
    c_dim: int

    def _latent(self, z, c, truncation_psi=1, truncation_cutoff=None, noise_mode='random', update_emas=False,
                force_fp32=False):
        del truncation_cutoff, update_emas, force_fp32  # meaningful for StyleGAN2 only; nothing to do here
        if truncation_psi != 1:
            raise ValueError(f'{type(self).__name__} has no mapping network: truncation_psi must be 1, '
                             f'got {truncation_psi}')
        if noise_mode not in NOISE_MODES:
            raise ValueError(f'noise_mode must be one of {", ".join(NOISE_MODES)}, got {noise_mode!r}')
        misc.assert_shape(z, [None, self.z_dim], 'z')
        x = z.to(torch.float32)
        if self.c_dim > 0:
            misc.assert_shape(c, [z.shape[0], self.c_dim], 'c')
            x = torch.cat([x, c.to(torch.float32)], dim=1)
        return x


class _DiscriminatorInterface(torch.nn.Module):
    """Conditioning by projection, packing and the keyword arguments every discriminator accepts."""

    c_dim: int
    pack: int = 1

    def _setup_projection(self, features: int, spectral_norm: bool) -> None:
        if self.c_dim > 0:
            self.proj = _sn(torch.nn.Linear(self.c_dim, features, bias=False), spectral_norm)

    def _pack(self, x, c):
        if self.c_dim > 0:
            misc.assert_shape(c, [x.shape[0], self.c_dim], 'c')
        if self.pack == 1:
            return x
        if x.shape[0] % self.pack != 0:
            raise ValueError(f'{type(self).__name__}: batch size {x.shape[0]} is not divisible by pack={self.pack}')
        # PacGAN: consecutive samples are concatenated along the feature / channel axis.
        return x.reshape(x.shape[0] // self.pack, self.pack * x.shape[1], *x.shape[2:])

    def _output(self, h, logits, c):
        if self.c_dim > 0:
            logits = logits + (self.proj(c.to(h.dtype)) * h).sum(dim=1, keepdim=True)
        return logits


def _check_pack_and_conditioning(cls_name: str, pack, c_dim: int) -> None:
    _check_positive_int(cls_name, 'pack', pack)
    if pack > 1 and c_dim > 0:
        raise ValueError(f'{cls_name}: packing (pack={pack}) cannot be combined with conditioning (c_dim={c_dim})')


# ----------------------------------------------------------------------------
# DCGAN-style "linear" networks (SNGAN's standard CNN).


@persistence.persistent_class
class DCGANGenerator(_GeneratorInterface):
    """Dense -> 4x4 -> (4x4 stride-2 transposed conv, BN, ReLU) per doubling -> 3x3 conv -> tanh."""

    def __init__(self,
        z_dim           = 128,      # Input latent (Z) dimensionality.
        c_dim           = 0,        # Conditioning label (C) dimensionality, 0 = unconditional.
        img_resolution  = 32,       # Output resolution, a power of two >= 8.
        img_channels    = 3,        # Number of output color channels.
        channel_base    = 2048,     # Channels at resolution r are min(channel_base // r, channel_max).
        channel_max     = 512,      # Maximum number of channels in any layer.
    ):
        super().__init__()
        name = type(self).__name__
        _check_positive_int(name, 'z_dim', z_dim)
        _check_c_dim(name, c_dim)
        log2 = _check_pow2(name, 'img_resolution', img_resolution, 8)
        self.z_dim, self.c_dim = z_dim, c_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        ch = _channel_table(name, channel_base, channel_max, img_resolution, lowest=2)
        self.channels = ch
        self.fc = torch.nn.Linear(z_dim + c_dim, 16 * ch[4])
        self.fc_norm = torch.nn.BatchNorm1d(16 * ch[4])
        self.block_resolutions = [2 ** i for i in range(3, log2 + 1)]
        for res in self.block_resolutions:
            block = torch.nn.Module()
            block.conv = torch.nn.ConvTranspose2d(ch[res // 2], ch[res], kernel_size=4, stride=2, padding=1)
            block.norm = torch.nn.BatchNorm2d(ch[res])
            setattr(self, f'b{res}', block)
        self.torgb = torch.nn.Conv2d(ch[img_resolution], img_channels, kernel_size=3, padding=1)
        _init_dcgan(self)

    def forward(self, z, c, **kwargs):
        x = self._latent(z, c, **kwargs)
        x = F.relu(self.fc_norm(self.fc(x))).reshape(-1, self.channels[4], 4, 4)
        for res in self.block_resolutions:
            block = getattr(self, f'b{res}')
            x = F.relu(block.norm(block.conv(x)))
        return torch.tanh(self.torgb(x))


@persistence.persistent_class
class DCGANDiscriminator(_DiscriminatorInterface):
    """Per resolution r > 4: 3x3 conv to ch(r), 4x4 stride-2 conv; then 3x3 conv to ch(4), dense -> 1."""

    def __init__(self,
        c_dim           = 0,        # Conditioning label (C) dimensionality, 0 = unconditional.
        img_resolution  = 32,       # Input resolution, a power of two >= 8.
        img_channels    = 3,        # Number of input color channels.
        channel_base    = 2048,     # Channels at resolution r are min(channel_base // r, channel_max).
        channel_max     = 512,      # Maximum number of channels in any layer.
        spectral_norm   = False,    # Spectrally normalise every layer (SNGAN)?
        lrelu_slope     = 0.1,      # Negative slope of the leaky ReLUs (SNGAN: 0.1).
        pack            = 1,        # PacGAN packing degree: D judges `pack` samples jointly.
    ):
        super().__init__()
        name = type(self).__name__
        _check_c_dim(name, c_dim)
        _check_pack_and_conditioning(name, pack, c_dim)
        log2 = _check_pow2(name, 'img_resolution', img_resolution, 8)
        self.c_dim, self.img_resolution, self.img_channels, self.pack = c_dim, img_resolution, img_channels, pack
        self.lrelu_slope = lrelu_slope
        ch = _channel_table(name, channel_base, channel_max, img_resolution, lowest=2)
        self.block_resolutions = [2 ** i for i in range(log2, 2, -1)]
        in_ch = img_channels * pack
        for res in self.block_resolutions:
            block = torch.nn.Module()
            block.conv0 = _sn(torch.nn.Conv2d(in_ch, ch[res], kernel_size=3, padding=1), spectral_norm)
            block.conv1 = _sn(torch.nn.Conv2d(ch[res], ch[res], kernel_size=4, stride=2, padding=1), spectral_norm)
            setattr(self, f'b{res}', block)
            in_ch = ch[res]
        self.conv = _sn(torch.nn.Conv2d(in_ch, ch[4], kernel_size=3, padding=1), spectral_norm)
        self.fc = _sn(torch.nn.Linear(16 * ch[4], 1), spectral_norm)
        self._setup_projection(16 * ch[4], spectral_norm)
        _init_dcgan(self)

    def forward(self, img, c, update_emas=False, force_fp32=False):
        del update_emas, force_fp32
        misc.assert_shape(img, [None, self.img_channels, self.img_resolution, self.img_resolution], 'img')
        x = self._pack(img.to(torch.float32), c)
        for res in self.block_resolutions:
            block = getattr(self, f'b{res}')
            x = F.leaky_relu(block.conv0(x), self.lrelu_slope)
            x = F.leaky_relu(block.conv1(x), self.lrelu_slope)
        h = F.leaky_relu(self.conv(x), self.lrelu_slope).flatten(1)
        return self._output(h, self.fc(h), c)


# ----------------------------------------------------------------------------
# The small CNN of Table 2 (32x32).


@persistence.persistent_class
class CNNGenerator(_GeneratorInterface):
    """Table 2: dense -> ReLU -> BN -> 4x4x(4w); two 5x5 stride-2 transposed convs -> ReLU -> BN; 5x5
    stride-2 transposed conv to the image; tanh."""

    def __init__(self,
        z_dim           = 128,      # Input latent (Z) dimensionality (Table 2: 128).
        c_dim           = 0,        # Conditioning label (C) dimensionality, 0 = unconditional.
        img_resolution  = 32,       # Output resolution; Table 2 defines 32 only.
        img_channels    = 3,        # Number of output color channels.
        width           = 128,      # Base width w: the layers have 4w, 2w, w channels (Table 2: 128).
    ):
        super().__init__()
        name = type(self).__name__
        _check_positive_int(name, 'z_dim', z_dim)
        _check_c_dim(name, c_dim)
        _check_positive_int(name, 'width', width)
        if img_resolution != 32:
            raise ValueError(f'{name}: the small CNN of Table 2 is defined for 32x32 images only, got {img_resolution}')
        self.z_dim, self.c_dim = z_dim, c_dim
        self.img_resolution, self.img_channels, self.width = img_resolution, img_channels, width
        self.fc = torch.nn.Linear(z_dim + c_dim, 16 * 4 * width)
        self.fc_norm = torch.nn.BatchNorm1d(16 * 4 * width)
        self.conv0 = torch.nn.ConvTranspose2d(4 * width, 2 * width, 5, stride=2, padding=2, output_padding=1)
        self.norm0 = torch.nn.BatchNorm2d(2 * width)
        self.conv1 = torch.nn.ConvTranspose2d(2 * width, width, 5, stride=2, padding=2, output_padding=1)
        self.norm1 = torch.nn.BatchNorm2d(width)
        self.torgb = torch.nn.ConvTranspose2d(width, img_channels, 5, stride=2, padding=2, output_padding=1)
        _init_dcgan(self)

    def forward(self, z, c, **kwargs):
        x = self._latent(z, c, **kwargs)
        x = self.fc_norm(F.relu(self.fc(x))).reshape(-1, 4 * self.width, 4, 4)
        x = self.norm0(F.relu(self.conv0(x)))
        x = self.norm1(F.relu(self.conv1(x)))
        return torch.tanh(self.torgb(x))


@persistence.persistent_class
class CNNDiscriminator(_DiscriminatorInterface):
    """Table 2: three 5x5 stride-2 convs (w, 2w, 4w channels) with leaky ReLU, dense -> 1."""

    def __init__(self,
        c_dim           = 0,        # Conditioning label (C) dimensionality, 0 = unconditional.
        img_resolution  = 32,       # Input resolution; Table 2 defines 32 only.
        img_channels    = 3,        # Number of input color channels.
        width           = 128,      # Base width w (Table 2: 128).
        spectral_norm   = False,    # Spectrally normalise every layer?
        lrelu_slope     = 0.2,      # Negative slope of the leaky ReLUs (WGAN-GP's DCGAN: 0.2).
        pack            = 1,        # PacGAN packing degree.
    ):
        super().__init__()
        name = type(self).__name__
        _check_c_dim(name, c_dim)
        _check_positive_int(name, 'width', width)
        _check_pack_and_conditioning(name, pack, c_dim)
        if img_resolution != 32:
            raise ValueError(f'{name}: the small CNN of Table 2 is defined for 32x32 images only, got {img_resolution}')
        self.c_dim, self.img_resolution, self.img_channels, self.pack = c_dim, img_resolution, img_channels, pack
        self.lrelu_slope = lrelu_slope
        self.conv0 = _sn(torch.nn.Conv2d(img_channels * pack, width, 5, stride=2, padding=2), spectral_norm)
        self.conv1 = _sn(torch.nn.Conv2d(width, 2 * width, 5, stride=2, padding=2), spectral_norm)
        self.conv2 = _sn(torch.nn.Conv2d(2 * width, 4 * width, 5, stride=2, padding=2), spectral_norm)
        self.fc = _sn(torch.nn.Linear(16 * 4 * width, 1), spectral_norm)
        self._setup_projection(16 * 4 * width, spectral_norm)
        _init_dcgan(self)

    def forward(self, img, c, update_emas=False, force_fp32=False):
        del update_emas, force_fp32
        misc.assert_shape(img, [None, self.img_channels, 32, 32], 'img')
        x = self._pack(img.to(torch.float32), c)
        x = F.leaky_relu(self.conv0(x), self.lrelu_slope)
        x = F.leaky_relu(self.conv1(x), self.lrelu_slope)
        h = F.leaky_relu(self.conv2(x), self.lrelu_slope).flatten(1)
        return self._output(h, self.fc(h), c)


# ----------------------------------------------------------------------------
# ResNet networks (Table 3, generalised).


class _GenResBlock(torch.nn.Module):
    """BN -> ReLU -> 2x nearest upsampling -> 3x3 conv -> BN -> ReLU -> 3x3 conv, plus upsampled 1x1 shortcut."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.norm0 = torch.nn.BatchNorm2d(in_channels)
        self.conv0 = torch.nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm1 = torch.nn.BatchNorm2d(out_channels)
        self.conv1 = torch.nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = torch.nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x):
        y = self.skip(F.interpolate(x, scale_factor=2, mode='nearest'))
        x = F.interpolate(F.relu(self.norm0(x)), scale_factor=2, mode='nearest')
        x = self.conv1(F.relu(self.norm1(self.conv0(x))))
        return x + y


class _DiscResBlock(torch.nn.Module):
    """Pre-activation residual block, optionally 2x average-pool downsampling; `first` is SNGAN's
    "optimized" input block (no activation before the first conv, shortcut pooled before its 1x1 conv)."""

    def __init__(self, in_channels: int, out_channels: int, down: bool, first: bool, spectral_norm: bool):
        super().__init__()
        self.down = down
        self.first = first
        self.conv0 = _sn(torch.nn.Conv2d(in_channels, out_channels, 3, padding=1), spectral_norm)
        self.conv1 = _sn(torch.nn.Conv2d(out_channels, out_channels, 3, padding=1), spectral_norm)
        self.learned_skip = down or in_channels != out_channels
        if self.learned_skip:
            self.skip = _sn(torch.nn.Conv2d(in_channels, out_channels, 1), spectral_norm)

    def forward(self, x):
        if self.first:
            y = self.skip(F.avg_pool2d(x, 2))
            h = self.conv0(x)
        else:
            y = x
            if self.learned_skip:
                y = self.skip(y)
                if self.down:
                    y = F.avg_pool2d(y, 2)
            h = self.conv0(F.relu(x))
        h = self.conv1(F.relu(h))
        if self.down:
            h = F.avg_pool2d(h, 2)
        return h + y


@persistence.persistent_class
class ResNetGenerator(_GeneratorInterface):
    """Table 3: dense -> ReLU -> 4x4; one upsampling residual block per doubling; BN -> ReLU -> 3x3 conv -> tanh."""

    def __init__(self,
        z_dim           = 128,      # Input latent (Z) dimensionality (Table 3: 128).
        c_dim           = 0,        # Conditioning label (C) dimensionality, 0 = unconditional.
        img_resolution  = 32,       # Output resolution, a power of two >= 8.
        img_channels    = 3,        # Number of output color channels.
        channel_base    = 4096,     # Channels at resolution r are min(channel_base // r, channel_max).
        channel_max     = 128,      # Maximum number of channels (Table 3: 128 everywhere).
    ):
        super().__init__()
        name = type(self).__name__
        _check_positive_int(name, 'z_dim', z_dim)
        _check_c_dim(name, c_dim)
        log2 = _check_pow2(name, 'img_resolution', img_resolution, 8)
        self.z_dim, self.c_dim = z_dim, c_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        ch = _channel_table(name, channel_base, channel_max, img_resolution, lowest=2)
        self.channels = ch
        self.fc = torch.nn.Linear(z_dim + c_dim, 16 * ch[4])
        self.block_resolutions = [2 ** i for i in range(3, log2 + 1)]
        for res in self.block_resolutions:
            setattr(self, f'b{res}', _GenResBlock(ch[res // 2], ch[res]))
        self.norm = torch.nn.BatchNorm2d(ch[img_resolution])
        self.torgb = torch.nn.Conv2d(ch[img_resolution], img_channels, 3, padding=1)
        _init_xavier(self)

    def forward(self, z, c, **kwargs):
        x = self._latent(z, c, **kwargs)
        x = F.relu(self.fc(x)).reshape(-1, self.channels[4], 4, 4)
        for res in self.block_resolutions:
            x = getattr(self, f'b{res}')(x)
        return torch.tanh(self.torgb(F.relu(self.norm(x))))


@persistence.persistent_class
class ResNetDiscriminator(_DiscriminatorInterface):
    """Table 3: downsampling residual blocks to 8x8 (input >= 16x16), `num_plain_blocks` more at 8x8, ReLU,
    global mean pooling, dense -> 1. 'skip' also adds the average-pooled image through a 1x1 conv at each resolution."""

    def __init__(self,
        c_dim               = 0,        # Conditioning label (C) dimensionality, 0 = unconditional.
        img_resolution      = 32,       # Input resolution, a power of two >= 8.
        img_channels        = 3,        # Number of input color channels.
        architecture        = 'resnet', # 'resnet' (Table 3) or 'skip' (image injected at every resolution).
        channel_base        = 4096,     # Channels at resolution r are min(channel_base // r, channel_max).
        channel_max         = 128,      # Maximum number of channels (Table 3: 128 everywhere).
        num_plain_blocks    = 2,        # Residual blocks without downsampling at 8x8 (Table 3: 2).
        spectral_norm       = False,    # Spectrally normalise every layer (SNGAN)?
        pack                = 1,        # PacGAN packing degree.
    ):
        super().__init__()
        name = type(self).__name__
        _check_c_dim(name, c_dim)
        _check_pack_and_conditioning(name, pack, c_dim)
        if architecture not in ('resnet', 'skip'):
            raise ValueError(f"{name}: architecture must be 'resnet' or 'skip', got {architecture!r}")
        if not isinstance(num_plain_blocks, int) or num_plain_blocks < 0:
            raise ValueError(f'{name}: num_plain_blocks must be an integer >= 0, got {num_plain_blocks!r}')
        # The first block must downsample: it is the only one that reads the raw image without a ReLU first.
        log2 = _check_pow2(name, 'img_resolution', img_resolution, 16)
        self.c_dim, self.img_resolution, self.img_channels, self.pack = c_dim, img_resolution, img_channels, pack
        self.architecture = architecture
        ch = _channel_table(name, channel_base, channel_max, img_resolution, lowest=3)
        in_img = img_channels * pack
        # Block b{r} reads resolution r and writes r/2 with ch[r/2] channels.
        self.block_resolutions = [2 ** i for i in range(log2, 3, -1)]
        in_ch = in_img
        for idx, res in enumerate(self.block_resolutions):
            setattr(self, f'b{res}', _DiscResBlock(in_ch, ch[res // 2], down=True, first=(idx == 0),
                                                    spectral_norm=spectral_norm))
            in_ch = ch[res // 2]
        self.plain_names = [f'p{idx}' for idx in range(num_plain_blocks)]
        for pname in self.plain_names:
            setattr(self, pname, _DiscResBlock(in_ch, ch[8], down=False, first=False, spectral_norm=spectral_norm))
            in_ch = ch[8]
        if architecture == 'skip':
            # fromrgb{r}: the image at resolution r, added to the features entering resolution r.
            for res in self.block_resolutions[1:] + [8]:
                setattr(self, f'fromrgb{res}', _sn(torch.nn.Conv2d(in_img, ch[res], 1), spectral_norm))
        self.fc = _sn(torch.nn.Linear(in_ch, 1), spectral_norm)
        self._setup_projection(in_ch, spectral_norm)
        _init_xavier(self)

    def forward(self, img, c, update_emas=False, force_fp32=False):
        del update_emas, force_fp32
        misc.assert_shape(img, [None, self.img_channels, self.img_resolution, self.img_resolution], 'img')
        img = self._pack(img.to(torch.float32), c)
        x = img
        for idx, res in enumerate(self.block_resolutions):
            if self.architecture == 'skip' and idx > 0:
                x = x + getattr(self, f'fromrgb{res}')(img)
            x = getattr(self, f'b{res}')(x)
            if self.architecture == 'skip':
                img = F.avg_pool2d(img, 2)
        if self.architecture == 'skip':
            x = x + self.fromrgb8(img)
        for pname in self.plain_names:
            x = getattr(self, pname)(x)
        h = F.relu(x).mean(dim=[2, 3])
        return self._output(h, self.fc(h), c)


# ----------------------------------------------------------------------------
# MLPs for 2-D data.


@persistence.persistent_class
class MLPGenerator(_GeneratorInterface):
    """(Linear -> BatchNorm -> ReLU) x num_layers -> Linear; returns points [N, data_dim] (no squashing)."""

    def __init__(self,
        z_dim           = 2,        # Input latent (Z) dimensionality (PacGAN: 2).
        c_dim           = 0,        # Conditioning label (C) dimensionality, 0 = unconditional.
        data_dim        = 2,        # Dimensionality of the generated points.
        hidden_features = 400,      # Units per hidden layer (PacGAN: 400).
        num_layers      = 4,        # Number of hidden layers (PacGAN: 4).
        batchnorm       = True,     # BatchNorm after every hidden linear layer (PacGAN: yes)?
    ):
        super().__init__()
        name = type(self).__name__
        for arg, value in (('z_dim', z_dim), ('data_dim', data_dim), ('hidden_features', hidden_features),
                           ('num_layers', num_layers)):
            _check_positive_int(name, arg, value)
        _check_c_dim(name, c_dim)
        self.z_dim, self.c_dim, self.data_dim = z_dim, c_dim, data_dim
        self.img_resolution = None
        self.img_channels = None
        self.num_layers = num_layers
        in_features = z_dim + c_dim
        for idx in range(num_layers):
            setattr(self, f'fc{idx}', torch.nn.Linear(in_features, hidden_features))
            if batchnorm:
                setattr(self, f'norm{idx}', torch.nn.BatchNorm1d(hidden_features))
            in_features = hidden_features
        self.batchnorm = batchnorm
        self.out = torch.nn.Linear(in_features, data_dim)

    def forward(self, z, c, **kwargs):
        x = self._latent(z, c, **kwargs)
        for idx in range(self.num_layers):
            x = getattr(self, f'fc{idx}')(x)
            if self.batchnorm:
                x = getattr(self, f'norm{idx}')(x)
            x = F.relu(x)
        return self.out(x)


@persistence.persistent_class
class MLPDiscriminator(_DiscriminatorInterface):
    """Hidden layers of ReLU, leaky ReLU or maxout units, then Linear -> 1."""

    def __init__(self,
        c_dim           = 0,        # Conditioning label (C) dimensionality, 0 = unconditional.
        data_dim        = 2,        # Dimensionality of the input points.
        hidden_features = 200,      # Units per hidden layer (PacGAN: 200).
        num_layers      = 3,        # Number of hidden layers (PacGAN: 3).
        activation      = 'maxout', # 'maxout' (PacGAN), 'relu' or 'lrelu' (slope 0.2).
        maxout_pieces   = 5,        # Linear pieces per maxout unit (PacGAN: 5).
        spectral_norm   = False,    # Spectrally normalise every layer?
        pack            = 1,        # PacGAN packing degree: D judges `pack` points jointly.
    ):
        super().__init__()
        name = type(self).__name__
        for arg, value in (('data_dim', data_dim), ('hidden_features', hidden_features), ('num_layers', num_layers),
                           ('maxout_pieces', maxout_pieces)):
            _check_positive_int(name, arg, value)
        _check_c_dim(name, c_dim)
        _check_pack_and_conditioning(name, pack, c_dim)
        if activation not in ('maxout', 'relu', 'lrelu'):
            raise ValueError(f"{name}: activation must be 'maxout', 'relu' or 'lrelu', got {activation!r}")
        self.c_dim, self.data_dim, self.pack = c_dim, data_dim, pack
        self.img_resolution = None
        self.img_channels = None
        self.num_layers = num_layers
        self.activation = activation
        self.pieces = maxout_pieces if activation == 'maxout' else 1
        in_features = data_dim * pack
        for idx in range(num_layers):
            setattr(self, f'fc{idx}', _sn(torch.nn.Linear(in_features, hidden_features * self.pieces), spectral_norm))
            in_features = hidden_features
        self.out = _sn(torch.nn.Linear(in_features, 1), spectral_norm)
        self._setup_projection(in_features, spectral_norm)

    def forward(self, x, c, update_emas=False, force_fp32=False):
        del update_emas, force_fp32
        misc.assert_shape(x, [None, self.data_dim], 'x')
        x = self._pack(x.to(torch.float32), c)
        for idx in range(self.num_layers):
            x = getattr(self, f'fc{idx}')(x)
            if self.activation == 'maxout':
                x = x.reshape(x.shape[0], -1, self.pieces).amax(dim=2)
            elif self.activation == 'relu':
                x = F.relu(x)
            else:
                x = F.leaky_relu(x, 0.2)
        return self._output(x, self.out(x), c)


# ----------------------------------------------------------------------------
# Stacked-MNIST DCGANs (VEEGAN / PacGAN / Unrolled GAN setups).


def _halvings(size: int, count: int) -> list[int]:
    """[size, ceil(size/2), ceil(size/4), ...] with count + 1 entries (TensorFlow 'SAME' stride-2 sizes)."""
    sizes = [size]
    for _ in range(count):
        sizes.append((sizes[-1] + 1) // 2)
    return sizes


@persistence.persistent_class
class StackedMNISTGenerator(_GeneratorInterface):
    """Dense -> smallest size -> stride-2 transposed convs with BN + ReLU -> image (tanh).

    With final_conv=False (VEEGAN / PacGAN DCGAN: channels [512, 256, 128, 64], 5x5) the last transposed
    conv writes the image; with final_conv=True (Unrolled GAN: [64, 32, 16, 8], 3x3) a stride-1 conv does.
    """

    def __init__(self,
        z_dim           = 100,                  # Input latent (Z) dimensionality.
        c_dim           = 0,                    # Conditioning label (C) dimensionality, 0 = unconditional.
        img_resolution  = 28,                   # Output resolution: 28 (MNIST) or 32 (padded).
        img_channels    = 3,                    # Number of output channels (3 stacked digits).
        channels        = [512, 256, 128, 64],  # Widths from the smallest resolution up.
        kernel_size     = 5,                    # Kernel size of every (transposed) convolution.
        final_conv      = False,                # Finish with a stride-1 conv instead of a transposed conv?
    ):
        super().__init__()
        name = type(self).__name__
        _check_positive_int(name, 'z_dim', z_dim)
        _check_c_dim(name, c_dim)
        if img_resolution not in (28, 32):
            raise ValueError(f'{name}: img_resolution must be 28 or 32, got {img_resolution!r}')
        if not channels or not all(isinstance(ch, int) and ch > 0 for ch in channels):
            raise ValueError(f'{name}: channels must be a non-empty list of positive integers, got {channels!r}')
        if kernel_size not in (3, 5):
            raise ValueError(f'{name}: kernel_size must be 3 or 5, got {kernel_size!r}')
        self.z_dim, self.c_dim = z_dim, c_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.final_conv = final_conv
        num_up = len(channels) - 1 + (0 if final_conv else 1)
        sizes = _halvings(img_resolution, num_up)[::-1]  # smallest first
        self.sizes = sizes
        self.channels = list(channels)
        self.fc = torch.nn.Linear(z_dim + c_dim, channels[0] * sizes[0] ** 2)
        self.fc_norm = torch.nn.BatchNorm2d(channels[0])
        widths = list(channels) + ([] if final_conv else [img_channels])
        pad = kernel_size // 2
        self.num_up = num_up
        for idx in range(num_up):
            # Transposed conv output is 2 * in - 1 + output_padding: pick the padding that hits the target size.
            out_pad = sizes[idx + 1] - (2 * sizes[idx] - 1)
            assert out_pad in (0, 1)
            setattr(self, f'up{idx}', torch.nn.ConvTranspose2d(widths[idx], widths[idx + 1], kernel_size, stride=2,
                                                               padding=pad, output_padding=out_pad))
            if idx < len(channels) - 1:
                setattr(self, f'norm{idx}', torch.nn.BatchNorm2d(widths[idx + 1]))
        if final_conv:
            self.torgb = torch.nn.Conv2d(channels[-1], img_channels, kernel_size, padding=pad)
        _init_dcgan(self)

    def forward(self, z, c, **kwargs):
        x = self._latent(z, c, **kwargs)
        x = self.fc(x).reshape(-1, self.channels[0], self.sizes[0], self.sizes[0])
        x = F.relu(self.fc_norm(x))
        for idx in range(self.num_up):
            x = getattr(self, f'up{idx}')(x)
            if idx < len(self.channels) - 1:
                x = F.relu(getattr(self, f'norm{idx}')(x))
        if self.final_conv:
            x = self.torgb(x)
        return torch.tanh(x)


@persistence.persistent_class
class StackedMNISTDiscriminator(_DiscriminatorInterface):
    """Stride-2 convs with BatchNorm (optionally not on the first) and leaky ReLU, dense -> 1."""

    def __init__(self,
        c_dim           = 0,                    # Conditioning label (C) dimensionality, 0 = unconditional.
        img_resolution  = 28,                   # Input resolution: 28 or 32.
        img_channels    = 3,                    # Number of input channels.
        channels        = [64, 128, 256, 512],  # Width of each stride-2 convolution.
        kernel_size     = 5,                    # Kernel size of every convolution.
        first_bn        = False,                # BatchNorm after the first convolution too (Unrolled GAN)?
        lrelu_slope     = 0.2,                  # Negative slope of the leaky ReLUs (DCGAN 0.2, Unrolled GAN 0.3).
        spectral_norm   = False,                # Spectrally normalise the convolutions and the dense layer?
        pack            = 1,                    # PacGAN packing degree (images concatenated along channels).
    ):
        super().__init__()
        name = type(self).__name__
        _check_c_dim(name, c_dim)
        _check_pack_and_conditioning(name, pack, c_dim)
        if img_resolution not in (28, 32):
            raise ValueError(f'{name}: img_resolution must be 28 or 32, got {img_resolution!r}')
        if not channels or not all(isinstance(ch, int) and ch > 0 for ch in channels):
            raise ValueError(f'{name}: channels must be a non-empty list of positive integers, got {channels!r}')
        if kernel_size not in (3, 5):
            raise ValueError(f'{name}: kernel_size must be 3 or 5, got {kernel_size!r}')
        self.c_dim, self.img_resolution, self.img_channels, self.pack = c_dim, img_resolution, img_channels, pack
        self.lrelu_slope = lrelu_slope
        self.num_convs = len(channels)
        self.first_bn = first_bn
        in_ch = img_channels * pack
        for idx, ch in enumerate(channels):
            setattr(self, f'conv{idx}', _sn(torch.nn.Conv2d(in_ch, ch, kernel_size, stride=2, padding=kernel_size // 2),
                                            spectral_norm))
            if idx > 0 or first_bn:
                setattr(self, f'norm{idx}', torch.nn.BatchNorm2d(ch))
            in_ch = ch
        final_size = _halvings(img_resolution, len(channels))[-1]
        features = in_ch * final_size ** 2
        self.fc = _sn(torch.nn.Linear(features, 1), spectral_norm)
        self._setup_projection(features, spectral_norm)
        _init_dcgan(self)

    def forward(self, img, c, update_emas=False, force_fp32=False):
        del update_emas, force_fp32
        misc.assert_shape(img, [None, self.img_channels, self.img_resolution, self.img_resolution], 'img')
        x = self._pack(img.to(torch.float32), c)
        for idx in range(self.num_convs):
            x = getattr(self, f'conv{idx}')(x)
            if idx > 0 or self.first_bn:
                x = getattr(self, f'norm{idx}')(x)
            x = F.leaky_relu(x, self.lrelu_slope)
        h = x.flatten(1)
        return self._output(h, self.fc(h), c)
