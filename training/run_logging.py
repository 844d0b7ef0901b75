"""What a run writes besides snapshots: log.txt, stats.jsonl, TensorBoard events, image grids and
PNG plots of the curves. Only rank 0 writes; every write of a whole file is atomic."""

from __future__ import annotations

import json
import os
import re
import time
import warnings

import numpy as np
import PIL.Image

from dnnlib.util import atomic_write_bytes

# ----------------------------------------------------------------------------


class RunLogger:
    """Messages to the console and log.txt; per-tick statistics to stats.jsonl and TensorBoard."""

    def __init__(self, run_dir: str | None, enabled: bool = True, tensorboard: bool = True):
        self.run_dir = run_dir
        self.enabled = enabled and run_dir is not None
        self._log = open(os.path.join(run_dir, 'log.txt'), 'a', encoding='utf-8') if self.enabled else None
        self._stats = open(os.path.join(run_dir, 'stats.jsonl'), 'a', encoding='utf-8') if self.enabled else None
        self._tb = None
        if self.enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self._tb = SummaryWriter(run_dir)
            except ImportError as e:
                warnings.warn(f'TensorBoard events are not written ({e}); pip install tensorboard')

    def info(self, msg: str, console: bool = True) -> None:
        if console and self.enabled:
            print(msg, flush=True)
        if self._log is not None:
            self._log.write(msg + '\n')
            self._log.flush()

    def write_stats(self, stats: dict[str, dict], timestamp: float, global_step_kimg: float) -> None:
        if not self.enabled:
            return
        record = dict(stats, timestamp=timestamp)
        self._stats.write(json.dumps(record, allow_nan=True) + '\n')
        self._stats.flush()
        if self._tb is not None:
            walltime = timestamp
            for name, value in stats.items():
                mean = value.get('mean')
                if mean is not None and np.isfinite(mean):
                    self._tb.add_scalar(name, mean, global_step=int(global_step_kimg * 1000), walltime=walltime)
            self._tb.flush()

    def write_metric(self, name: str, value: float, cur_nimg: int) -> None:
        if self._tb is not None and np.isfinite(value):
            self._tb.add_scalar(f'Metrics/{name}', value, global_step=cur_nimg, walltime=time.time())
            self._tb.flush()

    def close(self) -> None:
        for f in (self._log, self._stats):
            if f is not None:
                f.close()
        if self._tb is not None:
            self._tb.close()
        self._log = self._stats = self._tb = None


# ----------------------------------------------------------------------------
# Image grids.


def grid_shape(resolution: int, num_available: int | None = None) -> tuple[int, int]:
    """stylegan2-ada's grid size: about a 7680×4320 canvas, 7–32 columns and 4–32 rows."""
    gw = int(np.clip(7680 // max(resolution, 1), 7, 32))
    gh = int(np.clip(4320 // max(resolution, 1), 4, 32))
    if num_available is not None:
        gh = max(1, min(gh, num_available // gw))
    return gw, gh


def save_image_grid(img: np.ndarray, path: str, drange: tuple[float, float], grid_size: tuple[int, int]) -> None:
    """Write images [N, C, H, W] (N = gw·gh, C = 1 or 3) as one PNG, values mapped from `drange` to 0..255."""
    lo, hi = drange
    img = np.asarray(img, dtype=np.float32)
    img = (img - lo) * (255 / (hi - lo))
    img = np.rint(img).clip(0, 255).astype(np.uint8)
    gw, gh = grid_size
    n, c, h, w = img.shape
    if n != gw * gh:
        raise ValueError(f'image grid {gw}x{gh} needs {gw * gh} images, got {n}')
    img = img.reshape(gh, gw, c, h, w).transpose(0, 3, 1, 4, 2).reshape(gh * h, gw * w, c)
    mode = 'L' if c == 1 else 'RGB'
    if c not in (1, 3):
        raise ValueError(f'image grid needs 1 or 3 channels, got {c}')
    import io
    buf = io.BytesIO()
    PIL.Image.fromarray(img[:, :, 0] if c == 1 else img, mode).save(buf, format='PNG')
    atomic_write_bytes(path, buf.getvalue())


# ----------------------------------------------------------------------------
# Plots of the curves (matplotlib, headless).

PLOT_GROUPS = {
    'plot-losses.png': ('Losses', ['Loss/G/loss', 'Loss/D/loss', 'Loss/G/reg', 'Loss/D/reg']),
    'plot-scores.png': ('Discriminator outputs', ['Loss/scores/real', 'Loss/scores/fake', 'Loss/signs/real']),
    'plot-beta-emd.png': ('SoftGAN β and batch EMD', ['Loss/beta', 'Loss/emd', 'Loss/emd_smooth', 'Loss/emd_floor']),
    'plot-augment.png': ('Augmentation', ['Progress/augment']),
}


def read_stats(path: str) -> list[dict]:
    records = []
    if not os.path.isfile(path):
        return records
    with open(path, encoding='utf-8') as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue        # a line cut short by a kill; the rest is intact
    return records


def write_plots(run_dir: str) -> list[str]:
    """Redraw the PNG plots from stats.jsonl and metric-*.jsonl; returns the files written."""
    import matplotlib
    matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt

    records = read_stats(os.path.join(run_dir, 'stats.jsonl'))
    written = []
    kimg = np.array([r.get('Progress/kimg', {}).get('mean', np.nan) for r in records], dtype=np.float64)
    for fname, (title, names) in PLOT_GROUPS.items():
        series = {}
        for name in names:
            values = np.array([r.get(name, {}).get('mean', np.nan) for r in records], dtype=np.float64)
            if np.isfinite(values).any():
                series[name] = values
        if not series:
            continue
        fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
        for name, values in series.items():
            ok = np.isfinite(values) & np.isfinite(kimg)
            ax.plot(kimg[ok], values[ok], label=name, marker='.' if ok.sum() < 30 else None)
        ax.set_xlabel('kimg')
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        _save_fig(fig, os.path.join(run_dir, fname))
        plt.close(fig)
        written.append(fname)

    metric_files = sorted(f for f in os.listdir(run_dir) if f.startswith('metric-') and f.endswith('.jsonl'))
    curves = {}
    for mf in metric_files:
        for r in read_stats(os.path.join(run_dir, mf)):
            m = re.search(r'network-snapshot-(\d+)', str(r.get('snapshot_pkl')))
            snap = int(m.group(1)) if m else None
            for key, value in (r.get('results') or {}).items():
                if isinstance(value, (int, float)) and snap is not None:
                    curves.setdefault(key, []).append((float(snap), float(value)))
    if curves:
        fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
        for key, pts in curves.items():
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker='o', label=key)
        ax.set_xlabel('kimg')
        ax.set_title('Metrics')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        _save_fig(fig, os.path.join(run_dir, 'plot-metrics.png'))
        plt.close(fig)
        written.append('plot-metrics.png')
    return written


def _save_fig(fig, path: str) -> None:
    import io
    buf = io.BytesIO()
    fig.savefig(buf, format='png')
    atomic_write_bytes(path, buf.getvalue())
