"""training/dataset.py and training/builtin_data.py: reading, subsets, flips, labels, errors, workers."""

import io
import json
import math
import os
import pickle
import zipfile

import numpy as np
import PIL.Image
import pytest
import torch

import dnnlib
from torch_utils.misc import InfiniteSampler
from training import builtin_data
from training.dataset import DatasetError, DigitsDataset, ImageFolderDataset, make_dataset_kwargs

# ----------------------------------------------------------------------------
# Fixtures written at run time.


def _png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    PIL.Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img).save(buf, format='png')
    return buf.getvalue()


def open_bytes(path):
    with open(path, 'rb') as f:
        return f.read()


def _images(n, res, channels, seed=0):
    return np.random.RandomState(seed).randint(0, 256, size=(n, res, res, channels), dtype=np.uint8)


def write_set(root, kind, files: dict[str, bytes]):
    """Write {relative name: bytes} as a folder or a zip at `root`; returns the path."""
    if kind == 'zip':
        path = str(root) + '.zip'
        with zipfile.ZipFile(path, 'w', compression=zipfile.ZIP_STORED) as zf:
            for name, data in files.items():
                zf.writestr(name, data)
        return path
    for name, data in files.items():
        p = os.path.join(root, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, 'wb') as f:
            f.write(data)
    return str(root)


def labelled_set(tmp_path, kind, n=12, res=8, channels=3, labels='int'):
    imgs = _images(n, res, channels)
    names = [f'{k // 5:04d}/im{k:05d}.png' for k in range(n)]
    files = {name: _png(img) for name, img in zip(names, imgs)}
    if labels == 'int':
        lab = [int(k % 4) for k in range(n)]
    elif labels == 'vec':
        lab = [[float(k), -0.5 * k] for k in range(n)]
    else:
        lab = None
    if lab is not None:
        files['dataset.json'] = json.dumps({'labels': [[nm, lb] for nm, lb in zip(names, lab)]}).encode()
    return write_set(tmp_path / 'set', kind, files), imgs, names, lab


# ----------------------------------------------------------------------------


@pytest.mark.parametrize('kind', ['zip', 'dir'])
def test_images_and_onehot_labels(tmp_path, kind):
    path, imgs, names, lab = labelled_set(tmp_path, kind, channels=3)
    ds = ImageFolderDataset(path, use_labels=True)
    assert len(ds) == len(imgs) and ds.name == 'set'
    assert ds.image_shape == [3, 8, 8] and ds.num_channels == 3 and ds.resolution == 8
    assert ds.has_labels and ds.has_onehot_labels and ds.label_shape == [4] and ds.label_dim == 4
    assert ds.image_fnames == sorted(names)
    for k in range(len(imgs)):
        img, label = ds[k]
        assert img.dtype == np.uint8 and img.shape == (3, 8, 8)
        np.testing.assert_array_equal(img, imgs[k].transpose(2, 0, 1))
        expected = np.zeros(4, np.float32)
        expected[lab[k]] = 1
        assert label.dtype == np.float32
        np.testing.assert_array_equal(label, expected)
        np.testing.assert_array_equal(ds.get_label(k), expected)
    ds.close()


def test_grayscale_vector_labels_and_no_labels(tmp_path):
    path, imgs, _, lab = labelled_set(tmp_path, 'zip', channels=1, labels='vec')
    ds = ImageFolderDataset(path, use_labels=True, resolution=8)
    assert ds.image_shape == [1, 8, 8] and not ds.has_onehot_labels and ds.label_shape == [2]
    img, label = ds[3]
    np.testing.assert_array_equal(img[0], imgs[3][:, :, 0])
    np.testing.assert_array_equal(label, np.array(lab[3], np.float32))
    plain = ImageFolderDataset(path)  # use_labels=False ignores dataset.json
    assert plain.label_shape == [0] and not plain.has_labels and plain[0][1].shape == (0,)


def test_subset_is_seeded_and_sorted(tmp_path):
    path, imgs, _, _ = labelled_set(tmp_path, 'zip', n=20)
    for seed in (0, 7):
        ds = ImageFolderDataset(path, max_size=6, random_seed=seed)
        expected = np.sort(np.random.RandomState(seed).permutation(20)[:6])  # documented rule
        got = [ds.get_details(k).raw_idx for k in range(len(ds))]
        assert got == expected.tolist()
        for k, raw in enumerate(expected):
            np.testing.assert_array_equal(ds[k][0], imgs[raw].transpose(2, 0, 1))
        again = ImageFolderDataset(path, max_size=6, random_seed=seed)
        assert [again.get_details(k).raw_idx for k in range(6)] == got
    a = [ImageFolderDataset(path, max_size=6, random_seed=s).get_details(0).raw_idx for s in range(5)]
    assert len(set(a)) > 1  # the seed matters
    assert len(ImageFolderDataset(path, max_size=100)) == 20
    with pytest.raises(ValueError, match='max_size'):
        ImageFolderDataset(path, max_size=0)


def test_mirror_doubles_with_flips(tmp_path):
    path, imgs, _, lab = labelled_set(tmp_path, 'dir', n=5)
    ds = ImageFolderDataset(path, xflip=True, use_labels=True, max_size=4)
    assert len(ds) == 8
    for k in range(4):
        a, la = ds[k]
        b, lb = ds[k + 4]
        assert not ds.get_details(k).xflip and ds.get_details(k + 4).xflip
        assert ds.get_details(k).raw_idx == ds.get_details(k + 4).raw_idx
        raw = imgs[ds.get_details(k).raw_idx].transpose(2, 0, 1)
        np.testing.assert_array_equal(a, raw)
        np.testing.assert_array_equal(b, raw[:, :, ::-1])
        np.testing.assert_array_equal(la, lb)
        assert ds.get_details(k).raw_label == lab[ds.get_details(k).raw_idx]


# ----------------------------------------------------------------------------
# Bad input: one-line DatasetError naming the file.


def _err(fn):
    with pytest.raises(DatasetError) as info:
        fn()
    msg = str(info.value)
    assert '\n' not in msg
    return msg


def test_path_errors(tmp_path):
    missing = str(tmp_path / 'nope.zip')
    msg = _err(lambda: ImageFolderDataset(missing))
    assert missing in msg and 'no such file' in msg
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'empty' / 'notes.txt').write_text('x')
    assert 'no image files' in _err(lambda: ImageFolderDataset(str(tmp_path / 'empty')))
    bad = tmp_path / 'bad.zip'
    bad.write_bytes(b'PK\x03\x04 this is not really a zip' * 10)
    assert 'not a valid zip' in _err(lambda: ImageFolderDataset(str(bad)))
    good, _, _, _ = labelled_set(tmp_path, 'zip')
    truncated = tmp_path / 'truncated.zip'
    truncated.write_bytes(open_bytes(good)[:-200])  # central directory cut off
    assert 'truncated.zip' in _err(lambda: ImageFolderDataset(str(truncated)))
    other = tmp_path / 'data.npz'
    other.write_bytes(b'\x93NUMPY')
    assert 'folder or a .zip' in _err(lambda: ImageFolderDataset(str(other)))


@pytest.mark.parametrize('case', ['nonsquare', 'nonpow2', 'rgba', 'resolution', 'sixteen_bit'])
def test_shape_errors(tmp_path, case):
    if case == 'nonsquare':
        img, needle = np.zeros((8, 16, 3), np.uint8), 'not square'
    elif case == 'nonpow2':
        img, needle = np.zeros((28, 28, 1), np.uint8), '--resolution=32'
    elif case == 'rgba':
        img, needle = np.zeros((8, 8, 4), np.uint8), '4 channels'
    else:
        img, needle = np.zeros((8, 8, 3), np.uint8), 'resolution=16'
    if case == 'sixteen_bit':
        buf = io.BytesIO()
        PIL.Image.fromarray(np.zeros((8, 8), np.uint16)).save(buf, format='png')
        data, needle = buf.getvalue(), '8-bit'
    else:
        data = PIL.Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img)
        buf = io.BytesIO()
        data.save(buf, format='png')
        data = buf.getvalue()
    path = write_set(tmp_path / 'set', 'zip', {'a/first.png': data})
    msg = _err(lambda: ImageFolderDataset(path, resolution=16 if case == 'resolution' else None))
    assert needle in msg and 'a/first.png' in msg


def test_bad_images_fail_when_read(tmp_path):
    imgs = _images(3, 8, 3)
    good = _png(imgs[0])
    files = {'a.png': good, 'b.png': good[:len(good) // 2], 'c.png': _png(_images(1, 16, 3)[0]),
             'd.png': b'not an image at all'}
    path = write_set(tmp_path / 'set', 'dir', files)
    ds = ImageFolderDataset(path)
    np.testing.assert_array_equal(ds[0][0], imgs[0].transpose(2, 0, 1))
    msg = _err(lambda: ds[1])
    assert 'b.png' in msg and 'truncated' in msg
    msg = _err(lambda: ds[2])
    assert 'c.png' in msg and '16x16' in msg and '8x8' in msg
    msg = _err(lambda: ds[3])
    assert 'd.png' in msg and 'not a readable image' in msg


def test_corrupt_zip_member(tmp_path):
    path, _, names, _ = labelled_set(tmp_path, 'zip', n=3)
    raw = bytearray(open_bytes(path))
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(sorted(names)[2])
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    raw[start + 40] ^= 0xFF  # flip a byte inside the stored PNG: the CRC check must catch it
    with open(path, 'wb') as f:
        f.write(bytes(raw))
    ds = ImageFolderDataset(path)
    msg = _err(lambda: ds[2])
    assert sorted(names)[2] in msg and 'corrupt zip member' in msg


@pytest.mark.parametrize('case', ['missing', 'extra', 'json', 'negative', 'mixed', 'shape'])
def test_label_errors(tmp_path, case):
    imgs = _images(3, 8, 1)
    files = {f'i{k}.png': _png(imgs[k]) for k in range(3)}
    entries = [[f'i{k}.png', k] for k in range(3)]
    needle = None
    if case == 'missing':
        entries, needle = entries[:2], 'no label for image i2.png'
    elif case == 'extra':
        entries, needle = entries + [['ghost.png', 1]], 'label for ghost.png'
    elif case == 'negative':
        entries[1][1], needle = -1, 'negative class label -1 for i1.png'
    elif case == 'mixed':
        entries[1][1], needle = [0.5], 'mixes'
    elif case == 'shape':
        entries = [[f'i{k}.png', [1.0] * (1 + (k == 2))] for k in range(3)]
        needle = 'label of i2.png'
    files['dataset.json'] = b'{"labels": [[' if case == 'json' else json.dumps({'labels': entries}).encode()
    needle = needle or 'invalid JSON'
    path = write_set(tmp_path / 'set', 'zip', files)
    ds = ImageFolderDataset(path, use_labels=True)
    msg = _err(ds.check_labels)
    assert needle in msg and 'dataset.json' in msg


# ----------------------------------------------------------------------------
# Processes: pickling, DataLoader workers, distributed sampling.


def test_pickle_after_reading(tmp_path):
    path, imgs, _, _ = labelled_set(tmp_path, 'zip', n=6)
    ds = ImageFolderDataset(path, use_labels=True, xflip=True)
    first = ds[7]  # opens the zip in this process
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._zipfile is None
    for k in range(len(ds)):
        np.testing.assert_array_equal(clone[k][0], ds[k][0])
        np.testing.assert_array_equal(clone[k][1], ds[k][1])
    np.testing.assert_array_equal(first[0], imgs[1].transpose(2, 0, 1)[:, :, ::-1])


def test_dataloader_workers_read_the_same_images(tmp_path):
    # Enough reads that two workers sharing the parent's file offset (the bug this guards against)
    # would interleave seeks and reads and fail with a corrupt-member error.
    path, imgs, _, lab = labelled_set(tmp_path, 'zip', n=2000, res=4)
    ds = ImageFolderDataset(path, use_labels=True)
    ds[0]  # the parent holds an open handle when the workers fork: each must open its own
    loader = torch.utils.data.DataLoader(ds, batch_size=20, num_workers=2, shuffle=False)
    got_imgs, got_labels = zip(*[(x.numpy(), c.numpy()) for x, c in loader])
    np.testing.assert_array_equal(np.concatenate(got_imgs), imgs.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(np.concatenate(got_labels).argmax(1), lab)


def test_infinite_sampler_shards_ranks(tmp_path):
    ds = DigitsDataset(resolution=8, use_labels=True, max_size=30)
    n = len(ds)
    for block_size in (1, 5):
        streams = []
        for rank in range(3):
            sampler = InfiniteSampler(ds, rank=rank, num_replicas=3, seed=5, block_size=block_size)
            it = iter(sampler)
            streams.append([next(it) for _ in range(n // 3)])
        first_epoch = sorted(i for s in streams for i in s)
        assert first_epoch == list(range(n))  # ranks are disjoint and together cover every image once
    loader = torch.utils.data.DataLoader(ds, sampler=InfiniteSampler(ds, seed=1), batch_size=8)
    x, c = next(iter(loader))
    order = np.random.RandomState(1).permutation(n)[:8]
    for k in range(8):
        np.testing.assert_array_equal(x[k].numpy(), ds[int(order[k])][0])
        np.testing.assert_array_equal(c[k].numpy(), ds.get_label(int(order[k])))


# ----------------------------------------------------------------------------
# The embedded digits.


def _lanczos_upscale_reference(img: np.ndarray, out: int) -> np.ndarray:
    """Naive separable Lanczos-3 upscaling with pixel-centre alignment and 8-bit rounding after each pass
    (the convention of PIL's resampler, written out independently)."""
    def kernel(x):
        if abs(x) >= 3:
            return 0.0
        return np.sinc(x) * np.sinc(x / 3)

    def weights(n_in, n_out):
        scale = n_in / n_out
        w = np.zeros((n_out, n_in))
        for o in range(n_out):
            center = (o + 0.5) * scale
            for i in range(n_in):
                w[o, i] = kernel(i + 0.5 - center)
            w[o] /= w[o].sum()
        return w

    w = weights(img.shape[0], out)
    tmp = np.clip(np.round(img.astype(np.float64) @ w.T), 0, 255)       # horizontal pass
    return np.clip(np.round(w @ tmp), 0, 255).astype(np.uint8)        # vertical pass


def test_digits_native_and_upscaled():
    from sklearn.datasets import load_digits
    ref = load_digits()
    native = DigitsDataset(resolution=8, use_labels=True)
    assert len(native) == 1797 and native.image_shape == [1, 8, 8] and native.name == 'digits8'
    assert native.has_onehot_labels and native.label_dim == 10
    for k in (0, 1, 500, 1796):
        img, label = native[k]
        expected = np.array([[math.floor(v * 255 / 16 + 0.5) for v in row] for row in ref.images[k]])
        np.testing.assert_array_equal(img[0], expected)
        assert label.argmax() == ref.target[k] and label.sum() == 1
    for res in (16, 32):
        ds = DigitsDataset(resolution=res)
        assert ds.image_shape == [1, res, res] and ds.name == f'digits{res}'
        for k in (3, 1000):
            up = _lanczos_upscale_reference(native[k][0][0], res)
            got = ds[k][0][0].astype(int)
            assert np.abs(got - up).max() <= 1
    rgb = DigitsDataset(resolution=16, channels=3)
    img = rgb[10][0]
    assert img.shape == (3, 16, 16) and (img[0] == img[1]).all() and (img[0] == img[2]).all()
    np.testing.assert_array_equal(img[0], DigitsDataset(resolution=16)[10][0][0])
    with pytest.raises(ValueError, match='resolution'):
        DigitsDataset(resolution=12)
    with pytest.raises(ValueError, match='channels'):
        DigitsDataset(channels=2)


def test_digits_labels_and_pickle():
    from sklearn.datasets import load_digits
    ds = DigitsDataset(resolution=16, use_labels=True)
    np.testing.assert_array_equal([ds.get_label(k).argmax() for k in range(len(ds))], load_digits().target)
    clone = pickle.loads(pickle.dumps(ds))
    assert len(pickle.dumps(ds)) < 20000  # workers rebuild the images instead of receiving them
    np.testing.assert_array_equal(clone[123][0], ds[123][0])


# ----------------------------------------------------------------------------
# --data strings.


def test_make_dataset_kwargs_builtin():
    k = make_dataset_kwargs('builtin:digits')
    assert k == dict(class_name='training.dataset.DigitsDataset', resolution=32, channels=1, use_labels=False,
                     max_size=None, xflip=False, random_seed=0)
    assert builtin_data.DEFAULT_DATA == 'builtin:digits'
    k = make_dataset_kwargs('builtin:digits16-rgb', use_labels=True, max_size=100, xflip=True)
    ds = dnnlib.util.construct_class_by_name(**json.loads(json.dumps(k)))
    assert len(ds) == 200 and ds.image_shape == [3, 16, 16] and ds.label_dim == 10
    assert make_dataset_kwargs('builtin:digits8').resolution == 8
    for bad in ('builtin:mnist', 'builtin:digits12', 'builtin:digits32-bgr'):
        with pytest.raises(ValueError, match='builtin:digits'):
            make_dataset_kwargs(bad)
    with pytest.raises(ValueError, match='resolution=64'):
        make_dataset_kwargs('builtin:digits', resolution=64)
    with pytest.raises(ValueError, match='--subset=5000'):
        make_dataset_kwargs('builtin:digits', max_size=5000)


def test_make_dataset_kwargs_paths(tmp_path):
    path, imgs, _, _ = labelled_set(tmp_path, 'zip', n=10)
    k = make_dataset_kwargs(path, use_labels=True, max_size=4, xflip=True, random_seed=3)
    assert k.class_name == 'training.dataset.ImageFolderDataset' and k.path == path
    ds = dnnlib.util.construct_class_by_name(**json.loads(json.dumps(k)))
    assert len(ds) == 8 and ds.has_labels
    missing = str(tmp_path / 'missing-data.zip')
    with pytest.raises(ValueError, match='missing-data.zip: no such file'):
        make_dataset_kwargs(missing)
    unlabelled, _, _, _ = labelled_set(tmp_path / 'u', 'dir', labels=None)
    with pytest.raises(ValueError, match='labels were requested'):
        make_dataset_kwargs(unlabelled, use_labels=True)
    with pytest.raises(ValueError, match='--subset=11'):
        make_dataset_kwargs(path, max_size=11)
    with pytest.raises(ValueError, match='--subset'):
        make_dataset_kwargs(path, max_size=0)
    with pytest.raises(ValueError, match='resolution=16'):
        make_dataset_kwargs(path, resolution=16)
