"""Exact Earth Mover's Distance between two batches (the signal of SoftGAN's β schedule, METHODS.md 1).

Each sample is flattened to a vector; the ground cost is the Euclidean distance, computed with torch on the
inputs' device in float64; only the m x n cost matrix goes to the CPU, where POT solves the transport
problem exactly with uniform weights. For two batches of equal size the optimal plan is a permutation, so
the EMD equals the mean cost of the optimal assignment.
"""

from __future__ import annotations

import numpy as np
import torch

from metrics import metric_utils


def cost_matrix(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Euclidean distances between the flattened rows of x [m, ...] and y [n, ...] (float64, on x's device)."""
    if x.ndim < 1 or y.ndim < 1 or x.shape[0] == 0 or y.shape[0] == 0:
        raise ValueError(f'batch EMD needs two non-empty batches, got shapes {tuple(x.shape)} and {tuple(y.shape)}')
    x = x.detach().reshape(x.shape[0], -1).to(torch.float64)
    y = y.detach().reshape(y.shape[0], -1).to(device=x.device, dtype=torch.float64)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f'batch EMD needs samples of equal size, got {x.shape[1]} and {y.shape[1]} values per sample')
    return torch.cdist(x, y)


def batch_emd(x: torch.Tensor, y: torch.Tensor) -> float:
    """Exact EMD with uniform weights between batches x [m, ...] and y [n, ...]."""
    import ot
    cost = cost_matrix(x, y).cpu().numpy()
    m, n = cost.shape
    a = np.full(m, 1.0 / m)
    b = np.full(n, 1.0 / n)
    return float(ot.emd2(a, b, cost, numItermax=max(100000, 50 * m * n)))


def compute_batch_emd(opts: metric_utils.MetricOptions, batch: int, num_batches: int):
    """(mean EMD generated vs real, mean EMD real vs disjoint real) over `num_batches` batch pairs, in the
    generator's pixel range [-1, 1]. The second number is the floor a perfect generator would reach."""
    pixels = metric_utils.get_pixel_detector(opts)
    gen = metric_utils.compute_feature_stats_for_generator(
        opts, pixels, num_items=batch * num_batches, capture_all=True).get_all()
    dataset_len = len(metric_utils.make_dataset(opts))
    if dataset_len < 2 * batch:
        raise metric_utils.MetricError(f'batch EMD with batch {batch} needs at least {2 * batch} real images, the data set has {dataset_len}')
    # Each pair of real batches is disjoint; different pairs may share images when the data set is small.
    rng = np.random.default_rng([opts.seed, 0xE3D])
    picks = np.concatenate([rng.choice(dataset_len, 2 * batch, replace=False) for _ in range(num_batches)])
    real = torch.cat([pixels(images) for images in metric_utils.iterate_real_images(opts, picks.tolist())]).cpu()
    emd, floor = [], []
    device = opts.device
    for i in range(num_batches):
        g = torch.from_numpy(gen[i * batch:(i + 1) * batch]).to(device)
        r1 = real[(2 * i) * batch:(2 * i + 1) * batch].to(device)
        r2 = real[(2 * i + 1) * batch:(2 * i + 2) * batch].to(device)
        emd.append(batch_emd(g, r1))
        floor.append(batch_emd(r2, r1))
    return float(np.mean(emd)), float(np.mean(floor))
