#!/usr/bin/env python
"""Convert image collections into training data sets in stylegan2-ada's format.

Sources (detected from --source):
  folder of images           PNG/JPEG/BMP/WebP, searched recursively. Labels: the folder's dataset.json if
                             present, else the first sub-folder name of each image (classes in alphabetical
                             order) when every image sits in a sub-folder. A layout train/<class>/...,
                             test/<class>/... is a split layout: --split picks one (default train).
  zip of images              the same rules inside the archive (e.g. the CIFAR-10 JPEG archive).
  CIFAR-10 python pickles    a folder holding data_batch_1..5 and test_batch (or cifar-10-batches-py/ with
                             them), or the original cifar-10-python.tar.gz. Read with a restricted unpickler.
  MNIST IDX                  a folder with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz], or the path of
                             one images file (its labels file is found beside it). Fashion-MNIST too.
  MNIST npz                  a .npz with x_train, y_train, x_test, y_test (as keras ships it).
  builtin:digits[<N>][-rgb]  scikit-learn's 8x8 digits upscaled to N (default 32), as train.py uses them.

Destination: a .zip (uncompressed, ZIP_STORED) or a folder, holding 00000/img00000000.png, ... and dataset.json
({"labels": [[name, class], ...]} or {"labels": null}, plus "class_names" when known). It is written under a
temporary name and renamed at the end, so a failed or interrupted run leaves nothing behind.

Examples:
  python dataset_tool.py --source=../shared/data/cifar10-jpeg.zip --dest=~/datasets/cifar10.zip
  python dataset_tool.py --source=../shared/data/mnist.npz --dest=mnist32.zip --resolution=32 --transform=pad
  python dataset_tool.py --source=~/photos --dest=photos256.zip --resolution=256 --transform=center-crop
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
import os
import pickle
import re
import shutil
import sys
import tarfile
import time
import uuid
import zipfile
import zlib
from dataclasses import dataclass
from typing import Callable

import click
import numpy as np
import PIL.Image

from dnnlib.cli import OneLineErrors
from training import builtin_data
from training.dataset import (LABELS_FILE, DatasetError, decode_image, is_image_name, is_power_of_two,
                              match_labels, parse_labels_json)

SPLITS = ('train', 'test')
SPLIT_FOLDER_NAMES = {'train': ('train', 'training'), 'test': ('test', 'testing', 'val', 'valid', 'validation')}
CIFAR10_CLASS_NAMES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']
RESIZE_FILTERS = {
    'box': PIL.Image.Resampling.BOX,
    'nearest': PIL.Image.Resampling.NEAREST,
    'bilinear': PIL.Image.Resampling.BILINEAR,
    'bicubic': PIL.Image.Resampling.BICUBIC,
    'lanczos': PIL.Image.Resampling.LANCZOS,
}
TRANSFORMS = ('center-crop', 'center-crop-wide', 'pad')
MAX_IMAGES_SEED = 0


class ToolError(click.ClickException):
    """A user error: click prints 'Error: <message>' on one line and exits with status 2."""
    exit_code = 2


# ----------------------------------------------------------------------------
# Sources. Each yields HWC uint8 images by index, optional int64 labels and class names.


@dataclass
class Source:
    description: str                            # What was recognised, for the progress line.
    num_images: int
    name: Callable[[int], str]                  # Name of image i for error messages.
    load: Callable[[int], np.ndarray]           # Image i as uint8 [H, W, C]; raises DatasetError.
    labels: np.ndarray | None = None            # int64 [num_images] class indices, or None.
    class_names: list[str] | None = None        # Names of the classes, when known.
    close: Callable[[], None] = lambda: None


def _array_source(description, images, labels, class_names, name_of) -> Source:
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., np.newaxis]
    assert images.ndim == 4
    return Source(description=description, num_images=len(images), name=name_of,
                  load=lambda i: np.ascontiguousarray(images[i]), labels=labels, class_names=class_names)


def _reject_split(split, what):
    if split is not None:
        raise ToolError(f'--split={split}: {what} has no train/test split')


def open_builtin(source: str, split: str | None) -> Source:
    try:
        resolution, channels = builtin_data.parse_builtin_name(source)
    except ValueError as e:
        raise ToolError(f'--source: {e}') from None
    _reject_split(split, source)
    images, labels = builtin_data.load_digits_images(resolution, channels)
    return _array_source(f'{source} (scikit-learn digits at {resolution}x{resolution})', images,
                         np.array(labels, dtype=np.int64), list(builtin_data.DIGITS_CLASS_NAMES),
                         lambda i: f'{source}[{i}]')


# --- Image collections: folders and zip archives ------------------------------------------------


def _strip_common_folders(names: list[str]) -> list[str]:
    """Drop leading folders shared by every image (an archive wrapping everything in one folder)."""
    parts = [n.split('/') for n in names]
    while all(len(p) >= 2 for p in parts) and len({p[0] for p in parts}) == 1:
        parts = [p[1:] for p in parts]
    return ['/'.join(p) for p in parts]


def _split_of(folder: str) -> str | None:
    for split, folders in SPLIT_FOLDER_NAMES.items():
        if folder.lower() in folders:
            return split
    return None


def open_image_collection(root: str, kind: str, split: str | None, use_labels: bool) -> Source:
    """`kind` is 'dir' or 'zip'. Image names are relative paths with '/'."""
    opened = []
    try:
        return _open_image_collection(root, kind, split, use_labels, opened)
    except BaseException:
        for zf in opened:
            zf.close()
        raise


def _open_image_collection(root, kind, split, use_labels, opened) -> Source:
    zf = None
    if kind == 'dir':
        all_names = []
        for dirpath, dirs, files in os.walk(root):
            dirs.sort()
            for f in files:
                all_names.append(os.path.relpath(os.path.join(dirpath, f), root).replace(os.sep, '/'))

        def read(name):
            with open(os.path.join(root, name), 'rb') as f:
                return f.read()

        def where(name):
            return os.path.join(root, name)
    else:
        try:
            zf = zipfile.ZipFile(root)
            opened.append(zf)
            all_names = [info.filename for info in zf.infolist() if not info.is_dir()]
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise ToolError(f'{root}: not a valid zip archive ({" ".join(str(e).split())})') from None

        def read(name):
            return zf.read(name)

        def where(name):
            return f'{root}:{name}'

    names = sorted(n for n in all_names if is_image_name(n))
    if not names:
        raise ToolError(f'{root}: contains no image files (.png, .jpg, .jpeg, .bmp, .webp)')

    # Labels from dataset.json apply to the archive's own names, so read them before any re-rooting.
    json_labels = None
    if use_labels and LABELS_FILE in all_names:
        try:
            text = read(LABELS_FILE)
        except (OSError, zipfile.BadZipFile, zlib.error) as e:
            raise ToolError(f'{where(LABELS_FILE)}: cannot read ({e})') from None
        label_map = parse_labels_json(text, where(LABELS_FILE))
        if label_map is not None:
            json_labels = match_labels(label_map, names, where(LABELS_FILE))
            if json_labels.dtype != np.int64:
                raise ToolError(f'{where(LABELS_FILE)}: only integer class labels can be converted')

    rel = _strip_common_folders(names)
    parts = [r.split('/') for r in rel]
    splits_found = {_split_of(p[0]) for p in parts if len(p) >= 2}
    is_split_layout = all(len(p) >= 2 for p in parts) and None not in splits_found
    keep = list(range(len(names)))
    if is_split_layout:
        chosen = split or 'train'
        if chosen not in splits_found:
            raise ToolError(f'--split={chosen}: {root} has no {chosen} folder '
                            f'(found: {", ".join(sorted({p[0] for p in parts}))})')
        keep = [i for i, p in enumerate(parts) if _split_of(p[0]) == chosen]
        class_parts = {i: p[1:] for i, p in enumerate(parts)}
    else:
        if split is not None:
            raise ToolError(f'--split={split}: {root} has no train/ and test/ folders')
        class_parts = dict(enumerate(parts))

    labels = class_names = None
    if json_labels is not None:
        labels = json_labels[keep]
    elif use_labels and all(len(class_parts[i]) >= 2 for i in class_parts):
        # Class names over all splits, so that train and test share one index per class.
        class_names = sorted({class_parts[i][0] for i in class_parts})
        if len(class_names) >= 2:
            index = {c: k for k, c in enumerate(class_names)}
            labels = np.array([index[class_parts[i][0]] for i in keep], dtype=np.int64)
        else:
            class_names = None

    kept_names = [names[i] for i in keep]
    desc = f'{"folder" if kind == "dir" else "zip archive"} {root}'
    if is_split_layout:
        desc += f' ({split or "train"} split)'

    def load(i):
        name = kept_names[i]
        try:
            data = read(name)
        except (zipfile.BadZipFile, zlib.error, EOFError) as e:
            raise DatasetError(f'{where(name)}: corrupt zip member ({" ".join(str(e).split())})') from None
        except OSError as e:
            raise DatasetError(f'{where(name)}: cannot read ({e})') from None
        return decode_image(data, where(name))

    return Source(description=desc, num_images=len(kept_names), name=lambda i: where(kept_names[i]), load=load,
                  labels=labels, class_names=class_names, close=(zf.close if zf is not None else (lambda: None)))


# --- CIFAR-10 python pickles ----------------------------------------------------------------------


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickling runs whatever callables a pickle names, so only the few that rebuild numpy arrays and
    Python 3's re-encoded byte strings are allowed; anything else is refused before it is called."""

    _ALLOWED = {
        ('numpy.core.multiarray', '_reconstruct'): np.zeros(0).__reduce__()[0],  # numpy < 2 spelling
        ('numpy._core.multiarray', '_reconstruct'): np.zeros(0).__reduce__()[0],
        ('numpy.core.multiarray', 'scalar'): np.int64(0).__reduce__()[0],
        ('numpy._core.multiarray', 'scalar'): np.int64(0).__reduce__()[0],
        ('numpy', 'ndarray'): np.ndarray,
        ('numpy', 'dtype'): np.dtype,
        ('_codecs', 'encode'): codecs.encode,
    }

    def find_class(self, module, name):
        obj = self._ALLOWED.get((module, name))
        if obj is None:
            raise pickle.UnpicklingError(f'refusing to load {module}.{name} (not part of the CIFAR-10 format)')
        return obj


def restricted_unpickle(data: bytes, where: str):
    try:
        return _RestrictedUnpickler(io.BytesIO(data), encoding='bytes').load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            UnicodeDecodeError) as e:
        raise ToolError(f'{where}: not a CIFAR-10 pickle ({" ".join(str(e).split())})') from None


def _str_keys(obj) -> dict:
    if not isinstance(obj, dict):
        return {}
    return {(k.decode('latin1') if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _parse_cifar_batch(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    batch = _str_keys(restricted_unpickle(data, where))
    if 'data' not in batch or 'labels' not in batch:
        raise ToolError(f'{where}: expected a dict with "data" and "labels" (the CIFAR-10 python format)')
    images, labels = batch['data'], batch['labels']
    if not (isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.ndim == 2
            and images.shape[1] == 3 * 32 * 32):
        raise ToolError(f'{where}: "data" must be a uint8 array of shape (N, 3072), got '
                        f'{getattr(images, "dtype", type(images).__name__)} {getattr(images, "shape", "")}')
    try:
        labels = np.asarray(labels)
    except (ValueError, TypeError):
        labels = np.asarray([], dtype=object)
    if labels.shape != (images.shape[0],) or labels.dtype.kind not in 'iu':
        raise ToolError(f'{where}: "labels" must be {images.shape[0]} integers')
    labels = labels.astype(np.int64)
    if labels.min() < 0 or labels.max() > 9:
        raise ToolError(f'{where}: labels must be in 0..9, found {labels.min()}..{labels.max()}')
    return images.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _cifar_files(split: str) -> list[str]:
    return [f'data_batch_{k}' for k in range(1, 6)] if split == 'train' else ['test_batch']


def _cifar_class_names(meta_bytes: bytes | None, where: str) -> list[str]:
    if meta_bytes is None:
        return list(CIFAR10_CLASS_NAMES)
    names = _str_keys(restricted_unpickle(meta_bytes, where)).get('label_names')
    if not (isinstance(names, list) and len(names) == 10 and all(isinstance(n, (bytes, str)) for n in names)):
        raise ToolError(f'{where}: expected "label_names" with 10 class names')
    return [n.decode('latin1') if isinstance(n, bytes) else n for n in names]


def open_cifar_pickles(read: Callable[[str], bytes | None], where: Callable[[str], str], split: str | None,
                       origin: str) -> Source:
    split = split or 'train'
    parts = []
    for fname in _cifar_files(split):
        data = read(fname)
        if data is None:
            raise ToolError(f'{where(fname)}: missing (the {split} split of CIFAR-10 needs '
                            f'{", ".join(_cifar_files(split))})')
        parts.append(_parse_cifar_batch(data, where(fname)))
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    class_names = _cifar_class_names(read('batches.meta'), where('batches.meta'))
    return _array_source(f'CIFAR-10 python pickles {origin} ({split} split)', images, labels, class_names,
                         lambda i: f'{origin} {split} image {i}')


def _find_cifar_dir(path: str) -> str | None:
    for d in (path, os.path.join(path, 'cifar-10-batches-py')):
        if any(os.path.isfile(os.path.join(d, f)) for f in ('data_batch_1', 'test_batch')):
            return d
    return None


def open_cifar_dir(path: str, split: str | None) -> Source:
    d = _find_cifar_dir(path)
    assert d is not None

    def read(fname):
        p = os.path.join(d, fname)
        if not os.path.isfile(p):
            return None
        with open(p, 'rb') as f:
            return f.read()
    return open_cifar_pickles(read, lambda f: os.path.join(d, f), split, d)


def open_cifar_tar(path: str, split: str | None) -> Source:
    try:
        with tarfile.open(path) as tar:
            members = {os.path.basename(m.name): m for m in tar.getmembers() if m.isfile()}
            if not any(k in members for k in ('data_batch_1', 'test_batch')):
                raise ToolError(f'{path}: no CIFAR-10 batches (data_batch_1, test_batch) in this archive')
            contents = {}
            for k in _cifar_files(split or 'train') + ['batches.meta']:
                if k in members:
                    f = tar.extractfile(members[k])  # read into memory: nothing is extracted to disk
                    contents[k] = f.read()
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise ToolError(f'{path}: corrupt or truncated tar archive ({" ".join(str(e).split())})') from None
    return open_cifar_pickles(contents.get, lambda f: f'{path}:{f}', split, path)


# --- MNIST ----------------------------------------------------------------------------------------

_IDX_RE = re.compile(r'^(train|t10k)-(images|labels)[-.]idx([13])-ubyte(\.gz)?$')


def read_idx(path: str, expected_ndim: int) -> np.ndarray:
    """Parse an IDX file (LeCun's MNIST format, gzip or raw) of unsigned bytes."""
    try:
        with open(path, 'rb') as f:
            raw = f.read()
        if raw[:2] == b'\x1f\x8b':
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise ToolError(f'{path}: cannot read ({" ".join(str(e).split())})') from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ToolError(f'{path}: not an IDX file (bad magic number)')
    if raw[2] != 0x08:
        raise ToolError(f'{path}: IDX data type 0x{raw[2]:02x} is not unsigned bytes (0x08)')
    ndim = raw[3]
    if ndim != expected_ndim:
        raise ToolError(f'{path}: IDX file has {ndim} dimensions, expected {expected_ndim}')
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ToolError(f'{path}: truncated IDX header')
    shape = tuple(int(x) for x in np.frombuffer(raw, dtype='>u4', count=ndim, offset=4))
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise ToolError(f'{path}: IDX file holds {len(raw) - header} bytes of data, but its header {shape} '
                        f'needs {expected} ({"truncated" if len(raw) - header < expected else "trailing bytes"})')
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _idx_pair(images_path: str) -> str:
    d, base = os.path.split(images_path)
    return os.path.join(d, base.replace('images', 'labels', 1).replace('idx3', 'idx1', 1))


def open_mnist_idx(images_path: str, split_desc: str) -> Source:
    labels_path = _idx_pair(images_path)
    if not os.path.isfile(labels_path):
        raise ToolError(f'{labels_path}: missing (the labels that go with {images_path})')
    images = read_idx(images_path, 3)
    labels = read_idx(labels_path, 1)
    if len(labels) != len(images):
        raise ToolError(f'{labels_path}: {len(labels)} labels for {len(images)} images in {images_path}')
    if len(images) == 0:
        raise ToolError(f'{images_path}: contains no images')
    return _array_source(f'MNIST IDX {images_path}{split_desc}', images, labels.astype(np.int64), None,
                         lambda i: f'{images_path} image {i}')


def _mnist_idx_files(path: str) -> dict[str, str]:
    found = {}
    for f in sorted(os.listdir(path)):
        m = _IDX_RE.match(f)
        if m and m.group(2) == 'images':
            found.setdefault('train' if m.group(1) == 'train' else 'test', os.path.join(path, f))
    return found


def open_mnist_idx_dir(path: str, split: str | None) -> Source:
    split = split or 'train'
    found = _mnist_idx_files(path)
    if split not in found:
        prefix = 'train' if split == 'train' else 't10k'
        have = f'; it has the {", ".join(found)} split (pass --split={next(iter(found))})' if found else ''
        raise ToolError(f'{path}: no {prefix}-images-idx3-ubyte[.gz] for the {split} split{have}')
    return open_mnist_idx(found[split], f' ({split} split)')


def open_mnist_npz(path: str, split: str | None) -> Source:
    split = split or 'train'
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.keys())
            xk, yk = f'x_{split}', f'y_{split}'
            if xk not in keys or yk not in keys:
                raise ToolError(f'{path}: expected arrays {xk} and {yk} (found: {", ".join(keys) or "none"})')
            images, labels = npz[xk], npz[yk]
    except ToolError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise ToolError(f'{path}: not a readable .npz file ({" ".join(str(e).split())})') from None
    if images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise ToolError(f'{path}: x_{split} must be uint8 of shape (N, H, W) or (N, H, W, C), got '
                        f'{images.dtype} {images.shape}')
    if labels.shape != (len(images),) or labels.dtype.kind not in 'iu':
        raise ToolError(f'{path}: y_{split} must hold {len(images)} integer labels, got {labels.dtype} {labels.shape}')
    if len(images) == 0:
        raise ToolError(f'{path}: x_{split} contains no images')
    if labels.min() < 0:
        raise ToolError(f'{path}: y_{split} has negative labels')
    return _array_source(f'MNIST npz {path} ({split} split)', images, labels.astype(np.int64), None,
                         lambda i: f'{path} {xk}[{i}]')


# --- Dispatch ---------------------------------------------------------------------------------


def open_source(source: str, split: str | None, use_labels: bool) -> Source:
    if builtin_data.is_builtin(source):
        src = open_builtin(source, split)
    else:
        path = os.path.expanduser(source)
        lower = path.lower()
        if not os.path.exists(path):
            raise ToolError(f'--source: {path}: no such file or folder')
        if os.path.isdir(path):
            if _find_cifar_dir(path) is not None:
                src = open_cifar_dir(path, split)
            elif _mnist_idx_files(path):
                src = open_mnist_idx_dir(path, split)
            else:
                src = open_image_collection(path, 'dir', split, use_labels)
        elif lower.endswith('.npz'):
            src = open_mnist_npz(path, split)
        elif lower.endswith(('.tar.gz', '.tgz', '.tar')):
            src = open_cifar_tar(path, split)
        elif _IDX_RE.match(os.path.basename(path)) and 'images' in os.path.basename(path):
            _reject_split(split, f'{path} (one IDX file)')
            src = open_mnist_idx(path, '')
        elif lower.endswith('.zip') or zipfile.is_zipfile(path):
            if not zipfile.is_zipfile(path):
                raise ToolError(f'{path}: not a valid zip archive (corrupt or truncated)')
            src = open_image_collection(path, 'zip', split, use_labels)
        else:
            raise ToolError(f'--source: {path}: unrecognised; expected a folder or .zip of images, CIFAR-10 '
                            f'pickles (folder or .tar.gz), MNIST IDX or .npz, or builtin:digits')
    if not use_labels:
        src.labels = src.class_names = None
    return src


# ----------------------------------------------------------------------------
# Image transforms. All take and return uint8 HWC.


def _resize(img: np.ndarray, width: int, height: int, resample) -> np.ndarray:
    if img.shape[1] == width and img.shape[0] == height:
        return img
    pil = PIL.Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img)
    out = np.asarray(pil.resize((width, height), resample))
    return out.reshape(height, width, img.shape[2])


def _center_crop(img: np.ndarray, width: int, height: int) -> np.ndarray:
    h, w = img.shape[:2]
    top, left = (h - height) // 2, (w - width) // 2
    return img[top:top + height, left:left + width]


@dataclass
class Transform:
    resolution: int | None          # Output width = height; None = keep the source size.
    kind: str | None                # None, 'center-crop', 'center-crop-wide' or 'pad'.
    resample: int                   # PIL resampling filter.
    wide_height: int | None         # Content height for center-crop-wide.

    def __call__(self, img: np.ndarray, where: str) -> np.ndarray:
        h, w = img.shape[:2]
        r = self.resolution
        if self.kind is None:
            if r is None:
                return img
            if h != w:
                raise DatasetError(f'{where}: image is {w}x{h}, not square; pass --transform=center-crop '
                                   f'(or center-crop-wide, or pad)')
            return _resize(img, r, r, self.resample)
        if self.kind == 'center-crop':
            s = min(h, w)
            img = _center_crop(img, s, s)
            return img if r is None else _resize(img, r, r, self.resample)
        if self.kind == 'pad':
            if h > r or w > r:
                raise DatasetError(f'{where}: image is {w}x{h}, larger than --resolution={r}; --transform=pad '
                                   f'only adds borders (use center-crop to shrink)')
            out = np.zeros((r, r, img.shape[2]), dtype=np.uint8)
            top, left = (r - h) // 2, (r - w) // 2
            out[top:top + h, left:left + w] = img
            return out
        assert self.kind == 'center-crop-wide'
        ch = self.wide_height
        # Largest centred window with the target aspect r:ch, then scaled to r x ch and letterboxed.
        if w * ch >= h * r:
            cw, chh = max(1, round(h * r / ch)), h
        else:
            cw, chh = w, max(1, round(w * ch / r))
        img = _resize(_center_crop(img, cw, chh), r, ch, self.resample)
        out = np.zeros((r, r, img.shape[2]), dtype=np.uint8)
        top = (r - ch) // 2
        out[top:top + ch] = img
        return out


# ----------------------------------------------------------------------------
# Destination: temporary name, renamed at the end.


def _image_name(idx: int) -> str:
    s = f'{idx:08d}'
    return f'{s[:5]}/img{s}.png'


def _encode_png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    # compress_level=1: nearly the size of level 6 on small images at a fraction of the time.
    PIL.Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img).save(buf, format='png', compress_level=1)
    return buf.getvalue()


class Writer:
    def __init__(self, dest: str):
        self.dest = dest
        self.is_zip = dest.lower().endswith('.zip')
        parent = os.path.dirname(os.path.abspath(dest))
        self.created_dirs = []
        d = parent
        while not os.path.isdir(d):
            self.created_dirs.append(d)
            d = os.path.dirname(d)
        os.makedirs(parent, exist_ok=True)
        self.tmp = os.path.join(parent, f'.{os.path.basename(dest)}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}')
        if self.is_zip:
            self.zip = zipfile.ZipFile(self.tmp, 'w', compression=zipfile.ZIP_STORED)
        else:
            os.mkdir(self.tmp)

    def write(self, name: str, data: bytes) -> None:
        if self.is_zip:
            self.zip.writestr(name, data)
        else:
            path = os.path.join(self.tmp, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, 'wb') as f:
                f.write(data)

    def commit(self, overwrite: bool) -> None:
        if self.is_zip:
            self.zip.close()
        if os.path.lexists(self.dest):
            if not overwrite and not _is_empty_dir(self.dest):
                raise ToolError(f'--dest: {self.dest} appeared while converting; pass --overwrite to replace it')
            if os.path.isdir(self.dest) and not os.path.islink(self.dest):
                old = self.tmp + '.old'
                os.rename(self.dest, old)
                os.rename(self.tmp, self.dest)
                shutil.rmtree(old, ignore_errors=True)
                return
        os.replace(self.tmp, self.dest)

    def abort(self) -> None:
        if self.is_zip:
            self.zip.close()
        if os.path.isdir(self.tmp):
            shutil.rmtree(self.tmp, ignore_errors=True)
        elif os.path.exists(self.tmp):
            os.remove(self.tmp)
        for d in self.created_dirs:  # innermost first
            try:
                os.rmdir(d)
            except OSError:
                break


def _is_empty_dir(path: str) -> bool:
    return os.path.isdir(path) and not os.listdir(path)


# ----------------------------------------------------------------------------


class Progress:
    def __init__(self, total: int, enabled: bool = True):
        self.total, self.enabled = total, enabled
        self.start = self.last = time.time()
        self.tty = sys.stdout.isatty()

    def update(self, done: int) -> None:
        now = time.time()
        if not self.enabled or (done < self.total and now - self.last < (0.5 if self.tty else 10.0)):
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        line = f'{done}/{self.total} images ({100 * done / self.total:.0f}%, {rate:.0f} images/s)'
        if self.tty:
            print('\r' + line, end='\n' if done >= self.total else '', flush=True)
        else:
            print(line, flush=True)


def select_indices(num: int, max_images: int | None) -> np.ndarray:
    """All indices, or a seeded random subset of max_images of them kept in source order, so that a
    subset of a class-sorted source (folders) still covers the classes."""
    if max_images is None or max_images >= num:
        return np.arange(num)
    return np.sort(np.random.RandomState(MAX_IMAGES_SEED).permutation(num)[:max_images])


def convert(src: Source, dest: str, transform: Transform, max_images: int | None, overwrite: bool,
            verbose: bool = True) -> dict:
    indices = select_indices(src.num_images, max_images)
    if verbose:
        print(f'Source: {src.description}: {src.num_images} images' +
              (f', converting {len(indices)}' if len(indices) < src.num_images else ''), flush=True)
    writer = Writer(dest)
    try:
        progress = Progress(len(indices), enabled=verbose)
        shape = first_where = None
        labels = []
        for k, i in enumerate(indices):
            where = src.name(int(i))
            img = src.load(int(i))
            if img.ndim != 3 or img.shape[2] not in (1, 3):
                raise DatasetError(f'{where}: image has {img.shape[2] if img.ndim == 3 else "?"} channels; '
                                   f'expected 1 (grayscale) or 3 (RGB)')
            img = transform(img, where)
            if shape is None:
                shape, first_where = img.shape, where
                h, w = shape[:2]
                if h != w:
                    raise DatasetError(f'{where}: image is {w}x{h}, not square; pass --resolution=N '
                                       f'--transform=center-crop')
                if not is_power_of_two(h) or h < 4:
                    hint = max(4, 1 << int(np.ceil(np.log2(h))))
                    raise DatasetError(f'{where}: image is {w}x{h}; the resolution must be a power of two >= 4 '
                                       f'(pass --resolution={hint}, with --transform=pad to add borders '
                                       f'instead of resizing)')
            elif img.shape != shape:
                if img.shape[:2] != shape[:2]:
                    raise DatasetError(f'{where}: image is {img.shape[1]}x{img.shape[0]}, but {first_where} is '
                                       f'{shape[1]}x{shape[0]}; pass --resolution=N to resize all images')
                raise DatasetError(f'{where}: image has {img.shape[2]} channels, but {first_where} has '
                                   f'{shape[2]}; all images must be grayscale or all RGB')
            name = _image_name(k)
            writer.write(name, _encode_png(img))
            if src.labels is not None:
                labels.append([name, int(src.labels[i])])
            progress.update(k + 1)
        meta = {'labels': labels if src.labels is not None else None}
        if src.class_names is not None:
            meta['class_names'] = list(src.class_names)
        writer.write(LABELS_FILE, json.dumps(meta).encode('utf-8'))
        writer.commit(overwrite)
    except BaseException:
        writer.abort()
        raise
    finally:
        src.close()
    return dict(num_images=len(indices), shape=shape, labels=src.labels is not None)


# ----------------------------------------------------------------------------


@click.command(cls=OneLineErrors, context_settings=dict(max_content_width=110))
@click.option('--source', help='Folder or zip of images, CIFAR-10 pickles (folder/.tar.gz), MNIST IDX folder or '
              '.npz, or builtin:digits[<N>][-rgb]', metavar='PATH', required=True)
@click.option('--dest', help='Output .zip archive or folder', metavar='PATH', required=True)
@click.option('--split', type=click.Choice(SPLITS), help='Which split of a source that has one  [default: train]')
@click.option('--max-images', type=click.IntRange(min=1), help='Convert a seeded random subset of this many images '
              '(kept in source order)  [default: all]')
@click.option('--resolution', type=click.IntRange(min=1), help='Output width = height, a power of two; '
              'images are resized (or padded/cropped, see --transform)  [default: the source size]')
@click.option('--transform', type=click.Choice(TRANSFORMS), help='center-crop: largest centred square; '
              'center-crop-wide: centred --resolution x --wide-height window, letterboxed; pad: centred on '
              'black borders, no resampling  [default: resize only]')
@click.option('--wide-height', type=click.IntRange(min=1), help='Content height for center-crop-wide  '
              '[default: 3/4 of --resolution]')
@click.option('--resize-filter', type=click.Choice(list(RESIZE_FILTERS)), default='lanczos', show_default=True,
              help='Resampling filter')
@click.option('--labels/--no-labels', default=True, show_default=True,
              help='Write class labels (from dataset.json, class folders, or the source format)')
@click.option('--overwrite', is_flag=True, help='Replace --dest if it exists')
@click.option('--quiet', '-q', is_flag=True, help='No progress output')
def main(source, dest, split, max_images, resolution, transform, wide_height, resize_filter, labels, overwrite,
         quiet):
    """Convert images to a training data set in stylegan2-ada's format (zip or folder with dataset.json).

    \b
    Examples:
      python dataset_tool.py --source=../shared/data/cifar10-jpeg.zip --dest=cifar10.zip
      python dataset_tool.py --source=../shared/data/cifar10-jpeg.zip --dest=cifar10-test.zip --split=test
      python dataset_tool.py --source=../shared/data/mnist.npz --dest=mnist32.zip --resolution=32 --transform=pad
      python dataset_tool.py --source=builtin:digits --dest=digits32.zip
    """
    start = time.time()
    if resolution is not None and (not is_power_of_two(resolution) or resolution < 4):
        raise ToolError(f'--resolution={resolution}: must be a power of two >= 4 (e.g. '
                        f'{max(4, 1 << int(np.ceil(np.log2(resolution))))})')
    if transform in ('pad', 'center-crop-wide') and resolution is None:
        raise ToolError(f'--transform={transform} needs --resolution')
    if wide_height is not None:
        if transform != 'center-crop-wide':
            raise ToolError('--wide-height applies only to --transform=center-crop-wide')
        if wide_height > resolution:
            raise ToolError(f'--wide-height={wide_height}: must be at most --resolution={resolution}')
    if transform == 'center-crop-wide' and wide_height is None:
        wide_height = max(1, round(resolution * 3 / 4))
    dest = os.path.expanduser(dest)
    if not builtin_data.is_builtin(source) and os.path.exists(os.path.expanduser(source)) \
            and os.path.exists(dest) and os.path.samefile(os.path.expanduser(source), dest):
        raise ToolError(f'--dest: {dest} is the source itself')
    if os.path.lexists(dest) and not overwrite and not _is_empty_dir(dest):
        raise ToolError(f'--dest: {dest} already exists; pass --overwrite to replace it')
    wants_zip = dest.lower().endswith('.zip')
    if (os.path.isdir(dest) and wants_zip) or (os.path.isfile(dest) and not wants_zip):
        raise ToolError(f'--dest: {dest} exists as a {"folder" if os.path.isdir(dest) else "file"}; '
                        f'a .zip name writes an archive, any other name a folder')

    try:
        src = open_source(source, split, labels)
        info = convert(src, dest, Transform(resolution, transform, RESIZE_FILTERS[resize_filter], wide_height),
                       max_images, overwrite, verbose=not quiet)
    except DatasetError as e:
        raise ToolError(str(e)) from None
    except OSError as e:
        raise ToolError(f'--dest: {dest}: cannot write ({" ".join(str(e).split())})') from None
    if not quiet:
        h, w, c = info['shape']
        print(f'Wrote {info["num_images"]} images ({w}x{h}, {c} channel{"s" if c > 1 else ""}'
              f'{", labelled" if info["labels"] else ", no labels"}) to {dest} in {time.time() - start:.1f} s')


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
