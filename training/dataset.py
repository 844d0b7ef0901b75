"""Training data sets in stylegan2-ada's format, plus the embedded digits.

Format (stylegan2-ada-pytorch compatible): an uncompressed zip archive or a folder of PNG/JPEG images,
all the same square power-of-two size with 1 (grayscale) or 3 (RGB) channels, and optionally a
`dataset.json` at the root holding `{"labels": [[relative/path.png, label], ...]}` where each label is
an integer class index (returned one-hot) or a list of floats (returned as is); `"labels": null` means
unlabelled. Items are `(image, label)`: image a uint8 numpy array [C, H, W], label a float32 vector
(length 0 when labels are not used).

Classes are built by name from JSON-able kwargs (the training loop and the metrics do that), e.g.
`open_dataset(make_dataset_kwargs('cifar10.zip', use_labels=True))`; only the classes registered with
`persistence.data_class` can be named that way (the kwargs may come from a snapshot file).
User-facing problems (missing path, empty archive, unreadable image, mismatched sizes, labels that do
not match the files) raise `DatasetError`, a ValueError whose message is one line naming the file.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
import zlib

import numpy as np
import PIL.Image
import torch

import dnnlib
from torch_utils import persistence
from training import builtin_data

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.webp')
LABELS_FILE = 'dataset.json'

# ----------------------------------------------------------------------------
# Shared helpers (dataset_tool.py uses them too).


class DatasetError(ValueError):
    """A problem with the user's data: the message is one line that names the file."""


def is_power_of_two(n: int) -> bool:
    return n >= 1 and (n & (n - 1)) == 0


def is_image_name(name: str) -> bool:
    """Image files by extension, skipping hidden files and macOS resource forks (`__MACOSX/`, `._x.png`)."""
    parts = name.replace('\\', '/').split('/')
    if any(p.startswith('.') or p == '__MACOSX' for p in parts if p):
        return False
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def decode_image(data: bytes, where: str, expect_size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode PNG/JPEG/... bytes to uint8 HWC with C in (1, 3). Palette and 1-bit images become RGB/gray;
    alpha, CMYK, 16-bit and float images are refused (the networks take 1 or 3 channels of 8 bits)."""
    try:
        with PIL.Image.open(io.BytesIO(data)) as img:
            if expect_size is not None and img.size != tuple(expect_size):    # from the header, before decoding
                raise DatasetError(f'{where}: image is {img.size[0]}x{img.size[1]}, but the data set is '
                                   f'{expect_size[0]}x{expect_size[1]}')
            img.load()  # PIL decodes lazily: force it so truncated files fail here, with the name attached
            mode = img.mode
            if mode == 'P':
                img = img.convert('RGBA' if 'transparency' in img.info else 'RGB')
                mode = img.mode
            elif mode == '1':
                img = img.convert('L')
                mode = 'L'
            if mode == 'L':
                array = np.asarray(img, dtype=np.uint8)[:, :, np.newaxis]
            elif mode == 'RGB':
                array = np.asarray(img, dtype=np.uint8)
            else:
                bands = len(img.getbands())
                if mode in ('I', 'I;16', 'I;16B', 'I;16L', 'F'):
                    raise DatasetError(f'{where}: {mode} image with more than 8 bits per pixel; '
                                       f'expected 8-bit grayscale or RGB')
                raise DatasetError(f'{where}: image has {bands} channels (mode {mode}); '
                                   f'expected 1 (grayscale) or 3 (RGB)')
    except DatasetError:
        raise
    except PIL.Image.DecompressionBombError as e:
        raise DatasetError(f'{where}: image too large to decode safely ({e})') from None
    except PIL.UnidentifiedImageError:
        raise DatasetError(f'{where}: not a readable image file') from None
    except (OSError, SyntaxError, ValueError, EOFError, zlib.error) as e:
        raise DatasetError(f'{where}: unreadable or truncated image ({_one_line(e)})') from None
    assert array.dtype == np.uint8 and array.ndim == 3
    return np.ascontiguousarray(array)


def _one_line(e: BaseException) -> str:
    return ' '.join(str(e).split()) or type(e).__name__


def parse_labels_json(text: bytes | str, where: str) -> dict[str, object] | None:
    """Parse a stylegan2-ada `dataset.json`; returns {relative path: label} or None for `"labels": null`."""
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f'{where}: invalid JSON ({_one_line(e)})') from None
    if not isinstance(obj, dict) or 'labels' not in obj:
        raise DatasetError(f'{where}: expected an object with a "labels" key')
    entries = obj['labels']
    if entries is None:
        return None
    if not isinstance(entries, list):
        raise DatasetError(f'{where}: "labels" must be a list of [filename, label] pairs or null')
    labels: dict[str, object] = {}
    for entry in entries:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)):
            raise DatasetError(f'{where}: each label entry must be [filename, label], got {json.dumps(entry)[:80]}')
        fname = entry[0].replace('\\', '/')
        if fname in labels:
            raise DatasetError(f'{where}: {fname} is labelled more than once')
        labels[fname] = entry[1]
    return labels


def labels_to_array(labels: list[object], names: list[str], where: str) -> np.ndarray:
    """Integer class labels -> int64 [N] (>= 0); vectors of numbers -> float32 [N, D]."""
    def is_int(x):
        return isinstance(x, int) and not isinstance(x, bool)

    def is_num(x):
        return isinstance(x, (int, float)) and not isinstance(x, bool)

    if all(is_int(x) for x in labels):
        array = np.asarray(labels, dtype=np.int64).reshape(len(labels))
        bad = np.flatnonzero(array < 0)
        if bad.size:
            raise DatasetError(f'{where}: negative class label {array[bad[0]]} for {names[bad[0]]}')
        return array
    if all(isinstance(x, list) for x in labels):
        dim = len(labels[0])
        for x, name in zip(labels, names):
            if len(x) != dim or not all(is_num(v) for v in x):
                raise DatasetError(f'{where}: label of {name} must be a list of {dim} numbers like the first one')
        return np.asarray(labels, dtype=np.float32).reshape(len(labels), dim)
    for x, name in zip(labels, names):
        if not (is_int(x) or isinstance(x, list)):
            raise DatasetError(f'{where}: label of {name} is {json.dumps(x)[:40]}; '
                               f'expected an integer class index or a list of numbers')
    raise DatasetError(f'{where}: mixes integer class labels and label vectors')


def match_labels(labels: dict[str, object], fnames: list[str], where: str) -> np.ndarray:
    """Labels in the order of `fnames`, requiring exactly one label per image and no label without one."""
    missing = [f for f in fnames if f not in labels]
    if missing:
        more = f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''
        raise DatasetError(f'{where}: no label for image {missing[0]}{more}')
    known = set(fnames)
    extra = [f for f in labels if f not in known]
    if extra:
        more = f' (and {len(extra) - 1} more)' if len(extra) > 1 else ''
        raise DatasetError(f'{where}: label for {extra[0]}{more}, but there is no such image')
    return labels_to_array([labels[f] for f in fnames], fnames, where)


# ----------------------------------------------------------------------------


class Dataset(torch.utils.data.Dataset):
    """Base class: index bookkeeping (subset, x-flips), labels, and the properties the training code reads.

    Subclasses provide `_load_raw_image(raw_idx) -> uint8 [C, H, W]` and `_load_raw_labels() -> None |
    int64 [N] | float32 [N, D]`, and may override `_raw_name(raw_idx)` for error messages.
    """

    def __init__(self,
        name,                   # Name of the data set (used in run descriptions and metric caches).
        raw_shape,              # Shape of the raw image data [N, C, H, W].
        max_size    = None,     # Keep at most this many images (a random, seeded subset, in order); None = all.
        use_labels  = False,    # Return the labels (one-hot for class indices); False = zero-length labels.
        xflip       = False,    # Double the data set with horizontally flipped copies (--mirror).
        random_seed = 0,        # Seed that picks the max_size subset.
    ):
        self._name = str(name)
        self._raw_shape = [int(x) for x in raw_shape]
        assert len(self._raw_shape) == 4, 'raw_shape must be [N, C, H, W]'
        self._use_labels = bool(use_labels)
        self._raw_labels = None
        self._label_shape = None

        num_raw = self._raw_shape[0]
        self._raw_idx = np.arange(num_raw, dtype=np.int64)
        if max_size is not None:
            if isinstance(max_size, bool) or not isinstance(max_size, (int, np.integer)) or max_size < 1:
                raise ValueError(f'{self._name}: max_size must be a positive integer or None, got {max_size!r}')
            if num_raw > max_size:
                order = np.random.RandomState(int(random_seed) % (1 << 32)).permutation(num_raw)
                self._raw_idx = np.sort(order[:int(max_size)])

        self._xflip = np.zeros(self._raw_idx.size, dtype=np.uint8)
        if xflip:
            self._raw_idx = np.tile(self._raw_idx, 2)
            self._xflip = np.concatenate([self._xflip, np.ones_like(self._xflip)])

    def _get_raw_labels(self) -> np.ndarray:
        if self._raw_labels is None:
            labels = self._load_raw_labels() if self._use_labels else None
            if labels is None:
                labels = np.zeros([self._raw_shape[0], 0], dtype=np.float32)
            assert isinstance(labels, np.ndarray) and labels.shape[0] == self._raw_shape[0]
            assert (labels.dtype == np.int64 and labels.ndim == 1 and np.all(labels >= 0)) or \
                   (labels.dtype == np.float32 and labels.ndim == 2)
            self._raw_labels = labels
        return self._raw_labels

    def close(self) -> None:  # to be overridden by subclasses holding files
        pass

    def _raw_name(self, raw_idx: int) -> str:
        return f'{self._name}[{raw_idx}]'

    def _load_raw_image(self, raw_idx: int) -> np.ndarray:  # to be overridden by subclass
        raise NotImplementedError

    def _load_raw_labels(self) -> np.ndarray | None:  # to be overridden by subclass
        raise NotImplementedError

    def __getstate__(self):
        return dict(self.__dict__, _raw_labels=None)  # labels are reloaded on demand; keeps pickles small

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 -- interpreter shutdown may have torn down modules already
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __len__(self) -> int:
        return self._raw_idx.size

    def __getitem__(self, idx: int) -> tuple[np.ndarray, np.ndarray]:
        raw_idx = int(self._raw_idx[idx])
        image = self._load_raw_image(raw_idx)
        if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and list(image.shape) == self.image_shape):
            raise DatasetError(f'{self._raw_name(raw_idx)}: image is {_describe_chw(getattr(image, "shape", None))}, '
                               f'but the data set is {_describe_chw(self.image_shape)}')
        if self._xflip[idx]:
            image = image[:, :, ::-1]
        return np.ascontiguousarray(image).copy(), self.get_label(idx)

    def get_label(self, idx: int) -> np.ndarray:
        label = self._get_raw_labels()[self._raw_idx[idx]]
        if label.dtype == np.int64:
            onehot = np.zeros(self.label_shape, dtype=np.float32)
            onehot[label] = 1
            label = onehot
        return label.copy()

    def get_details(self, idx: int) -> dnnlib.EasyDict:
        d = dnnlib.EasyDict()
        d.raw_idx = int(self._raw_idx[idx])
        d.xflip = int(self._xflip[idx]) != 0
        d.raw_label = self._get_raw_labels()[d.raw_idx].copy()
        return d

    @property
    def name(self) -> str:
        return self._name

    @property
    def image_shape(self) -> list[int]:
        return list(self._raw_shape[1:])

    @property
    def num_channels(self) -> int:
        assert len(self.image_shape) == 3  # CHW
        return self.image_shape[0]

    @property
    def resolution(self) -> int:
        assert len(self.image_shape) == 3  # CHW
        assert self.image_shape[1] == self.image_shape[2]
        return self.image_shape[1]

    @property
    def label_shape(self) -> list[int]:
        if self._label_shape is None:
            raw_labels = self._get_raw_labels()
            if raw_labels.dtype == np.int64:
                self._label_shape = [int(np.max(raw_labels)) + 1]
            else:
                self._label_shape = list(raw_labels.shape[1:])
        return list(self._label_shape)

    @property
    def label_dim(self) -> int:
        assert len(self.label_shape) == 1
        return self.label_shape[0]

    @property
    def has_labels(self) -> bool:
        return any(x != 0 for x in self.label_shape)

    @property
    def has_onehot_labels(self) -> bool:
        return self._get_raw_labels().dtype == np.int64


def _describe_chw(shape) -> str:
    if shape is None or len(shape) != 3:
        return f'an array of shape {shape}'
    c, h, w = shape
    return f'{w}x{h} with {c} channel{"s" if c != 1 else ""}'


# ----------------------------------------------------------------------------


@persistence.data_class
class ImageFolderDataset(Dataset):
    """A folder or a zip archive of images with an optional `dataset.json`.

    The archive is opened lazily and reopened in each process that reads it (DataLoader workers,
    forked or spawned), because a zip file handle inherited across fork shares its file offset with
    the parent and concurrent reads would return each other's bytes. Only the first image is decoded
    at construction; every image is checked against its size when read.
    """

    def __init__(self,
        path,                   # Path to a folder or a zip archive of PNG/JPEG images.
        resolution  = None,     # Required resolution (width = height); None = whatever the images are.
        **super_kwargs,         # Passed on to Dataset: max_size, use_labels, xflip, random_seed.
    ):
        self._path = os.path.expanduser(str(path))
        self._zipfile = None
        self._zip_pid = None
        try:
            name, raw_shape = self._scan(resolution)
        except BaseException:
            self.close()  # do not leave the archive open behind a failed construction
            raise
        super().__init__(name=name, raw_shape=raw_shape, **super_kwargs)

    def _scan(self, resolution) -> tuple[str, list[int]]:
        """List the images, decode the first one and check the size; returns (name, raw_shape)."""
        if os.path.isdir(self._path):
            self._type = 'dir'
            all_fnames = []
            for root, dirs, files in os.walk(self._path):
                dirs.sort()
                for fname in files:
                    all_fnames.append(os.path.relpath(os.path.join(root, fname), self._path).replace(os.sep, '/'))
        elif os.path.isfile(self._path):
            if not zipfile.is_zipfile(self._path):
                if os.path.splitext(self._path)[1].lower() == '.zip':
                    raise DatasetError(f'{self._path}: not a valid zip archive (corrupt or truncated)')
                raise DatasetError(f'{self._path}: expected a folder or a .zip archive of images '
                                   f'(convert other formats with dataset_tool.py)')
            self._type = 'zip'
            try:
                all_fnames = [info.filename for info in self._get_zipfile().infolist() if not info.is_dir()]
            except (zipfile.BadZipFile, OSError, EOFError) as e:
                raise DatasetError(f'{self._path}: not a valid zip archive ({_one_line(e)})') from None
        elif not os.path.exists(self._path):
            raise DatasetError(f'{self._path}: no such file or folder')
        else:
            raise DatasetError(f'{self._path}: expected a folder or a .zip archive of images')

        self._all_fnames = set(all_fnames)
        self._image_fnames = sorted(f for f in all_fnames if is_image_name(f))
        if not self._image_fnames:
            raise DatasetError(f'{self._path}: contains no image files ({", ".join(IMAGE_EXTENSIONS)})')

        name = os.path.splitext(os.path.basename(os.path.normpath(self._path)))[0]
        first = self._load_raw_image(0)
        raw_shape = [len(self._image_fnames)] + list(first.shape)
        c, h, w = raw_shape[1:]
        where = self._raw_name(0)
        if c not in (1, 3):  # decode_image already refuses these; kept for subclasses that override loading
            raise DatasetError(f'{where}: image has {c} channels; expected 1 or 3')
        if resolution is not None and (h != resolution or w != resolution):
            raise DatasetError(f'{where}: images are {w}x{h}, but resolution={resolution} was requested')
        if h != w:
            raise DatasetError(f'{where}: images are {w}x{h}, not square; convert them with dataset_tool.py '
                               f'--resolution=N --transform=center-crop')
        if not is_power_of_two(h) or h < 4:
            hint = max(4, 1 << int(np.ceil(np.log2(h))))
            raise DatasetError(f'{where}: images are {w}x{h}; the resolution must be a power of two >= 4 '
                               f'(convert them with dataset_tool.py --resolution={hint})')
        return name, raw_shape

    @property
    def path(self) -> str:
        return self._path

    @property
    def image_fnames(self) -> list[str]:
        """Relative names of the images, in data set order (before subsetting and flipping)."""
        return list(self._image_fnames)

    def _raw_name(self, raw_idx: int) -> str:
        return f'{self._path}/{self._image_fnames[raw_idx]}' if self._type == 'dir' \
            else f'{self._path}:{self._image_fnames[raw_idx]}'

    def _get_zipfile(self) -> zipfile.ZipFile:
        assert self._type == 'zip'
        if self._zipfile is None or self._zip_pid != os.getpid():
            self._zipfile = zipfile.ZipFile(self._path)  # the parent's handle (if any) is left to the parent
            self._zip_pid = os.getpid()
        return self._zipfile

    def _read_file(self, fname: str, where: str) -> bytes:
        try:
            if self._type == 'dir':
                with open(os.path.join(self._path, fname), 'rb') as f:
                    return f.read()
            with self._get_zipfile().open(fname, 'r') as f:
                return f.read()
        except (zipfile.BadZipFile, zlib.error, EOFError) as e:
            raise DatasetError(f'{where}: corrupt zip member ({_one_line(e)})') from None
        except OSError as e:
            raise DatasetError(f'{where}: cannot read ({_one_line(e)})') from None

    def close(self) -> None:
        try:
            if self._zipfile is not None and self._zip_pid == os.getpid():
                self._zipfile.close()
        finally:
            self._zipfile = None
            self._zip_pid = None

    def __getstate__(self):
        return dict(super().__getstate__(), _zipfile=None, _zip_pid=None)

    def _load_raw_image(self, raw_idx: int) -> np.ndarray:
        where = self._raw_name(raw_idx)
        # Once the first image has fixed the size, others are checked from their header before decoding (a
        # decompression bomb among small images allocates nothing).
        size = (self._raw_shape[3], self._raw_shape[2]) if getattr(self, '_raw_shape', None) else None
        image = decode_image(self._read_file(self._image_fnames[raw_idx], where), where, expect_size=size)
        return image.transpose(2, 0, 1)  # HWC => CHW

    def _load_raw_labels(self) -> np.ndarray | None:
        if LABELS_FILE not in self._all_fnames:
            return None
        where = f'{self._path}/{LABELS_FILE}' if self._type == 'dir' else f'{self._path}:{LABELS_FILE}'
        labels = parse_labels_json(self._read_file(LABELS_FILE, where), where)
        if labels is None:
            return None
        return match_labels(labels, self._image_fnames, where)

    def check_labels(self) -> None:
        """Load and validate dataset.json now (it is otherwise read on first use); raises DatasetError."""
        self._get_raw_labels()


# ----------------------------------------------------------------------------


@persistence.data_class
class DigitsDataset(Dataset):
    """scikit-learn's 1,797 handwritten digits (10 classes), upscaled to a power of two.

    Held in memory (1.8 MB at 32x32); see training/builtin_data.py for the conversion.
    """

    def __init__(self,
        resolution  = 32,       # Output width = height: 8 (native), 16, 32, 64, 128 or 256.
        channels    = 1,        # 1 = grayscale, 3 = the gray value repeated as RGB.
        **super_kwargs,         # Passed on to Dataset: max_size, use_labels, xflip, random_seed.
    ):
        resolution, channels = int(resolution), int(channels)
        builtin_data.validate_digits_args(resolution, channels)
        images, labels = builtin_data.load_digits_images(resolution, channels)
        self._images = images.transpose(0, 3, 1, 2)  # NHWC => NCHW (a read-only view of the cache)
        self._labels = labels
        name = f'digits{resolution}' + ('-rgb' if channels == 3 else '')
        super().__init__(name=name, raw_shape=self._images.shape, **super_kwargs)

    def __getstate__(self):
        # Workers rebuild the arrays from scikit-learn (cached per process) rather than receive copies.
        return dict(super().__getstate__(), _images=None, _labels=None)

    def __setstate__(self, state):
        self.__dict__.update(state)
        c, h = self._raw_shape[1], self._raw_shape[2]
        images, labels = builtin_data.load_digits_images(h, c)
        self._images, self._labels = images.transpose(0, 3, 1, 2), labels

    def _load_raw_image(self, raw_idx: int) -> np.ndarray:
        return self._images[raw_idx]

    def _load_raw_labels(self) -> np.ndarray:
        return np.array(self._labels, dtype=np.int64)


# ----------------------------------------------------------------------------


def validate_sample(dataset: Dataset, num: int = 64, seed: int = 0) -> int:
    """Read the first image and `num` more spread over the data set (a seeded sample), each decoded and checked
    against the data set's size and channels, so most bad files fail before training starts. Raises DatasetError
    naming the first bad file; returns how many images were read. Images outside the sample are checked as read."""
    count = len(dataset)
    picks = np.random.RandomState(seed % (1 << 32)).choice(count, size=min(num, count), replace=False)
    indices = sorted({0, *map(int, picks)})
    for idx in indices:
        dataset[idx]
    return len(indices)


def open_dataset(kwargs: dict) -> Dataset:
    """Build a data set from `{"class_name": ..., **kwargs}` (options or a snapshot's meta). Only the data set
    classes registered here can be named; anything else is refused with ValueError before any import."""
    return persistence.build_data(dict(kwargs))


def make_dataset_kwargs(
    data: str,                  # 'builtin:digits[<N>][-rgb]' or a path to a folder or zip of images.
    use_labels: bool = False,   # --cond: require and return labels.
    max_size: int | None = None,  # --subset: number of images to keep (seeded random subset); None = all.
    xflip: bool = False,        # --mirror: add x-flipped copies.
    random_seed: int = 0,       # Seed of the subset.
    resolution: int | None = None,  # Required resolution; None = take it from the data.
    validate: bool = True,      # Open the data once to check it (path, images, labels, subset size).
) -> dnnlib.EasyDict:
    """Turn a `--data` string into JSON-able kwargs for open_dataset.

    Raises ValueError (often DatasetError) with a one-line message naming the path or the option.
    """
    if not isinstance(data, str) or not data:
        raise ValueError(f'--data: expected a path or one of builtin:digits, builtin:digits16, ..., got {data!r}')
    common = dict(use_labels=bool(use_labels), max_size=max_size, xflip=bool(xflip), random_seed=int(random_seed))
    if builtin_data.is_builtin(data):
        res, channels = builtin_data.parse_builtin_name(data)
        if resolution is not None and resolution != res:
            raise ValueError(f'{data}: is {res}x{res}, but resolution={resolution} was requested '
                             f'(use {builtin_data.builtin_name(resolution, channels)})')
        kwargs = dnnlib.EasyDict(class_name='training.dataset.DigitsDataset', resolution=res, channels=channels,
                                 **common)
    else:
        kwargs = dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path=data,
                                 resolution=resolution, **common)
    if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1):
        raise ValueError(f'--subset: expected a positive integer, got {max_size!r}')
    if validate:
        dataset = open_dataset(dict(kwargs, max_size=None, xflip=False))
        try:
            if max_size is not None and max_size > len(dataset):
                raise ValueError(f'--subset={max_size}: {data} has only {len(dataset)} images')
            if use_labels and not dataset.has_labels:
                raise ValueError(f'{data}: labels were requested (--cond) but the data set has none '
                                 f'(no {LABELS_FILE}, or "labels": null)')
        finally:
            dataset.close()
    return kwargs
