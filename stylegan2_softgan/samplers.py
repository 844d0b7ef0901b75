"""Sampling from a trained generator (METHODS.md §7): latents from seeds, truncation and noise modes,
latent interpolation (random-α mixing and ordered lerp/slerp paths in Z or W), and rejection sampling
by the snapshot's discriminator. Pure functions of tensors and networks, shared by generate.py and the
benchmarks.

Rejection rules (seed 004 §5.1, Azadi et al. 2019), all driven by the discriminator's logit l:

* threshold: keep x when σ(l(x)) > t;
* top: keep the k = max(1, ⌊q·n + ½⌋) highest-scored of n candidates (exactly that many);
* drs: discriminator rejection sampling. With D*_max the largest logit seen (here: over the whole
  candidate pool, which is scored before any decision) and
      F̂(x) = l(x) − D*_max − log(1 − exp(l(x) − D*_max − ε)),
  x is accepted with probability p(x) = σ(F̂(x) − γ). γ shifts the acceptance: Azadi et al. set it
  from a high percentile of F̂ over the samples at hand; our default is the 95th percentile of the
  pool (then the sample at that percentile is kept with probability ½), ε = 1e-6 keeps the logarithm
  finite at the maximum. Decisions use uniform draws from a caller-supplied torch.Generator.

Scores come from the discriminator in eval mode, without augmentation, in batches of `batch_size`;
with minibatch-standard-deviation layers (StyleGAN2's D) a score depends on the other samples of its
batch, so a rejection is reproducible for a fixed seed list and batch size.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from training.loss import is_style_generator

NOISE_MODES = ('const', 'random', 'none')
REJECT_METHODS = ('threshold', 'top', 'drs')

# ----------------------------------------------------------------------------
# Latents and labels.


def seed_latents(seeds: Sequence[int], z_dim: int) -> torch.Tensor:
    """One z per seed, drawn as stylegan2-ada does: RandomState(seed).randn(z_dim) (float32 [n, z_dim])."""
    return torch.from_numpy(np.stack([np.random.RandomState(int(s)).randn(z_dim) for s in seeds])).float()


def seed_mix_latents(seeds: Sequence[int], z_dim: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per seed: z1 (the seed's ordinary latent), a second latent z2 and α ~ U[0, 1), all from RandomState(seed)."""
    z1, z2, alpha = [], [], []
    for s in seeds:
        rnd = np.random.RandomState(int(s))
        z1.append(rnd.randn(z_dim))
        z2.append(rnd.randn(z_dim))
        alpha.append(rnd.uniform())
    return (torch.from_numpy(np.stack(z1)).float(), torch.from_numpy(np.stack(z2)).float(),
            torch.tensor(alpha, dtype=torch.float32))


def class_labels(c_dim: int, class_idx: int | None, n: int) -> torch.Tensor:
    """[n, c_dim] one-hot rows for a conditional network ([n, 0] for an unconditional one)."""
    c = torch.zeros([n, c_dim])
    if c_dim == 0:
        if class_idx is not None:
            raise ValueError('the network is unconditional; it takes no class')
        return c
    if class_idx is None or not 0 <= class_idx < c_dim:
        raise ValueError(f'the network is conditional: give a class in 0..{c_dim - 1}, got {class_idx}')
    c[:, class_idx] = 1
    return c


# ----------------------------------------------------------------------------
# Generation.


def _check_psi(G, truncation_psi: float) -> None:
    if truncation_psi != 1 and not is_style_generator(G):
        raise ValueError(f'truncation needs a style generator with a mapping network; {type(G).__name__} has none '
                         f'(only ψ = 1 is possible)')


@torch.no_grad()
def generate(G, z: torch.Tensor, c: torch.Tensor, truncation_psi: float = 1.0, noise_mode: str = 'const',
             batch_size: int = 16) -> torch.Tensor:
    """G(z, c) in batches (images or points, on G's device)."""
    _check_psi(G, truncation_psi)
    if noise_mode not in NOISE_MODES:
        raise ValueError(f'noise_mode must be one of {", ".join(NOISE_MODES)}, got {noise_mode!r}')
    device = next(G.parameters()).device
    out = []
    for zb, cb in zip(z.split(batch_size), c.split(batch_size)):
        kwargs = dict(noise_mode=noise_mode)
        if truncation_psi != 1:
            kwargs['truncation_psi'] = truncation_psi
        out.append(G(zb.to(device), cb.to(device), **kwargs))
    return torch.cat(out)


@torch.no_grad()
def map_latents(G, z: torch.Tensor, c: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
    """ws = G.mapping(z, c) with truncation ψ (style generators only)."""
    if not is_style_generator(G):
        raise ValueError(f'{type(G).__name__} has no mapping network, so it has no W space')
    device = next(G.parameters()).device
    return G.mapping(z.to(device), c.to(device), truncation_psi=truncation_psi)


@torch.no_grad()
def synthesize(G, ws: torch.Tensor, noise_mode: str = 'const', batch_size: int = 16) -> torch.Tensor:
    return torch.cat([G.synthesis(w, noise_mode=noise_mode) for w in ws.split(batch_size)])


# ----------------------------------------------------------------------------
# Interpolation.


def lerp(a: torch.Tensor, b: torch.Tensor, t) -> torch.Tensor:
    """(1 − t)·a + t·b; t broadcasts against a and b (a at t = 0 and b at t = 1 exactly)."""
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    return (1 - t) * a + t * b


def slerp(a: torch.Tensor, b: torch.Tensor, t) -> torch.Tensor:
    """Spherical interpolation along the last axis: sin((1−t)Ω)/sin Ω·a + sin(tΩ)/sin Ω·b with Ω the angle
    between a and b; falls back to lerp where the two are (anti)parallel. Exact at t = 0 and t = 1."""
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    a64, b64 = a.double(), b.double()
    cos = (a64 * b64).sum(-1, keepdim=True) / (a64.norm(dim=-1, keepdim=True) * b64.norm(dim=-1, keepdim=True))
    omega = torch.acos(cos.clamp(-1, 1))
    so = torch.sin(omega)
    t64 = t.double()
    degenerate = so.abs() < 1e-7
    safe = torch.where(degenerate, torch.ones_like(so), so)
    wa = torch.where(degenerate, 1 - t64, torch.sin((1 - t64) * omega) / safe)
    wb = torch.where(degenerate, t64, torch.sin(t64 * omega) / safe)
    return (wa * a64 + wb * b64).to(a.dtype)


def path_weights(num_points: int, frames: int) -> list[tuple[int, float]]:
    """(segment, t) for an ordered sequence through `num_points` keyframes, `frames` per segment:
    (num_points − 1)·frames + 1 frames, keyframe j at frame j·frames exactly."""
    if num_points < 2:
        raise ValueError(f'an interpolation path needs at least 2 keyframes, got {num_points}')
    if frames < 1:
        raise ValueError(f'frames per segment must be >= 1, got {frames}')
    out = [(s, j / frames) for s in range(num_points - 1) for j in range(frames)]
    out.append((num_points - 2, 1.0))
    return out


def interpolate_path(points: torch.Tensor, frames: int, method: str = 'lerp') -> torch.Tensor:
    """Latents along the path through points [k, ...] (each row a keyframe)."""
    if method not in ('lerp', 'slerp'):
        raise ValueError(f'interpolation must be "lerp" or "slerp", got {method!r}')
    fn = lerp if method == 'lerp' else slerp
    return torch.stack([fn(points[s], points[s + 1], t) for s, t in path_weights(points.shape[0], frames)])


@torch.no_grad()
def interpolation_frames(G, z: torch.Tensor, c: torch.Tensor, frames: int, method: str = 'lerp', space: str = 'z',
                         truncation_psi: float = 1.0, noise_mode: str = 'const', batch_size: int = 16) -> torch.Tensor:
    """Images along the path through the keyframe latents z [k, z_dim] (labels c [k, c_dim]).

    space='z' interpolates the latents and maps each; space='w' maps the keyframes (with truncation) and
    interpolates their per-layer ws, so the frames at the keyframes equal G(z_j) exactly in both.
    Labels are interpolated linearly with the same weights.
    """
    if space not in ('z', 'w'):
        raise ValueError(f'interpolation space must be "z" or "w", got {space!r}')
    c_path = interpolate_path(c, frames, 'lerp')
    if space == 'z':
        return generate(G, interpolate_path(z, frames, method), c_path, truncation_psi, noise_mode, batch_size)
    ws = map_latents(G, z, c, truncation_psi)
    return synthesize(G, interpolate_path(ws, frames, method), noise_mode, batch_size)


def random_mix(z1: torch.Tensor, z2: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Seed 004 §5.2: z = α·z1 + (1 − α)·z2 with one α per sample."""
    alpha = alpha.reshape(-1, *([1] * (z1.ndim - 1))).to(z1.dtype)
    return alpha * z1 + (1 - alpha) * z2


# ----------------------------------------------------------------------------
# Rejection sampling.


@torch.no_grad()
def discriminator_logits(D, images: torch.Tensor, c: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
    """l(x) for every image ([n], float32 on the CPU); refuses packed discriminators."""
    device = next(D.parameters()).device
    out = []
    for xb, cb in zip(images.split(batch_size), c.split(batch_size)):
        logits = D(xb.to(device), cb.to(device))
        if logits.shape[0] != xb.shape[0]:
            raise ValueError(f'rejection sampling needs one discriminator output per sample; the discriminator '
                             f'returned {logits.shape[0]} for {xb.shape[0]} (packing)')
        out.append(logits.reshape(-1).float().cpu())
    return torch.cat(out)


def accept_threshold(logits: torch.Tensor, threshold: float) -> torch.Tensor:
    """Keep σ(l) > threshold (a bool mask)."""
    if not 0 <= threshold < 1:
        raise ValueError(f'the σ(logit) threshold must be in [0, 1), got {threshold}')
    return torch.sigmoid(logits.double()) > threshold


def accept_top(logits: torch.Tensor, fraction: float) -> torch.Tensor:
    """Keep exactly k = max(1, ⌊q·n + ½⌋) candidates with the highest logits (a bool mask)."""
    if not 0 < fraction <= 1:
        raise ValueError(f'the kept fraction must be in (0, 1], got {fraction}')
    n = logits.numel()
    k = max(1, int(math.floor(fraction * n + 0.5)))
    mask = torch.zeros(n, dtype=torch.bool, device=logits.device)
    mask[torch.topk(logits.reshape(-1), k).indices] = True
    return mask


def drs_scores(logits: torch.Tensor, max_logit: float | None = None, eps: float = 1e-6) -> torch.Tensor:
    """F̂(x) = l − M − log(1 − exp(l − M − ε)) with M = max(max_logit, max l) (float64)."""
    if not eps > 0:
        raise ValueError(f'DRS epsilon must be > 0, got {eps}')
    l = logits.double().reshape(-1)
    M = float(l.max())
    if max_logit is not None:
        M = max(M, float(max_logit))
    d = l - M
    return d - torch.log(-torch.expm1(d - eps))


def drs_acceptance(logits: torch.Tensor, gamma_percentile: float = 95.0, eps: float = 1e-6,
                   max_logit: float | None = None, gamma: float | None = None) -> tuple[torch.Tensor, float]:
    """(p(x) = σ(F̂(x) − γ), γ); γ is the given value or the `gamma_percentile`-th percentile of F̂."""
    F_hat = drs_scores(logits, max_logit, eps)
    if gamma is None:
        if not 0 <= gamma_percentile <= 100:
            raise ValueError(f'the DRS γ percentile must be in [0, 100], got {gamma_percentile}')
        gamma = float(torch.quantile(F_hat, gamma_percentile / 100))
    return torch.sigmoid(F_hat - gamma), float(gamma)


def accept_drs(logits: torch.Tensor, generator: torch.Generator, gamma_percentile: float = 95.0,
               eps: float = 1e-6, max_logit: float | None = None) -> torch.Tensor:
    """Accept each candidate with probability p(x) (a bool mask)."""
    p, _ = drs_acceptance(logits, gamma_percentile, eps, max_logit)
    u = torch.rand(p.shape, generator=generator, dtype=torch.float64, device=generator.device)
    return u.to(p.device) < p


def reject(logits: torch.Tensor, method: str, threshold: float = 0.5, fraction: float = 0.5,
           gamma_percentile: float = 95.0, eps: float = 1e-6, generator: torch.Generator | None = None) -> torch.Tensor:
    """The bool mask of accepted candidates for one of REJECT_METHODS."""
    if method == 'threshold':
        return accept_threshold(logits, threshold)
    if method == 'top':
        return accept_top(logits, fraction)
    if method == 'drs':
        return accept_drs(logits, generator if generator is not None else torch.Generator().manual_seed(0),
                          gamma_percentile, eps)
    raise ValueError(f'rejection method must be one of {", ".join(REJECT_METHODS)}, got {method!r}')


# ----------------------------------------------------------------------------
# Pixels.


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """NCHW in [-1, 1] → NHWC uint8 with stylegan2-ada's rounding: (x·127.5 + 128) clamped to [0, 255]."""
    x = (images.detach().float().cpu() * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def image_grid(images: np.ndarray, columns: int | None = None) -> np.ndarray:
    """NHWC uint8 → one HWC canvas, `columns` wide (default ⌈√n⌉), row-major, empty cells black."""
    n, h, w, ch = images.shape
    columns = columns or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / columns))
    canvas = np.zeros([rows * h, columns * w, ch], dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, columns)
        canvas[r * h:(r + 1) * h, col * w:(col + 1) * w] = images[i]
    return canvas
