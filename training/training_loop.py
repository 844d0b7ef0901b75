"""The training loop. It orchestrates: networks, loss, augmentation, ADA, β schedule, checkpoints and
metrics are objects built by name from the JSON-able options that train.py resolves.

One *step* (stylegan2-ada's "batch") fetches `batch_size` real images (all ranks together) and runs the
phases whose interval divides the step index: Dmain every step, Gmain every `n_critic` steps, lazy
regularisation every `*_reg_interval` steps. Each phase accumulates gradients over rounds of
`batch_gpu` images, averages them over ranks and takes one optimiser step; the gradient is the mean
over the whole batch whatever `batch_gpu` is.

Exact resume: a snapshot holds the networks, optimisers, augmentation probability and ADA
bookkeeping, loss state (path-length mean, β schedule), image and step counters and every RNG. The
data order is a function of the image count (misc.InfiniteSampler), latents come from their own
generator (identical on all ranks, each rank taking its slice), and grids and metrics run under
forked RNGs, so a resumed run continues bit for bit where an uninterrupted one would be.
"""

from __future__ import annotations

import copy
import json
import os
import random
import resource
import time

import numpy as np
import torch

import dnnlib
from torch_utils import checkpoint, misc, training_stats
from training import dataset as dataset_lib
from training.ada import AdaController
from training.phases import StepRunner, update_ema
from training.run_logging import (ExactKimgNames, RunLogger, TickProgress, describe_run, device_description, grid_shape,
                                  loss_fields, save_image_grid, write_plots)

# ----------------------------------------------------------------------------
# Small pieces.


class TrainingStopped(RuntimeError):
    """The run cannot go on (divergence, unreadable training image). The message is one line; it is in log.txt
    and train.py prints it and exits with status 1."""


def _stop(log, message: str):
    log.info(f'Error: {message}', console=False)
    log.close()
    raise TrainingStopped(message)


def weights_finite(modules: dict) -> str | None:
    """Name of the first module whose parameters or buffers hold NaN or Inf (one sum of squares each), else None."""
    for name, module in modules.items():
        tensors = [t.detach().float() for t in module.state_dict().values() if t.is_floating_point()]
        if tensors and not bool(torch.isfinite(torch.stack([t.square().sum() for t in tensors]).sum())):
            return name
    return None


def check_divergence(log, loss_collector, modules: dict, cur_nimg: int, run_dir: str, resume: str | None) -> None:
    """Stop on the first non-finite loss of the tick (synchronised over ranks) or weight statistic, before any
    snapshot of that state is written, naming the last good snapshot."""
    bad = [name for name in loss_collector.names() if loss_collector.num_nonfinite(name) > 0]
    if bad:
        parts = bad[0].split('/')
        what = (f'{bad[0]} (phase {parts[1] if len(parts) > 2 else "?"}) had {loss_collector.num_nonfinite(bad[0])} '
                f'non-finite value(s)')
    else:
        module = weights_finite(modules)
        if module is None:
            return
        what = f'the weights of {module} became NaN or Inf'
    snapshots = checkpoint.list_snapshots(run_dir)
    last = snapshots[-1] if snapshots else resume
    _stop(log, f'training diverged at {cur_nimg / 1000:g} kimg: {what}; no snapshot of this state was written; '
               + (f'the last good snapshot is {last}' if last else 'no snapshot was written before')
               + ' (resume with a smaller --glr/--dlr or a larger --gamma)')


def _is_distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def cpu_memory_gb() -> float:
    """Resident memory of this process (GB); falls back to the peak when /proc is unavailable."""
    try:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**30
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def images_to_float(img: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 [0, 255] → float32 [-1, 1] on `device`."""
    return img.to(device, non_blocking=True).to(torch.float32) / 127.5 - 1


class RealImageSource:
    """Draws random sets of distinct real images (float, [-1, 1]) with its own seeded RNG, apart from the
    training stream (the β schedule's floor measurement uses it)."""

    def __init__(self, dataset, device: torch.device, seed: int):
        self.dataset = dataset
        self.device = device
        self.rng = np.random.default_rng([seed, 0xF100])

    def __call__(self, n: int) -> torch.Tensor:
        if n > len(self.dataset):
            raise ValueError(f'need {n} distinct real images but the data set has {len(self.dataset)}')
        idx = self.rng.choice(len(self.dataset), size=n, replace=False)
        img = np.stack([self.dataset[int(i)][0] for i in idx])
        return images_to_float(torch.from_numpy(img), self.device)

    def state_dict(self) -> dict:
        """The RNG's position (its 128-bit integers as decimal strings: plain data for the snapshot), so that a
        resumed β schedule draws the same fresh real images."""
        st = self.rng.bit_generator.state
        return {'bit_generator': st['bit_generator'], 'state': str(st['state']['state']),
                'inc': str(st['state']['inc']), 'has_uint32': int(st['has_uint32']), 'uinteger': int(st['uinteger'])}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = {'bit_generator': state['bit_generator'],
                                        'state': {'state': int(state['state']), 'inc': int(state['inc'])},
                                        'has_uint32': int(state['has_uint32']), 'uinteger': int(state['uinteger'])}


def capture_rng_state(latent_gen: torch.Generator) -> dict:
    state = {
        'torch': torch.get_rng_state(),
        'numpy': _numpy_state_to_data(np.random.get_state()),
        'python': _python_state_to_data(random.getstate()),
        'latent': latent_gen.get_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict, latent_gen: torch.Generator) -> None:
    torch.set_rng_state(state['torch'])
    np.random.set_state(_numpy_state_from_data(state['numpy']))
    random.setstate(_python_state_from_data(state['python']))
    latent_gen.set_state(state['latent'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def _numpy_state_to_data(st) -> dict:
    return {'name': st[0], 'keys': torch.from_numpy(np.asarray(st[1], dtype=np.int64)), 'pos': int(st[2]),
            'has_gauss': int(st[3]), 'cached': float(st[4])}


def _numpy_state_from_data(d: dict):
    return (d['name'], d['keys'].numpy().astype(np.uint32), d['pos'], d['has_gauss'], d['cached'])


def _python_state_to_data(st) -> dict:
    return {'version': st[0], 'internal': list(st[1]), 'gauss': st[2]}


def _python_state_from_data(d: dict):
    return (d['version'], tuple(d['internal']), d['gauss'])


# ----------------------------------------------------------------------------


def _transfer_snapshot(snap: dict, augment_kwargs: dict | None) -> dict:
    """The networks of a file without training state, for a new run: the augmentation pipe is this run's
    own (its options may differ) and only its probability p is taken from the file ('augment_p')."""
    modules = {k: v for k, v in snap['modules'].items() if k in ('G', 'D', 'G_ema')}
    out = dict(snap, modules=modules)
    packed_pipe = snap['modules'].get('augment_pipe')
    if augment_kwargs is not None and packed_pipe is not None and 'p' in packed_pipe['state_dict']:
        out['augment_p'] = float(packed_pipe['state_dict']['p'])
    return out


def build_components(G_kwargs: dict, D_kwargs: dict, augment_kwargs: dict | None, augment_p: float, loss_kwargs: dict,
                     G_opt_kwargs: dict, D_opt_kwargs: dict, device: torch.device, num_gpus: int = 1,
                     packed_modules: dict | None = None, real_source=None) -> dnnlib.EasyDict:
    """Networks, augmentation pipe, loss and step runner, built by name from the options (or, when resuming,
    the networks rebuilt from a snapshot's packed modules). Shared by the loop and the speed benchmark."""
    if packed_modules is not None:
        G, D, G_ema = (checkpoint.unpack_module(packed_modules[k]) for k in ('G', 'D', 'G_ema'))
    else:
        G = dnnlib.util.construct_class_by_name(**G_kwargs)
        D = dnnlib.util.construct_class_by_name(**D_kwargs)
        G_ema = copy.deepcopy(G)
    G = G.train().requires_grad_(False).to(device)
    D = D.train().requires_grad_(False).to(device)
    G_ema = G_ema.eval().requires_grad_(False).to(device)
    if num_gpus > 1:      # every rank starts from rank 0's weights
        for module in (G, D, G_ema):
            for tensor in misc.params_and_buffers(module):
                torch.distributed.broadcast(tensor, src=0)
    augment_pipe = None
    if augment_kwargs is not None:
        if packed_modules is not None and 'augment_pipe' in packed_modules:
            augment_pipe = checkpoint.unpack_module(packed_modules['augment_pipe'])
        else:
            augment_pipe = dnnlib.util.construct_class_by_name(**augment_kwargs)
            augment_pipe.p.copy_(torch.as_tensor(augment_p or 0.0))
        augment_pipe = augment_pipe.train().requires_grad_(False).to(device)
    loss = dnnlib.util.construct_class_by_name(device=device, G=G, D=D, augment_pipe=augment_pipe,
                                               real_source=real_source, **loss_kwargs)
    runner = StepRunner(loss, G, D, G_opt_kwargs, D_opt_kwargs, num_gpus=num_gpus)
    return dnnlib.EasyDict(G=G, D=D, G_ema=G_ema, augment_pipe=augment_pipe, loss=loss, runner=runner)


# ----------------------------------------------------------------------------


def training_loop(
    run_dir: str,                       # Output folder (rank 0 writes into it).
    training_set_kwargs: dict,          # Dataset (class_name + kwargs).
    G_kwargs: dict,                     # Generator (class_name + kwargs).
    D_kwargs: dict,                     # Discriminator (class_name + kwargs).
    G_opt_kwargs: dict,                 # Generator optimiser (class_name + kwargs).
    D_opt_kwargs: dict,                 # Discriminator optimiser.
    loss_kwargs: dict,                  # Loss (class_name + kwargs).
    augment_kwargs: dict | None = None,  # Augmentation pipe; None = no augmentation.
    data_loader_kwargs: dict | None = None,  # DataLoader options (num_workers, pin_memory, prefetch_factor).
    metrics: list | None = None,        # Metric names evaluated at every network snapshot.
    random_seed: int = 0,               # Global seed.
    num_gpus: int = 1,                  # Number of processes taking part.
    rank: int = 0,                      # This process's rank.
    batch_size: int = 32,               # Images per step, all processes together.
    batch_gpu: int = 4,                 # Images per accumulation round per process.
    ema_kimg: float = 10,               # Half-life of the G_ema average in kimg.
    ema_rampup: float | None = 0.05,    # G_ema ramp-up: half-life at most cur_nimg·ramp; None = off.
    ada_target: float | None = None,    # ADA target for E[sign(D(real))]; None = fixed p.
    ada_interval: int = 4,              # Steps between ADA adjustments.
    ada_kimg: float = 500,              # ADA speed: p can go 0 → 1 in this many kimg.
    augment_p: float | None = None,     # Initial (or fixed) augmentation probability (None: 0); resuming: replaces the snapshot's.
    total_kimg: float = 25000,          # Training length in thousands of real images.
    kimg_per_tick: float = 4,           # Progress interval.
    image_snapshot_ticks: int | None = 50,    # Image grid interval in ticks; None = never.
    network_snapshot_ticks: int | None = 50,  # Snapshot (and metrics) interval in ticks; None = never.
    resume: str | None = None,          # Snapshot to continue from exactly.
    cudnn_benchmark: bool = True,       # torch.backends.cudnn.benchmark.
    allow_tf32: bool = False,           # TF32 matmuls and convolutions on Ampere+.
    deterministic: bool = False,        # torch.use_deterministic_algorithms (exact repeatability).
    num_threads: int | None = None,     # CPU threads of this process; None = torch's default.
    dist_timeout: int | None = None,    # Collective timeout in seconds (train.py sets it on the process group).
    abort_fn=None,                      # Callable returning True to stop early (tests, signals).
    progress_fn=None,                   # Callable(cur_nimg, total_nimg) for progress reporting.
    options_for_meta: dict | None = None,  # The whole resolved options, stored in snapshots.
    metrics_kwargs: dict | None = None,  # Extra options for metric evaluation (detector paths, num_gen...).
):
    start_time = time.time()
    device = torch.device('cuda', rank) if torch.cuda.is_available() else torch.device('cpu')
    if device.type == 'cuda':
        torch.cuda.set_device(device)
    if num_threads is not None:
        torch.set_num_threads(int(num_threads))
    np.random.seed(random_seed * num_gpus + rank)
    random.seed(random_seed * num_gpus + rank)
    torch.manual_seed(random_seed * num_gpus + rank)
    latent_gen = torch.Generator().manual_seed(random_seed)       # identical on every rank
    torch.backends.cudnn.benchmark = cudnn_benchmark
    torch.backends.cuda.matmul.allow_tf32 = allow_tf32
    torch.backends.cudnn.allow_tf32 = allow_tf32
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    training_stats.init_multiprocessing(rank=rank, sync_device=device if device.type == 'cuda' else None)

    log = RunLogger(run_dir, enabled=(rank == 0))
    log.info(describe_run(total_kimg, loss_kwargs, G_kwargs, batch_size, num_gpus, device_description(device)))
    if batch_size % (batch_gpu * num_gpus) != 0:
        raise ValueError(f'batch {batch_size} must be a multiple of batch_gpu {batch_gpu} × processes {num_gpus}')
    batch_per_rank = batch_size // num_gpus

    # Resume state (read before building anything so the architecture comes from the snapshot).
    resume_snap = None
    transfer = False
    if resume is not None:
        resume_snap = checkpoint.load_snapshot(resume)
        transfer = resume_snap.get('state') is None     # NVIDIA's networks: no training state in the file
        if transfer:
            log.info(f'Transfer learning from "{resume}": G, D, G_ema and the augmentation p come from the file; '
                     f'optimisers, counters and random state start fresh')
            resume_snap = _transfer_snapshot(resume_snap, augment_kwargs)
            augment_p = resume_snap.pop('augment_p', augment_p)
        else:
            done_nimg = int(resume_snap['state']['cur_nimg'])
            log.info(f'Resuming from "{resume}" at {done_nimg / 1000:g} kimg; --kimg={total_kimg:g} is the total '
                     f'length, so {max(total_kimg - done_nimg / 1000, 0):g} kimg remain')

    # Data.
    training_set = dataset_lib.open_dataset(training_set_kwargs)
    cur_nimg = int(resume_snap['state']['cur_nimg']) if resume_snap is not None and not transfer else 0
    sampler = misc.InfiniteSampler(training_set, rank=rank, num_replicas=num_gpus, seed=random_seed,
                                   start=cur_nimg, block_size=batch_per_rank)
    loader_kwargs = dict(data_loader_kwargs or {})
    if loader_kwargs.get('num_workers', 0) == 0:
        loader_kwargs.pop('prefetch_factor', None)
    training_set_iterator = iter(torch.utils.data.DataLoader(dataset=training_set, sampler=sampler,
                                                             batch_size=batch_per_rank, **loader_kwargs))
    log.info(f'Training set: {training_set.name}, {len(training_set)} images, shape {training_set.image_shape}, '
             f'labels {training_set.label_shape}')

    # Networks (their kwargs name the data's shape explicitly; a mismatch is a configuration error).
    for name, kwargs in (('G_kwargs', G_kwargs), ('D_kwargs', D_kwargs)):
        for key, value in (('c_dim', training_set.label_dim), ('img_resolution', training_set.resolution),
                           ('img_channels', training_set.num_channels)):
            if kwargs.get(key, value) != value:
                raise ValueError(f'{name}.{key}={kwargs[key]} does not match the training data ({value})')
    modules = resume_snap['modules'] if resume_snap is not None else None
    parts = build_components(G_kwargs, D_kwargs, augment_kwargs, augment_p, loss_kwargs, G_opt_kwargs, D_opt_kwargs,
                             device=device, num_gpus=num_gpus, packed_modules=modules,
                             real_source=RealImageSource(training_set, device, random_seed))
    G, D, G_ema, augment_pipe, loss, runner = (parts.G, parts.D, parts.G_ema, parts.augment_pipe, parts.loss,
                                               parts.runner)
    ada = None
    if augment_pipe is not None and ada_target is not None:
        ada = AdaController(augment_pipe, target=ada_target, interval=ada_interval, speed_kimg=ada_kimg,
                            batch_size=batch_size)
    num_phases = len(runner.phases)

    # Counters and exact state.
    batch_idx = 0
    cur_tick = 0
    if resume_snap is not None and not transfer:
        st = resume_snap['state']
        batch_idx = int(st['batch_idx'])
        cur_tick = int(st['cur_tick'])
        runner.load_state_dict(st['optimizers'])
        loss.load_state_dict(st['loss'])
        if ada is not None and st.get('ada') is not None:
            ada.load_state_dict(st['ada'])
        if augment_pipe is not None and augment_p is not None:     # --p given on --resume
            augment_pipe.p.copy_(torch.as_tensor(augment_p))
        if len(st['rng']) == num_gpus:
            restore_rng_state(st['rng'][rank], latent_gen)
        else:   # the per-rank random streams cannot be mapped onto a different process count
            log.info(f'warning: the snapshot was written by {len(st["rng"])} process(es), this run has {num_gpus}; '
                     f'training continues from its state but not bit-exactly')
            latent_gen.set_state(st['rng'][0]['latent'])
        del resume_snap

    # Image grids.
    grid_size = grid_z = grid_c = None
    if rank == 0 and image_snapshot_ticks is not None:
        grid_size, grid_z, grid_c = _setup_grid(training_set, G, device, random_seed, run_dir,
                                                write_reals=(cur_nimg == 0))
        if cur_nimg == 0:
            with torch.random.fork_rng(devices=[device] if device.type == 'cuda' else []):
                images = _generate_grid(G_ema, grid_z, grid_c)
            save_image_grid(images, os.path.join(run_dir, 'fakes_init.png'), drange=(-1, 1), grid_size=grid_size)

    stats_collector = training_stats.Collector(regex='.*')
    loss_collector = training_stats.Collector(regex='Loss/.*')      # closed at each tick line
    grid_names, snapshot_names = ExactKimgNames(kimg_per_tick), ExactKimgNames(kimg_per_tick)
    total_nimg = int(total_kimg * 1000)
    progress = TickProgress(log, total_nimg, enabled=(rank == 0))
    progress.start_tick(cur_tick, cur_nimg, cur_nimg + kimg_per_tick * 1000)
    tick_start_nimg = cur_nimg
    tick_start_time = time.time()
    maintenance_time = tick_start_time - start_time
    if progress_fn is not None:
        progress_fn(cur_nimg, total_nimg)
    done = cur_nimg >= total_nimg
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)

    while not done:
        # Fetch data.
        with torch.autograd.profiler.record_function('data_fetch'):
            try:
                phase_real_img, phase_real_c = next(training_set_iterator)
            except dataset_lib.DatasetError as e:   # from a DataLoader worker: the last line is the original
                message = str(e).strip().splitlines()[-1].split('DatasetError: ', 1)[-1]
                _stop(log, f'{message} (training stopped at {cur_nimg / 1000:g} kimg)')
            phase_real_img = images_to_float(phase_real_img, device).split(batch_gpu)
            phase_real_c = phase_real_c.to(device).split(batch_gpu)
            # Latents for every phase of this step: the whole batch from the shared generator, this rank's slice.
            all_gen_z = torch.randn([num_phases, batch_size, G.z_dim], generator=latent_gen)
            label_idx = torch.randint(len(training_set), [num_phases, batch_size], generator=latent_gen)
            lo, hi = rank * batch_per_rank, (rank + 1) * batch_per_rank
            all_gen_z = all_gen_z[:, lo:hi].to(device)
            all_gen_c = torch.from_numpy(np.stack([training_set.get_label(int(i)) for i in label_idx[:, lo:hi].flatten()]))
            all_gen_c = all_gen_c.reshape(num_phases, batch_per_rank, -1).to(device)

        # Phases.
        runner.step(batch_idx, phase_real_img, phase_real_c, [z.split(batch_gpu) for z in all_gen_z],
                    [c.split(batch_gpu) for c in all_gen_c], cur_nimg)

        # G_ema.
        with torch.autograd.profiler.record_function('Gema'):
            update_ema(G_ema, G, cur_nimg, batch_size, ema_kimg, ema_rampup)

        cur_nimg += batch_size
        batch_idx += 1
        progress.step(cur_nimg, batch_size)
        if ada is not None:
            ada.maybe_adjust(batch_idx)

        # Tick?
        done = cur_nimg >= total_nimg
        if progress_fn is not None:
            progress_fn(cur_nimg, total_nimg)
        if abort_fn is not None and abort_fn():
            done = True
        if not done and cur_nimg < tick_start_nimg + kimg_per_tick * 1000:
            continue

        tick_end_time = time.time()
        progress.close()
        loss_collector.update()
        fields = [
            f'tick {cur_tick:<5d}',
            f'kimg {training_stats.report0("Progress/kimg", cur_nimg / 1e3):<8.{1 if kimg_per_tick >= 1 else 3}f}',
            f'time {dnnlib.util.format_time(training_stats.report0("Timing/total_sec", tick_end_time - start_time)):<12s}',
            f'sec/tick {training_stats.report0("Timing/sec_per_tick", tick_end_time - tick_start_time):<7.1f}',
            f'sec/kimg {training_stats.report0("Timing/sec_per_kimg", (tick_end_time - tick_start_time) / max(cur_nimg - tick_start_nimg, 1) * 1e3):<7.2f}',
        ]
        remaining = (total_nimg - cur_nimg) / max(cur_nimg - tick_start_nimg, 1) * (tick_end_time - tick_start_time)
        fields.append(f'eta {dnnlib.util.format_time(max(remaining, 0)):<12s}')
        fields.append(f'maintenance {training_stats.report0("Timing/maintenance_sec", maintenance_time):<5.1f}')
        fields.append(f'cpumem {training_stats.report0("Resources/cpu_mem_gb", cpu_memory_gb()):<5.2f}')
        if device.type == 'cuda':
            fields.append(f'gpumem {training_stats.report0("Resources/peak_gpu_mem_gb", torch.cuda.max_memory_allocated(device) / 2**30):<5.2f}')
            torch.cuda.reset_peak_memory_stats(device)
        if augment_pipe is not None:
            fields.append(f'augment {training_stats.report0("Progress/augment", float(augment_pipe.p)):.3f}')
        fields += loss_fields(loss_collector)
        log.info(' '.join(fields))
        check_divergence(log, loss_collector, {'G': G, 'D': D, 'G_ema': G_ema}, cur_nimg, run_dir, resume)

        # Image snapshot.
        if rank == 0 and image_snapshot_ticks is not None and (done or cur_tick % image_snapshot_ticks == 0):
            with torch.random.fork_rng(devices=[device] if device.type == 'cuda' else []):
                images = _generate_grid(G_ema, grid_z, grid_c)
            save_image_grid(images, os.path.join(run_dir, f'fakes{dnnlib.util.kimg_tag(cur_nimg, grid_names.exact(cur_nimg))}.png'), drange=(-1, 1),
                            grid_size=grid_size)

        # Network snapshot (a collective: every rank takes part in closing the ADA interval).
        snapshot_path = None
        if network_snapshot_ticks is not None and (done or cur_tick % network_snapshot_ticks == 0):
            if num_gpus > 1:      # every rank must hold the same weights (running averages are per rank)
                for module in (G, D, G_ema):
                    misc.check_ddp_consistency(module, ignore_regex=r'.*\.[^.]+_(avg|ema)')
            state = {
                'cur_nimg': cur_nimg, 'batch_idx': batch_idx, 'cur_tick': cur_tick + 1,
                'optimizers': runner.state_dict(),
                'loss': loss.state_dict(),
                'ada': ada.state_dict() if ada is not None else None,
                'rng': _gather_rng_states(capture_rng_state(latent_gen), num_gpus),
            }
            snapshot_path = os.path.join(run_dir, checkpoint.snapshot_name(cur_nimg, snapshot_names.exact(cur_nimg)))
            if rank == 0:
                meta = dict(training_set_kwargs=training_set_kwargs, cur_nimg=cur_nimg,
                            options=options_for_meta or {}, torch_version=torch.__version__)
                modules = {'G': G, 'D': D, 'G_ema': G_ema, 'augment_pipe': augment_pipe}
                checkpoint.save_snapshot(snapshot_path, modules, meta=meta, state=state)
                log.info(f'Saved {os.path.basename(snapshot_path)}')

            # Metrics.
            if metrics:
                from metrics import metric_main
                for metric in metrics:
                    with torch.random.fork_rng(devices=[device] if device.type == 'cuda' else []):
                        result = metric_main.calc_metric(metric=metric, G=G_ema, dataset_kwargs=training_set_kwargs,
                                                         num_gpus=num_gpus, rank=rank, device=device,
                                                         # progress bars on a terminal; no lines in logs
                                                         **{'verbose': dnnlib.util.stderr_is_terminal(),
                                                            **(metrics_kwargs or {})})
                    if rank == 0:
                        record = metric_main.report_metric(result, run_dir=run_dir, snapshot_pkl=snapshot_path)
                        for key, value in record.results.items():
                            if isinstance(value, (int, float)):
                                log.write_metric(key, float(value), cur_nimg)
                        log.info(f'Metric {record.metric}: ' + json.dumps(record.results), console=False)

        # Statistics of the tick.
        stats_collector.update()
        if rank == 0:
            log.write_stats(stats_collector.as_dict(), timestamp=time.time(), global_step_kimg=cur_nimg / 1e3)
            if snapshot_path is not None or done:
                try:
                    write_plots(run_dir)
                except Exception as e:  # noqa: BLE001 - a plotting problem must not end a training run
                    log.info(f'warning: could not draw plots ({type(e).__name__}: {e})')

        cur_tick += 1
        tick_start_nimg = cur_nimg
        tick_start_time = time.time()
        maintenance_time = tick_start_time - tick_end_time
        if not done:
            progress.start_tick(cur_tick, cur_nimg, cur_nimg + kimg_per_tick * 1000)

    log.info('Exiting...')
    log.close()
    return dnnlib.EasyDict(G=G, D=D, G_ema=G_ema, augment_pipe=augment_pipe, loss=loss, cur_nimg=cur_nimg,
                           batch_idx=batch_idx)


# ----------------------------------------------------------------------------


def _gather_rng_states(state: dict, num_gpus: int):
    """Every rank's RNG states (a list), so each rank restores its own on resume."""
    if num_gpus <= 1 or not _is_distributed():
        return [state]
    gathered = [None] * num_gpus
    torch.distributed.all_gather_object(gathered, state)
    return gathered


def _setup_grid(training_set, G, device, seed: int, run_dir: str, write_reals: bool):
    rnd = np.random.RandomState(seed)
    gw, gh = grid_shape(training_set.resolution, len(training_set))
    if not training_set.has_labels:
        idx = np.resize(rnd.permutation(len(training_set)), gw * gh)     # repeats when there are fewer images
    else:
        # One row per class where possible, as stylegan2-ada does.
        by_label: dict[tuple, list[int]] = {}
        for i in range(len(training_set)):
            by_label.setdefault(tuple(training_set.get_details(i).raw_label.flatten().tolist()), []).append(i)
        keys = sorted(by_label)
        idx = []
        for y in range(gh):
            pool = by_label[keys[y % len(keys)]]
            rnd.shuffle(pool)
            idx += [pool[x % len(pool)] for x in range(gw)]
    images = np.stack([training_set[int(i)][0] for i in idx])
    labels = np.stack([training_set[int(i)][1] for i in idx])
    if write_reals:
        save_image_grid(images, os.path.join(run_dir, 'reals.png'), drange=(0, 255), grid_size=(gw, gh))
    z_gen = torch.Generator().manual_seed(seed + 123)
    grid_z = torch.randn([len(idx), G.z_dim], generator=z_gen).to(device).split(16)
    grid_c = torch.from_numpy(labels).to(device).split(16)
    return (gw, gh), grid_z, grid_c


@torch.no_grad()
def _generate_grid(G_ema, grid_z, grid_c) -> np.ndarray:
    kwargs = {'noise_mode': 'const'} if hasattr(G_ema, 'synthesis') else {}
    return torch.cat([G_ema(z, c, **kwargs).cpu() for z, c in zip(grid_z, grid_c)]).numpy()
