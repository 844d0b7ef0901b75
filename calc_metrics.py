"""Compute quality metrics of a trained generator snapshot.

Examples:

    python calc_metrics.py --network=runs/00000-cifar/network-snapshot-001000.pt --metrics=fid50k_full,pr50k3_full
    python calc_metrics.py --network=training-runs/00000-digits16-digits-soft --metrics=cat_cov1k
    python calc_metrics.py --network=snap.pt --metrics=fid50k_full,kid50k_full,pr50k3_full --data=cifar10.zip --num-gen=2000
    python calc_metrics.py --network=snap.pt --metrics=cat_cov10k,gs1k --detector-dir=~/detectors

Metrics are listed in metrics/metric_main.py (or run with --metrics=help). Results are printed as JSON
lines and, when the snapshot lives in a run folder, appended to <run>/metric-<name>.jsonl.
"""

from __future__ import annotations

import copy
import os
import sys
import tempfile

import click
import torch

import dnnlib
from dnnlib.cli import OneLineErrors
from metrics import metric_main
from metrics.errors import MetricError


def _fail(message: str) -> None:
    click.echo(f'Error: {message}', err=True)
    sys.exit(2)


def subprocess_fn(rank: int, args: dnnlib.EasyDict, temp_dir: str) -> None:
    """One evaluating process (rank 0 of 1 when --gpus=1)."""
    from torch_utils import checkpoint, misc
    use_cuda = args.device == 'cuda'
    if args.num_gpus > 1:
        init_file = os.path.abspath(os.path.join(temp_dir, '.torch_distributed_init'))
        backend = 'nccl' if use_cuda else 'gloo'
        misc.init_process_group(backend=backend, init_method=f'file://{init_file}', rank=rank, world_size=args.num_gpus)
    device = torch.device('cuda', rank) if use_cuda else torch.device('cpu')
    if use_cuda:
        torch.cuda.set_device(device)
    G = checkpoint.load_network(args.network_pkl, key='G_ema', device=device)
    try:
        for metric in args.metrics:
            if rank == 0 and args.verbose:
                print(f'Calculating {metric}...', flush=True)
            result = metric_main.calc_metric(metric=metric, G=G, dataset_kwargs=args.dataset_kwargs, num_gpus=args.num_gpus,
                                             rank=rank, device=device, **args.metric_kwargs)
            if rank == 0:
                metric_main.report_metric(result, run_dir=args.run_dir, snapshot_pkl=args.network_pkl)
    finally:
        if args.num_gpus > 1:
            torch.distributed.destroy_process_group()


def _resolve_dataset_kwargs(data, mirror, G, meta) -> dnnlib.EasyDict:
    from training import dataset as dataset_module
    if data is None:
        recorded = meta.get('training_set_kwargs')
        if not recorded:
            raise click.BadParameter('required: the snapshot does not record its training set', param_hint='--data')
        kwargs = dnnlib.EasyDict(recorded)
        if mirror is not None:
            kwargs.xflip = mirror
    else:
        try:
            kwargs = dataset_module.make_dataset_kwargs(data, use_labels=(G.c_dim > 0), xflip=bool(mirror))
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint='--data') from None
    kwargs.max_size = None
    where = data if data is not None else kwargs.get('path', kwargs.get('class_name'))
    try:
        ds = dataset_module.open_dataset(dict(kwargs, xflip=False))
    except (OSError, ValueError) as e:
        raise click.BadParameter(f'{where}: {e}', param_hint='--data') from None
    try:
        if (ds.resolution, ds.num_channels) != (G.img_resolution, G.img_channels):
            raise click.BadParameter(f'{where} holds {ds.resolution}x{ds.resolution} images with {ds.num_channels} channel(s), '
                                     f'but the network generates {G.img_resolution}x{G.img_resolution} with {G.img_channels}',
                                     param_hint='--data')
        if G.c_dim > 0 and (not ds.has_labels or ds.label_dim != G.c_dim):
            raise click.BadParameter(f'{where}: the network is conditional with {G.c_dim} label values, '
                                     f'the data set has {ds.label_dim if ds.has_labels else "no"} labels', param_hint='--data')
    finally:
        if hasattr(ds, 'close'):
            ds.close()
    return kwargs


@click.command(cls=OneLineErrors)
@click.option('--network', 'network_pkl', required=True, metavar='PATH|URL', help='Network snapshot (network-snapshot-*.pt), run folder (its newest snapshot), URL, or NVIDIA network pickle (.pkl, imported as data)')
@click.option('--metrics', 'metrics', default='fid50k_full', show_default=True, help='Comma-separated list of metrics, or "help"')
@click.option('--data', metavar='ZIP|DIR|builtin:...', default=None, help='Real data [default: the training set recorded in the snapshot]')
@click.option('--mirror', type=bool, default=None, metavar='BOOL', help='Add x-flips of the real data [default: as in training]')
@click.option('--gpus', 'num_gpus', type=click.IntRange(min=1), default=1, show_default=True, help='Number of processes (one per GPU; gloo on CPU)')
@click.option('--detector-dir', type=click.Path(file_okay=False), default=None, help='Folder searched first for inception-2015-12-05.pt, vgg16.pt, classifiers')
@click.option('--cache-dir', type=click.Path(file_okay=False), default=None, help='Folder of cached real-data statistics [default: <cache>/gan-metrics]')
@click.option('--num-gen', type=click.IntRange(min=2), default=None, help='Override the number of generated images of every metric')
@click.option('--max-real', type=click.IntRange(min=2), default=None, help='Override the cap on real images of every metric')
@click.option('--batch', 'batch_size', type=click.IntRange(min=1), default=64, show_default=True, help='Images per detector call (results do not depend on it)')
@click.option('--pr-detector', type=click.Choice(['auto', 'vgg16', 'inception']), default='auto', show_default=True, help='Features of precision/recall and density/coverage')
@click.option('--download/--no-download', default=True, show_default=True, help='Download missing detectors from their standard URLs')
@click.option('--seed', type=int, default=0, show_default=True, help='Seed of latents, subsets and landmarks')
@click.option('--device', type=click.Choice(['auto', 'cpu', 'cuda']), default='auto', show_default=True)
@click.option('--verbose/--quiet', default=True, show_default=True, help='Print progress')
def calc_metrics(network_pkl, metrics, data, mirror, num_gpus, detector_dir, cache_dir, num_gen, max_real, batch_size,
                 pr_detector, download, seed, device, verbose):
    """Calculate quality metrics for a previously trained network."""
    metric_list = [m.strip() for m in metrics.split(',') if m.strip()]
    if metric_list == ['help']:
        click.echo('Available metrics: ' + ', '.join(metric_main.list_valid_metrics()))
        return
    if not metric_list:
        _fail('--metrics: expected a comma-separated list of metrics')
    try:
        metric_main.check_metrics(metric_list)
    except MetricError as e:
        _fail(f'--metrics: {e}')

    if device == 'auto':
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if device == 'cuda' and not torch.cuda.is_available():
        _fail('--device=cuda: no CUDA device is available')
    if device == 'cuda' and num_gpus > torch.cuda.device_count():
        _fail(f'--gpus={num_gpus}: only {torch.cuda.device_count()} CUDA device(s) available')

    from torch_utils import checkpoint
    try:
        network_pkl = checkpoint.resolve_snapshot_path(network_pkl)     # a run folder: its newest snapshot
        G = checkpoint.load_network(network_pkl, key='G_ema', device='cpu')
        meta = checkpoint.load_snapshot_meta(network_pkl)
    except (checkpoint.CheckpointError, OSError) as e:
        _fail(f'--network: {e}')
    try:
        dataset_kwargs = _resolve_dataset_kwargs(data, mirror, G, meta)
    except click.BadParameter as e:
        _fail(e.format_message())

    run_dir = None
    if os.path.isfile(network_pkl):
        folder = os.path.dirname(os.path.abspath(network_pkl))
        if os.path.isfile(os.path.join(folder, 'training_options.json')):
            run_dir = folder

    metric_kwargs = dict(detector_dir=detector_dir, cache_dir=cache_dir, num_gen=num_gen, max_real=max_real,
                         batch_size=batch_size, pr_detector=pr_detector, allow_download=download, seed=seed,
                         verbose=verbose)
    # Find every detector before computing anything, so a missing file fails at once with one line.
    try:
        metric_main.preflight(metric_list, G=G, dataset_kwargs=copy.deepcopy(dataset_kwargs), device='cpu', **metric_kwargs)
    except (MetricError, dnnlib.util.DownloadError) as e:
        _fail(str(e))

    args = dnnlib.EasyDict(network_pkl=network_pkl, metrics=metric_list, dataset_kwargs=dataset_kwargs, num_gpus=num_gpus,
                           device=device, run_dir=run_dir, metric_kwargs=metric_kwargs, verbose=verbose)
    del G
    try:
        if num_gpus == 1:
            subprocess_fn(0, args, temp_dir='')
        else:
            with tempfile.TemporaryDirectory() as temp_dir:
                torch.multiprocessing.spawn(fn=subprocess_fn, args=(args, temp_dir), nprocs=num_gpus)
    except (MetricError, dnnlib.util.DownloadError) as e:
        _fail(str(e))


if __name__ == '__main__':
    calc_metrics()  # pylint: disable=no-value-for-parameter
