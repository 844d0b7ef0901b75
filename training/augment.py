"""Adaptive discriminator augmentation (ADA): the differentiable augmentation pipeline.

``AugmentPipe`` applies, to every image of a batch independently, the transformations of Karras et al.,
"Training Generative Adversarial Networks with Limited Data" (2020), in this order:

    pixel blitting        x-flip, 90-degree rotations, integer translation
    general geometry      isotropic scaling, rotation, anisotropic scaling, rotation, fractional translation
    color                 brightness, contrast, luma flip, hue rotation, saturation
    image-space filtering amplification / attenuation of four frequency bands
    corruptions           additive Gaussian noise, cutout

Each transformation fires for a sample with probability ``multiplier * p``, where ``p`` is the buffer that
the ADA controller (training/ada.py) moves; the arguments and presets mirror stylegan2-ada-pytorch.

Conventions worth knowing:

* Coordinates are in pixels, centred on the image (pixel centres at ``i - (size - 1) / 2``), x to the
  right and y down. Geometric transformations are composed into one 3x3 matrix per sample (the inverse
  map, output pixel -> input position) and applied in one resampling pass: reflection padding (without
  repeating the edge pixel, like ``numpy.pad(mode='reflect')``), 2x upsampling with the sym6 low-pass
  filter, bilinear ``grid_sample`` on the 2x grid, 2x downsampling with the same filter. Because sym6 is
  an orthogonal wavelet, the up/down pair is an exact identity for the identity map.
* A sample for which no general geometric transformation fired is never resampled: its x-flip,
  90-degree rotation and integer translation are done by exact pixel indexing (with the same
  reflection). More generally, a sample for which nothing in a stage fired leaves that stage bit for bit
  unchanged, and ``p == 0`` returns the input tensor itself without drawing any random numbers.
* All random numbers come from torch's global generator of the images' device, in a fixed order
  that depends only on the batch shape, ``p`` and the constructor arguments, so runs resume exactly.
* Color transformations are one 4x4 matrix per sample acting on (r, g, b, 1); the luma axis is
  (1, 1, 1) / sqrt(3). A 1-channel image is treated as the gray RGB image (v, v, v) and the result is
  averaged back to one channel: brightness, contrast and luma flip (which negates) apply; hue and
  saturation do nothing to gray images and draw no random numbers for them. Color transformations on
  images with another number of channels raise ValueError.
* ``debug_percentile=q`` (0 < q < 1) makes every enabled transformation fire for every sample, whatever
  ``p``, with its parameter at the q-quantile of its distribution (normal ones at ``Phi^-1(q)``, the
  half-normal noise strength at ``Phi^-1((1 + q) / 2)``, uniform ones at ``2q - 1`` of their range); the
  second rotation is then zero, the cutout centre is (q, q), and the added noise itself stays random.
  stylegan2-ada uses ``erfinv(2q - 1)`` for the normal quantiles, which is not the q-quantile.
* The pipeline is differentiable w.r.t. the images to any order (R1 through augmentation): every op
  on the image path is linear in the image, with parameters that do not require gradients.
"""

from __future__ import annotations

import math
import numbers
import statistics

import numpy as np
import torch

from torch_utils import persistence
from torch_utils.ops import conv2d_gradfix, grid_sample_gradfix, upfirdn2d

# The pipelines of stylegan2-ada's --augpipe: b = blit, g = geom, c = color, f = filter, n = noise, c = cutout.
PRESETS = {
    'blit':   dict(xflip=1, rotate90=1, xint=1),
    'geom':   dict(scale=1, rotate=1, aniso=1, xfrac=1),
    'color':  dict(brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1),
    'filter': dict(imgfilter=1),
    'noise':  dict(noise=1),
    'cutout': dict(cutout=1),
}
PRESETS['bg'] = {**PRESETS['blit'], **PRESETS['geom']}
PRESETS['bgc'] = {**PRESETS['bg'], **PRESETS['color']}
PRESETS['bgcf'] = {**PRESETS['bgc'], **PRESETS['filter']}
PRESETS['bgcfn'] = {**PRESETS['bgcf'], **PRESETS['noise']}
PRESETS['bgcfnc'] = {**PRESETS['bgcfn'], **PRESETS['cutout']}

# Low-pass decomposition filter of the Symlet-6 wavelet (orthogonal, 12 taps, sum sqrt(2)); the
# geometric resampling uses it for both the 2x upsampling and the 2x downsampling.
SYM6 = [
    0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
    0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
    -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148,
]

# Expected share of the image power in each band of the filter bank, lowest band first (a 1/f spectrum):
# the band gains are renormalised so that an image with this spectrum keeps its power.
IMGFILTER_EXPECTED_POWER = [10 / 13, 1 / 13, 1 / 13, 1 / 13]

_PROBABILITY_ARGS = ('xflip', 'rotate90', 'xint', 'scale', 'rotate', 'aniso', 'xfrac', 'brightness', 'contrast',
                     'lumaflip', 'hue', 'saturation', 'imgfilter', 'noise', 'cutout')
_GEOMETRIC_ARGS = ('scale', 'rotate', 'aniso', 'xfrac')
_COLOR_ARGS = ('brightness', 'contrast', 'lumaflip', 'hue', 'saturation')
_RANGE_ARGS = ('xint_max', 'scale_std', 'rotate_max', 'aniso_std', 'xfrac_std', 'brightness_std', 'contrast_std',
               'hue_max', 'saturation_std', 'imgfilter_std', 'noise_std', 'cutout_size')


def sym2_taps() -> np.ndarray:
    """Low-pass filter of the Symlet-2 (= Daubechies-2) wavelet, from its closed form."""
    r3 = math.sqrt(3)
    return np.array([1 - r3, 3 - r3, 3 + r3, 1 + r3]) / (4 * math.sqrt(2))


def imgfilter_bank() -> np.ndarray:
    """Four zero-phase band-pass filters [4, 43] that sum to a unit impulse, lowest band first.

    From the sym2 wavelet H: the half-band pair lo = H(z)H(1/z)/2 and hi = H(-z)H(-1/z)/2 split the
    spectrum at pi/2 and add up to an impulse. Iterating the split on the low half (lo, hi dilated by 2
    and 4) gives the octave bands [0, pi/8], [pi/8, pi/4], [pi/4, pi/2], [pi/2, pi].
    """
    h = sym2_taps()
    lo = np.convolve(h, h[::-1]) / 2
    hi = lo * (-1.0) ** (np.arange(lo.size) - lo.size // 2)

    def dilate(t, factor):
        out = np.zeros((t.size - 1) * factor + 1)
        out[::factor] = t
        return out

    def cascade(*filters):
        out = np.ones(1)
        for f in filters:
            out = np.convolve(out, f)
        return out

    bands = [cascade(lo, dilate(lo, 2), dilate(lo, 4)),
             cascade(lo, dilate(lo, 2), dilate(hi, 4)),
             cascade(lo, dilate(hi, 2)),
             hi]
    taps = max(b.size for b in bands)
    bank = np.zeros((len(bands), taps))
    for i, b in enumerate(bands):
        start = (taps - b.size) // 2
        bank[i, start:start + b.size] = b
    return bank

# ----------------------------------------------------------------------------
# Batched 3x3 / 4x4 matrices (one per sample). Entries are python numbers or [N] tensors.


def _matrix(n, size, entries, device, dtype):
    m = torch.eye(size, device=device, dtype=dtype).repeat(n, 1, 1)
    for (row, col), value in entries.items():
        m[:, row, col] = value
    return m


def _compose(a, b):
    if a is None or b is None:
        return b if a is None else a
    return a @ b


def _check_real(name, value, lo=0.0, hi=math.inf):
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f'AugmentPipe: {name} must be a number, got {type(value).__name__} {value!r}')
    if not (math.isfinite(value) and lo <= value <= hi):
        raise ValueError(f'AugmentPipe: {name} must be a finite number in [{lo}, {hi}], got {value!r}')
    return float(value)

# ----------------------------------------------------------------------------


@persistence.persistent_class
class AugmentPipe(torch.nn.Module):
    def __init__(self,
                 xflip=0,                       # probability multiplier for x-flip
                 rotate90=0,                    # probability multiplier for 90-degree rotations
                 xint=0,                        # probability multiplier for integer translation
                 xint_max=0.125,                # range of integer translation, fraction of the image size
                 scale=0,                       # probability multiplier for isotropic scaling
                 rotate=0,                      # probability multiplier for arbitrary rotation
                 aniso=0,                       # probability multiplier for anisotropic scaling
                 xfrac=0,                       # probability multiplier for fractional translation
                 scale_std=0.2,                 # std of log2 of the isotropic scale
                 rotate_max=1,                  # range of rotation, 1 = full circle (+-pi)
                 aniso_std=0.2,                 # std of log2 of the anisotropic scale
                 xfrac_std=0.125,               # std of fractional translation, fraction of the image size
                 brightness=0,                  # probability multiplier for brightness
                 contrast=0,                    # probability multiplier for contrast
                 lumaflip=0,                    # probability multiplier for luma flip
                 hue=0,                         # probability multiplier for hue rotation
                 saturation=0,                  # probability multiplier for saturation
                 brightness_std=0.2,            # std of the brightness offset
                 contrast_std=0.5,              # std of log2 of the contrast gain
                 hue_max=1,                     # range of hue rotation, 1 = full circle (+-pi)
                 saturation_std=1,              # std of log2 of the saturation gain
                 imgfilter=0,                   # probability multiplier for image-space filtering
                 imgfilter_bands=[1, 1, 1, 1],  # probability multipliers of the 4 bands, lowest first
                 imgfilter_std=1,               # std of log2 of a band's amplification
                 noise=0,                       # probability multiplier for additive Gaussian noise
                 cutout=0,                      # probability multiplier for cutout
                 noise_std=0.1,                 # scale of the noise strength (a half-normal variable)
                 cutout_size=0.5,               # side of the cutout square, fraction of the image size
                 **unknown,                     # anything else is an error
                 ):
        super().__init__()
        if unknown:
            raise TypeError(f'AugmentPipe: unknown argument(s) {sorted(unknown)}; the transformations are '
                            f'{list(_PROBABILITY_ARGS)} and their ranges {list(_RANGE_ARGS)} (and imgfilter_bands)')
        args = dict(locals())
        for name in _PROBABILITY_ARGS:
            setattr(self, name, _check_real(name, args[name]))
        for name in _RANGE_ARGS:
            setattr(self, name, _check_real(name, args[name], hi=1.0 if name == 'cutout_size' else math.inf))
        bands = args['imgfilter_bands']
        if not isinstance(bands, (list, tuple)) or len(bands) != 4:
            raise ValueError(f'AugmentPipe: imgfilter_bands must be a list of 4 probability multipliers, got {bands!r}')
        self.imgfilter_bands = [_check_real('imgfilter_bands[i]', b) for b in bands]

        # The probability knob that the ADA controller turns; stored in checkpoints.
        self.register_buffer('p', torch.zeros([]))

        # Derived constants: not stored in checkpoints (persistent=False), rebuilt from the code.
        geom = np.asarray(SYM6)
        self.register_buffer('Hz_geom', upfirdn2d.setup_filter(geom), persistent=False)
        # Delay of the normalised filter at low frequencies (its centroid, in taps); the resampling
        # grid accounts for it so that the up/down pair does not shift the transformed image.
        self.geom_delay = float((geom * np.arange(geom.size)).sum() / geom.sum())
        self.register_buffer('Hz_fbank', torch.as_tensor(imgfilter_bank(), dtype=torch.float32), persistent=False)

    # ------------------------------------------------------------------------

    def forward(self, images, debug_percentile=None):
        """Augment a batch [N, C, H, W] of float images; returns a tensor of the same shape and dtype."""
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
            desc = f'a {images.dtype} tensor of shape {list(images.shape)}' if isinstance(images, torch.Tensor) \
                else type(images).__name__
            raise ValueError(f'AugmentPipe: images must be a float tensor [N, C, H, W], got {desc}')
        q = None
        if debug_percentile is not None:
            q = float(debug_percentile)
            if not 0 < q < 1:
                raise ValueError(f'AugmentPipe: debug_percentile must be in (0, 1), got {debug_percentile!r}')
        p = float(self.p)
        if not math.isfinite(p) or p < 0:
            raise ValueError(f'AugmentPipe: the augmentation probability p must be finite and >= 0, got {p}')
        if q is None and p == 0:
            return images
        n, c, h, w = images.shape
        if n == 0:
            return images
        if c not in (1, 3) and any(getattr(self, k) > 0 for k in _COLOR_ARGS):
            raise ValueError(f'AugmentPipe: color transformations need 1- or 3-channel images, got {c} channels')
        r = _Draws(n, images.device, p, q)
        mdtype = torch.float64 if images.dtype == torch.float64 else torch.float32

        images = self._geometric(images, r, mdtype)
        images = self._color(images, r, mdtype)
        images = self._imgfilter(images, r)
        images = self._noise(images, r)
        images = self._cutout(images, r)
        return images

    # ------------------------------------------------------------------------
    # Geometry.

    def _geometric(self, images, r, mdtype):
        n, _, h, w = images.shape
        dev = images.device
        mat = lambda entries: _matrix(n, 3, entries, dev, mdtype)  # noqa: E731

        # Inverse maps (output position -> input position), composed as G_inv = T1^-1 @ T2^-1 @ ...,
        # so that the content undergoes T1 first.
        blit = None
        if self.xflip > 0:
            i, _ = r.uniform_int(2, self.xflip)
            blit = _compose(blit, mat({(0, 0): (1 - 2 * i).to(mdtype)}))
        if self.rotate90 > 0:
            k, _ = r.uniform_int(4, self.rotate90)
            k = k.long()
            cos = torch.tensor([1, 0, -1, 0], device=dev, dtype=mdtype)[k]
            sin = torch.tensor([0, 1, 0, -1], device=dev, dtype=mdtype)[k]
            blit = _compose(blit, mat({(0, 0): cos, (0, 1): sin, (1, 0): -sin, (1, 1): cos}))
        if self.xint > 0:
            t, _ = r.uniform([n, 2], self.xint, self.xint_max)
            tx = torch.round(t[:, 0] * w).to(mdtype)
            ty = torch.round(t[:, 1] * h).to(mdtype)
            blit = _compose(blit, mat({(0, 2): -tx, (1, 2): -ty}))

        geom = None
        fired = torch.zeros([n], dtype=torch.bool, device=dev)
        if self.scale > 0:
            s, fire = r.lognormal(self.scale, self.scale_std)
            geom = _compose(geom, mat({(0, 0): 1 / s.to(mdtype), (1, 1): 1 / s.to(mdtype)}))
            fired |= fire
        # Two rotations, before and after the anisotropic scaling, each with the probability that makes
        # P(at least one) = rotate * p.
        p_rot = 1 - math.sqrt(1 - min(max(self.rotate * r.p, 0.0), 1.0))
        if self.rotate > 0:
            theta, fire = r.uniform([n], None, math.pi * self.rotate_max, prob=p_rot)
            geom = _compose(geom, self._rotation_inv(theta.to(mdtype), mat))
            fired |= fire
        if self.aniso > 0:
            s, fire = r.lognormal(self.aniso, self.aniso_std)
            s = s.to(mdtype)
            geom = _compose(geom, mat({(0, 0): 1 / s, (1, 1): s}))
            fired |= fire
        if self.rotate > 0:
            theta, fire = r.uniform([n], None, math.pi * self.rotate_max, prob=p_rot, debug_value=0.0)
            geom = _compose(geom, self._rotation_inv(theta.to(mdtype), mat))
            fired |= fire
        if self.xfrac > 0:
            t, fire = r.normal([n, 2], self.xfrac, self.xfrac_std)
            t = t.to(mdtype)
            geom = _compose(geom, mat({(0, 2): -t[:, 0] * w, (1, 2): -t[:, 1] * h}))
            fired |= fire

        out = images if blit is None else self._blit(images, blit)
        if geom is None:
            return out
        full = geom if blit is None else blit @ geom
        # One host transfer: which samples need resampling, and their matrices for the padding size.
        host = torch.cat([fired[:, None].to(mdtype), full.reshape(n, 9)], dim=1).cpu().double().numpy()
        sel = np.flatnonzero(host[:, 0])
        if sel.size == 0:
            return out
        if sel.size == n:
            return self.resample(images, full, host[:, 1:].reshape(n, 3, 3))
        idx = torch.as_tensor(sel, device=dev)
        resampled = self.resample(images.index_select(0, idx), full.index_select(0, idx),
                                  host[sel, 1:].reshape(-1, 3, 3))
        return out.index_copy(0, idx, resampled)

    @staticmethod
    def _rotation_inv(theta, mat):
        # Content rotated by +theta (from +x towards +y); the inverse rotates by -theta.
        cos, sin = torch.cos(theta), torch.sin(theta)
        return mat({(0, 0): cos, (0, 1): sin, (1, 0): -sin, (1, 1): cos})

    @staticmethod
    def _blit(images, g_inv):
        """Exact resampling for maps that send pixel centres to pixel centres (flips, 90-degree
        rotations, integer shifts); positions outside the image are reflected back into it."""
        n, c, h, w = images.shape
        dev = images.device
        ox = torch.arange(w, device=dev, dtype=g_inv.dtype) - (w - 1) / 2
        oy = torch.arange(h, device=dev, dtype=g_inv.dtype) - (h - 1) / 2
        g = g_inv[:, :2, :, None, None]
        # Source positions [N, 2, H, W] in pixel indices. Images whose width and height differ in
        # parity map some pixel centres of a 90-degree rotation half-way between pixels: rounded.
        src = g[:, :, 0] * ox[None, None, None, :] + g[:, :, 1] * oy[None, None, :, None] + g[:, :, 2]
        sx = _reflect_index(torch.round(src[:, 0] + (w - 1) / 2).long(), w)
        sy = _reflect_index(torch.round(src[:, 1] + (h - 1) / 2).long(), h)
        index = (sy * w + sx).reshape(n, 1, h * w).expand(n, c, h * w)
        return images.reshape(n, c, h * w).gather(2, index).reshape(n, c, h, w)

    def resample(self, images, g_inv, g_inv_host=None):
        """Resample images [N, C, H, W] with per-sample inverse maps g_inv [N, 3, 3] (centred pixel
        coordinates, output -> input): reflect-pad, upsample 2x, bilinear sampling, downsample 2x.

        `g_inv_host` (a float64 numpy copy of g_inv) only saves a device-to-host transfer.
        """
        n, c, h, w = images.shape
        dev = images.device
        impl = 'cuda' if images.is_cuda else 'ref'
        f = self.Hz_geom
        taps = f.shape[0]
        delay = self.geom_delay
        up_lead = taps - 1 - (taps + 1) // 2  # upsampled pixel j is centred on zero-inserted sample j + up_lead - delay
        extra = (taps - 1) // 2               # samples of the 2x output grid beyond the image on each side
        sw, sh = 2 * w + 2 * extra, 2 * h + 2 * extra
        cx, cy = (w - 1) / 2, (h - 1) / 2
        if g_inv_host is None:
            g_inv_host = g_inv.detach().cpu().double().numpy()

        # Sample j of the 2x output grid sits at output pixel index (j - delay) / 2: that is where the
        # downsampling filter (a correlation) centres it.
        pre = np.array([[0.5, 0, -delay / 2 - cx], [0, 0.5, -delay / 2 - cy], [0, 0, 1]])

        # Input positions reached by the grid corners (affine maps: the corners bound everything). The
        # padded input must cover them with a full filter footprint of the upsampler plus one pixel
        # for the bilinear neighbour; reflection padding is limited to size - 1 pixels, beyond which
        # grid_sample sees zeros (only for extreme transformations).
        corners = np.array([[0, 0, 1], [sw - 1, 0, 1], [0, sh - 1, 1], [sw - 1, sh - 1, 1]], dtype=np.float64).T
        pos = g_inv_host @ pre @ corners                     # [N, 3, 4]
        lo = pos[:, :2].min(axis=(0, 2)) + [cx, cy]          # in input pixel indices
        hi = pos[:, :2].max(axis=(0, 2)) + [cx, cy]
        pad0 = np.ceil((taps - 2 - delay) / 2 - lo)
        pad1 = np.ceil(hi - np.array([w, h]) + 1 + delay / 2)
        limit = np.array([w - 1, h - 1])
        px0, py0 = (int(v) for v in np.clip(pad0, 0, limit))
        px1, py1 = (int(v) for v in np.clip(pad1, 0, limit))

        x = reflect_pad(images, [px0, px1, py0, py1])
        x = upfirdn2d.upsample2d(x, f, up=2, impl=impl)
        uh, uw = x.shape[2], x.shape[3]
        # Input pixel index i (of the unpadded image) is upsampled index 2 * (i + pad0) - up_lead + delay;
        # grid_sample (align_corners=False) addresses upsampled index j as (2 j + 1) / size - 1.
        post = np.array([
            [4 / uw, 0, (4 * (cx + px0) - 2 * up_lead + 2 * delay + 1) / uw - 1],
            [0, 4 / uh, (4 * (cy + py0) - 2 * up_lead + 2 * delay + 1) / uh - 1],
            [0, 0, 1]])
        k = torch.as_tensor(post, device=dev, dtype=g_inv.dtype) @ g_inv @ \
            torch.as_tensor(pre, device=dev, dtype=g_inv.dtype)
        k = k.to(images.dtype)
        gx = torch.arange(sw, device=dev, dtype=images.dtype)
        gy = torch.arange(sh, device=dev, dtype=images.dtype)
        kk = k[:, None, None, :2, :]                        # [N, 1, 1, 2, 3]
        grid = kk[..., 0] * gx[None, None, :, None] + kk[..., 1] * gy[None, :, None, None] + kk[..., 2]
        x = grid_sample_gradfix.grid_sample(x, grid)
        x = upfirdn2d.downsample2d(x, f, down=2, padding=-extra, flip_filter=True, impl=impl)
        assert x.shape == images.shape, (x.shape, images.shape)
        return x

    # ------------------------------------------------------------------------
    # Color.

    def _color(self, images, r, mdtype):
        n, c, h, w = images.shape
        dev = images.device
        mat = lambda entries: _matrix(n, 4, entries, dev, mdtype)  # noqa: E731
        cm = None  # forward map on (r, g, b, 1): C = T_last @ ... @ T_first
        fired = torch.zeros([n], dtype=torch.bool, device=dev)
        if self.brightness > 0:
            b, fire = r.normal([n], self.brightness, self.brightness_std)
            b = b.to(mdtype)
            cm = _compose(mat({(0, 3): b, (1, 3): b, (2, 3): b}), cm)
            fired |= fire
        if self.contrast > 0:
            s, fire = r.lognormal(self.contrast, self.contrast_std)
            s = s.to(mdtype)
            cm = _compose(mat({(0, 0): s, (1, 1): s, (2, 2): s}), cm)
            fired |= fire
        v = torch.tensor([1, 1, 1, 0], device=dev, dtype=mdtype) / math.sqrt(3)  # luma axis
        vv = torch.outer(v, v)
        eye = torch.eye(4, device=dev, dtype=mdtype)
        if self.lumaflip > 0:
            i, fire = r.uniform_int(2, self.lumaflip)
            # Householder reflection through the plane orthogonal to the luma axis.
            cm = _compose(eye - 2 * vv * i.to(mdtype)[:, None, None], cm)
            fired |= fire
        if self.hue > 0 and c > 1:
            theta, fire = r.uniform([n], self.hue, math.pi * self.hue_max)
            theta = theta.to(mdtype)[:, None, None]
            # Rodrigues: rotation by theta about the luma axis.
            cross = torch.zeros([4, 4], device=dev, dtype=mdtype)
            cross[:3, :3] = torch.tensor([[0, -1, 1], [1, 0, -1], [-1, 1, 0]], device=dev, dtype=mdtype) / math.sqrt(3)
            rot = eye + torch.sin(theta) * cross + (1 - torch.cos(theta)) * (vv - eye + torch.diag(torch.tensor(
                [0, 0, 0, 1], device=dev, dtype=mdtype)))
            cm = _compose(rot, cm)
            fired |= fire
        if self.saturation > 0 and c > 1:
            s, fire = r.lognormal(self.saturation, self.saturation_std)
            s = s.to(mdtype)[:, None, None]
            cm = _compose(vv + (eye - vv) * s, cm)
            fired |= fire
        if cm is None:
            return images
        cm = cm.to(images.dtype)
        if c == 3:
            # Explicit multiply-adds rather than a matmul: no TF32 rounding on GPUs that allow it.
            y = (cm[:, :3, :3, None, None] * images[:, None]).sum(dim=2) + cm[:, :3, 3, None, None]
        else:
            gain = cm[:, :3, :3].sum(dim=2).mean(dim=1)
            offset = cm[:, :3, 3].mean(dim=1)
            y = images * gain[:, None, None, None] + offset[:, None, None, None]
        return torch.where(fired[:, None, None, None], y, images)

    # ------------------------------------------------------------------------
    # Image-space filtering and corruptions.

    def _imgfilter(self, images, r):
        if self.imgfilter <= 0:
            return images
        n, c, h, w = images.shape
        dev = images.device
        bank = self.Hz_fbank
        num_bands, taps = bank.shape
        expected = torch.tensor(IMGFILTER_EXPECTED_POWER, device=dev)
        g = torch.ones([n, num_bands], device=dev)
        fired = torch.zeros([n], dtype=torch.bool, device=dev)
        for i, strength in enumerate(self.imgfilter_bands):
            t_i, fire = r.lognormal(self.imgfilter * strength, self.imgfilter_std, enabled=strength > 0)
            t = torch.ones([n, num_bands], device=dev)
            t[:, i] = t_i
            # Renormalise so that an image with the expected spectrum keeps its power.
            t = t / (expected * t.square()).sum(dim=1, keepdim=True).sqrt()
            g = g * t
            fired |= fire
        kernel = (g @ bank).to(images.dtype)                 # [N, taps], symmetric
        kernel = kernel.repeat_interleave(c, dim=0)          # one per (sample, channel)
        pad = taps // 2
        x = reflect_pad(images, [pad, pad, pad, pad]).reshape(1, n * c, h + 2 * pad, w + 2 * pad)
        x = conv2d_gradfix.conv2d(x, kernel[:, None, None, :], groups=n * c)
        x = conv2d_gradfix.conv2d(x, kernel[:, None, :, None], groups=n * c)
        x = x.reshape(n, c, h, w)
        return torch.where(fired[:, None, None, None], x, images)

    def _noise(self, images, r):
        if self.noise <= 0:
            return images
        n, c, h, w = images.shape
        sigma, fire = r.halfnormal(self.noise, self.noise_std)
        z = torch.randn([n, c, h, w], device=images.device).to(images.dtype)
        noisy = images + z * sigma.to(images.dtype)[:, None, None, None]
        return torch.where(fire[:, None, None, None], noisy, images)

    def _cutout(self, images, r):
        if self.cutout <= 0:
            return images
        n, c, h, w = images.shape
        dev = images.device
        fire = r.fire(self.cutout)
        center = torch.rand([n, 2], device=dev)
        if r.q is not None:
            center = torch.full_like(center, r.q)
        half = self.cutout_size / 2
        u = (torch.arange(w, device=dev) + 0.5) / w
        v = (torch.arange(h, device=dev) + 0.5) / h
        keep_x = (u[None, :] - center[:, 0:1]).abs() >= half          # [N, W]
        keep_y = (v[None, :] - center[:, 1:2]).abs() >= half          # [N, H]
        keep = keep_x[:, None, None, :] | keep_y[:, None, :, None]    # [N, 1, H, W]
        keep = keep | ~fire[:, None, None, None]
        return images * keep.to(images.dtype)


def _reflect_index(i, size):
    """Map integer positions into [0, size) by mirroring about the edge pixels (no edge repeat)."""
    if size == 1:
        return torch.zeros_like(i)
    period = 2 * (size - 1)
    m = torch.remainder(i, period)
    return torch.where(m < size, m, period - m)


def reflect_pad(x, pads):
    """Pad [x0, x1, y0, y1] pixels by reflection without repeating the edge pixel, like
    ``numpy.pad(mode='reflect')``; unlike torch's reflect padding, pads may exceed the image size."""
    px0, px1, py0, py1 = (int(v) for v in pads)
    if min(px0, px1, py0, py1) < 0:
        raise ValueError(f'reflect_pad: pads must be >= 0, got {list(pads)}')
    x = _reflect_pad_axis(x, px0, px1, 3)
    return _reflect_pad_axis(x, py0, py1, 2)


def _reflect_pad_axis(x, p0, p1, dim):
    n = x.shape[dim]
    if p0 == 0 and p1 == 0:
        return x
    if p0 < n and p1 < n:
        pad = [p0, p1, 0, 0] if dim == 3 else [0, 0, p0, p1]
        return torch.nn.functional.pad(x, pad, mode='reflect')
    if n == 1:
        return x.expand(*[n + p0 + p1 if d == dim else -1 for d in range(x.ndim)]).contiguous()
    # The reflected extension is periodic with period 2n - 2: tile one period and cut the window.
    # (Slicing, concatenation and tiling have cheap derivatives, unlike an index gather.)
    period = torch.cat([x, x.flip(dim).narrow(dim, 1, n - 2)], dim=dim)
    size = 2 * n - 2
    start = (-p0) % size
    total = p0 + n + p1
    reps = [1] * x.ndim
    reps[dim] = -(-(start + total) // size)
    return period.repeat(reps).narrow(dim, start, total)

# ----------------------------------------------------------------------------


class _Draws:
    """Per-sample random parameters and firing decisions, in a fixed order of generator calls.

    Every draw takes its parameter first, then its firing decision, both on `device` in float32, so
    the stream of random numbers depends only on the batch size and the enabled transformations.
    With a debug percentile q, every enabled draw fires with its parameter at the q-quantile.
    """

    def __init__(self, n, device, p, q):
        self.n = n
        self.device = device
        self.p = p
        self.q = q
        self.z_q = None if q is None else statistics.NormalDist().inv_cdf(q)

    def fire(self, multiplier, prob=None, enabled=True):
        prob = multiplier * self.p if prob is None else prob
        fire = torch.rand([self.n], device=self.device) < prob
        if self.q is not None:
            fire = torch.full_like(fire, bool(enabled))
        return fire

    def _finish(self, value, fire, identity, debug_value, enabled=True):
        if self.q is not None:
            value = torch.full_like(value, debug_value if enabled else identity)
        shape = [self.n] + [1] * (value.ndim - 1)
        return torch.where(fire.reshape(shape), value, torch.full_like(value, identity)), fire

    def uniform_int(self, count, multiplier):
        """i uniform in {0, ..., count - 1}; 0 when not fired."""
        i = torch.floor(torch.rand([self.n], device=self.device) * count)
        fire = self.fire(multiplier)
        return self._finish(i, fire, 0.0, None if self.q is None else float(math.floor(self.q * count)))

    def uniform(self, shape, multiplier, half_range, prob=None, debug_value=None):
        """Uniform in [-half_range, half_range); 0 when not fired."""
        t = (torch.rand(shape, device=self.device) * 2 - 1) * half_range
        fire = self.fire(multiplier, prob)
        if debug_value is None and self.q is not None:
            debug_value = (2 * self.q - 1) * half_range
        return self._finish(t, fire, 0.0, debug_value)

    def normal(self, shape, multiplier, std):
        """Normal with mean 0; 0 when not fired."""
        t = torch.randn(shape, device=self.device) * std
        fire = self.fire(multiplier)
        return self._finish(t, fire, 0.0, None if self.q is None else self.z_q * std)

    def lognormal(self, multiplier, std, enabled=True):
        """2 ** N(0, std^2); 1 when not fired."""
        s = torch.exp2(torch.randn([self.n], device=self.device) * std)
        fire = self.fire(multiplier, enabled=enabled)
        return self._finish(s, fire, 1.0, None if self.q is None else 2.0 ** (self.z_q * std), enabled=enabled)

    def halfnormal(self, multiplier, std):
        """|N(0, std^2)|; 0 when not fired."""
        s = torch.randn([self.n], device=self.device).abs() * std
        fire = self.fire(multiplier)
        debug = None if self.q is None else statistics.NormalDist().inv_cdf((1 + self.q) / 2) * std
        return self._finish(s, fire, 0.0, debug)
