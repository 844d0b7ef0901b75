"""Classifiers that label images for the category-coverage metric (and any classifier-based score).

* CIFAR-10: the ResNet-20/56 of He et al. (2016) in its CIFAR form with parameter-free "option A"
  shortcuts (stride-2 subsampling plus zero-padded channels), matching the pretrained weights of the
  public repository akamaster/pytorch_resnet_cifar10 (files resnet20-12fca82f.th, resnet56-4bfd9763.th).
  Those files are old-style pickles; `convert_cifar_resnet` turns a known file (checked by SHA-256 before
  it is unpickled) into a plain state dict once, after which it is always loaded with weights_only=True.
  Input: RGB 32x32 in [0, 1], normalised with the ImageNet mean/std the weights were trained with.
* MNIST: a small CNN trained by this project (`train_mnist_classifier`, or
  ``python -m metrics.classifiers train-mnist --data mnist.npz``); takes 28x28 digits, or 32x32 digits
  centre-padded by 2 pixels (which it crops back).
* scikit-learn's 8x8 digits (the embedded data set, builtin:digits<N>): a small CNN per resolution, trained
  by this project on 4/5 of the 1,797 images exactly as the data set serves them (`train_digits_classifier`;
  deterministic, a few seconds on a CPU) and tested on the other 1/5. It needs no download, so it is
  trained on first use and cached as sklearn-digits<N>-cnn.pt.

Saved classifiers are dicts of tensors, numbers and strings (format 'gan-metrics-classifier') in the
metrics cache folder or --detector-dir.
"""

from __future__ import annotations

import io
import os
import time
import zipfile

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import dnnlib
from metrics.detectors import Detector, file_digest
from metrics.errors import DetectorUnavailable, MetricError

FORMAT = 'gan-metrics-classifier'
CIFAR10_CLASSES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck')
CIFAR_MEAN = (0.485, 0.456, 0.406)
CIFAR_STD = (0.229, 0.224, 0.225)
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081

# Pretrained CIFAR ResNets we agree to unpickle, by file name: (depth, SHA-256 of the file).
KNOWN_CIFAR_RESNETS = {
    'resnet20-12fca82f.th': (20, '12fca82f0bebc4135bf1f32f6e3710e61d5108578464b84fd6d7f5c1b04036c8'),
    'resnet56-4bfd9763.th': (56, '4bfd97631478d6b638d2764fd2baff3edb1d7d82252d54439343b6596b9b5367'),
}
CIFAR_RESNET_URL = 'https://github.com/akamaster/pytorch_resnet_cifar10/raw/master/pretrained_models/{}'
MNIST_CLASSIFIER_FILENAME = 'mnist-cnn.pt'
DIGITS_CLASSIFIER_RESOLUTIONS = (8, 16, 32, 64)


def digits_classifier_filename(resolution: int) -> str:
    return f'sklearn-digits{resolution}-cnn.pt'


def cifar_resnet_filename(depth: int) -> str:
    return f'cifar10-resnet{depth}.pt'

# ----------------------------------------------------------------------------
# CIFAR ResNet.


class _BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int):  # channels in/out; stride 1 or 2
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.stride = stride
        self.pad = (planes - in_planes) // 2

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x
        if self.stride != 1 or self.pad:
            # Option A: no parameters, so the pretrained state dicts have none for the shortcut.
            shortcut = F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(out + shortcut)


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32x32 CIFAR images; layer names match the akamaster checkpoints."""

    def __init__(self, depth: int = 20, num_classes: int = 10):  # depth: 20, 32, 44, 56, 110 ...; classes of the head
        super().__init__()
        if (depth - 2) % 6 != 0:
            raise ValueError(f'CIFAR ResNet depth must be 6n+2, got {depth}')
        n = (depth - 2) // 6
        self.depth = depth
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        blocks, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            layer = []
            for i in range(n):
                layer.append(_BasicBlock(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes
            blocks.append(nn.Sequential(*layer))
        self.layer1, self.layer2, self.layer3 = blocks
        self.linear = nn.Linear(64, num_classes)
        self.register_buffer('mean', torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(CIFAR_STD).view(1, 3, 1, 1), persistent=False)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 RGB NCHW 32x32 -> normalised float."""
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[2:] != (32, 32):
            raise MetricError(f'the CIFAR-10 ResNet takes RGB 32x32 images, got shape {tuple(images.shape)}')
        return (images.to(torch.float32) / 255 - self.mean) / self.std

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.embed(x))


# ----------------------------------------------------------------------------
# MNIST CNN.


class MnistCNN(nn.Module):
    """Two 5x5 conv + max-pool stages and two linear layers (about 0.2M parameters)."""

    def __init__(self, channels: int = 16, hidden: int = 128, num_classes: int = 10):  # width of conv1 (conv2 has twice); hidden units; classes
        super().__init__()
        self.channels, self.hidden, self.num_classes = channels, hidden, num_classes
        self.conv1 = nn.Conv2d(1, channels, 5, padding=2)
        self.conv2 = nn.Conv2d(channels, 2 * channels, 5, padding=2)
        self.fc1 = nn.Linear(2 * channels * 7 * 7, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)
        self.drop = nn.Dropout(0.25)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 gray NCHW 28x28, or 32x32 centre-padded digits -> normalised float 28x28."""
        if images.ndim != 4 or images.shape[1] != 1 or tuple(images.shape[2:]) not in ((28, 28), (32, 32)):
            raise MetricError(f'the MNIST classifier takes 1-channel 28x28 or 32x32 images, got shape {tuple(images.shape)}')
        if images.shape[2] == 32:
            images = images[:, :, 2:30, 2:30]
        return (images.to(torch.float32) / 255 - MNIST_MEAN) / MNIST_STD

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return F.relu(self.fc1(x.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(self.embed(x)))


class DigitsCNN(nn.Module):
    """Classifier of the embedded scikit-learn digits at one resolution: two 3x3 conv + max-pool stages,
    average-pooled to 4x4, and two linear layers (about 40k parameters). 1- or 3-channel input (RGB
    copies of the gray value are averaged back)."""

    def __init__(self, resolution: int = 16, channels: int = 16, hidden: int = 64, num_classes: int = 10):  # input size; conv1 width (conv2 twice); hidden units; classes
        super().__init__()
        if resolution not in DIGITS_CLASSIFIER_RESOLUTIONS:
            raise ValueError(f'digits classifier resolution must be one of {list(DIGITS_CLASSIFIER_RESOLUTIONS)}, got {resolution!r}')
        self.resolution, self.channels, self.hidden, self.num_classes = resolution, channels, hidden, num_classes
        self.conv1 = nn.Conv2d(1, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, 2 * channels, 3, padding=1)
        self.fc1 = nn.Linear(2 * channels * 16, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 NCHW (1 or 3 channels) at the trained resolution -> float in [-1, 1], one channel."""
        r = self.resolution
        if images.ndim != 4 or images.shape[1] not in (1, 3) or tuple(images.shape[2:]) != (r, r):
            raise MetricError(f'the {r}x{r} digits classifier takes 1- or 3-channel {r}x{r} images, got shape {tuple(images.shape)}')
        return images.to(torch.float32).mean(dim=1, keepdim=True) / 127.5 - 1

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        if self.resolution >= 16:
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        else:
            x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.adaptive_avg_pool2d(x, 4) if self.resolution > 8 else F.max_pool2d(x, 2)
        return F.relu(self.fc1(x.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.embed(x))


# ----------------------------------------------------------------------------
# Saving and loading plain state dicts.


def _build(arch: str, kwargs: dict) -> nn.Module:
    if arch == 'cifar_resnet':
        return CifarResNet(**kwargs)
    if arch == 'mnist_cnn':
        return MnistCNN(**kwargs)
    if arch == 'digits_cnn':
        return DigitsCNN(**kwargs)
    raise MetricError(f'unknown classifier architecture {arch!r}')


def save_classifier(net: nn.Module, path: str, info: dict | None = None) -> None:
    """Write {'format', 'arch', 'kwargs', 'state_dict', 'info'} atomically (loadable with weights_only=True)."""
    from torch_utils.checkpoint import atomic_save
    if isinstance(net, CifarResNet):
        arch, kwargs = 'cifar_resnet', dict(depth=net.depth, num_classes=net.num_classes)
    elif isinstance(net, MnistCNN):
        arch, kwargs = 'mnist_cnn', dict(channels=net.channels, hidden=net.hidden, num_classes=net.num_classes)
    elif isinstance(net, DigitsCNN):
        arch, kwargs = 'digits_cnn', dict(resolution=net.resolution, channels=net.channels, hidden=net.hidden,
                                          num_classes=net.num_classes)
    else:
        raise TypeError(f'cannot save a {type(net).__name__} as a metrics classifier')
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    atomic_save(dict(format=FORMAT, arch=arch, kwargs=kwargs, state_dict=state, info=dict(info or {})), path)


def load_classifier(path: str, device='cpu') -> tuple[nn.Module, dict]:
    """Load a saved classifier (never unpickling code). Returns (network in eval mode, info)."""
    try:
        obj = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # noqa: BLE001 - any refusal or corruption is reported the same way
        raise DetectorUnavailable(f'{path}: not a loadable classifier ({str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__})') from None
    if not isinstance(obj, dict) or obj.get('format') != FORMAT:
        raise DetectorUnavailable(f'{path}: not a {FORMAT} file')
    net = _build(obj['arch'], dict(obj['kwargs']))
    net.load_state_dict(obj['state_dict'])
    return net.eval().requires_grad_(False).to(device), dict(obj.get('info', {}))


def convert_cifar_resnet(src: str, dst: str, name: str | None = None) -> str:
    """Convert one of the known akamaster checkpoints into a plain classifier file.

    Risk: the source is an old-style pickle, which can execute arbitrary code when unpickled. We only
    unpickle a file whose SHA-256 equals the published file's, so a tampered or unknown file is refused
    before it is opened by the unpickler. `name` is the published file name (default: the basename of src).
    """
    name = name or os.path.basename(src)
    if name not in KNOWN_CIFAR_RESNETS:
        raise MetricError(f'{src}: unknown CIFAR ResNet checkpoint; expected one of {sorted(KNOWN_CIFAR_RESNETS)}')
    depth, sha = KNOWN_CIFAR_RESNETS[name]
    if file_digest(src, 'sha256') != sha:
        raise MetricError(f'{src}: SHA-256 differs from the published {name}; refusing to unpickle it')
    obj = torch.load(src, map_location='cpu', weights_only=False)  # safe only because the digest matched
    state = {k.removeprefix('module.'): v for k, v in obj['state_dict'].items()}
    net = CifarResNet(depth=depth)
    net.load_state_dict(state)
    save_classifier(net, dst, info=dict(source=name, source_sha256=sha, reported_top1=float(obj.get('best_prec1', float('nan')))))
    return dst


def _search(filename: str, detector_dir: str | None, cache_dir: str | None) -> str | None:
    """detector_dir, then cache_dir, then the default metrics cache (where train-mnist / convert-cifar write)."""
    for folder in (detector_dir, cache_dir, dnnlib.make_cache_dir_path('gan-metrics')):
        if folder is not None:
            path = os.path.join(os.path.expanduser(folder), filename)
            if os.path.isfile(path):
                return path
    return None


def get_cifar_resnet(depth: int = 20, device='cpu', detector_dir=None, cache_dir=None, allow_download=False):
    """The CIFAR-10 ResNet: the converted file if present, else convert the original found in
    detector_dir / cache_dir (or downloaded when allowed) and cache the result."""
    cache_dir = cache_dir if cache_dir is not None else dnnlib.make_cache_dir_path('gan-metrics')
    path = _search(cifar_resnet_filename(depth), detector_dir, cache_dir)
    if path is None:
        original = {d: n for n, (d, _sha) in KNOWN_CIFAR_RESNETS.items()}.get(depth)
        if original is None:
            raise DetectorUnavailable(f'no pretrained CIFAR ResNet-{depth} is known (have 20 and 56)')
        src = _search(original, detector_dir, cache_dir)
        if src is None and allow_download:
            src = dnnlib.util.open_url(CIFAR_RESNET_URL.format(original), return_filename=True)
        if src is None:
            raise DetectorUnavailable(f'CIFAR-10 classifier not found: put {original} ({CIFAR_RESNET_URL.format(original)}) '
                                      f'in --detector-dir, or run python -m metrics.classifiers convert-cifar --src {original}')
        path = convert_cifar_resnet(src, os.path.join(cache_dir, cifar_resnet_filename(depth)), name=original)
    net, info = load_classifier(path, device)
    return ClassifierDetector(net, f'cifar10-resnet{depth}-{file_digest(path)[:12]}',
                              f'CIFAR-10 ResNet-{depth} ({info.get("source", os.path.basename(path))})')


def get_mnist_classifier(device='cpu', detector_dir=None, cache_dir=None):
    path = _search(MNIST_CLASSIFIER_FILENAME, detector_dir, cache_dir)
    if path is None:
        raise DetectorUnavailable(f'MNIST classifier not found ({MNIST_CLASSIFIER_FILENAME} in --detector-dir or the cache): '
                                  f'train it once with python -m metrics.classifiers train-mnist --data mnist.npz')
    net, info = load_classifier(path, device)
    acc = info.get('test_accuracy')
    return ClassifierDetector(net, f'mnist-cnn-{file_digest(path)[:12]}',
                              'MNIST CNN' + (f' (test accuracy {acc:.4f})' if isinstance(acc, float) else ''))


def get_digits_classifier(resolution: int, device='cpu', detector_dir=None, cache_dir=None, verbose=False):
    """The embedded-digits classifier at this resolution: the cached file, or trained now (seconds) and cached."""
    if resolution not in DIGITS_CLASSIFIER_RESOLUTIONS:
        raise MetricError(f'the digits classifier exists for resolutions {list(DIGITS_CLASSIFIER_RESOLUTIONS)}, not {resolution}')
    filename = digits_classifier_filename(resolution)
    path = _search(filename, detector_dir, cache_dir)
    if path is None:
        path = os.path.join(os.path.expanduser(cache_dir if cache_dir is not None else dnnlib.make_cache_dir_path('gan-metrics')), filename)
        train_digits_classifier(resolution, path, verbose=verbose)
    net, info = load_classifier(path, device)
    acc = info.get('test_accuracy')
    return ClassifierDetector(net, f'digits{resolution}-cnn-{file_digest(path)[:12]}',
                              f'{resolution}x{resolution} digits CNN' + (f' (held-out accuracy {acc:.4f})' if isinstance(acc, float) else ''))


def is_digits_dataset(dataset_kwargs) -> bool:
    return bool(dataset_kwargs) and dataset_kwargs.get('class_name') == 'training.dataset.DigitsDataset'


def classifier_for_images(channels: int, resolution: int, device='cpu', detector_dir=None, cache_dir=None,
                          allow_download=False, dataset_kwargs=None):
    """The project's classifier for images of this shape: the embedded-digits CNN when the real data are the
    embedded digits (any of its resolutions up to 64) or for 1-channel 8/16 px, MNIST CNN for other 1-channel
    28/32, CIFAR-10 ResNet-20 for 3-channel 32; anything else is refused."""
    digits = is_digits_dataset(dataset_kwargs)
    if (digits and resolution in DIGITS_CLASSIFIER_RESOLUTIONS) or (channels == 1 and resolution in (8, 16)):
        return get_digits_classifier(resolution, device, detector_dir, cache_dir)
    if channels == 1 and resolution in (28, 32):
        return get_mnist_classifier(device, detector_dir, cache_dir)
    if channels == 3 and resolution == 32:
        return get_cifar_resnet(20, device, detector_dir, cache_dir, allow_download)
    raise MetricError(f'category coverage has classifiers for the embedded digits (8-64 px), 1-channel 8/16 px '
                      f'(digits), 1-channel 28x28/32x32 (MNIST) and 3-channel 32x32 (CIFAR-10) images, '
                      f'not {channels}-channel {resolution}x{resolution}')


class ClassifierDetector(Detector):
    """A classifier as a detector: penultimate-layer features and softmax probabilities."""

    def __init__(self, net: nn.Module, name: str, description: str = ''):  # net with preprocess/embed/forward; cache id; text for reports
        self.net = net.eval().requires_grad_(False)
        self.name = name
        self.description = description or name
        self.num_classes = net.num_classes
        self.device = next(net.parameters()).device

    @torch.no_grad()
    def features(self, images):
        return self.net.embed(self.net.preprocess(images.to(self.device))).to(torch.float32)

    @torch.no_grad()
    def probabilities(self, images):
        return torch.softmax(self.net(self.net.preprocess(images.to(self.device))).to(torch.float32), dim=1)

    @torch.no_grad()
    def predict(self, images):
        return self.net(self.net.preprocess(images.to(self.device))).argmax(1)


# ----------------------------------------------------------------------------
# Training the MNIST classifier and measuring accuracies.


def load_mnist_npz(path: str):
    with np.load(path, allow_pickle=False) as d:
        return d['x_train'], d['y_train'], d['x_test'], d['y_test']


@torch.no_grad()
def accuracy(net: nn.Module, images_uint8: np.ndarray, labels: np.ndarray, batch_size: int = 500) -> float:
    """Top-1 accuracy of a classifier (with .preprocess) on uint8 NCHW images."""
    net.eval()
    correct = 0
    for s in range(0, len(labels), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(images_uint8[s:s + batch_size]))
        pred = net(net.preprocess(x)).argmax(1).numpy()
        correct += int((pred == np.asarray(labels[s:s + batch_size])).sum())
    return correct / len(labels)


def train_mnist_classifier(npz_path: str, out_path: str | None = None, epochs: int = 5, batch_size: int = 128,
                           lr: float = 2e-3, max_train: int | None = None, max_test: int | None = None,
                           seed: int = 0, verbose: bool = True) -> dict:
    """Train MnistCNN on mnist.npz (Adam, cosine-decayed learning rate, random +-2 pixel shifts).

    Returns dict(net, test_accuracy, train_time_s, losses); writes the classifier to out_path when given.
    """
    x_train, y_train, x_test, y_test = load_mnist_npz(npz_path)
    if max_train is not None:
        x_train, y_train = x_train[:max_train], y_train[:max_train]
    if max_test is not None:
        x_test, y_test = x_test[:max_test], y_test[:max_test]
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = MnistCNN()
    xs = torch.from_numpy(x_train).unsqueeze(1)
    ys = torch.from_numpy(y_train.astype(np.int64))
    steps_per_epoch = -(-len(ys) // batch_size)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.15)
    losses = []
    start = time.time()
    for epoch in range(epochs):
        net.train()
        perm = torch.randperm(len(ys), generator=gen)
        for s in range(0, len(ys), batch_size):
            idx = perm[s:s + batch_size]
            x = net.preprocess(xs[idx])
            # Small random translations: padded by 2 then cropped back, one offset per batch.
            dy, dx = torch.randint(0, 5, [2], generator=gen).tolist()
            x = F.pad(x, (2, 2, 2, 2), value=-MNIST_MEAN / MNIST_STD)[:, :, dy:dy + 28, dx:dx + 28]
            loss = F.cross_entropy(net(x), ys[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        if verbose:
            print(f'epoch {epoch + 1}/{epochs}: loss {np.mean(losses[-steps_per_epoch:]):.4f} ({time.time() - start:.0f} s)', flush=True)
    train_time = time.time() - start
    test_acc = accuracy(net, x_test[:, None], y_test)
    if verbose:
        print(f'test accuracy {test_acc:.4f} on {len(y_test)} images; training took {train_time:.0f} s', flush=True)
    if out_path is not None:
        save_classifier(net, out_path, info=dict(test_accuracy=float(test_acc), train_time_s=float(train_time),
                                                 epochs=int(epochs), train_images=int(len(ys))))
    return dict(net=net.eval(), test_accuracy=test_acc, train_time_s=train_time, losses=losses)


def train_digits_classifier(resolution: int = 16, out_path: str | None = None, epochs: int = 30, batch_size: int = 64,
                            lr: float = 3e-3, seed: int = 0, verbose: bool = True) -> dict:
    """Train DigitsCNN on the embedded digits at `resolution` as the data set serves them (Lanczos-upscaled).

    Images with index % 5 == 0 (360 of 1,797) are held out for the reported accuracy; the rest train with
    Adam, a one-cycle learning rate and random shifts of up to one native pixel. The global torch RNG is
    left untouched (a training run that triggers this keeps its exact-resume streams). Returns dict(net,
    test_accuracy, train_time_s); writes the classifier to out_path when given.
    """
    from training import builtin_data
    images, labels = builtin_data.load_digits_images(resolution, 1)
    x = torch.from_numpy(np.array(images.transpose(0, 3, 1, 2)))
    y = torch.from_numpy(np.array(labels, dtype=np.int64))
    test = torch.arange(len(y)) % 5 == 0
    x_train, y_train = x[~test], y[~test]
    shift = max(resolution // 8, 1)
    gen = torch.Generator().manual_seed(seed)
    start = time.time()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = DigitsCNN(resolution)
        steps_per_epoch = -(-len(y_train) // batch_size)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.2)
        net.train()
        for epoch in range(epochs):
            perm = torch.randperm(len(y_train), generator=gen)
            for s in range(0, len(y_train), batch_size):
                idx = perm[s:s + batch_size]
                xb = F.pad(net.preprocess(x_train[idx]), (shift,) * 4, value=-1.0)
                dy, dx = torch.randint(0, 2 * shift + 1, [2], generator=gen).tolist()
                xb = xb[:, :, dy:dy + resolution, dx:dx + resolution]
                loss = F.cross_entropy(net(xb), y_train[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    train_time = time.time() - start
    test_acc = accuracy(net, x[test].numpy(), y[test].numpy())
    if verbose:
        print(f'{resolution}x{resolution} digits classifier: held-out accuracy {test_acc:.4f} on {int(test.sum())} images; '
              f'training took {train_time:.1f} s', flush=True)
    if out_path is not None:
        save_classifier(net, out_path, info=dict(test_accuracy=float(test_acc), train_time_s=float(train_time),
                                                 epochs=int(epochs), train_images=int(len(y_train)), seed=int(seed)))
    return dict(net=net.eval(), test_accuracy=test_acc, train_time_s=train_time)


def load_cifar_jpeg_test(zip_path: str, per_class: int | None = None):
    """uint8 NCHW images and labels from train/test class folders of a CIFAR-10 JPEG zip (test split)."""
    import PIL.Image
    images, labels = [], []
    with zipfile.ZipFile(zip_path) as zf:
        names = sorted(n for n in zf.namelist() if n.startswith('test/') and n.lower().endswith(('.jpg', '.jpeg', '.png')))
        taken = {}
        for name in names:
            cls = name.split('/')[1]
            if cls not in CIFAR10_CLASSES:
                continue
            if per_class is not None and taken.get(cls, 0) >= per_class:
                continue
            taken[cls] = taken.get(cls, 0) + 1
            img = np.asarray(PIL.Image.open(io.BytesIO(zf.read(name))).convert('RGB'))
            images.append(img.transpose(2, 0, 1))
            labels.append(CIFAR10_CLASSES.index(cls))
    return np.stack(images), np.asarray(labels)


# ----------------------------------------------------------------------------
# Command line.


def _main():
    import click

    from dnnlib.cli import OneLineGroup

    @click.group(cls=OneLineGroup)
    def cli():
        """Prepare the classifiers used by the category-coverage metric."""

    @cli.command('train-mnist')
    @click.option('--data', 'data', required=True, type=click.Path(exists=True, dir_okay=False), help='mnist.npz (x_train, y_train, x_test, y_test)')
    @click.option('--out', type=click.Path(dir_okay=False), default=None, help='output file [default: <cache>/mnist-cnn.pt]')
    @click.option('--epochs', type=click.IntRange(min=1), default=5, show_default=True)
    @click.option('--seed', type=int, default=0, show_default=True)
    def train_mnist(data, out, epochs, seed):
        """Train the MNIST classifier once and store it as a plain state dict."""
        out = out or dnnlib.make_cache_dir_path('gan-metrics', MNIST_CLASSIFIER_FILENAME)
        train_mnist_classifier(data, out, epochs=epochs, seed=seed)
        print(f'saved {out}')

    @cli.command('convert-cifar')
    @click.option('--src', required=True, type=click.Path(exists=True, dir_okay=False), help='resnet20-12fca82f.th or resnet56-4bfd9763.th')
    @click.option('--out', type=click.Path(dir_okay=False), default=None, help='output file [default: <cache>/cifar10-resnet<depth>.pt]')
    def convert_cifar(src, out):
        """Convert a pretrained CIFAR-10 ResNet (SHA-256 checked) into a plain state dict."""
        name = os.path.basename(src)
        if name not in KNOWN_CIFAR_RESNETS:
            raise click.BadParameter(f'expected one of {sorted(KNOWN_CIFAR_RESNETS)}', param_hint='--src')
        out = out or dnnlib.make_cache_dir_path('gan-metrics', cifar_resnet_filename(KNOWN_CIFAR_RESNETS[name][0]))
        try:
            convert_cifar_resnet(src, out)
        except MetricError as e:
            raise click.ClickException(str(e)) from None
        print(f'saved {out}')

    @cli.command('eval-cifar')
    @click.option('--zip', 'zip_path', required=True, type=click.Path(exists=True, dir_okay=False), help='CIFAR-10 JPEG zip with test/<class>/*.jpg')
    @click.option('--depth', type=click.Choice(['20', '56']), default='20', show_default=True)
    @click.option('--per-class', type=click.IntRange(min=1), default=50, show_default=True)
    @click.option('--detector-dir', type=click.Path(file_okay=False), default=None)
    def eval_cifar(zip_path, depth, per_class, detector_dir):
        """Accuracy of the converted CIFAR ResNet on JPEG test images."""
        try:
            det = get_cifar_resnet(int(depth), detector_dir=detector_dir)
        except MetricError as e:
            raise click.ClickException(str(e)) from None
        x, y = load_cifar_jpeg_test(zip_path, per_class)
        print(f'{det.description}: accuracy {accuracy(det.net, x, y):.4f} on {len(y)} JPEG test images')

    cli(prog_name='python -m metrics.classifiers')


if __name__ == '__main__':
    _main()
