"""dataset_tool.py: every source type round-trips into a data set the training code reads back; bad input
fails with one line naming the file, exit status 2, and nothing left behind."""

import gzip
import importlib.util
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner

from training.dataset import DigitsDataset, ImageFolderDataset

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / 'shared' / 'data'
CIFAR_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']

_spec = importlib.util.spec_from_file_location('dataset_tool', REPO_ROOT / 'dataset_tool.py')
dataset_tool = importlib.util.module_from_spec(_spec)
sys.modules.setdefault('dataset_tool', dataset_tool)
_spec.loader.exec_module(dataset_tool)


def _runner():
    try:
        return CliRunner(mix_stderr=False)  # click 8.1 keeps stderr apart only when asked
    except TypeError:
        return CliRunner()  # click >= 8.2: always apart


def run_tool(*args):
    return _runner().invoke(dataset_tool.main, ['--quiet', *[str(a) for a in args]])


def ok(*args):
    result = run_tool(*args)
    assert result.exit_code == 0, f'{result.output}\n{result.exception!r}'
    return result


def fails(dest, *args, needles=()):
    """Run the tool expecting a user error; check the one-line message and that nothing was left behind."""
    dest = Path(dest)
    before = set(os.listdir(dest.parent)) if dest.parent.exists() else None
    dest_before = dest.read_bytes() if dest.is_file() else None
    result = run_tool('--dest', dest, *args)
    assert result.exit_code == 2, f'{result.output}\n{result.exception!r}'
    assert isinstance(result.exception, SystemExit)  # not an uncaught exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('Error: '), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    if dest_before is None:
        assert not dest.exists()
    else:
        assert dest.read_bytes() == dest_before  # an existing destination is left untouched
    after = set(os.listdir(dest.parent)) if dest.parent.exists() else None
    assert after == before, f'left behind: {after - before}'
    return lines[0]


def read_back(path, use_labels=True):
    ds = ImageFolderDataset(str(path), use_labels=use_labels)
    imgs = np.stack([ds[k][0] for k in range(len(ds))])
    labels = np.array([ds.get_details(k).raw_label for k in range(len(ds))]) if ds.has_labels else None
    return ds, imgs, labels


def png_bytes(img, fmt='png', **kw):
    buf = io.BytesIO()
    PIL.Image.fromarray(img[:, :, 0] if img.ndim == 3 and img.shape[2] == 1 else img).save(buf, format=fmt, **kw)
    return buf.getvalue()


def rand_images(n, h, w, c, seed=0):
    return np.random.RandomState(seed).randint(0, 256, size=(n, h, w, c), dtype=np.uint8)


def write_files(root: Path, files: dict):
    for name, data in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def write_zip(path: Path, files: dict):
    with zipfile.ZipFile(path, 'w', compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def require_shared(*names):
    for name in names:
        if not (SHARED_DATA / name).exists():
            pytest.skip(f'{SHARED_DATA / name} is absent (real data for this test lives in ../shared/data)')
    return SHARED_DATA


# ----------------------------------------------------------------------------
# Image folders and zips.


@pytest.mark.parametrize('dest_kind', ['zip', 'dir'])
def test_class_folders_roundtrip(tmp_path, dest_kind):
    imgs = rand_images(9, 8, 8, 3)
    classes = ['dog', 'ant', 'cat']
    files = {f'{classes[k % 3]}/{k:02d}.png': png_bytes(imgs[k]) for k in range(9)}
    src = write_files(tmp_path / 'src', files)
    dest = tmp_path / ('out.zip' if dest_kind == 'zip' else 'out')
    ok('--source', src, '--dest', dest)
    ds, got, labels = read_back(dest)
    order = sorted(files)  # documented: images in sorted path order, classes alphabetical
    expected = np.stack([imgs[int(n.split('/')[1][:2])] for n in order]).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(labels, [sorted(classes).index(n.split('/')[0]) for n in order])
    meta = json.loads((zipfile.ZipFile(dest).read('dataset.json') if dest_kind == 'zip'
                       else (dest / 'dataset.json').read_bytes()))
    assert meta['class_names'] == ['ant', 'cat', 'dog']
    assert meta['labels'][0][0] == '00000/img00000000.png'
    if dest_kind == 'zip':
        assert {i.compress_type for i in zipfile.ZipFile(dest).infolist()} == {zipfile.ZIP_STORED}
    ok('--source', src, '--dest', tmp_path / 'nolabels.zip', '--no-labels')
    assert not read_back(tmp_path / 'nolabels.zip')[0].has_labels


def test_zip_source_with_dataset_json_and_wrapper_folder(tmp_path):
    imgs = rand_images(6, 4, 4, 1, seed=1)
    names = [f'wrap/x{k}.png' for k in range(6)]
    files = {n: png_bytes(imgs[k]) for k, n in enumerate(names)}
    files['dataset.json'] = json.dumps({'labels': [[n, 5 - k] for k, n in enumerate(names)]}).encode()
    files['wrap/readme.txt'] = b'not an image'
    files['__MACOSX/wrap/._x0.png'] = b'resource fork, not an image'
    src = write_zip(tmp_path / 'src.zip', files)
    ok('--source', src, '--dest', tmp_path / 'out')
    _, got, labels = read_back(tmp_path / 'out')
    np.testing.assert_array_equal(got[:, 0], imgs[:, :, :, 0])
    np.testing.assert_array_equal(labels, [5 - k for k in range(6)])
    # The tool's own output is a valid source: labels survive a second conversion.
    ok('--source', tmp_path / 'out', '--dest', tmp_path / 'again.zip')
    _, got2, labels2 = read_back(tmp_path / 'again.zip')
    np.testing.assert_array_equal(got2, got)
    np.testing.assert_array_equal(labels2, labels)


def test_split_layout_and_jpeg(tmp_path):
    yy, xx = np.mgrid[0:8, 0:8]
    imgs = np.stack([np.stack([xx * 20 + 10 * k, yy * 25, (xx + yy) * 10 + 5 * k], axis=2) for k in range(8)])
    imgs = imgs.astype(np.uint8)  # smooth, so that JPEG's loss is small
    files = {}
    for k in range(8):
        split = 'train' if k < 6 else 'test'
        cls = ['b', 'a'][k % 2] if k != 7 else 'c'  # class c only in test: indices still shared
        files[f'{split}/{cls}/{k}.jpg'] = png_bytes(imgs[k], fmt='jpeg', quality=95)
    src = write_zip(tmp_path / 'src.zip', files)
    ok('--source', src, '--dest', tmp_path / 'train.zip')
    ok('--source', src, '--dest', tmp_path / 'test.zip', '--split=test')
    _, tr, tr_labels = read_back(tmp_path / 'train.zip')
    _, te, te_labels = read_back(tmp_path / 'test.zip')
    assert len(tr) == 6 and len(te) == 2
    np.testing.assert_array_equal(tr_labels, [0, 0, 0, 1, 1, 1])  # sorted: train/a/1,3,5 then train/b/0,2,4
    np.testing.assert_array_equal(te_labels, [1, 2])                # test/b/6.jpg, test/c/7.jpg
    decoded = np.asarray(PIL.Image.open(io.BytesIO(files['train/a/1.jpg'])))
    np.testing.assert_array_equal(tr[0], decoded.transpose(2, 0, 1))
    assert np.abs(tr[0].astype(int) - imgs[1].transpose(2, 0, 1)).mean() < 4  # JPEG is lossy but close


def test_transforms(tmp_path):
    img = rand_images(1, 12, 20, 3, seed=3)[0]
    src = write_files(tmp_path / 'src', {'a.png': png_bytes(img)})
    ok('--source', src, '--dest', tmp_path / 'crop.zip', '--resolution=8', '--transform=center-crop',
       '--resize-filter=box')
    got = read_back(tmp_path / 'crop.zip')[1][0].transpose(1, 2, 0)
    ref = np.asarray(PIL.Image.fromarray(img[:, 4:16]).resize((8, 8), PIL.Image.Resampling.BOX))
    np.testing.assert_array_equal(got, ref)

    ok('--source', src, '--dest', tmp_path / 'pad.zip', '--resolution=32', '--transform=pad')
    got = read_back(tmp_path / 'pad.zip')[1][0].transpose(1, 2, 0)
    ref = np.zeros((32, 32, 3), np.uint8)
    ref[10:22, 6:26] = img
    np.testing.assert_array_equal(got, ref)

    ok('--source', src, '--dest', tmp_path / 'wide.zip', '--resolution=16', '--transform=center-crop-wide',
       '--wide-height=8', '--resize-filter=nearest')
    got = read_back(tmp_path / 'wide.zip')[1][0].transpose(1, 2, 0)
    assert (got[:4] == 0).all() and (got[12:] == 0).all()  # letterbox bars
    # 20x12 image, target aspect 16:8 = 2:1 -> a centred 20x10 window, scaled to 16x8.
    ref = np.asarray(PIL.Image.fromarray(img[1:11]).resize((16, 8), PIL.Image.Resampling.NEAREST))
    np.testing.assert_array_equal(got[4:12], ref)


def test_max_images_is_a_seeded_subset(tmp_path):
    imgs = rand_images(30, 4, 4, 3, seed=4)
    src = write_files(tmp_path / 'src', {f'{k:02d}.png': png_bytes(imgs[k]) for k in range(30)})
    ok('--source', src, '--dest', tmp_path / 'a.zip', '--max-images=7')
    ok('--source', src, '--dest', tmp_path / 'b.zip', '--max-images=7')
    _, a, _ = read_back(tmp_path / 'a.zip')
    _, b, _ = read_back(tmp_path / 'b.zip')
    keep = np.sort(np.random.RandomState(0).permutation(30)[:7])  # documented rule
    np.testing.assert_array_equal(a, imgs[keep].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(a, b)


def test_overwrite(tmp_path):
    src = write_files(tmp_path / 'src', {'a.png': png_bytes(rand_images(1, 4, 4, 3)[0])})
    dest = tmp_path / 'out.zip'
    dest.write_bytes(b'precious')
    msg = fails(dest, '--source', src, needles=[str(dest), '--overwrite'])
    assert 'already exists' in msg and dest.read_bytes() == b'precious'
    ok('--source', src, '--dest', dest, '--overwrite')
    assert len(ImageFolderDataset(str(dest))) == 1
    folder = tmp_path / 'outdir'
    (folder / 'old').mkdir(parents=True)
    ok('--source', src, '--dest', folder, '--overwrite')
    assert not (folder / 'old').exists() and len(ImageFolderDataset(str(folder))) == 1


# ----------------------------------------------------------------------------
# CIFAR-10 python pickles: no originals are available offline, so fixtures are written byte by byte in the
# format of the Python 2 cPickle files (protocol 2, str keys, numpy.core.multiarray._reconstruct).


def _s(b):
    return (b'U' + bytes([len(b)]) + b) if len(b) < 256 else (b'T' + struct.pack('<i', len(b)) + b)


def _i(v):
    return (b'K' + bytes([v])) if 0 <= v < 256 else (b'J' + struct.pack('<i', v))


def py2_pickle(d: dict) -> bytes:
    out = [b'\x80\x02}(']
    for k, v in d.items():
        out.append(_s(k))
        if isinstance(v, bytes):
            out.append(_s(v))
        elif isinstance(v, int):
            out.append(_i(v))
        elif isinstance(v, list):
            out.append(b'](' + b''.join(_s(x) if isinstance(x, bytes) else _i(x) for x in v) + b'e')
        else:
            assert v.dtype == np.uint8 and v.ndim == 2
            out.append(b'cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n')
            out.append(_i(0) + b'\x85' + _s(b'b') + b'\x87R')
            out.append(b'(' + _i(1) + _i(v.shape[0]) + _i(v.shape[1]) + b'\x86')
            out.append(b'cnumpy\ndtype\n' + _s(b'u1') + _i(0) + _i(1) + b'\x87R')
            out.append(b'(' + _i(3) + _s(b'|') + b'NNN' + _i(-1) + _i(-1) + _i(0) + b'tb')
            out.append(b'\x89' + _s(v.tobytes()) + b'tb')
    out.append(b'u.')
    return b''.join(out)


def cifar_fixture(root: Path, per_batch=4):
    rng = np.random.RandomState(5)
    files, arrays = {}, {}
    for name in [f'data_batch_{k}' for k in range(1, 6)] + ['test_batch']:
        data = rng.randint(0, 256, size=(per_batch, 3072)).astype(np.uint8)
        labels = [int(x) for x in rng.randint(0, 10, size=per_batch)]
        arrays[name] = (data, labels)
        files[name] = py2_pickle({b'batch_label': name.encode(), b'labels': labels, b'data': data,
                                  b'filenames': [f'{name}_{k}.png'.encode() for k in range(per_batch)]})
    files['batches.meta'] = py2_pickle({b'label_names': [c.encode() for c in CIFAR_CLASSES],
                                        b'num_cases_per_batch': 10000, b'num_vis': 3072})
    write_files(root / 'cifar-10-batches-py', files)
    return files, arrays


def test_cifar_fixture_is_the_python2_format(tmp_path):
    files, arrays = cifar_fixture(tmp_path)
    ref = pickle.loads(files['data_batch_2'], encoding='bytes')  # the way the CIFAR page says to read it
    np.testing.assert_array_equal(ref[b'data'], arrays['data_batch_2'][0])
    assert ref[b'labels'] == arrays['data_batch_2'][1]
    assert b"cnumpy.core.multiarray\n_reconstruct" in files['data_batch_2']


@pytest.mark.parametrize('form', ['dir', 'tar.gz', 'py3-pickles'])
def test_cifar_pickles_roundtrip(tmp_path, form):
    files, arrays = cifar_fixture(tmp_path / 'src')
    src = tmp_path / 'src'
    if form == 'tar.gz':
        src = tmp_path / 'cifar-10-python.tar.gz'
        with tarfile.open(src, 'w:gz') as tar:
            tar.add(tmp_path / 'src' / 'cifar-10-batches-py', arcname='cifar-10-batches-py')
    elif form == 'py3-pickles':  # re-pickled by Python 3 (protocol 2 spells bytes via _codecs.encode)
        for name in arrays:
            d = pickle.loads(files[name], encoding='bytes')
            (tmp_path / 'src' / 'cifar-10-batches-py' / name).write_bytes(pickle.dumps(d, protocol=2))
    for split, names in [('train', [f'data_batch_{k}' for k in range(1, 6)]), ('test', ['test_batch'])]:
        dest = tmp_path / f'{split}.zip'
        ok('--source', src, '--dest', dest, f'--split={split}')
        ds, got, labels = read_back(dest)
        data = np.concatenate([arrays[n][0] for n in names])
        expected = np.stack([np.stack([row[c * 1024:(c + 1) * 1024].reshape(32, 32) for c in range(3)])
                             for row in data])  # CIFAR rows: 1024 R, then 1024 G, then 1024 B, row-major
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(labels, sum((arrays[n][1] for n in names), []))
        assert ds.label_dim == max(labels) + 1
        meta = json.loads(zipfile.ZipFile(dest).read('dataset.json'))
        assert meta['class_names'] == CIFAR_CLASSES


def test_cifar_pickle_that_runs_code_is_refused(tmp_path):
    d = tmp_path / 'evil'
    cifar_fixture(d)
    marker = tmp_path / 'pwned'

    class Evil:
        def __reduce__(self):
            return (os.system, (f'touch {marker}',))
    (d / 'cifar-10-batches-py' / 'data_batch_3').write_bytes(pickle.dumps({b'data': Evil()}, protocol=2))
    msg = fails(tmp_path / 'out.zip', '--source', d, needles=['data_batch_3', 'refusing to load'])
    assert 'system' in msg and not marker.exists()


def test_cifar_missing_batch(tmp_path):
    cifar_fixture(tmp_path / 'src')
    os.remove(tmp_path / 'src' / 'cifar-10-batches-py' / 'data_batch_4')
    fails(tmp_path / 'out.zip', '--source', tmp_path / 'src', needles=['data_batch_4', 'missing'])
    ok('--source', tmp_path / 'src', '--dest', tmp_path / 'test.zip', '--split=test')  # test split is whole


# ----------------------------------------------------------------------------
# MNIST: IDX (gz or raw) and npz.


def idx_bytes(array: np.ndarray) -> bytes:
    return bytes([0, 0, 8, array.ndim]) + struct.pack('>' + 'I' * array.ndim, *array.shape) + array.tobytes()


def mnist_fixture(root: Path, n=10, gz=True):
    rng = np.random.RandomState(6)
    x = {s: rng.randint(0, 256, size=(n, 28, 28)).astype(np.uint8) for s in ('train', 'test')}
    y = {s: rng.randint(0, 10, size=n).astype(np.uint8) for s in ('train', 'test')}
    root.mkdir(parents=True, exist_ok=True)
    for split, prefix in (('train', 'train'), ('test', 't10k')):
        for kind, arr in (('images-idx3', x[split]), ('labels-idx1', y[split])):
            data = idx_bytes(arr)
            name = f'{prefix}-{kind}-ubyte'
            if gz:
                (root / (name + '.gz')).write_bytes(gzip.compress(data))
            else:
                (root / name).write_bytes(data)
    np.savez(root.parent / f'{root.name}.npz', x_train=x['train'], y_train=y['train'], x_test=x['test'],
             y_test=y['test'])
    return x, y


def test_mnist_idx_and_npz_fixtures_agree(tmp_path):
    x, y = mnist_fixture(tmp_path / 'gz', gz=True)
    mnist_fixture(tmp_path / 'raw', gz=False)
    for split in ('train', 'test'):
        outs = []
        for src in (tmp_path / 'gz', tmp_path / 'raw', tmp_path / 'gz.npz'):
            dest = tmp_path / f'{src.name}-{split}.zip'
            ok('--source', src, '--dest', dest, f'--split={split}', '--resolution=32', '--transform=pad')
            outs.append(read_back(dest))
        expected = np.pad(x[split], ((0, 0), (2, 2), (2, 2)))[:, np.newaxis]
        for _, got, labels in outs:
            np.testing.assert_array_equal(got, expected)
            np.testing.assert_array_equal(labels, y[split])
    ok('--source', tmp_path / 'gz' / 't10k-images-idx3-ubyte.gz', '--dest', tmp_path / 'one.zip',
       '--resolution=32', '--transform=pad')
    np.testing.assert_array_equal(read_back(tmp_path / 'one.zip')[1][:, 0], np.pad(x['test'], ((0, 0), (2, 2), (2, 2))))


def test_mnist_real_idx_equals_npz(tmp_path):
    data = require_shared('mnist.npz', 'mnist-idx/t10k-images-idx3-ubyte.gz', 'mnist-idx/t10k-labels-idx1-ubyte.gz')
    n = 3000
    ok('--source', data / 'mnist-idx', '--dest', tmp_path / 'idx.zip', '--split=test', '--resolution=32',
       '--transform=pad', f'--max-images={n}')
    ok('--source', data / 'mnist.npz', '--dest', tmp_path / 'npz.zip', '--split=test', '--resolution=32',
       '--transform=pad', f'--max-images={n}')
    _, a, la = read_back(tmp_path / 'idx.zip')
    _, b, lb = read_back(tmp_path / 'npz.zip')
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    with np.load(data / 'mnist.npz') as npz:
        keep = np.sort(np.random.RandomState(0).permutation(len(npz['x_test']))[:n])
        np.testing.assert_array_equal(a[:, 0], np.pad(npz['x_test'][keep], ((0, 0), (2, 2), (2, 2))))
        np.testing.assert_array_equal(la, npz['y_test'][keep])
        # Without a transform the 28x28 digits are resized (Lanczos by default).
        ok('--source', data / 'mnist.npz', '--dest', tmp_path / 'resized.zip', '--resolution=32', '--max-images=20')
        keep = np.sort(np.random.RandomState(0).permutation(len(npz['x_train']))[:20])
        ref = np.stack([np.asarray(PIL.Image.fromarray(im).resize((32, 32), PIL.Image.Resampling.LANCZOS))
                        for im in npz['x_train'][keep]])
        np.testing.assert_array_equal(read_back(tmp_path / 'resized.zip')[1][:, 0], ref)
    fails(tmp_path / 'train.zip', '--source', data / 'mnist-idx', '--resolution=32',
          needles=['train-images-idx3-ubyte', '--split=test'])


# ----------------------------------------------------------------------------
# CIFAR-10 JPEG archive and the embedded digits.


@pytest.mark.parametrize('split,n', [('test', 300), ('train', 200)])
def test_cifar_jpeg_archive(tmp_path, split, n):
    data = require_shared('cifar10-jpeg.zip')
    dest = tmp_path / f'{split}.zip'
    ok('--source', data / 'cifar10-jpeg.zip', '--dest', dest, f'--split={split}', f'--max-images={n}')
    ds, got, labels = read_back(dest)
    assert len(ds) == n and ds.image_shape == [3, 32, 32] and ds.label_dim == 10
    with zipfile.ZipFile(data / 'cifar10-jpeg.zip') as zf:
        names = sorted(m for m in zf.namelist() if m.startswith(f'{split}/') and m.endswith('.jpg'))
        assert len(names) == {'train': 50000, 'test': 10000}[split]
        keep = np.sort(np.random.RandomState(0).permutation(len(names))[:n])
        for k, i in enumerate(keep):
            ref = np.asarray(PIL.Image.open(io.BytesIO(zf.read(names[i]))).convert('RGB'))
            np.testing.assert_array_equal(got[k], ref.transpose(2, 0, 1))
            assert labels[k] == CIFAR_CLASSES.index(names[i].split('/')[1])
    assert len(set(labels.tolist())) == 10


def test_builtin_digits_matches_dataset(tmp_path):
    ok('--source', 'builtin:digits', '--dest', tmp_path / 'd.zip')
    ds, got, labels = read_back(tmp_path / 'd.zip')
    ref = DigitsDataset(resolution=32, use_labels=True)
    assert len(ds) == len(ref) == 1797
    np.testing.assert_array_equal(got, np.stack([ref[k][0] for k in range(len(ref))]))
    np.testing.assert_array_equal(labels, [ref.get_label(k).argmax() for k in range(len(ref))])
    ok('--source', 'builtin:digits8', '--dest', tmp_path / 'd16.zip', '--resolution=16', '--max-images=5')
    assert read_back(tmp_path / 'd16.zip')[0].image_shape == [1, 16, 16]


# ----------------------------------------------------------------------------
# Bad input.


def _png_set(tmp_path, extra: dict, n=3, size=(8, 8, 3)):
    """A folder of good images followed (in sorted order) by `extra`, so some output is written first."""
    files = {f'a{k}.png': png_bytes(rand_images(1, *size, seed=k)[0]) for k in range(n)}
    files.update(extra)
    return write_files(tmp_path / 'src', files)


def test_errors_paths_and_options(tmp_path):
    dest = tmp_path / 'out' / 'nested' / 'x.zip'  # parents that the tool creates must go again
    fails(dest, '--source', tmp_path / 'missing', needles=['missing', 'no such file'])
    (tmp_path / 'empty').mkdir()
    fails(dest, '--source', tmp_path / 'empty', needles=['empty', 'no image files'])
    (tmp_path / 'bad.zip').write_bytes(b'PK\x03\x04garbage' * 50)
    fails(dest, '--source', tmp_path / 'bad.zip', needles=['bad.zip', 'not a valid zip'])
    good = write_zip(tmp_path / 'good.zip', {f'{k}.png': png_bytes(rand_images(1, 8, 8, 3)[0]) for k in range(3)})
    (tmp_path / 'cut.zip').write_bytes(good.read_bytes()[:-60])
    fails(dest, '--source', tmp_path / 'cut.zip', needles=['cut.zip', 'not a valid zip'])
    (tmp_path / 'notes.txt').write_text('hello')
    fails(dest, '--source', tmp_path / 'notes.txt', needles=['notes.txt', 'unrecognised'])
    fails(dest, '--source', good, '--split=test', needles=['--split=test', 'good.zip'])
    fails(dest, '--source', good, '--resolution=24', needles=['--resolution=24', 'power of two', '32'])
    fails(dest, '--source', good, '--transform=pad', needles=['--transform=pad', '--resolution'])
    fails(dest, '--source', 'builtin:digits7', needles=['builtin:digits7'])
    fails(dest, '--source', 'builtin:digits', '--split=train', needles=['--split=train'])
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('case', ['garbage', 'truncated-png', 'truncated-jpeg', 'mixed-size', 'non-square',
                                  'non-pow2', 'rgba', 'mixed-channels', 'pad-too-small'])
def test_errors_images(tmp_path, case):
    args, size = [], (8, 8, 3)
    good_png = png_bytes(rand_images(1, 8, 8, 3, seed=9)[0])
    jpeg = png_bytes(rand_images(1, 8, 8, 3, seed=9)[0], fmt='jpeg')
    extra, needles = {}, []
    if case == 'garbage':
        extra, needles = {'z.png': b'\x89PNG\r\n\x1a\n' + b'\0' * 40}, ['z.png', 'not a readable image']
    elif case == 'truncated-png':
        extra, needles = {'z.png': good_png[:len(good_png) // 2]}, ['z.png', 'truncated']
    elif case == 'truncated-jpeg':
        extra, needles = {'z.jpg': jpeg[:len(jpeg) - 40]}, ['z.jpg', 'truncated']
    elif case == 'mixed-size':
        extra = {'z.png': png_bytes(rand_images(1, 16, 16, 3)[0])}
        needles = ['z.png', '16x16', 'a0.png', '--resolution']
    elif case == 'non-square':
        size, needles = (8, 16, 3), ['a0.png', '16x8', 'not square', '--transform=center-crop']
    elif case == 'non-pow2':
        size, needles = (28, 28, 1), ['a0.png', '28x28', '--resolution=32', '--transform=pad']
    elif case == 'rgba':
        extra, needles = {'z.png': png_bytes(rand_images(1, 8, 8, 4)[0])}, ['z.png', '4 channels']
    elif case == 'mixed-channels':
        extra, needles = {'z.png': png_bytes(rand_images(1, 8, 8, 1)[0])}, ['z.png', '1 channels', 'a0.png']
    elif case == 'pad-too-small':
        args, needles = ['--resolution=4', '--transform=pad'], ['a0.png', 'larger than --resolution=4']
    src = _png_set(tmp_path, extra, size=size)
    for dest in (tmp_path / 'o.zip', tmp_path / 'odir'):
        fails(dest, '--source', src, *args, needles=needles)


@pytest.mark.parametrize('case', ['missing', 'extra', 'invalid', 'vectors'])
def test_errors_labels(tmp_path, case):
    names = [f'a{k}.png' for k in range(3)]
    entries = [[n, k] for k, n in enumerate(names)]
    if case == 'missing':
        text, needles = json.dumps({'labels': entries[:2]}), ['dataset.json', 'no label for image a2.png']
    elif case == 'extra':
        text, needles = json.dumps({'labels': entries + [['b.png', 0]]}), ['dataset.json', 'b.png', 'no such image']
    elif case == 'invalid':
        text, needles = '{"labels": [', ['dataset.json', 'invalid JSON']
    else:
        text = json.dumps({'labels': [[n, [0.5]] for n in names]})
        needles = ['dataset.json', 'integer class labels']
    src = _png_set(tmp_path, {'dataset.json': text.encode()})
    fails(tmp_path / 'o.zip', '--source', src, needles=needles)
    ok('--source', src, '--dest', tmp_path / 'o.zip', '--no-labels')  # the labels can be left out


def test_errors_corrupt_zip_member(tmp_path):
    files = {f'{k}.png': png_bytes(rand_images(1, 8, 8, 3, seed=k)[0]) for k in range(3)}
    path = tmp_path / 'src.zip'
    with zipfile.ZipFile(path, 'w', compression=zipfile.ZIP_STORED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    raw = bytearray(path.read_bytes())
    info = zipfile.ZipFile(path).getinfo('2.png')
    raw[info.header_offset + 30 + len('2.png') + 50] ^= 0xFF
    path.write_bytes(bytes(raw))
    fails(tmp_path / 'o.zip', '--source', path, needles=['src.zip:2.png', 'corrupt zip member'])


@pytest.mark.parametrize('case', ['truncated', 'magic', 'count', 'npz-keys'])
def test_errors_mnist(tmp_path, case):
    mnist_fixture(tmp_path / 'm', gz=case != 'truncated')
    src, needles = tmp_path / 'm', []
    if case == 'truncated':
        p = tmp_path / 'm' / 'train-images-idx3-ubyte'
        p.write_bytes(p.read_bytes()[:-100])
        needles = ['train-images-idx3-ubyte', 'truncated']
    elif case == 'magic':
        p = tmp_path / 'm' / 'train-labels-idx1-ubyte.gz'
        p.write_bytes(gzip.compress(b'\x12\x34' + gzip.decompress(p.read_bytes())[2:]))
        needles = ['train-labels-idx1-ubyte.gz', 'magic']
    elif case == 'count':
        p = tmp_path / 'm' / 'train-labels-idx1-ubyte.gz'
        p.write_bytes(gzip.compress(idx_bytes(np.zeros(7, np.uint8))))
        needles = ['train-labels-idx1-ubyte.gz', '7 labels for 10 images']
    else:
        src = tmp_path / 'other.npz'
        np.savez(src, images=np.zeros((2, 4, 4), np.uint8))
        needles = ['other.npz', 'x_train', 'found: images']
    fails(tmp_path / 'o.zip', '--source', src, '--resolution=32', needles=needles)


def test_process_exit_status_and_stderr(tmp_path):
    """The real command line: exit status 2, one line on stderr, no traceback."""
    proc = subprocess.run([sys.executable, str(REPO_ROOT / 'dataset_tool.py'), '--source', str(tmp_path / 'nope'),
                           '--dest', str(tmp_path / 'o.zip')], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f'Error: --source: {tmp_path / "nope"}: no such file or folder']
    assert not (tmp_path / 'o.zip').exists()
