"""The 2-D data sets of the mode-coverage benchmarks (BENCHMARKS.md, "2D mixtures").

    ring8       8 Gaussians, means (cos 2πi/8, sin 2πi/8), i = 0..7, σ = 0.01 (PacGAN / VEEGAN)
    grid25      25 Gaussians, means {−4, −2, 0, 2, 4}², σ = 0.05 (PacGAN / VEEGAN)
    swissroll   the 2-D swiss roll of the WGAN-GP toy experiments: t = 1.5π(1 + 2u), (t cos t, t sin t)
                plus N(0, 0.25²) noise, divided by 7.5 (seed 002, Fig. 9)
    gaussian    n points drawn once from N(0, I₂), the whole training set (seed 002, Fig. 1)

Each data set fixes a training set from the run's seed (PacGAN: a fixed set of 100k samples seen for
many epochs; the finite Gaussian: `n` points) and can draw fresh samples from the true distribution,
which the scores of the overfitting checks compare against.

The ring's means are built from i·2π/8 for i = 0..7, never from ``linspace(0, 2π, 8)``: that common
slip puts the last mean on the first and leaves 7 distinct modes.
"""

from __future__ import annotations

import dataclasses
import numpy as np

# ----------------------------------------------------------------------------
# Definitions.


def ring_means(num_modes: int = 8, radius: float = 1.0) -> np.ndarray:
    """[num_modes, 2] means evenly spaced on a circle, the first at angle 0."""
    angles = 2 * np.pi * np.arange(num_modes) / num_modes
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def grid_means(side: int = 5, spacing: float = 2.0) -> np.ndarray:
    """[side², 2] means on a centred square grid, row-major in (x, y)."""
    coords = (np.arange(side) - (side - 1) / 2) * spacing
    xx, yy = np.meshgrid(coords, coords, indexing='ij')
    return np.stack([xx.ravel(), yy.ravel()], axis=1)


@dataclasses.dataclass(frozen=True)
class Data2D:
    """One 2-D benchmark distribution."""

    name: str                   # registry name (ring8, grid25, swissroll, gaussian)
    kind: str                   # 'mixture', 'swissroll' or 'finite'
    description: str            # one line for reports
    means: np.ndarray | None    # [K, 2] mode means (mixtures; None otherwise)
    sigma: float                # per-axis std of each mixture component / noise scale of the finite set
    train_size: int             # size of the fixed training set drawn from the run's seed

    def sample_true(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n fresh samples [n, 2] (float64) from the true distribution."""
        if self.kind == 'mixture':
            idx = rng.integers(0, len(self.means), size=n)
            return self.means[idx] + self.sigma * rng.standard_normal((n, 2))
        if self.kind == 'swissroll':
            t = 1.5 * np.pi * (1 + 2 * rng.random(n))
            pts = np.stack([t * np.cos(t), t * np.sin(t)], axis=1)
            return (pts + 0.25 * rng.standard_normal((n, 2))) / 7.5
        if self.kind == 'finite':
            return rng.standard_normal((n, 2))
        raise AssertionError(self.kind)

    def train_set(self, seed: int) -> np.ndarray:
        """The fixed training set of a run [train_size, 2] (float32); a function of the seed only."""
        rng = np.random.default_rng([int(seed), 0x2D, _name_key(self.name)])
        return self.sample_true(self.train_size, rng).astype(np.float32)

    def plot_limits(self) -> tuple[float, float]:
        if self.kind == 'mixture':
            r = float(np.abs(self.means).max())
            return -1.5 * r, 1.5 * r
        if self.kind == 'swissroll':
            return -2.0, 2.0
        return -4.0, 4.0


def _name_key(name: str) -> int:
    """A stable integer from a name (Python's hash() is salted per process)."""
    return int.from_bytes(name.encode('utf-8'), 'little') % (2 ** 31)


_DATASETS: dict[str, Data2D] = {}


def register(data: Data2D) -> None:
    if data.name in _DATASETS:
        raise ValueError(f'2-D data set {data.name!r} is already registered')
    if data.kind not in ('mixture', 'swissroll', 'finite'):
        raise ValueError(f'2-D data set {data.name!r}: unknown kind {data.kind!r}')
    if data.kind == 'mixture' and (data.means is None or data.means.ndim != 2 or data.means.shape[1] != 2):
        raise ValueError(f'2-D data set {data.name!r}: a mixture needs means of shape [K, 2]')
    _DATASETS[data.name] = data


def list_datasets() -> list[str]:
    return list(_DATASETS)


def get_dataset(name: str, train_size: int | None = None) -> Data2D:
    """The named data set; `train_size` replaces the fixed training set's size (not for 'gaussian',
    whose few points are the point of the experiment)."""
    if name not in _DATASETS:
        raise ValueError(f'unknown 2-D data set {name!r}; expected one of {", ".join(_DATASETS)}')
    data = _DATASETS[name]
    if train_size is not None and data.kind != 'finite':
        if not (isinstance(train_size, int) and train_size > 0):
            raise ValueError(f'train_size must be a positive integer, got {train_size!r}')
        data = dataclasses.replace(data, train_size=train_size)
    return data


register(Data2D('ring8', 'mixture', '8 Gaussians on the unit circle, σ = 0.01', ring_means(8, 1.0), 0.01, 100_000))
register(Data2D('grid25', 'mixture', '25 Gaussians on {−4, −2, 0, 2, 4}², σ = 0.05', grid_means(5, 2.0), 0.05, 100_000))
register(Data2D('swissroll', 'swissroll', 'swiss roll (WGAN-GP toy), noise 0.25, scaled by 1/7.5', None, 0.25 / 7.5,
                100_000))
# Decision (seed 002 gives no sizes): 100 points from N(0, I₂); a generated sample "sits on" a training point
# when it lies within 3σ_noise = 0.03 of it (σ_noise = the ring's σ, 1% of the Gaussian's scale).
register(Data2D('gaussian', 'finite', '100 points drawn once from N(0, I₂) (finite-sample overfitting check)', None,
                0.01, 100))
