"""Generate images from a snapshot: one PNG per seed, a grid, latent interpolations (frames and an
animated GIF), random-α latent mixing, and rejection sampling by the snapshot's discriminator.

Examples:

\b
  # 64 images, truncation 0.7, from the newest snapshot of the first `python train.py` run.
  python generate.py --network=training-runs/00000-digits16-digits-soft --seeds=0-63 --trunc=0.7 --outdir=out
\b
  # One grid image of class 3 (conditional model).
  python generate.py --network=snap.pt --seeds=0-35 --class=3 --grid --outdir=out
\b
  # A slerp through seeds 1, 5, 9 in W space: 24 frames per segment and interp.gif.
  python generate.py --network=snap.pt --seeds=1,5,9 --interp=slerp --space=w --frames=24 --outdir=out
\b
  # Keep the best quarter of 400 candidates by the discriminator's score.
  python generate.py --network=snap.pt --seeds=0-399 --reject=top --top=0.25 --outdir=out

Networks are rebuilt from the snapshot's data (torch_utils.checkpoint); nothing in the file is executed.
Every check runs before anything is written, and the files appear only when all of them are ready.
"""

from __future__ import annotations

import contextlib
import io
import os
import re

import click

import dnnlib
from dnnlib.cli import FiniteFloat, OneLineErrors, UserError

# ----------------------------------------------------------------------------
# Parsing.


def parse_seeds(value: str) -> list[int]:
    """'0-3,7,10-11' -> [0, 1, 2, 3, 7, 10, 11] (ranges inclusive, as stylegan2-ada)."""
    seeds = []
    for item in value.split(','):
        item = item.strip()
        m = re.fullmatch(r'(\d+)(?:-(\d+))?', item)
        if not m:
            raise ValueError(f'{item!r} is not a seed or a range a-b (expected e.g. "0-63" or "1,5,9")')
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise ValueError(f'range {item!r} is empty (the end is below the start)')
        if hi >= 2**32:
            raise ValueError(f'seed {hi} is out of range (seeds are 0 .. 2^32 - 1)')
        seeds.extend(range(lo, hi + 1))
    return seeds


class SeedList(click.ParamType):
    name = 'list'

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        try:
            return parse_seeds(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)


# ----------------------------------------------------------------------------
# Writing.


def png_bytes(image) -> bytes:
    """HWC uint8 (1 or 3 channels) -> PNG."""
    import PIL.Image
    mode = 'L' if image.shape[2] == 1 else 'RGB'
    buf = io.BytesIO()
    PIL.Image.fromarray(image[:, :, 0] if mode == 'L' else image, mode).save(buf, format='PNG')
    return buf.getvalue()


def gif_bytes(images, frame_ms: int) -> bytes:
    import PIL.Image
    frames = [PIL.Image.fromarray(im[:, :, 0] if im.shape[2] == 1 else im, 'L' if im.shape[2] == 1 else 'RGB')
              for im in images]
    buf = io.BytesIO()
    frames[0].save(buf, format='GIF', save_all=True, append_images=frames[1:], duration=frame_ms, loop=0)
    return buf.getvalue()


def write_files(outdir: str, files: dict[str, bytes]) -> None:
    """Write every file under a temporary name first, then rename them all into place."""
    with contextlib.ExitStack() as stack:
        for name, data in files.items():
            stack.enter_context(dnnlib.util.atomic_output(os.path.join(outdir, name))).write(data)


# ----------------------------------------------------------------------------


def load_networks(network: str, need_D: bool, device):
    from torch_utils import checkpoint
    try:
        G = checkpoint.load_network(network, 'G_ema', device=device)
    except checkpoint.CheckpointError as e:
        raise UserError(f'--network: {e}') from None
    D = None
    if need_D:
        try:
            D = checkpoint.load_network(network, 'D', device=device)
        except checkpoint.CheckpointError as e:
            raise UserError(f'--reject: needs the discriminator of the snapshot: {e}') from None
    return G, D


@click.command(cls=OneLineErrors, help=__doc__)
@click.option('--network', help='Snapshot (network-snapshot-*.pt), run folder (its newest snapshot), URL, or NVIDIA network pickle (.pkl, imported as data)', metavar='PATH', required=True)
@click.option('--seeds', help='Seeds: "0-63" or "1,5,9" (ranges inclusive); required unless --projected-w', type=SeedList())
@click.option('--projected-w', help='Generate from the w latents in an npz (projector.py\'s projected_w.npz: "w" [N, num_ws, w_dim]) as proj00.png ...', metavar='FILE')
@click.option('--trunc', 'truncation_psi', help='Truncation ψ (style generators only)', type=FiniteFloat(), default=1.0, show_default=True)
@click.option('--noise-mode', help='Noise inputs of the synthesis network', type=click.Choice(['const', 'random', 'none']), default='const', show_default=True)
@click.option('--class', 'class_idx', help='Class label (conditional networks; required for them)', type=click.IntRange(min=0))
@click.option('--outdir', help='Where to write the images', metavar='DIR', required=True)
@click.option('--grid', help='Write one grid.png instead of one file per seed', is_flag=True)
@click.option('--interp', help='Ordered interpolation through the seeds: frames + interp.gif', type=click.Choice(['lerp', 'slerp']))
@click.option('--space', help='Latent space of --interp  [default: z]', type=click.Choice(['z', 'w']))
@click.option('--frames', help='Frames per segment of --interp  [default: 16]', type=click.IntRange(min=1))
@click.option('--frame-ms', help='GIF frame duration in milliseconds  [default: 80]', type=click.IntRange(min=1))
@click.option('--interp-random', help='Random-α mixing: per seed, z = α·z1 + (1−α)·z2 (Kaspar, Zhao & An, "Improving GAN on MNIST", sec. 5.2)', is_flag=True)
@click.option('--reject', help='Rejection sampling of the seeds by the discriminator', type=click.Choice(['threshold', 'top', 'drs']))
@click.option('--threshold', help='--reject=threshold: keep σ(logit) > this  [default: 0.5]', type=FiniteFloat(min=0, max=1, max_open=True))
@click.option('--top', help='--reject=top: fraction of the candidates to keep  [default: 0.5]', type=FiniteFloat(min=0, max=1, min_open=True))
@click.option('--drs-percentile', help='--reject=drs: γ = this percentile of F̂  [default: 95]', type=FiniteFloat(min=0, max=100))
@click.option('--drs-eps', help='--reject=drs: ε inside the logarithm  [default: 1e-6]', type=FiniteFloat(min=0, min_open=True))
@click.option('--reject-seed', help='--reject=drs: seed of the acceptance draws  [default: 0]', type=click.IntRange(min=0))
@click.option('--batch', 'batch_size', help='Images per forward pass', type=click.IntRange(min=1), default=16, show_default=True)
def main(**kw):
    """Validate the options, load the networks, generate everything in memory, then write."""
    outputs, message = run(**kw)
    write_files(kw['outdir'], outputs)
    if message:
        print(message)
    print(f'Wrote {len(outputs)} file(s) to {kw["outdir"]}')


def check_options(kw) -> None:
    """Cross-option rules (one-line errors naming the flags)."""
    if kw.get('projected_w') is not None:
        for flag, name in (('--seeds', 'seeds'), ('--interp', 'interp'), ('--interp-random', 'interp_random'),
                           ('--reject', 'reject'), ('--class', 'class_idx')):
            if kw[name] not in (None, False):
                raise UserError(f'{flag}: cannot be combined with --projected-w')
        if kw['truncation_psi'] != 1:
            raise UserError('--trunc: does not apply to --projected-w (the w latents are used as they are)')
        return
    if kw['seeds'] is None:
        raise UserError('--seeds: required (or --projected-w)')
    if kw['interp'] is None:
        for flag, name in (('--space', 'space'), ('--frames', 'frames'), ('--frame-ms', 'frame_ms')):
            if kw[name] is not None:
                raise UserError(f'{flag}: only applies with --interp')
    else:
        if len(kw['seeds']) < 2:
            raise UserError(f'--interp: needs at least 2 seeds as keyframes, got {len(kw["seeds"])}')
        for flag, name in (('--interp-random', 'interp_random'), ('--reject', 'reject'), ('--grid', 'grid')):
            if kw[name]:
                raise UserError(f'{flag}: cannot be combined with --interp')
    per_method = {'threshold': [('--threshold', 'threshold')], 'top': [('--top', 'top')],
                  'drs': [('--drs-percentile', 'drs_percentile'), ('--drs-eps', 'drs_eps'),
                          ('--reject-seed', 'reject_seed')]}
    for method, flags in per_method.items():
        for flag, name in flags:
            if kw[name] is not None and kw['reject'] != method:
                raise UserError(f'{flag}: only applies with --reject={method}')


def projected_w_files(G, path: str, noise_mode: str, batch_size: int, grid: bool) -> dict:
    """Images synthesised from the w latents of an npz file: proj00.png ... (or grid.png)."""
    import numpy as np
    import torch
    from stylegan2_softgan import samplers
    from training.loss import is_style_generator
    if not is_style_generator(G):
        raise UserError(f'--projected-w: {type(G).__name__} has no synthesis network taking w latents')
    try:
        with np.load(path, allow_pickle=False) as data:
            if 'w' not in data:
                raise UserError(f'--projected-w: {path} holds no array "w" (it has {", ".join(sorted(data.files))})')
            ws = data['w']
    except (OSError, ValueError) as e:
        raise UserError(f'--projected-w: {path}: not a readable npz file ({e})') from None
    if ws.ndim != 3 or ws.shape[1:] != (G.num_ws, G.w_dim) or ws.shape[0] == 0 or not np.isfinite(ws).all():
        raise UserError(f'--projected-w: {path}: "w" has shape {list(ws.shape)}, the network needs finite '
                        f'[N, {G.num_ws}, {G.w_dim}]')
    device = next(G.parameters()).device
    ws = torch.from_numpy(ws.astype(np.float32)).to(device)
    with torch.no_grad():
        images = torch.cat([G.synthesis(b, noise_mode=noise_mode) for b in ws.split(batch_size)])
    pixels = samplers.to_uint8(images)
    if grid:
        return {'grid.png': png_bytes(samplers.image_grid(pixels))}
    return {f'proj{i:02d}.png': png_bytes(im) for i, im in enumerate(pixels)}


def run(**kw):
    """Everything but the writing: returns ({file name: bytes}, message to print)."""
    check_options(kw)
    import torch
    from stylegan2_softgan import samplers
    from training.loss import is_style_generator

    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    G, D = load_networks(kw['network'], kw['reject'] is not None, device)
    if getattr(G, 'img_resolution', None) is None or getattr(G, 'img_channels', None) not in (1, 3):
        raise UserError(f'--network: {type(G).__name__} does not generate 1- or 3-channel images '
                        f'(2-D point generators are for the benchmarks)')
    style = is_style_generator(G)
    if kw['truncation_psi'] != 1 and not style:
        raise UserError(f'--trunc: {type(G).__name__} has no mapping network; only --trunc=1 is possible')
    if kw['space'] == 'w' and not style:
        raise UserError(f'--space=w: {type(G).__name__} has no mapping network (use --space=z)')
    if kw.get('projected_w') is not None:
        return projected_w_files(G, kw['projected_w'], kw['noise_mode'], kw['batch_size'], kw['grid']), None
    try:
        c = samplers.class_labels(G.c_dim, kw['class_idx'], 1)
    except ValueError as e:
        raise UserError(f'--class: {e}') from None

    seeds, psi, noise, bs = kw['seeds'], kw['truncation_psi'], kw['noise_mode'], kw['batch_size']

    if kw['interp'] is not None:
        z = samplers.seed_latents(seeds, G.z_dim)
        images = samplers.interpolation_frames(G, z, c.repeat(len(seeds), 1), frames=kw['frames'] or 16,
                                               method=kw['interp'], space=kw['space'] or 'z', truncation_psi=psi,
                                               noise_mode=noise, batch_size=bs)
        pixels = samplers.to_uint8(images)
        files = {f'frame{i:04d}.png': png_bytes(im) for i, im in enumerate(pixels)}
        files['interp.gif'] = gif_bytes(pixels, kw['frame_ms'] or 80)
        return files, None

    if kw['interp_random']:
        z1, z2, alpha = samplers.seed_mix_latents(seeds, G.z_dim)
        z = samplers.random_mix(z1, z2, alpha)
    else:
        z = samplers.seed_latents(seeds, G.z_dim)
    cs = c.repeat(len(seeds), 1)
    images = samplers.generate(G, z, cs, truncation_psi=psi, noise_mode=noise, batch_size=bs)

    message = None
    if kw['reject'] is not None:
        try:
            logits = samplers.discriminator_logits(D, images, cs, batch_size=bs)
        except ValueError as e:
            raise UserError(f'--reject: {e}') from None
        generator = torch.Generator().manual_seed(kw['reject_seed'] or 0)
        mask = samplers.reject(logits, kw['reject'], threshold=0.5 if kw['threshold'] is None else kw['threshold'],
                               fraction=kw['top'] or 0.5,
                               gamma_percentile=95.0 if kw['drs_percentile'] is None else kw['drs_percentile'],
                               eps=kw['drs_eps'] or 1e-6, generator=generator)
        kept = int(mask.sum())
        message = (f'Accepted {kept} of {len(seeds)} candidates ({100.0 * kept / len(seeds):.1f}%) by --reject='
                   f'{kw["reject"]}; mean logit {float(logits[mask].mean()) if kept else float("nan"):.4f} '
                   f'(all candidates {float(logits.mean()):.4f})')
        images = images[mask.to(images.device)]
        seeds = [s for s, keep in zip(seeds, mask.tolist()) if keep]

    pixels = samplers.to_uint8(images)
    if kw['grid']:
        if len(pixels) == 0:
            raise UserError('--grid: no image was accepted, so there is nothing to put in the grid')
        return {'grid.png': png_bytes(samplers.image_grid(pixels))}, message
    return {f'seed{s:04d}.png': png_bytes(im) for s, im in zip(seeds, pixels)}, message


if __name__ == '__main__':
    main()
