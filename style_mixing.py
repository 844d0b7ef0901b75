"""Style mixing grid (stylegan2-ada-pytorch's style_mixing.py interface, reimplemented).

Every row seed gives the coarse-to-fine styles of its image except the layers listed in --styles, which
come from the column seed. The grid has the column seeds' images across the top, the row seeds' images
down the left, and each mix at (row, column); the top-left cell is blank.

Example:

\b
  python style_mixing.py --network=snap.pt --rows=85,100,75,458,1500 --cols=55,821,1789,293 --styles=0-6 --outdir=out

Writes grid.png and, with --save-cells, one PNG per image (<row>-<col>.png for mixes, <seed>-<seed>.png for
the unmixed ones). Layer indices count the synthesis network's ws (0 .. num_ws − 1, coarse first).
"""

from __future__ import annotations

import os

import click
import numpy as np

from dnnlib.cli import OneLineErrors, UserError


def mix(G, row_seeds, col_seeds, styles, truncation_psi=1.0, noise_mode='const'):
    """({(row, col): HWC uint8}, grid HWC uint8); (s, s) keys are the unmixed images."""
    import torch

    from stylegan2_softgan import samplers
    seeds = list(dict.fromkeys(list(row_seeds) + list(col_seeds)))
    z = samplers.seed_latents(seeds, G.z_dim)
    c = torch.zeros([len(seeds), G.c_dim])
    w = samplers.map_latents(G, z, c, truncation_psi=truncation_psi)
    w_of = dict(zip(seeds, w))
    pairs = [(r, r) for r in row_seeds] + [(col, col) for col in col_seeds] + \
            [(r, col) for r in row_seeds for col in col_seeds]
    ws = []
    for r, col in pairs:
        mixed = w_of[r].clone()
        mixed[styles] = w_of[col][styles]
        ws.append(mixed)
    with torch.no_grad():
        images = samplers.to_uint8(torch.cat([G.synthesis(b, noise_mode=noise_mode) for b in torch.stack(ws).split(16)]))
    cells = dict(zip(pairs, images))
    h, w_, ch = images.shape[1:]
    grid = np.zeros([(len(row_seeds) + 1) * h, (len(col_seeds) + 1) * w_, ch], dtype=np.uint8)
    for j, col in enumerate(col_seeds):
        grid[:h, (j + 1) * w_:(j + 2) * w_] = cells[(col, col)]
    for i, r in enumerate(row_seeds):
        grid[(i + 1) * h:(i + 2) * h, :w_] = cells[(r, r)]
        for j, col in enumerate(col_seeds):
            grid[(i + 1) * h:(i + 2) * h, (j + 1) * w_:(j + 2) * w_] = cells[(r, col)]
    return cells, grid


@click.command(cls=OneLineErrors, help=__doc__)
@click.option('--network', help='Snapshot (.pt), run folder, NVIDIA .pkl or URL', metavar='PATH', required=True)
@click.option('--rows', 'row_seeds', help='Row seeds, e.g. "85,100,75" or "0-4"', required=True)
@click.option('--cols', 'col_seeds', help='Column seeds', required=True)
@click.option('--styles', 'col_styles', help='Layers whose styles come from the column seed', default='0-6', show_default=True)
@click.option('--trunc', 'truncation_psi', help='Truncation ψ', type=float, default=1.0, show_default=True)
@click.option('--noise-mode', help='Noise inputs', type=click.Choice(['const', 'random', 'none']), default='const', show_default=True)
@click.option('--save-cells', help='Also write every cell as its own PNG', is_flag=True)
@click.option('--outdir', help='Where to write the images', metavar='DIR', required=True)
def main(network, row_seeds, col_seeds, col_styles, truncation_psi, noise_mode, save_cells, outdir):
    import torch

    import generate
    from training.loss import is_style_generator
    parsed = {}
    for flag, value in (('--rows', row_seeds), ('--cols', col_seeds), ('--styles', col_styles)):
        try:
            parsed[flag] = generate.parse_seeds(value)
        except ValueError as e:
            raise UserError(f'{flag}: {e}') from None
    G, _ = generate.load_networks(network, False, torch.device('cpu'))
    if not is_style_generator(G):
        raise UserError(f'--network: {type(G).__name__} has no mapping network, so it has no styles to mix')
    if G.c_dim != 0:
        raise UserError(f'--network: the network is conditional ({G.c_dim} classes); style mixing takes an unconditional one')
    styles = sorted(set(parsed['--styles']))
    if styles[-1] >= G.num_ws:
        raise UserError(f'--styles: layer {styles[-1]} does not exist; the network has layers 0-{G.num_ws - 1}')
    try:
        cells, grid = mix(G, parsed['--rows'], parsed['--cols'], styles, truncation_psi, noise_mode)
    except ValueError as e:
        raise UserError(f'--trunc: {e}') from None
    files = {'grid.png': generate.png_bytes(grid)}
    if save_cells:
        files.update({f'{r}-{col}.png': generate.png_bytes(img) for (r, col), img in cells.items()})
    os.makedirs(outdir, exist_ok=True)
    generate.write_files(outdir, files)
    print(f'Wrote {len(files)} file(s) to {outdir}')


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
