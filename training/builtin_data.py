"""The embedded default data set: scikit-learn's 8x8 handwritten digits, upscaled to a power of two.

The 1,797 UCI digits ship inside the scikit-learn wheel, so training, tests and demos work with no
files at all. Pixel values 0..16 are mapped to uint8 by round(v * 255 / 16) and the 8x8 images are
upscaled with PIL's Lanczos filter on the uint8 image (the same path `dataset_tool.py --resize-filter=
lanczos` takes, so a converted zip and the in-memory data set agree pixel for pixel). Labels are the
digit classes 0..9.

Names accepted wherever `--data` or `--source` is parsed:

    builtin:digits         32x32, 1 channel (the default of train.py)
    builtin:digits<N>      N x N for N in 8, 16, 32, 64, 128, 256 (8 = the native pixels, no resampling)
    ...-rgb                the same with the gray value copied into 3 channels (for networks or
                           metrics that insist on RGB)

scikit-learn is imported only when the images are first needed.
"""

from __future__ import annotations

import functools
import re

import numpy as np

BUILTIN_PREFIX = 'builtin:'
DEFAULT_DATA = 'builtin:digits'
DIGITS_NATIVE_RESOLUTION = 8
DIGITS_DEFAULT_RESOLUTION = 32
DIGITS_RESOLUTIONS = (8, 16, 32, 64, 128, 256)
DIGITS_CLASS_NAMES = [str(d) for d in range(10)]
_NAME_RE = re.compile(r'digits(\d+)?(-rgb)?')


def is_builtin(data: str) -> bool:
    """True when `data` names an embedded data set rather than a path."""
    return isinstance(data, str) and data.startswith(BUILTIN_PREFIX)


def parse_builtin_name(data: str) -> tuple[int, int]:
    """Map 'builtin:digits[<N>][-rgb]' to (resolution, channels); ValueError naming the accepted forms."""
    assert is_builtin(data)
    m = _NAME_RE.fullmatch(data[len(BUILTIN_PREFIX):])
    if m is None:
        raise ValueError(f'unknown built-in data set {data!r}: expected builtin:digits, '
                         f'builtin:digits<N> with N in {list(DIGITS_RESOLUTIONS)}, optionally followed by -rgb')
    resolution = int(m.group(1)) if m.group(1) is not None else DIGITS_DEFAULT_RESOLUTION
    if resolution not in DIGITS_RESOLUTIONS:
        raise ValueError(f'built-in data set {data!r}: resolution must be one of {list(DIGITS_RESOLUTIONS)}')
    channels = 3 if m.group(2) else 1
    return resolution, channels


def builtin_name(resolution: int, channels: int) -> str:
    """Inverse of parse_builtin_name (with the explicit resolution)."""
    return f'{BUILTIN_PREFIX}digits{resolution}' + ('-rgb' if channels == 3 else '')


def validate_digits_args(resolution: int, channels: int) -> None:
    if resolution not in DIGITS_RESOLUTIONS:
        raise ValueError(f'digits: resolution must be one of {list(DIGITS_RESOLUTIONS)}, got {resolution!r}')
    if channels not in (1, 3):
        raise ValueError(f'digits: channels must be 1 or 3, got {channels!r}')


@functools.lru_cache(maxsize=None)
def _native_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # heavy import, only when the data is wanted
    bunch = load_digits()
    values = np.asarray(bunch.images, dtype=np.float64)
    assert values.shape[1:] == (8, 8) and values.min() >= 0 and values.max() <= 16
    images = np.round(values * (255.0 / 16.0)).astype(np.uint8)
    labels = np.asarray(bunch.target, dtype=np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


@functools.lru_cache(maxsize=8)
def load_digits_images(resolution: int = DIGITS_DEFAULT_RESOLUTION, channels: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Return (images uint8 [N, H, W, C], labels int64 [N]), read-only and cached per process."""
    import PIL.Image
    validate_digits_args(resolution, channels)
    native, labels = _native_digits()
    if resolution == DIGITS_NATIVE_RESOLUTION:
        images = native.copy()
    else:
        images = np.stack([np.asarray(PIL.Image.fromarray(img).resize(
            (resolution, resolution), PIL.Image.Resampling.LANCZOS)) for img in native])
    images = np.repeat(images[..., np.newaxis], channels, axis=3)
    images.setflags(write=False)
    return images, labels
