"""Shared machinery of the metrics: options, progress, feature statistics, generation, sharding, caching.

Determinism: generated sample i is made from latents and labels that depend only on (seed, i), and every
rank of a distributed evaluation handles items i = rank, rank + num_gpus, ...; results are gathered back
into index order. A metric therefore does not depend on the batch size or on the number of processes
(up to floating-point summation order), as long as the generator itself is deterministic: a generator
that draws its own noise (StyleGAN's noise_mode='random') gets a torch seed per batch, which makes a run
reproducible at a given batch size but not across batch sizes.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import os
import sys
import time

import numpy as np
import torch

import dnnlib
from metrics.errors import MetricError

# ----------------------------------------------------------------------------


class MetricOptions:
    """Everything a metric needs to know about what to evaluate and how."""

    def __init__(self,
                 G=None,                    # generator: z_dim, c_dim, img_resolution, img_channels, forward(z, c, **G_kwargs) -> [-1, 1] NCHW
                 G_kwargs={},               # extra keyword arguments of every G call (e.g. truncation_psi, noise_mode)
                 dataset_kwargs={},         # real data, constructed by class_name; items are (uint8 CHW, label)
                 num_gpus=1,                # number of processes taking part (torch.distributed initialised when > 1)
                 rank=0,                    # this process's rank
                 device=None,               # torch device; None = cuda:<rank> when CUDA is available, else cpu
                 progress=None,             # ProgressMonitor to report to; None = silent
                 cache=True,                # cache real-data statistics on disk
                 cache_dir=None,            # folder of those caches; None = dnnlib.make_cache_dir_path('gan-metrics')
                 detector_dir=None,         # folder searched first for detector files (inception, vgg16, classifiers)
                 num_gen=None,              # override of the number of generated samples of every metric; None = the metric's own
                 max_real=None,             # override of the cap on real samples; None = the metric's own
                 allow_download=True,       # fetch missing detectors from their standard URLs
                 batch_size=64,             # images per detector call; never changes a result
                 batch_gen=None,            # images per generator call; None = min(batch_size, 16); never changes a result
                 seed=0,                    # seed of latents, labels, subsets and landmarks
                 pr_detector='auto',        # precision/recall and density/coverage features: 'auto', 'vgg16' or 'inception'
                 data_loader_kwargs=None,   # DataLoader options for real data; None = a few workers
                 verbose=False,             # print progress lines (rank 0)
                 ):
        if not (isinstance(num_gpus, int) and num_gpus >= 1 and isinstance(rank, int) and 0 <= rank < num_gpus):
            raise ValueError(f'need 0 <= rank < num_gpus, got rank={rank} num_gpus={num_gpus}')
        if num_gpus > 1 and not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            raise ValueError(f'num_gpus={num_gpus} needs torch.distributed to be initialised')
        if pr_detector not in ('auto', 'vgg16', 'inception'):
            raise ValueError(f'pr_detector={pr_detector!r}: expected "auto", "vgg16" or "inception"')
        for name, value in (('num_gen', num_gen), ('max_real', max_real), ('batch_gen', batch_gen)):
            if value is not None and not (isinstance(value, int) and value >= 1):
                raise ValueError(f'{name}={value!r}: expected a positive integer or None')
        if not (isinstance(batch_size, int) and batch_size >= 1):
            raise ValueError(f'batch_size={batch_size!r}: expected a positive integer')
        self.G = G
        self.G_kwargs = dnnlib.EasyDict(G_kwargs)
        self.dataset_kwargs = dnnlib.EasyDict(dataset_kwargs)
        self.num_gpus = num_gpus
        self.rank = rank
        if device is None:
            device = torch.device('cuda', rank) if torch.cuda.is_available() else torch.device('cpu')
        self.device = torch.device(device)
        self.verbose = bool(verbose) and rank == 0
        self.progress = progress.sub() if (progress is not None and rank == 0) else \
            ProgressMonitor(verbose=self.verbose, warn=(rank == 0))
        self.cache = cache
        self.cache_dir = cache_dir
        self.detector_dir = detector_dir
        self.num_gen = num_gen
        self.max_real = max_real
        self.allow_download = allow_download
        self.batch_size = batch_size
        self.batch_gen = batch_gen if batch_gen is not None else min(batch_size, 16)
        self.seed = int(seed)
        self.pr_detector = pr_detector
        self.data_loader_kwargs = data_loader_kwargs
        self.notes = {}  # metadata a metric wants recorded next to its results (e.g. the detector used)

    # Sample counts after the user's overrides.
    def gen_count(self, default: int) -> int:
        return self.num_gen if self.num_gen is not None else default

    def real_count(self, default: int | None) -> int | None:
        return self.max_real if self.max_real is not None else default

    @property
    def distributed(self) -> bool:
        return self.num_gpus > 1

    def get_cache_dir(self) -> str:
        return self.cache_dir if self.cache_dir is not None else dnnlib.make_cache_dir_path('gan-metrics')


# ----------------------------------------------------------------------------
# Progress reporting.


class ProgressMonitor:
    """Progress of one stage (e.g. 'generator features'): when verbose, a tqdm bar with ETA on a terminal's
    stderr, else a line per `flush_interval` items; forwards progress to `progress_fn(cur, total)`; and,
    when `warn` is set, says once if the stage's measured pace makes it longer than LONG_STAGE_SECONDS."""

    LONG_STAGE_SECONDS = 600.0

    def __init__(self, tag=None, num_items=None, flush_interval=1000, verbose=False, progress_fn=None,
                 pfn_lo=0, pfn_hi=1000, pfn_total=1000, warn=False, context=''):
        self.tag = tag                          # label printed in front of each line
        self.num_items = num_items              # total expected; None = unknown
        self.flush_interval = flush_interval    # items between two reports
        self.verbose = verbose                  # print lines
        self.progress_fn = progress_fn          # callback(cur, total) or None
        self.pfn_lo, self.pfn_hi, self.pfn_total = pfn_lo, pfn_hi, pfn_total
        self.warn = warn                        # say when the stage will be long (rank 0)
        self.context = context                  # what is being computed, e.g. 'fid50k_full on cpu'
        self.start_time = time.time()
        self.batch_time = self.start_time
        self.batch_items = 0
        self.bar = dnnlib.util.progress_bar(num_items, desc=tag, enabled=bool(verbose and tag and num_items))
        self.bar_drawn = not self.bar.disable   # a bar on the terminal replaces the progress lines
        self.bar_items = 0
        self.warned = False
        if self.progress_fn is not None:
            self.progress_fn(self.pfn_lo, self.pfn_total)

    def update(self, cur_items):
        done = self.num_items is not None and cur_items >= self.num_items
        now = time.time()
        if cur_items > self.bar_items:
            self.bar.update(cur_items - self.bar_items)
            self.bar_items = cur_items
        if done:
            self.bar.close()
        self._maybe_warn(cur_items, now)
        if cur_items < self.batch_items + self.flush_interval and not done:
            return
        if done and cur_items == self.batch_items and self.batch_time != self.start_time:
            return  # the final count was reported already
        per_item = (now - self.batch_time) / max(cur_items - self.batch_items, 1)
        if self.verbose and self.tag is not None and not self.bar_drawn:
            print(f'{self.tag:<19s} items {cur_items:<7d} time {dnnlib.util.format_time(now - self.start_time):<12s} '
                  f'ms/item {per_item * 1e3:.2f}', flush=True)
        self.batch_time, self.batch_items = now, cur_items
        if self.progress_fn is not None and self.num_items:
            frac = min(cur_items / self.num_items, 1.0)
            self.progress_fn(self.pfn_lo + (self.pfn_hi - self.pfn_lo) * frac, self.pfn_total)

    def _maybe_warn(self, cur_items, now):
        """After the first batch: the stage's whole duration at the pace measured so far."""
        if not self.warn or self.warned or not self.num_items or not 0 < cur_items < self.num_items:
            return
        self.warned = True
        per_item = (now - self.start_time) / cur_items
        estimate = per_item * self.num_items
        if estimate > self.LONG_STAGE_SECONDS:
            what = f'{self.context}: ' if self.context else ''
            dnnlib.util.console_print(
                f'warning: {what}{self.tag or "this stage"} of {self.num_items} images will take about '
                f'{dnnlib.util.format_time(estimate)} at the measured {per_item:.3g} s/image; '
                f'use fewer images (calc_metrics.py --num-gen/--max-real) or a GPU', file=sys.stderr)

    def sub(self, tag=None, num_items=None, flush_interval=1000, rel_lo=0, rel_hi=1):
        return ProgressMonitor(tag=tag, num_items=num_items, flush_interval=flush_interval, verbose=self.verbose,
                               progress_fn=self.progress_fn,
                               pfn_lo=self.pfn_lo + (self.pfn_hi - self.pfn_lo) * rel_lo,
                               pfn_hi=self.pfn_lo + (self.pfn_hi - self.pfn_lo) * rel_hi,
                               pfn_total=self.pfn_total, warn=self.warn, context=self.context)


# ----------------------------------------------------------------------------
# Feature statistics.


class FeatureStats:
    """Accumulates detector outputs: all rows (capture_all) and/or float64 sums for the mean and covariance."""

    def __init__(self, capture_all=False, capture_mean_cov=False, max_items=None):
        self.capture_all = capture_all              # keep every row
        self.capture_mean_cov = capture_mean_cov    # keep sum(x) and sum(x x^T) in float64
        self.max_items = max_items                  # rows beyond this many are ignored; None = no limit
        self.num_items = 0
        self.num_features = None
        self.all_features = []
        self.raw_sum = None
        self.raw_outer = None

    def is_full(self):
        return self.max_items is not None and self.num_items >= self.max_items

    def append(self, x):
        x = np.asarray(x, dtype=np.float32)
        assert x.ndim == 2, x.shape
        if self.max_items is not None:
            x = x[:max(self.max_items - self.num_items, 0)]
        if self.num_features is None:
            self.num_features = x.shape[1]
            if self.capture_mean_cov:
                self.raw_sum = np.zeros([x.shape[1]], dtype=np.float64)
                self.raw_outer = np.zeros([x.shape[1], x.shape[1]], dtype=np.float64)
        assert x.shape[1] == self.num_features, (x.shape, self.num_features)
        if x.shape[0] == 0:
            return
        self.num_items += x.shape[0]
        if self.capture_all:
            self.all_features.append(x)
        if self.capture_mean_cov:
            x64 = x.astype(np.float64)
            self.raw_sum += x64.sum(axis=0)
            self.raw_outer += x64.T @ x64

    def get_all(self) -> np.ndarray:
        assert self.capture_all
        if not self.all_features:
            return np.zeros([0, self.num_features or 0], dtype=np.float32)
        return np.concatenate(self.all_features, axis=0)

    def get_all_torch(self) -> torch.Tensor:
        return torch.from_numpy(self.get_all())

    def get_mean_cov(self):
        """Mean and unbiased (N - 1) covariance, as the original FID code (np.cov) computes them."""
        assert self.capture_mean_cov
        if self.num_items < 2:
            raise MetricError(f'mean and covariance need at least 2 feature vectors, got {self.num_items}')
        n = self.num_items
        mean = self.raw_sum / n
        cov = (self.raw_outer - n * np.outer(mean, mean)) / (n - 1)
        return mean, cov

    # Saved as .npz without pickles, so loading a cache never executes code.
    def save(self, path: str, meta: dict | None = None) -> None:
        arrays = dict(num_items=np.int64(self.num_items), capture_all=np.bool_(self.capture_all),
                      capture_mean_cov=np.bool_(self.capture_mean_cov),
                      max_items=np.int64(-1 if self.max_items is None else self.max_items),
                      num_features=np.int64(-1 if self.num_features is None else self.num_features),
                      meta=np.array(json.dumps(meta or {})))
        if self.capture_all:
            arrays['all_features'] = self.get_all()
        if self.capture_mean_cov:
            arrays['raw_sum'] = self.raw_sum
            arrays['raw_outer'] = self.raw_outer
        with dnnlib.util.atomic_output(path) as f:
            np.savez(f, **arrays)

    @staticmethod
    def load(path: str) -> 'FeatureStats':
        with np.load(path, allow_pickle=False) as data:
            max_items = int(data['max_items'])
            obj = FeatureStats(capture_all=bool(data['capture_all']), capture_mean_cov=bool(data['capture_mean_cov']),
                               max_items=None if max_items < 0 else max_items)
            obj.num_items = int(data['num_items'])
            num_features = int(data['num_features'])
            obj.num_features = None if num_features < 0 else num_features
            if obj.capture_all:
                obj.all_features = [np.array(data['all_features'])]
            if obj.capture_mean_cov:
                obj.raw_sum = np.array(data['raw_sum'])
                obj.raw_outer = np.array(data['raw_outer'])
        return obj


# ----------------------------------------------------------------------------
# Sharding across processes.


def shard_indices(num_items: int, opts: MetricOptions) -> list[int]:
    """The items this rank handles: rank, rank + num_gpus, ..."""
    if num_items < opts.num_gpus:
        raise MetricError(f'{num_items} samples cannot be shared among {opts.num_gpus} processes: use more samples or fewer --gpus')
    return list(range(opts.rank, num_items, opts.num_gpus))


def gather_rows(local: torch.Tensor, num_items: int, opts: MetricOptions) -> torch.Tensor:
    """Reassemble rows computed by shard_indices on every rank into index order (on every rank)."""
    if not opts.distributed:
        assert local.shape[0] == num_items
        return local
    per_rank = (num_items + opts.num_gpus - 1) // opts.num_gpus
    padded = torch.zeros([per_rank, *local.shape[1:]], dtype=local.dtype, device=opts.device)
    padded[:local.shape[0]] = local.to(opts.device)
    parts = [torch.empty_like(padded) for _ in range(opts.num_gpus)]
    torch.distributed.all_gather(parts, padded)
    # Row j of rank r is item j * num_gpus + r.
    return torch.stack(parts, dim=1).flatten(0, 1)[:num_items]


def all_reduce_sum(x: torch.Tensor, opts: MetricOptions) -> torch.Tensor:
    if not opts.distributed:
        return x
    y = x.to(opts.device).clone()
    torch.distributed.all_reduce(y)
    return y


def broadcast_float(value: float, opts: MetricOptions) -> float:
    if not opts.distributed:
        return value
    t = torch.as_tensor(value, dtype=torch.float64, device=opts.device)
    torch.distributed.broadcast(t, src=0)
    return float(t.cpu())


def _stats_from_rows(rows: torch.Tensor, capture_all: bool, capture_mean_cov: bool, max_items) -> FeatureStats:
    stats = FeatureStats(capture_all=capture_all, capture_mean_cov=capture_mean_cov, max_items=max_items)
    # Fixed-size chunks keep the float64 accumulation independent of the batch size used to compute rows.
    rows = rows.cpu().numpy()
    for start in range(0, rows.shape[0], 1024):
        stats.append(rows[start:start + 1024])
    if rows.shape[0] == 0 and stats.num_features is None:
        stats.num_features = rows.shape[1]
    return stats


# ----------------------------------------------------------------------------
# Real data.


def make_dataset(opts: MetricOptions):
    if not opts.dataset_kwargs:
        raise MetricError('this metric needs real data: pass dataset_kwargs (calc_metrics.py --data)')
    from torch_utils import persistence
    try:    # the kwargs may come from a snapshot: only registered data set classes can be named
        persistence.check_data_kwargs(opts.dataset_kwargs)
    except ValueError as e:
        raise MetricError(f'dataset_kwargs.{e}') from None
    return persistence.build_data(opts.dataset_kwargs)


def dataset_name(dataset, opts: MetricOptions) -> str:
    name = getattr(dataset, 'name', None) or os.path.splitext(os.path.basename(str(opts.dataset_kwargs.get('path', 'data'))))[0]
    return ''.join(ch if ch.isalnum() or ch in '-_.' else '_' for ch in str(name))[:64] or 'data'


def _data_identity(opts: MetricOptions) -> dict:
    # A rebuilt zip under the same path must not hit a stale cache: include its size and time.
    ident = {}
    path = opts.dataset_kwargs.get('path')
    if isinstance(path, str) and os.path.exists(path):
        st = os.stat(path)
        ident = dict(size=st.st_size, mtime_ns=st.st_mtime_ns)
    return ident


def stats_cache_file(opts: MetricOptions, dataset, detector, key: dict) -> str:
    args = dict(dataset_kwargs=opts.dataset_kwargs, data_identity=_data_identity(opts), detector=detector.name, **key)
    digest = hashlib.md5(json.dumps(args, sort_keys=True, default=repr).encode('utf-8')).hexdigest()
    return os.path.join(opts.get_cache_dir(), f'{dataset_name(dataset, opts)}-{detector.name}-{digest}.npz')


def _default_loader_kwargs(opts):
    if opts.data_loader_kwargs is not None:
        return dict(opts.data_loader_kwargs)
    kwargs = dict(num_workers=min(3, max((os.cpu_count() or 1) - 1, 0)))
    if kwargs['num_workers'] > 0:
        kwargs['prefetch_factor'] = 2
    if opts.device.type == 'cuda':
        kwargs['pin_memory'] = True
    return kwargs


def _collate(batch):
    images = torch.stack([torch.as_tensor(np.asarray(img)) for img, _label in batch])
    labels = [np.asarray(label) for _img, label in batch]
    return images, labels


def real_item_indices(num_total: int, max_items: int | None, opts: MetricOptions) -> list[int]:
    """Which real items a capped metric uses: all when the cap is not smaller than the data set, else a
    fixed seeded random subset (a prefix would be biased when the data is sorted by class)."""
    if max_items is None or max_items >= num_total:
        return list(range(num_total))
    rng = np.random.default_rng([opts.seed, 0x5EA1])
    return sorted(rng.choice(num_total, size=max_items, replace=False).tolist())


def compute_feature_stats_for_dataset(opts: MetricOptions, detector, output='features', capture_all=False,
                                      capture_mean_cov=False, max_items=None, rel_lo=0, rel_hi=1,
                                      capture_all_below: int | None = None) -> FeatureStats:
    """Detector outputs for real images (at most `max_items` of them), cached on disk per data set, detector
    and options. `capture_all_below`: also keep every row when fewer than this many images are used."""
    dataset = make_dataset(opts)
    items = real_item_indices(len(dataset), max_items, opts)
    if len(items) == 0:
        raise MetricError(f'the data set {opts.dataset_kwargs.get("path", "")!s} is empty')
    if capture_all_below is not None and len(items) < capture_all_below:
        capture_all = True

    # A cache holding every feature vector also serves requests for the mean and covariance only.
    if capture_all:
        capture_mean_cov = True
    variants = [(capture_all, capture_mean_cov)] + ([] if capture_all else [(True, True)])
    cache_files = []
    if opts.cache:
        for all_, mean_cov in variants:
            key = dict(output=output, capture_all=all_, capture_mean_cov=mean_cov, items=len(items), seed=opts.seed)
            cache_files.append(stats_cache_file(opts, dataset, detector, key))
        for cache_file in cache_files:
            flag = os.path.isfile(cache_file) if opts.rank == 0 else False
            if opts.distributed:
                flag = bool(broadcast_float(float(flag), opts))
            if flag:
                return FeatureStats.load(cache_file)

    num_items = len(items)
    progress = opts.progress.sub(tag='dataset features', num_items=num_items, rel_lo=rel_lo, rel_hi=rel_hi)
    local = [items[i] for i in shard_indices(num_items, opts)]
    loader = torch.utils.data.DataLoader(dataset=dataset, sampler=local, batch_size=opts.batch_size,
                                         collate_fn=_collate, **_default_loader_kwargs(opts))
    rows = []
    done = 0
    try:
        for images, _labels in loader:
            if images.ndim != 4:
                raise MetricError(f'data set items must be CHW images, got a batch of shape {tuple(images.shape)}')
            rows.append(detector(images.to(opts.device), output=output).cpu())
            done += images.shape[0] * opts.num_gpus
            progress.update(min(done, num_items))
    finally:
        if hasattr(dataset, 'close'):
            dataset.close()
    local_rows = torch.cat(rows) if rows else torch.zeros([0, 0])
    all_rows = gather_rows(local_rows, num_items, opts).cpu()
    stats = _stats_from_rows(all_rows, capture_all, capture_mean_cov, max_items=None)
    progress.update(num_items)

    if cache_files and opts.rank == 0:
        stats.save(cache_files[0], meta=dict(dataset_kwargs=opts.dataset_kwargs, detector=detector.name, output=output))
    return stats


def iterate_real_images(opts: MetricOptions, items: list[int]):
    """uint8 NCHW batches of the given real items, in order (on opts.device)."""
    dataset = make_dataset(opts)
    loader = torch.utils.data.DataLoader(dataset=dataset, sampler=items, batch_size=opts.batch_size,
                                         collate_fn=_collate, **_default_loader_kwargs(opts))
    for images, _labels in loader:
        yield images.to(opts.device)


# ----------------------------------------------------------------------------
# Generated data.


class LatentSampler:
    """Latents and labels of generated sample i as a function of (seed, i) only.

    Draws come in fixed blocks of BLOCK samples, each from its own numpy generator seeded with
    (seed, stream, block), so any subset of indices is cheap and independent of how callers batch them.
    """

    BLOCK = 256

    def __init__(self, z_dim: int, c_dim: int = 0, dataset=None, seed: int = 0):
        self.z_dim = int(z_dim)                  # latent size
        self.c_dim = int(c_dim)                  # label size (0 = unconditional)
        self.dataset = dataset                   # where labels come from when c_dim > 0
        self.seed = int(seed)                    # base seed
        self._blocks = {}
        if self.c_dim > 0:
            if dataset is None:
                raise MetricError(f'the generator is conditional (c_dim={self.c_dim}); its labels come from the data set: pass --data')
            label = np.asarray(self._get_label(0))
            if label.size != self.c_dim:
                raise MetricError(f'generator c_dim={self.c_dim} but the data set labels have size {label.size} '
                                  f'(create the data set with labels, or use an unconditional generator)')

    def _get_label(self, idx):
        if hasattr(self.dataset, 'get_label'):
            return self.dataset.get_label(idx)
        return self.dataset[idx][1]

    def _block(self, stream: int, block: int, kind: str):
        key = (stream, block, kind)
        if key not in self._blocks:
            if len(self._blocks) > 64:
                self._blocks.clear()
            rng = np.random.default_rng([self.seed, stream, block, {'z': 0, 'c': 1, 'u': 2}[kind]])
            if kind == 'z':
                value = rng.standard_normal([self.BLOCK, self.z_dim], dtype=np.float32)
            elif kind == 'u':
                value = rng.random([self.BLOCK], dtype=np.float32)
            else:
                value = rng.integers(0, len(self.dataset), size=[self.BLOCK])
            self._blocks[key] = value
        return self._blocks[key]

    def _take(self, indices, stream, kind):
        return np.stack([self._block(stream, i // self.BLOCK, kind)[i % self.BLOCK] for i in indices])

    def z(self, indices, stream: int = 0) -> np.ndarray:
        return self._take(indices, stream, 'z').astype(np.float32)

    def uniform(self, indices, stream: int = 0) -> np.ndarray:
        return self._take(indices, stream, 'u').astype(np.float32)

    def c(self, indices, stream: int = 0) -> np.ndarray:
        if self.c_dim == 0:
            return np.zeros([len(indices), 0], dtype=np.float32)
        picks = self._take(indices, stream, 'c')
        return np.stack([np.asarray(self._get_label(int(j)), dtype=np.float32).reshape(-1) for j in picks])


def check_generator(G, what: str = 'this metric') -> None:
    missing = [a for a in ('z_dim', 'c_dim', 'img_resolution', 'img_channels') if not hasattr(G, a)]
    if G is None or missing:
        raise MetricError(f'{what} needs a generator with z_dim, c_dim, img_resolution and img_channels '
                          f'(missing: {", ".join(missing) if G is not None else "no generator given"})')


def prepare_generator(opts: MetricOptions):
    check_generator(opts.G)
    return copy.deepcopy(opts.G).eval().requires_grad_(False).to(opts.device)


def make_sampler(opts: MetricOptions, G) -> LatentSampler:
    # Only a conditional generator needs the data set (for its labels).
    dataset = make_dataset(opts) if G.c_dim > 0 else None
    return LatentSampler(G.z_dim, G.c_dim, dataset=dataset, seed=opts.seed)


def to_uint8(img: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float images -> uint8, as stylegan2-ada converts them for its metrics."""
    return (img * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def _batch_seed(seed: int, first_index: int) -> int:
    return int(np.random.default_rng([seed, first_index, 0xBA7C]).integers(0, 2**62))


def generate_images(opts: MetricOptions, G, sampler: LatentSampler, indices: list[int]) -> torch.Tensor:
    """uint8 NCHW images of the given sample indices (generated in chunks of opts.batch_gen)."""
    out = []
    for start in range(0, len(indices), opts.batch_gen):
        chunk = indices[start:start + opts.batch_gen]
        z = torch.from_numpy(sampler.z(chunk)).to(opts.device)
        c = torch.from_numpy(sampler.c(chunk)).to(opts.device)
        devices = [opts.device] if opts.device.type == 'cuda' else []
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            torch.manual_seed(_batch_seed(opts.seed, chunk[0]))
            img = G(z, c, **opts.G_kwargs)
        if img.ndim != 4 or img.shape[1] != G.img_channels:
            raise MetricError(f'generator returned shape {tuple(img.shape)}, expected [N, {G.img_channels}, H, W]')
        out.append(to_uint8(img))
    return torch.cat(out)


def compute_feature_stats_for_generator(opts: MetricOptions, detector, num_items: int, output='features',
                                        capture_all=False, capture_mean_cov=False, rel_lo=0, rel_hi=1,
                                        stream_offset: int = 0) -> FeatureStats:
    """Detector outputs for `num_items` generated images (sample indices 0 .. num_items-1)."""
    G = prepare_generator(opts)
    sampler = make_sampler(opts, G)
    progress = opts.progress.sub(tag='generator features', num_items=num_items, rel_lo=rel_lo, rel_hi=rel_hi)
    local = [i + stream_offset for i in shard_indices(num_items, opts)]
    rows = []
    for start in range(0, len(local), opts.batch_size):
        images = generate_images(opts, G, sampler, local[start:start + opts.batch_size])
        rows.append(detector(images, output=output).cpu())
        progress.update(min((start + images.shape[0]) * opts.num_gpus, num_items))
    local_rows = torch.cat(rows) if rows else torch.zeros([0, 0])
    all_rows = gather_rows(local_rows, num_items, opts).cpu()
    progress.update(num_items)
    return _stats_from_rows(all_rows, capture_all, capture_mean_cov, max_items=None)


def note_detector(opts: MetricOptions, detector) -> None:
    """Record which detector produced the features (the `detector` entry of the result)."""
    opts.notes.setdefault('detector', getattr(detector, 'description', detector.name))


def real_and_generated_features(opts: MetricOptions, detector, max_real: int | None,
                                num_gen: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All detector features of up to `max_real` real images and of `num_gen` generated ones (the inputs of
    the k-NN and kernel metrics), the detector noted in the result."""
    note_detector(opts, detector)
    real = compute_feature_stats_for_dataset(opts, detector, capture_all=True, max_items=max_real,
                                             rel_lo=0, rel_hi=0).get_all()
    gen = compute_feature_stats_for_generator(opts, detector, num_items=num_gen, capture_all=True,
                                              rel_lo=0, rel_hi=1).get_all()
    return real, gen


def call_with_supported_kwargs(fn, *args, **kwargs):
    """Call fn with only those keyword arguments its signature accepts (all of them if it takes **kwargs)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return fn(*args, **kwargs)
    if any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return fn(*args, **kwargs)
    return fn(*args, **{k: v for k, v in kwargs.items() if k in params})


# ----------------------------------------------------------------------------
# Choosing detectors from the options.


def inception(opts: MetricOptions, need_logits=False):
    from metrics import detectors
    return detectors.get_inception(device=opts.device, detector_dir=opts.detector_dir,
                                   allow_download=opts.allow_download, need_logits=need_logits)


_warned: set = set()


def pr_features_detector(opts: MetricOptions):
    """VGG16 for precision/recall and density/coverage when it can be had, else Inception with a warning.
    The description of what was used is recorded in opts.notes['detector']."""
    from metrics import detectors
    from metrics.errors import DetectorUnavailable
    if opts.pr_detector in ('auto', 'vgg16'):
        try:
            det = detectors.get_vgg16(device=opts.device, detector_dir=opts.detector_dir, allow_download=opts.allow_download)
            opts.notes['detector'] = det.description
            return det
        except (DetectorUnavailable, dnnlib.util.DownloadError) as e:
            if opts.pr_detector == 'vgg16':
                raise DetectorUnavailable(str(e)) from None
            if opts.rank == 0 and str(e) not in _warned:
                _warned.add(str(e))
                print(f'warning: VGG16 unavailable, precision/recall uses Inception-v3 features instead ({e})',
                      file=sys.stderr, flush=True)
    det = inception(opts)
    opts.notes['detector'] = f'{det.description}' + (' (vgg16 unavailable)' if opts.pr_detector == 'auto' else '')
    return det


def get_pixel_detector(opts: MetricOptions):
    from metrics import detectors
    return detectors.get_pixels(opts.device)
