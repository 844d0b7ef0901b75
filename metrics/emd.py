"""Exact Earth Mover's Distance between two batches (the signal of SoftGAN's β schedule, METHODS.md 1).

`batch_emd` and `cost_matrix` are defined in stylegan2_softgan.emd (importable without this project's
top-level package names, for SoftGAN's NVIDIA plugin) and re-exported here; this module adds the batch-EMD
metric. For two batches of equal size the optimal plan is a permutation, so the EMD equals the mean cost of
the optimal assignment.
"""

from __future__ import annotations

import numpy as np
import torch

from metrics import metric_utils
from stylegan2_softgan.emd import batch_emd, cost_matrix  # noqa: F401 - defined where SoftGAN's plugin can reach them


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
