"""StyleGAN2 generator and discriminator.

Constructor arguments, module hierarchy and parameter / buffer names follow NVIDIA's
stylegan2-ada-pytorch (`training/networks.py`) so that its configurations build the same networks and
its state dicts load into ours by name (`Generator.mapping.fc0.weight`, `synthesis.b64.conv0.affine.bias`,
`b256.skip.weight`, `b4.out.bias`, the buffers `w_avg`, `noise_const`, `resample_filter`, ...). The code
is our own; where it deliberately differs from the original, the comment says why:

* Reduced precision. Blocks of the `num_fp16_res` highest resolutions run in a reduced dtype chosen by
  `reduced_dtype`: 'auto' (float16 on CUDA, float32 elsewhere, so a CPU never meets an unsupported
  half-precision kernel), 'float16' or 'bfloat16' (on every device; bfloat16 is the CPU's fast path).
* Demodulation coefficients are computed with one matrix product from the squared weight norms instead
  of materialising the [N, O, I, k, k] modulated weight (the non-fused path never needs it).
* On a CPU the non-fused modulated convolution is the default also at inference (a batched
  convolution is faster there than a grouped one); on CUDA the default is the original's.
* `Generator.mapping(..., update_emas=False)`: w_avg moves only when the caller asks (StyleGAN3's
  convention), so evaluation passes never disturb it.

Every network has `forward(z, c, ...)` -> NCHW images (G) or `forward(img, c, ...)` -> [N, 1] logits (D).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from torch_utils import misc
from torch_utils import persistence
from torch_utils.ops import bias_act
from torch_utils.ops import conv2d_resample
from torch_utils.ops import fma
from torch_utils.ops import upfirdn2d

REDUCED_DTYPES = ('auto', 'float16', 'bfloat16')
NOISE_MODES = ('random', 'const', 'none')
ARCHITECTURES = ('orig', 'skip', 'resnet')

# Gains that keep the activations' second moment unchanged (He et al.), as stylegan2-ada uses them.
_DEF_GAIN = {'linear': 1.0, 'relu': math.sqrt(2), 'lrelu': math.sqrt(2), 'tanh': 1.0, 'sigmoid': 1.0,
             'elu': 1.0, 'selu': 1.0, 'softplus': 1.0, 'swish': math.sqrt(2)}


# Positively homogeneous activations: act(g * x) = g * act(x) for g > 0.
_HOMOGENEOUS = ('linear', 'relu', 'lrelu')


def _act_gain(activation: str) -> float:
    if activation not in _DEF_GAIN:
        raise ValueError(f'activation must be one of {", ".join(_DEF_GAIN)}, got {activation!r}')
    return _DEF_GAIN[activation]


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f'{name} must be one of {", ".join(map(repr, choices))}, got {value!r}')


def _check_resolution(name: str, value: int, minimum: int = 4) -> int:
    if not isinstance(value, int) or value < minimum or value & (value - 1):
        raise ValueError(f'{name} must be a power of two >= {minimum}, got {value!r}')
    return int(np.log2(value))


def _impl(x: torch.Tensor) -> str:
    """The custom CUDA kernels for CUDA tensors, the reference otherwise (no fallback warning on CPU)."""
    return 'cuda' if x.device.type == 'cuda' else 'ref'


def _reduced_dtype(setting: str, device: torch.device) -> torch.dtype:
    """The dtype of a block flagged use_fp16 for the given reduced_dtype setting and device."""
    if setting == 'float16':
        return torch.float16
    if setting == 'bfloat16':
        return torch.bfloat16
    return torch.float16 if device.type == 'cuda' else torch.float32


# ----------------------------------------------------------------------------
# Basic layers.


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale `x` so that the mean of its squares along `dim` is one."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


@persistence.persistent_class
class FullyConnectedLayer(torch.nn.Module):
    """Dense layer with equalised learning rate: weights are stored as N(0, 1/lr_multiplier²) and
    scaled by lr_multiplier / sqrt(in_features) at run time."""

    def __init__(self,
        in_features,                # Number of input features.
        out_features,               # Number of output features.
        bias            = True,     # Apply additive bias before the activation function?
        activation      = 'linear', # Activation function: 'relu', 'lrelu', etc.
        lr_multiplier   = 1,        # Learning rate multiplier.
        bias_init       = 0,        # Initial value for the additive bias.
    ):
        super().__init__()
        _act_gain(activation)
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = torch.nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = torch.nn.Parameter(torch.full([out_features], np.float32(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / np.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x):
        # The equalised-lr scale multiplies the (small) output instead of the weight: no weight-sized copy
        # in the forward or the backward pass.
        w = self.weight.to(x.dtype)
        gain = float(self.weight_gain)
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == 'linear' and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t(), alpha=gain)
        x = x.matmul(w.t())
        if self.activation in _HOMOGENEOUS:
            # act(g * y + b) = g * act(y + b / g) for g > 0: the scale joins bias_act's gain.
            b = b * (1 / gain) if b is not None else None
            return bias_act.bias_act(x, b, act=self.activation, gain=_act_gain(self.activation) * gain,
                                     impl=_impl(x))
        return bias_act.bias_act(x * gain, b, act=self.activation, impl=_impl(x))

    def extra_repr(self):
        return f'in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}'


@persistence.persistent_class
class Conv2dLayer(torch.nn.Module):
    """Convolution with equalised learning rate, optional FIR up/down-sampling, bias, activation and clamp."""

    def __init__(self,
        in_channels,                    # Number of input channels.
        out_channels,                   # Number of output channels.
        kernel_size,                    # Width and height of the convolution kernel.
        bias            = True,         # Apply additive bias before the activation function?
        activation      = 'linear',     # Activation function: 'relu', 'lrelu', etc.
        up              = 1,            # Integer upsampling factor.
        down            = 1,            # Integer downsampling factor.
        resample_filter = [1,3,3,1],    # Low-pass filter to apply when resampling activations.
        conv_clamp      = None,         # Clamp the output to +-X, None = disable clamping.
        channels_last   = False,        # Expect the input to have memory_format=channels_last?
        trainable       = True,         # Update the weights of this layer during training?
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.activation = activation
        self.up = up
        self.down = down
        self.conv_clamp = conv_clamp
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / np.sqrt(in_channels * (kernel_size ** 2))
        self.act_gain = _act_gain(activation)

        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format)
        bias = torch.zeros([out_channels]) if bias else None
        if trainable:
            self.weight = torch.nn.Parameter(weight)
            self.bias = torch.nn.Parameter(bias) if bias is not None else None
        else:
            # Frozen layers keep their tensors as buffers so that they are saved but never optimised.
            self.register_buffer('weight', weight)
            if bias is not None:
                self.register_buffer('bias', bias)
            else:
                self.bias = None

    def forward(self, x, gain=1):
        flip_weight = (self.up == 1)  # either orientation is correct; this one is slightly faster
        act_gain = self.act_gain * gain
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        if self.activation in _HOMOGENEOUS and x.dtype != torch.float16:
            # Convolve with the stored weight and apply the equalised-lr scale through bias_act's gain
            # (act(g * y + b) = g * act(y + b / g) for g > 0), saving a weight-sized pass each way.
            # float16 keeps the scaled weight: unscaled products could overflow there.
            wg = float(self.weight_gain)
            x = conv2d_resample.conv2d_resample(x=x, w=self.weight.to(x.dtype), f=self.resample_filter, up=self.up,
                                                down=self.down, padding=self.padding, flip_weight=flip_weight)
            b = (self.bias * (1 / wg)).to(x.dtype) if self.bias is not None else None
            return bias_act.bias_act(x, b, act=self.activation, gain=act_gain * wg, clamp=act_clamp, impl=_impl(x))
        w = self.weight * self.weight_gain
        b = self.bias.to(x.dtype) if self.bias is not None else None
        x = conv2d_resample.conv2d_resample(x=x, w=w.to(x.dtype), f=self.resample_filter, up=self.up,
                                            down=self.down, padding=self.padding, flip_weight=flip_weight)
        return bias_act.bias_act(x, b, act=self.activation, gain=act_gain, clamp=act_clamp, impl=_impl(x))

    def extra_repr(self):
        return (f'in_channels={self.in_channels}, out_channels={self.out_channels}, activation={self.activation}, '
                f'up={self.up}, down={self.down}')


# ----------------------------------------------------------------------------
# Mapping network.


@persistence.persistent_class
class MappingNetwork(torch.nn.Module):
    """z (and an optional class embedding) -> w, broadcast to `num_ws` per-layer copies; tracks w_avg."""

    def __init__(self,
        z_dim,                      # Input latent (Z) dimensionality, 0 = no latent.
        c_dim,                      # Conditioning label (C) dimensionality, 0 = no label.
        w_dim,                      # Intermediate latent (W) dimensionality.
        num_ws,                     # Number of intermediate latents to output, None = do not broadcast.
        num_layers      = 8,        # Number of mapping layers.
        embed_features  = None,     # Label embedding dimensionality, None = same as w_dim.
        layer_features  = None,     # Number of intermediate features in the mapping layers, None = same as w_dim.
        activation      = 'lrelu',  # Activation function: 'relu', 'lrelu', etc.
        lr_multiplier   = 0.01,     # Learning rate multiplier for the mapping layers.
        w_avg_beta      = 0.995,    # Decay for tracking the moving average of W during training, None = do not track.
    ):
        super().__init__()
        if z_dim < 0 or c_dim < 0 or (z_dim == 0 and c_dim == 0):
            raise ValueError(f'MappingNetwork: needs z_dim > 0 or c_dim > 0, got z_dim={z_dim}, c_dim={c_dim}')
        if num_layers < 1:
            raise ValueError(f'MappingNetwork: num_layers must be >= 1, got {num_layers}')
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta

        if embed_features is None:
            embed_features = w_dim
        if c_dim == 0:
            embed_features = 0
        if layer_features is None:
            layer_features = w_dim
        features_list = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]

        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(features_list[idx], features_list[idx + 1], activation=activation,
                                        lr_multiplier=lr_multiplier)
            setattr(self, f'fc{idx}', layer)

        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer('w_avg', torch.zeros([w_dim]))

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False):
        x = None
        if self.z_dim > 0:
            misc.assert_shape(z, [None, self.z_dim], 'z')
            x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            misc.assert_shape(c, [None, self.c_dim], 'c')
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y

        for idx in range(self.num_layers):
            x = getattr(self, f'fc{idx}')(x)

        if update_emas and self.w_avg_beta is not None and self.num_ws is not None:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))

        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])

        if truncation_psi != 1:
            if self.w_avg_beta is None or self.num_ws is None:
                raise ValueError('truncation needs a mapping network that tracks w_avg (w_avg_beta and num_ws set)')
            if truncation_cutoff is None:
                x = self.w_avg.lerp(x, truncation_psi)
            else:
                x = torch.cat([self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi),
                               x[:, truncation_cutoff:]], dim=1)
        return x

    def extra_repr(self):
        return f'z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}'


# ----------------------------------------------------------------------------
# Modulated convolution.


def modulated_conv2d(
    x,                          # Input tensor of shape [batch_size, in_channels, in_height, in_width].
    weight,                     # Weight tensor of shape [out_channels, in_channels, kernel_height, kernel_width].
    styles,                     # Modulation coefficients of shape [batch_size, in_channels].
    noise           = None,     # Optional noise tensor to add to the output activations.
    up              = 1,        # Integer upsampling factor.
    down            = 1,        # Integer downsampling factor.
    padding         = 0,        # Padding with respect to the upsampled image.
    resample_filter = None,     # Low-pass filter to apply when resampling activations (from upfirdn2d.setup_filter).
    demodulate      = True,     # Apply weight demodulation?
    flip_weight     = True,     # False = convolution, True = correlation (matches torch.nn.functional.conv2d).
    fused_modconv   = True,     # True: one grouped convolution with per-sample weights; False: modulate the
                                # activations, convolve the whole batch with the shared weight, demodulate after.
):
    """Style-modulated convolution: out[n] = conv(x[n], w * s[n] (* d[n])) with d the demodulation."""
    batch_size = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    misc.assert_shape(x, [None, in_channels, None, None], 'x')
    misc.assert_shape(styles, [batch_size, in_channels], 'styles')

    if x.dtype == torch.float16 and demodulate:
        # float16 overflows in the products below: bring weight and styles to unit scale first.
        # Demodulation divides the per-(n, o) scale out again, so the result is unchanged.
        weight = weight * (1 / np.sqrt(in_channels * kh * kw) / weight.norm(float('inf'), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float('inf'), dim=1, keepdim=True)

    dcoefs = None
    if demodulate:
        # sum_{i,kh,kw} (w[o,i] s[n,i])² = sum_i s[n,i]² |w[o,i]|²: a [N,I] x [I,O] product.
        wsq = weight.to(torch.float32).square().sum(dim=[2, 3])
        dcoefs = (styles.to(torch.float32).square() @ wsq.t() + 1e-8).rsqrt()  # [N, O]

    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(batch_size, -1, 1, 1)
        x = conv2d_resample.conv2d_resample(x=x, w=weight.to(x.dtype), f=resample_filter, up=up, down=down,
                                            padding=padding, flip_weight=flip_weight)
        if demodulate and noise is not None:
            return fma.fma(x, dcoefs.to(x.dtype).reshape(batch_size, -1, 1, 1), noise.to(x.dtype))
        if demodulate:
            return x * dcoefs.to(x.dtype).reshape(batch_size, -1, 1, 1)
        if noise is not None:
            return x.add_(noise.to(x.dtype))
        return x

    # Fused: fold styles and demodulation into one per-sample weight, run one grouped convolution.
    scale = styles.reshape(batch_size, 1, in_channels)
    if demodulate:
        scale = scale * dcoefs.reshape(batch_size, out_channels, 1)
    w = weight.unsqueeze(0) * scale.unsqueeze(3).unsqueeze(4)  # [N, O, I, kh, kw]
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_channels, kh, kw)
    x = conv2d_resample.conv2d_resample(x=x, w=w.to(x.dtype), f=resample_filter, up=up, down=down,
                                        padding=padding, groups=batch_size, flip_weight=flip_weight)
    x = x.reshape(batch_size, -1, *x.shape[2:])
    if noise is not None:
        x = x.add_(noise.to(x.dtype))
    return x


# ----------------------------------------------------------------------------
# Synthesis network.


@persistence.persistent_class
class SynthesisLayer(torch.nn.Module):
    """Modulated 3x3 convolution + noise + bias + activation; optionally upsamples by 2 first."""

    def __init__(self,
        in_channels,                    # Number of input channels.
        out_channels,                   # Number of output channels.
        w_dim,                          # Intermediate latent (W) dimensionality.
        resolution,                     # Resolution of this layer.
        kernel_size     = 3,            # Convolution kernel size.
        up              = 1,            # Integer upsampling factor.
        use_noise       = True,         # Enable noise input?
        activation      = 'lrelu',      # Activation function: 'relu', 'lrelu', etc.
        resample_filter = [1,3,3,1],    # Low-pass filter to apply when resampling activations.
        conv_clamp      = None,         # Clamp the output of convolution layers to +-X, None = disable clamping.
        channels_last   = False,        # Use channels_last format for the weights?
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = _act_gain(activation)

        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = torch.nn.Parameter(
            torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format))
        if use_noise:
            self.register_buffer('noise_const', torch.randn([resolution, resolution]))
            self.noise_strength = torch.nn.Parameter(torch.zeros([]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x, w, noise_mode='random', fused_modconv=True, gain=1):
        _check_choice('noise_mode', noise_mode, NOISE_MODES)
        in_resolution = self.resolution // self.up
        misc.assert_shape(x, [None, self.in_channels, in_resolution, in_resolution], 'x')
        styles = self.affine(w)

        noise = None
        if self.use_noise and noise_mode == 'random':
            noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device) * self.noise_strength
        elif self.use_noise and noise_mode == 'const':
            noise = self.noise_const * self.noise_strength

        flip_weight = (self.up == 1)  # either orientation is correct; this one is slightly faster
        x = modulated_conv2d(x=x, weight=self.weight, styles=styles, noise=noise, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter, flip_weight=flip_weight, fused_modconv=fused_modconv)

        act_gain = self.act_gain * gain
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act.bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=act_gain, clamp=act_clamp,
                                 impl=_impl(x))

    def extra_repr(self):
        return (f'in_channels={self.in_channels}, out_channels={self.out_channels}, resolution={self.resolution}, '
                f'up={self.up}, activation={self.activation}')


@persistence.persistent_class
class ToRGBLayer(torch.nn.Module):
    """Modulated (not demodulated) 1x1 convolution to image channels."""

    def __init__(self,
        in_channels,                # Number of input channels.
        out_channels,               # Number of output (image) channels.
        w_dim,                      # Intermediate latent (W) dimensionality.
        kernel_size     = 1,        # Convolution kernel size.
        conv_clamp      = None,     # Clamp the output to +-X, None = disable clamping.
        channels_last   = False,    # Use channels_last format for the weights?
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = torch.nn.Parameter(
            torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / np.sqrt(in_channels * (kernel_size ** 2))

    def forward(self, x, w, fused_modconv=True):
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x=x, weight=self.weight, styles=styles, demodulate=False, fused_modconv=fused_modconv)
        return bias_act.bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp, impl=_impl(x))

    def extra_repr(self):
        return f'in_channels={self.in_channels}, out_channels={self.out_channels}'


@persistence.persistent_class
class SynthesisBlock(torch.nn.Module):
    """One resolution of the synthesis network: [const | up-conv0] -> conv1 -> [torgb], orig/skip/resnet."""

    def __init__(self,
        in_channels,                        # Number of input channels, 0 = first block.
        out_channels,                       # Number of output channels.
        w_dim,                              # Intermediate latent (W) dimensionality.
        resolution,                         # Resolution of this block.
        img_channels,                       # Number of output color channels.
        is_last,                            # Is this the last block?
        architecture        = 'skip',       # Architecture: 'orig', 'skip', 'resnet'.
        resample_filter     = [1,3,3,1],    # Low-pass filter to apply when resampling activations.
        conv_clamp          = None,         # Clamp the output of convolution layers to +-X, None = disable clamping.
        use_fp16            = False,        # Run this block in reduced precision (see reduced_dtype)?
        fp16_channels_last  = False,        # Use channels-last memory format with reduced precision?
        reduced_dtype       = 'auto',       # Reduced precision: 'auto' (float16 on CUDA, float32 elsewhere), 'float16', 'bfloat16'.
        **layer_kwargs,                     # Arguments for SynthesisLayer.
    ):
        _check_choice('architecture', architecture, ARCHITECTURES)
        _check_choice('reduced_dtype', reduced_dtype, REDUCED_DTYPES)
        super().__init__()
        self.in_channels = in_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last = (use_fp16 and fp16_channels_last)
        self.reduced_dtype = reduced_dtype
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))
        self.num_conv = 0
        self.num_torgb = 0

        if in_channels == 0:
            self.const = torch.nn.Parameter(torch.randn([out_channels, resolution, resolution]))

        if in_channels != 0:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim=w_dim, resolution=resolution, up=2,
                                        resample_filter=resample_filter, conv_clamp=conv_clamp,
                                        channels_last=self.channels_last, **layer_kwargs)
            self.num_conv += 1

        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim=w_dim, resolution=resolution,
                                    conv_clamp=conv_clamp, channels_last=self.channels_last, **layer_kwargs)
        self.num_conv += 1

        if is_last or architecture == 'skip':
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp,
                                    channels_last=self.channels_last)
            self.num_torgb += 1

        if in_channels != 0 and architecture == 'resnet':
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter, channels_last=self.channels_last)

    def forward(self, x, img, ws, force_fp32=False, fused_modconv=None, update_emas=False, **layer_kwargs):
        del update_emas  # no running statistics here; accepted so that callers can pass it uniformly
        misc.assert_shape(ws, [None, self.num_conv + self.num_torgb, self.w_dim], 'ws')
        w_iter = iter(ws.unbind(dim=1))
        dtype = torch.float32 if (force_fp32 or not self.use_fp16) else _reduced_dtype(self.reduced_dtype, ws.device)
        memory_format = torch.channels_last if self.channels_last and not force_fp32 else torch.contiguous_format
        if fused_modconv is None:
            # Training: the non-fused path (shared weight) gives cheaper weight gradients. Inference on CUDA:
            # the original's choice. Inference elsewhere: a batched convolution beats a grouped one.
            fused_modconv = ((not self.training) and (dtype == torch.float32 or ws.shape[0] == 1)
                             and ws.device.type == 'cuda')

        if self.in_channels == 0:
            x = self.const.to(dtype=dtype, memory_format=memory_format)
            x = x.unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
        else:
            misc.assert_shape(x, [None, self.in_channels, self.resolution // 2, self.resolution // 2], 'x')
            x = x.to(dtype=dtype, memory_format=memory_format)

        if self.in_channels == 0:
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
        elif self.architecture == 'resnet':
            y = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, gain=np.sqrt(0.5), **layer_kwargs)
            x = y.add_(x)
        else:
            x = self.conv0(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)

        if img is not None:
            misc.assert_shape(img, [None, self.img_channels, self.resolution // 2, self.resolution // 2], 'img')
            img = upfirdn2d.upsample2d(img, self.resample_filter, impl=_impl(img))
        if self.is_last or self.architecture == 'skip':
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv)
            y = y.to(dtype=torch.float32, memory_format=torch.contiguous_format)
            img = img.add_(y) if img is not None else y

        assert x.dtype == dtype
        assert img is None or img.dtype == torch.float32
        return x, img

    def extra_repr(self):
        return f'resolution={self.resolution}, architecture={self.architecture}, use_fp16={self.use_fp16}'


@persistence.persistent_class
class SynthesisNetwork(torch.nn.Module):
    """Per-layer ws [N, num_ws, w_dim] -> image [N, img_channels, img_resolution, img_resolution]."""

    def __init__(self,
        w_dim,                      # Intermediate latent (W) dimensionality.
        img_resolution,             # Output image resolution.
        img_channels,               # Number of color channels.
        channel_base    = 32768,    # Overall multiplier for the number of channels.
        channel_max     = 512,      # Maximum number of channels in any layer.
        num_fp16_res    = 0,        # Use reduced precision for the N highest resolutions.
        **block_kwargs,             # Arguments for SynthesisBlock.
    ):
        super().__init__()
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = _check_resolution('img_resolution', img_resolution)
        self.img_channels = img_channels
        self.block_resolutions = [2 ** i for i in range(2, self.img_resolution_log2 + 1)]
        channels_dict = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        if min(channels_dict.values()) < 1:
            raise ValueError(f'channel_base={channel_base} gives no channels at {img_resolution}x{img_resolution}')
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)

        self.num_ws = 0
        for res in self.block_resolutions:
            in_channels = channels_dict[res // 2] if res > 4 else 0
            out_channels = channels_dict[res]
            use_fp16 = (res >= fp16_resolution)
            is_last = (res == self.img_resolution)
            block = SynthesisBlock(in_channels, out_channels, w_dim=w_dim, resolution=res,
                                   img_channels=img_channels, is_last=is_last, use_fp16=use_fp16, **block_kwargs)
            self.num_ws += block.num_conv
            if is_last:
                self.num_ws += block.num_torgb
            setattr(self, f'b{res}', block)

    def forward(self, ws, **block_kwargs):
        misc.assert_shape(ws, [None, self.num_ws, self.w_dim], 'ws')
        ws = ws.to(torch.float32)
        block_ws = []
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f'b{res}')
            # Consecutive blocks share one w: a block's ToRGB uses the w of the next block's first conv.
            block_ws.append(ws.narrow(1, w_idx, block.num_conv + block.num_torgb))
            w_idx += block.num_conv

        x = img = None
        for res, cur_ws in zip(self.block_resolutions, block_ws):
            block = getattr(self, f'b{res}')
            x, img = block(x, img, cur_ws, **block_kwargs)
        return img

    def extra_repr(self):
        return (f'w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}, '
                f'img_channels={self.img_channels}')


@persistence.persistent_class
class Generator(torch.nn.Module):
    """StyleGAN2 generator: G(z, c) = synthesis(mapping(z, c))."""

    def __init__(self,
        z_dim,                      # Input latent (Z) dimensionality.
        c_dim,                      # Conditioning label (C) dimensionality, 0 = unconditional.
        w_dim,                      # Intermediate latent (W) dimensionality.
        img_resolution,             # Output resolution.
        img_channels,               # Number of output color channels.
        mapping_kwargs      = {},   # Arguments for MappingNetwork.
        synthesis_kwargs    = {},   # Arguments for SynthesisNetwork.
    ):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                                          **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **mapping_kwargs)

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False, **synthesis_kwargs):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas)
        return self.synthesis(ws, update_emas=update_emas, **synthesis_kwargs)


# ----------------------------------------------------------------------------
# Discriminator.


@persistence.persistent_class
class DiscriminatorBlock(torch.nn.Module):
    """One resolution of the discriminator: [fromrgb] -> conv0 -> down-conv1, orig/skip/resnet."""

    def __init__(self,
        in_channels,                        # Number of input channels, 0 = first block.
        tmp_channels,                       # Number of intermediate channels.
        out_channels,                       # Number of output channels.
        resolution,                         # Resolution of this block.
        img_channels,                       # Number of input color channels.
        first_layer_idx,                    # Index of the first layer.
        architecture        = 'resnet',     # Architecture: 'orig', 'skip', 'resnet'.
        activation          = 'lrelu',      # Activation function: 'relu', 'lrelu', etc.
        resample_filter     = [1,3,3,1],    # Low-pass filter to apply when resampling activations.
        conv_clamp          = None,         # Clamp the output of convolution layers to +-X, None = disable clamping.
        use_fp16            = False,        # Run this block in reduced precision (see reduced_dtype)?
        fp16_channels_last  = False,        # Use channels-last memory format with reduced precision?
        freeze_layers       = 0,            # Freeze-D: Number of layers to freeze.
        reduced_dtype       = 'auto',       # Reduced precision: 'auto' (float16 on CUDA, float32 elsewhere), 'float16', 'bfloat16'.
    ):
        _check_choice('architecture', architecture, ARCHITECTURES)
        _check_choice('reduced_dtype', reduced_dtype, REDUCED_DTYPES)
        assert in_channels in [0, tmp_channels]
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.first_layer_idx = first_layer_idx
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last = (use_fp16 and fp16_channels_last)
        self.reduced_dtype = reduced_dtype
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))

        self.num_layers = 0

        def trainable_gen():
            while True:
                layer_idx = self.first_layer_idx + self.num_layers
                trainable = (layer_idx >= freeze_layers)
                self.num_layers += 1
                yield trainable
        trainable_iter = trainable_gen()

        if in_channels == 0 or architecture == 'skip':
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1, activation=activation,
                                       trainable=next(trainable_iter), conv_clamp=conv_clamp,
                                       channels_last=self.channels_last)

        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, activation=activation,
                                 trainable=next(trainable_iter), conv_clamp=conv_clamp, channels_last=self.channels_last)

        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, activation=activation, down=2,
                                 trainable=next(trainable_iter), resample_filter=resample_filter, conv_clamp=conv_clamp,
                                 channels_last=self.channels_last)

        if architecture == 'resnet':
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                                    trainable=next(trainable_iter), resample_filter=resample_filter,
                                    channels_last=self.channels_last)

    def forward(self, x, img, force_fp32=False):
        device = (x if x is not None else img).device
        dtype = torch.float32 if (force_fp32 or not self.use_fp16) else _reduced_dtype(self.reduced_dtype, device)
        memory_format = torch.channels_last if self.channels_last and not force_fp32 else torch.contiguous_format

        if x is not None:
            misc.assert_shape(x, [None, self.in_channels, self.resolution, self.resolution], 'x')
            x = x.to(dtype=dtype, memory_format=memory_format)

        if self.in_channels == 0 or self.architecture == 'skip':
            misc.assert_shape(img, [None, self.img_channels, self.resolution, self.resolution], 'img')
            img = img.to(dtype=dtype, memory_format=memory_format)
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = (upfirdn2d.downsample2d(img, self.resample_filter, impl=_impl(img))
                   if self.architecture == 'skip' else None)

        if self.architecture == 'resnet':
            y = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=np.sqrt(0.5))
            x = y.add_(x)
        else:
            x = self.conv0(x)
            x = self.conv1(x)

        assert x.dtype == dtype
        return x, img

    def extra_repr(self):
        return f'resolution={self.resolution}, architecture={self.architecture}, use_fp16={self.use_fp16}'


@persistence.persistent_class
class MinibatchStdLayer(torch.nn.Module):
    """Appends the average over features of the standard deviation across a group of samples.

    Samples n and n + k * (N / G) share a group (the batch is split into G interleaved slices),
    as in stylegan2-ada, so that networks trained there see the same statistic here.
    """

    def __init__(self,
        group_size,             # Samples per group, None = the whole batch.
        num_channels    = 1,    # Number of statistics channels; the features are split into this many parts.
    ):
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x):
        N, C, H, W = x.shape
        G = N if self.group_size is None else min(self.group_size, N)
        F = self.num_channels
        if N % G != 0:
            raise ValueError(f'minibatch standard deviation: batch size {N} is not divisible by the group size {G}')
        if C % F != 0:
            raise ValueError(f'minibatch standard deviation: {C} channels are not divisible by num_channels={F}')
        c = C // F
        y = x.reshape(G, -1, F, c, H, W)            # [GnFcHW] group, slice, statistic channel, features, pixels
        y = y - y.mean(dim=0)                       # subtract the group mean
        y = y.square().mean(dim=0)                  # variance over the group
        y = (y + 1e-8).sqrt()                       # standard deviation
        y = y.mean(dim=[2, 3, 4])                   # [nF] average over features and pixels
        y = y.reshape(-1, F, 1, 1)
        y = y.repeat(G, 1, H, W)                    # [NFHW] back to every sample and pixel
        return torch.cat([x, y], dim=1)

    def extra_repr(self):
        return f'group_size={self.group_size}, num_channels={self.num_channels}'


@persistence.persistent_class
class DiscriminatorEpilogue(torch.nn.Module):
    """The 4x4 end of the discriminator: [fromrgb] -> mbstd -> conv -> fc -> out (-> class projection)."""

    def __init__(self,
        in_channels,                    # Number of input channels.
        cmap_dim,                       # Dimensionality of mapped conditioning label, 0 = no label.
        resolution,                     # Resolution of this block.
        img_channels,                   # Number of input color channels.
        architecture        = 'resnet', # Architecture: 'orig', 'skip', 'resnet'.
        mbstd_group_size    = 4,        # Group size for the minibatch standard deviation layer, None = entire minibatch.
        mbstd_num_channels  = 1,        # Number of features for the minibatch standard deviation layer, 0 = disable.
        activation          = 'lrelu',  # Activation function: 'relu', 'lrelu', etc.
        conv_clamp          = None,     # Clamp the output of convolution layers to +-X, None = disable clamping.
    ):
        _check_choice('architecture', architecture, ARCHITECTURES)
        super().__init__()
        self.in_channels = in_channels
        self.cmap_dim = cmap_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.architecture = architecture

        if architecture == 'skip':
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = MinibatchStdLayer(group_size=mbstd_group_size, num_channels=mbstd_num_channels) \
            if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3, activation=activation,
                                conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * (resolution ** 2), in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x, img, cmap, force_fp32=False):
        misc.assert_shape(x, [None, self.in_channels, self.resolution, self.resolution], 'x')
        del force_fp32  # the epilogue always runs in float32
        dtype = torch.float32
        memory_format = torch.contiguous_format

        x = x.to(dtype=dtype, memory_format=memory_format)
        if self.architecture == 'skip':
            misc.assert_shape(img, [None, self.img_channels, self.resolution, self.resolution], 'img')
            img = img.to(dtype=dtype, memory_format=memory_format)
            x = x + self.fromrgb(img)

        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)

        if self.cmap_dim > 0:
            misc.assert_shape(cmap, [None, self.cmap_dim], 'cmap')
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))

        assert x.dtype == dtype
        return x

    def extra_repr(self):
        return f'resolution={self.resolution}, architecture={self.architecture}'


@persistence.persistent_class
class Discriminator(torch.nn.Module):
    """StyleGAN2 discriminator: D(img, c) -> [N, 1] logits; conditioning by projection onto a mapped label."""

    def __init__(self,
        c_dim,                          # Conditioning label (C) dimensionality, 0 = unconditional.
        img_resolution,                 # Input resolution.
        img_channels,                   # Number of input color channels.
        architecture        = 'resnet', # Architecture: 'orig', 'skip', 'resnet'.
        channel_base        = 32768,    # Overall multiplier for the number of channels.
        channel_max         = 512,      # Maximum number of channels in any layer.
        num_fp16_res        = 0,        # Use reduced precision for the N highest resolutions.
        conv_clamp          = None,     # Clamp the output of convolution layers to +-X, None = disable clamping.
        cmap_dim            = None,     # Dimensionality of mapped conditioning label, None = default.
        reduced_dtype       = 'auto',   # Reduced precision: 'auto' (float16 on CUDA, float32 elsewhere), 'float16', 'bfloat16'.
        block_kwargs        = {},       # Arguments for DiscriminatorBlock.
        mapping_kwargs      = {},       # Arguments for MappingNetwork.
        epilogue_kwargs     = {},       # Arguments for DiscriminatorEpilogue.
    ):
        _check_choice('architecture', architecture, ARCHITECTURES)
        _check_choice('reduced_dtype', reduced_dtype, REDUCED_DTYPES)
        super().__init__()
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = _check_resolution('img_resolution', img_resolution)
        self.img_channels = img_channels
        self.block_resolutions = [2 ** i for i in range(self.img_resolution_log2, 2, -1)]
        channels_dict = {res: min(channel_base // res, channel_max) for res in self.block_resolutions + [4]}
        if min(channels_dict.values()) < 1:
            raise ValueError(f'channel_base={channel_base} gives no channels at {img_resolution}x{img_resolution}')
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)

        if cmap_dim is None:
            cmap_dim = channels_dict[4]
        if c_dim == 0:
            cmap_dim = 0

        common_kwargs = dict(img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp)
        cur_layer_idx = 0
        for res in self.block_resolutions:
            in_channels = channels_dict[res] if res < img_resolution else 0
            tmp_channels = channels_dict[res]
            out_channels = channels_dict[res // 2]
            use_fp16 = (res >= fp16_resolution)
            block = DiscriminatorBlock(in_channels, tmp_channels, out_channels, resolution=res,
                                       first_layer_idx=cur_layer_idx, use_fp16=use_fp16, reduced_dtype=reduced_dtype,
                                       **block_kwargs, **common_kwargs)
            setattr(self, f'b{res}', block)
            cur_layer_idx += block.num_layers
        if c_dim > 0:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None,
                                          **mapping_kwargs)
        self.b4 = DiscriminatorEpilogue(channels_dict[4], cmap_dim=cmap_dim, resolution=4, **epilogue_kwargs,
                                        **common_kwargs)

    def forward(self, img, c, update_emas=False, **block_kwargs):
        del update_emas  # no running statistics here; accepted so that callers can pass it uniformly
        misc.assert_shape(img, [None, self.img_channels, self.img_resolution, self.img_resolution], 'img')
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f'b{res}')(x, img, **block_kwargs)

        cmap = None
        if self.c_dim > 0:
            cmap = self.mapping(None, c)
        return self.b4(x, img, cmap)

    def extra_repr(self):
        return f'c_dim={self.c_dim}, img_resolution={self.img_resolution}, img_channels={self.img_channels}'


# ----------------------------------------------------------------------------
# The paper's configuration (seed 000, Table 5) and a printable summary of it.


def paper256_kwargs(num_fp16_res: int = 4, conv_clamp: int | None = 256) -> tuple[dict, dict]:
    """(G_kwargs, D_kwargs) of the StyleGAN2 networks of the SoftGAN paper's Table 5.

    256x256 RGB, channel_base 16384, channel_max 512, z_dim = w_dim = 512, 2 mapping layers, no
    conditioning, skip G and resnet D (stylegan2-ada's 'auto' configuration at 256x256).
    """
    G_kwargs = dict(class_name='training.networks.Generator', z_dim=512, c_dim=0, w_dim=512, img_resolution=256,
                    img_channels=3, mapping_kwargs=dict(num_layers=2),
                    synthesis_kwargs=dict(channel_base=16384, channel_max=512, num_fp16_res=num_fp16_res,
                                          conv_clamp=conv_clamp, architecture='skip'))
    D_kwargs = dict(class_name='training.networks.Discriminator', c_dim=0, img_resolution=256, img_channels=3,
                    architecture='resnet', channel_base=16384, channel_max=512, num_fp16_res=num_fp16_res,
                    conv_clamp=conv_clamp, epilogue_kwargs=dict(mbstd_group_size=4))
    return G_kwargs, D_kwargs


def print_paper_summary(batch_size: int = 2, seed: int = 0, file=None) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Build the Table 5 networks and print their module summaries (one forward pass each, on the CPU).

    `python -c "from training.networks import print_paper_summary; print_paper_summary()"`
    """
    import dnnlib
    G_kwargs, D_kwargs = paper256_kwargs()
    torch.manual_seed(seed)
    G = dnnlib.util.construct_class_by_name(**G_kwargs).eval().requires_grad_(False)
    D = dnnlib.util.construct_class_by_name(**D_kwargs).eval().requires_grad_(False)
    z = torch.randn([batch_size, G.z_dim])
    c = torch.zeros([batch_size, G.c_dim])
    with torch.no_grad():
        print('Generator', file=file)
        img = misc.print_module_summary(G, [z, c], file=file)
        print('', file=file)
        print('Discriminator', file=file)
        misc.print_module_summary(D, [img, c], file=file)
    return G, D
