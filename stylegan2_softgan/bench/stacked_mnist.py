"""Stacked MNIST (1000 modes) and MNIST digits for the benchmarks: real data and the classifier that
labels generated samples.

A stacked sample is `channels` MNIST training digits drawn independently and uniformly, stacked as the
channels of one image (3 channels: R, G, B → 10³ modes; 1 channel: plain MNIST, for the digit-balance
suite). Pixels are scaled to [−1, 1]; resolution 28, or 32 with the digits centre-padded by 2 pixels.

Labels come from the project's MNIST classifier (metrics.classifiers: MnistCNN trained once on mnist.npz
and cached as a plain state dict). Before scoring anything, its accuracy is measured on the 10,000 MNIST
test digits; below `MIN_ACCURACY` the benchmark refuses to score.
"""

from __future__ import annotations

import os

import numpy as np
import torch

import dnnlib
from metrics import classifiers
from metrics.errors import DetectorUnavailable
from metrics.metric_utils import to_uint8

MIN_ACCURACY = 0.99


class StackedDigits:
    """Source of real stacked-digit images from the MNIST training digits."""

    def __init__(self, digits: np.ndarray,      # uint8 [N, 28, 28] MNIST training digits
                 labels: np.ndarray | None = None,  # their labels [N] (only used to report real statistics)
                 channels: int = 3,             # digits per sample (3: stacked MNIST, 1: MNIST)
                 resolution: int = 28,          # 28, or 32 (centre-padded)
                 ):
        digits = np.asarray(digits)
        if digits.ndim != 3 or digits.shape[1:] != (28, 28) or digits.dtype != np.uint8:
            raise ValueError(f'MNIST digits must be uint8 [N, 28, 28], got {digits.dtype} {digits.shape}')
        if channels not in (1, 3):
            raise ValueError(f'stacked digits need 1 or 3 channels, got {channels!r}')
        if resolution not in (28, 32):
            raise ValueError(f'stacked digits are 28x28 or 32x32, got resolution {resolution!r}')
        pad = (resolution - 28) // 2
        images = torch.from_numpy(digits).to(torch.float32) / 127.5 - 1
        self.images = torch.nn.functional.pad(images, (pad, pad, pad, pad), value=-1.0).contiguous()
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self.channels = channels
        self.resolution = resolution

    def sample(self, n: int, generator: torch.Generator, return_labels: bool = False):
        """n images [n, channels, res, res] in [−1, 1] (and their true digits [n, channels])."""
        idx = torch.randint(len(self.images), [n, self.channels], generator=generator)
        imgs = self.images[idx.flatten()].reshape(n, self.channels, self.resolution, self.resolution)
        if return_labels:
            if self.labels is None:
                raise ValueError('this source was built without labels')
            return imgs, self.labels[idx.numpy()]
        return imgs


def load_mnist(data_path: str):
    """(x_train, y_train, x_test, y_test) from mnist.npz, with a one-line error naming the file."""
    if not os.path.isfile(data_path):
        raise FileNotFoundError(f'{data_path}: MNIST file not found (expected mnist.npz with x_train, y_train, '
                                f'x_test, y_test)')
    try:
        return classifiers.load_mnist_npz(data_path)
    except (KeyError, ValueError, OSError) as e:
        raise ValueError(f'{data_path}: not a readable mnist.npz ({e})') from None


def get_classifier(data_path: str, cache_dir: str | None = None, detector_dir: str | None = None,
                   train_if_missing: bool = True, log=print):
    """The project's MNIST classifier (trained once and cached when absent) and its measured accuracy on
    the MNIST test set. Raises ValueError when the accuracy is below MIN_ACCURACY."""
    cache_dir = cache_dir if cache_dir is not None else dnnlib.make_cache_dir_path('gan-metrics')
    try:
        det = classifiers.get_mnist_classifier(detector_dir=detector_dir, cache_dir=cache_dir)
    except DetectorUnavailable:
        if not train_if_missing:
            raise
        out = os.path.join(cache_dir, classifiers.MNIST_CLASSIFIER_FILENAME)
        log(f'MNIST classifier not cached: training it once on {data_path} (about 5 CPU-minutes) -> {out}')
        classifiers.train_mnist_classifier(data_path, out, verbose=True)
        det = classifiers.get_mnist_classifier(detector_dir=detector_dir, cache_dir=cache_dir)
    _x_train, _y_train, x_test, y_test = load_mnist(data_path)
    acc = classifiers.accuracy(det.net, x_test[:, None], y_test)
    if acc < MIN_ACCURACY:
        raise ValueError(f'the MNIST classifier ({det.description}) has test accuracy {acc:.4f} < {MIN_ACCURACY}: '
                         f'refusing to score; retrain it with python -m metrics.classifiers train-mnist')
    return det, float(acc)


@torch.no_grad()
def label_channels(predict, images: torch.Tensor, batch_size: int = 1000) -> np.ndarray:
    """Per-channel digit predictions [N, C] of images [N, C, H, W] in [−1, 1]; `predict` maps uint8
    [n, 1, H, W] to class indices [n] (e.g. a ClassifierDetector's predict)."""
    if images.ndim != 4:
        raise ValueError(f'expected images [N, C, H, W], got shape {tuple(images.shape)}')
    n, c, h, w = images.shape
    flat = to_uint8(images.reshape(n * c, 1, h, w))
    out = []
    for s in range(0, n * c, batch_size):
        out.append(torch.as_tensor(predict(flat[s:s + batch_size])).cpu())
    return torch.cat(out).reshape(n, c).numpy().astype(np.int64)
