"""Perceptual Path Length (Karras et al. 2019; the StyleGAN2 variant 'ppl2_wend').

For each sample: latents z0, z1, an interpolation point t (0 for 'end' sampling, U[0, 1) for 'full'),
images at t and t + epsilon (lerp in W, slerp in Z), and the squared perceptual distance between them
divided by epsilon^2. The result is the mean after discarding values below the 1st and above the 99th
percentile. Images are optionally centre-cropped (faces: the 'crop' of the StyleGAN papers), box-downsampled
to 256 when larger, mapped to [0, 255] and given 3 channels before the distance.

The perceptual distance is pluggable: any callable (img0, img1) -> [N] squared distances of float images
in [0, 255]. The default is LPIPS with NVIDIA's VGG16 (vgg16.pt); without it the metric is refused with a
message saying where to put the file. The generator must have the StyleGAN2 interface: mapping(z, c) ->
ws [N, num_ws, w_dim] and synthesis(ws, ...).
"""

from __future__ import annotations

import numpy as np
import torch

from metrics import metric_utils
from metrics.errors import DetectorUnavailable, MetricError


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between the directions of a and b (unit-norm result)."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    cos = (a * b).sum(dim=-1, keepdim=True).clamp(-1, 1)
    angle = t * torch.acos(cos)
    ortho = b - cos * a
    ortho = ortho / ortho.norm(dim=-1, keepdim=True)
    out = a * torch.cos(angle) + ortho * torch.sin(angle)
    return out / out.norm(dim=-1, keepdim=True)


def lpips_distance(vgg16):
    """The LPIPS distance of a VGG16 detector exposing lpips_embedding (NVIDIA's vgg16.pt)."""
    def distance(img0, img1):
        e0 = vgg16.lpips_embedding(img0)
        e1 = vgg16.lpips_embedding(img1)
        return (e0 - e1).square().flatten(1).sum(1)
    return distance


def check_style_generator(G) -> None:
    missing = [a for a in ('mapping', 'synthesis', 'z_dim', 'c_dim', 'img_resolution', 'img_channels') if not hasattr(G, a)]
    if missing:
        raise MetricError(f'PPL needs a StyleGAN2-style generator with mapping(z, c) and synthesis(ws); '
                          f'{type(G).__name__} lacks {", ".join(missing)}')


def _randomize_noise_buffers(G, seed: int, device) -> None:
    gen = torch.Generator(device='cpu').manual_seed(seed)
    for name, buf in G.named_buffers():
        if name.endswith('noise_const'):
            buf.copy_(torch.randn(buf.shape, generator=gen, dtype=torch.float32).to(device=device, dtype=buf.dtype))


def _prepare_images(img: torch.Tensor, G, crop: bool) -> torch.Tensor:
    if crop:
        if img.shape[2] != img.shape[3] or img.shape[2] < 8:
            raise MetricError(f'PPL crop needs square images of at least 8x8, got {tuple(img.shape[2:])}')
        c = img.shape[2] // 8
        img = img[:, :, c * 3:c * 7, c * 2:c * 6]
    factor = G.img_resolution // 256
    if factor > 1:
        img = img.reshape([-1, img.shape[1], img.shape[2] // factor, factor, img.shape[3] // factor, factor]).mean([3, 5])
    img = (img + 1) * (255 / 2)
    if img.shape[1] == 1:
        img = img.repeat([1, 3, 1, 1])
    return img


def ppl_sample_distances(opts, G, sampler, indices, epsilon, space, sampling, crop, distance) -> torch.Tensor:
    """Scaled squared distances d(t, t + eps) / eps^2 for the given sample indices (float64 [N])."""
    dev = opts.device
    z0 = torch.from_numpy(sampler.z(indices, stream=0)).to(dev)
    z1 = torch.from_numpy(sampler.z(indices, stream=1)).to(dev)
    c = torch.from_numpy(sampler.c(indices)).to(dev)
    n = len(indices)
    t = torch.from_numpy(sampler.uniform(indices, stream=2)).to(dev) if sampling == 'full' else torch.zeros([n], device=dev)
    if space == 'w':
        w = G.mapping(torch.cat([z0, z1]), torch.cat([c, c]))
        if w.ndim != 3:
            raise MetricError(f'PPL: G.mapping must return ws of shape [N, num_ws, w_dim], got {tuple(w.shape)}')
        w0, w1 = w.chunk(2)
        tt = t.view(-1, 1, 1)
        wt0 = w0.lerp(w1, tt)
        wt1 = w0.lerp(w1, tt + epsilon)
    else:
        zt0 = slerp(z0, z1, t.unsqueeze(1))
        zt1 = slerp(z0, z1, t.unsqueeze(1) + epsilon)
        wt0, wt1 = G.mapping(torch.cat([zt0, zt1]), torch.cat([c, c])).chunk(2)
    _randomize_noise_buffers(G, metric_utils._batch_seed(opts.seed, indices[0]), dev)
    kwargs = dict(noise_mode='const', force_fp32=True)
    kwargs.update(opts.G_kwargs)
    img = metric_utils.call_with_supported_kwargs(G.synthesis, torch.cat([wt0, wt1]), **kwargs)
    img = _prepare_images(img.to(torch.float32), G, crop)
    img0, img1 = img.chunk(2)
    return distance(img0, img1).to(torch.float64).reshape(n) / epsilon ** 2


def ppl_from_distances(dist) -> float:
    """Mean of the distances between the 1st ('lower') and 99th ('higher') percentiles, inclusive."""
    dist = np.asarray(dist, np.float64)
    lo = np.percentile(dist, 1, method='lower')
    hi = np.percentile(dist, 99, method='higher')
    return float(dist[(dist >= lo) & (dist <= hi)].mean())


def compute_ppl(opts: metric_utils.MetricOptions, num_samples: int, epsilon: float, space: str, sampling: str,
                crop: bool, distance=None) -> float:
    assert space in ('z', 'w') and sampling in ('full', 'end')
    metric_utils.check_generator(opts.G, 'PPL')
    check_style_generator(opts.G)
    if distance is None:
        from metrics import detectors
        try:
            vgg16 = detectors.get_vgg16(device=opts.device, detector_dir=opts.detector_dir, allow_download=opts.allow_download)
        except DetectorUnavailable as e:
            raise DetectorUnavailable(f'PPL needs LPIPS-VGG16: {e}') from None
        distance = lpips_distance(vgg16)
        opts.notes.setdefault('detector', 'lpips-vgg16 (NVIDIA vgg16.pt)')
    G = metric_utils.prepare_generator(opts)
    sampler = metric_utils.make_sampler(opts, G)
    local = metric_utils.shard_indices(num_samples, opts)
    progress = opts.progress.sub(tag='ppl sampling', num_items=num_samples)
    parts = []
    with torch.no_grad():
        for start in range(0, len(local), opts.batch_gen):
            chunk = local[start:start + opts.batch_gen]
            parts.append(ppl_sample_distances(opts, G, sampler, chunk, epsilon, space, sampling, crop, distance).cpu())
            progress.update(min((start + len(chunk)) * opts.num_gpus, num_samples))
    local_dist = torch.cat(parts) if parts else torch.zeros([0], dtype=torch.float64)
    dist = metric_utils.gather_rows(local_dist.unsqueeze(1), num_samples, opts).squeeze(1)
    return ppl_from_distances(dist.cpu().numpy())
