"""Exact Earth Mover's Distance between two batches of samples (the signal of SoftGAN's β schedule).

Needs only numpy, torch and POT, so that the β schedule can use it inside NVIDIA's checkouts too
(stylegan2_softgan.host explains why). ``metrics.emd`` re-exports these functions and adds the metric.
Each sample is flattened to a vector; the ground cost is the Euclidean distance, computed with torch on the
inputs' device in float64; only the m x n cost matrix goes to the CPU, where POT solves the transport
problem exactly with uniform weights.
"""

from __future__ import annotations

import numpy as np
import torch


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
