"""Convert NVIDIA's network pickles (stylegan2-ada-pytorch, stylegan3 --cfg=stylegan2) into this project's
snapshot format, without running any code stored in them.

Examples:

\b
  python legacy.py --source=network-snapshot-001000.pkl --dest=imported.pt
  python legacy.py convert --source=https://.../ffhq.pkl --dest=ffhq.pt
  python legacy.py --source=ffhq256 --dest=ffhq256.pt      # stylegan2-ada's --resume names work too

The pickle is read with an unpickler that allows only tensor, array and record types; the Python source
NVIDIA stores in every pickle is dropped unread. Each network is rebuilt as our own class from the stored
constructor arguments and must take every stored weight. The result (G, D, G_ema, augment_pipe and the
recorded training set) loads with generate.py, calc_metrics.py and train.py --resume like any snapshot of
ours; it holds no training state, so resuming from it is transfer learning.
"""

from __future__ import annotations

import json
import os
import sys

import click

from dnnlib.cli import OneLineErrors, UserError


def convert(source: str, dest: str) -> dict:
    """Import `source` (path, URL or resume name) and write it to `dest` atomically; returns the snapshot."""
    from torch_utils import checkpoint  # imported here so that --help stays fast
    if os.path.isdir(dest):
        raise UserError(f'--dest: {dest} is a folder; expected a file name such as imported.pt')
    parent = os.path.dirname(os.path.abspath(dest))
    if not os.path.isdir(parent):
        raise UserError(f'--dest: folder {parent} does not exist')
    try:
        snap = checkpoint.load_snapshot(source)
    except checkpoint.CheckpointError as e:
        raise UserError(f'--source: {e}') from None
    obj = {'format': checkpoint.FORMAT, 'version': checkpoint.VERSION, 'modules': snap['modules'],
           'meta': json.dumps(snap['meta'])}
    checkpoint.atomic_save(obj, dest)
    return snap


@click.command(cls=OneLineErrors, help=__doc__)
@click.option('--source', help='NVIDIA network pickle: path, URL or stylegan2-ada resume name (ffhq256 ...)', metavar='PATH', required=True)
@click.option('--dest', help='Snapshot file to write (.pt)', metavar='FILE', required=True)
def convert_command(source: str, dest: str):
    snap = convert(source, dest)
    print(f'Wrote {dest}: {", ".join(sorted(snap["modules"]))} from {source}')


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == 'convert':       # `legacy.py convert --source ... --dest ...` and the bare form
        argv = argv[1:]
    return convert_command.main(args=argv, prog_name='legacy.py')


if __name__ == '__main__':
    main()
