"""What a run writes besides snapshots: log.txt, stats.jsonl, TensorBoard events, image grids and
PNG plots of the curves. Only rank 0 writes; every write of a whole file is atomic."""

from __future__ import annotations

import json
import os
import time
import warnings

import numpy as np
import PIL.Image

import dnnlib
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
            dnnlib.util.console_print(msg)
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
# Console: the first line, the early ETA, the bar inside a tick and the losses of the tick line.


def device_description(device) -> str:
    """'cpu (2 threads)' or 'cuda:0 (NVIDIA H100 80GB HBM3)'."""
    import torch
    if device.type == 'cuda':
        return f'{device} ({torch.cuda.get_device_name(device)})'
    return f'{device} ({torch.get_num_threads()} thread{"s" if torch.get_num_threads() != 1 else ""})'


def _short_name(class_name: str) -> str:
    """'training.networks.Generator' -> 'networks.Generator'."""
    return '.'.join(str(class_name).split('.')[-2:])


def describe_run(total_kimg: float, loss_kwargs: dict, G_kwargs: dict, batch_size: int, num_gpus: int,
                 device_desc: str) -> str:
    """The first console line: what trains, how long, on what."""
    return (f'Training {_short_name(G_kwargs.get("class_name", "?"))} with {_short_name(loss_kwargs.get("class_name", "?"))} '
            f'for {total_kimg:g} kimg, batch {batch_size}, {num_gpus} process{"es" if num_gpus != 1 else ""} '
            f'on {device_desc}; an ETA follows after the first steps')


# Tick-line fields from the Loss/* statistics: label, statistic, shown when the tick has values for it.
TICK_LOSSES = (('G', 'Loss/G/loss'), ('D', 'Loss/D/loss'), ('R1', 'Loss/r1_penalty'), ('PL', 'Loss/pl_penalty'),
               ('beta', 'Loss/beta'), ('EMD', 'Loss/emd'))


def loss_fields(collector) -> list[str]:
    """['G 0.693', 'D 1.39', 'R1 0.0123', ...] from a training_stats.Collector closed at the tick's end;
    statistics that were never reported (no R1 without γ, no β outside SoftGAN) are left out."""
    fields = []
    for label, name in TICK_LOSSES:
        if collector.num(name) > 0:
            fields.append(f'{label} {collector.mean(name):.4g}')
    return fields


class ExactKimgNames:
    """Whether the next file of one kind (image grid, snapshot) needs the exact kimg in its name: stylegan2-ada's
    whole kimg normally, the exact one when ticks are shorter than 1 kimg or when a short last tick would repeat
    the previous file's whole kimg (--kimg=2.5 with 1-kimg ticks: 000001, 000002, 000002.500)."""

    def __init__(self, kimg_per_tick: float):
        self.always = kimg_per_tick < 1
        self.last_whole = None

    def exact(self, nimg: int) -> bool:
        whole = int(nimg) // 1000
        repeat = whole == self.last_whole
        self.last_whole = whole
        return self.always or repeat


class TickProgress:
    """Rank 0's progress between two tick lines: a tqdm bar over the tick's images (terminal only, on
    stderr, gone when the tick line prints) and, once, a console line with the measured speed and the
    ETA of the whole run after the first few steps (the first step, with its one-off costs, not counted)."""

    ETA_AFTER_STEPS = 4

    def __init__(self, log: 'RunLogger', total_nimg: int, enabled: bool):
        self.log = log
        self.total_nimg = total_nimg
        self.enabled = enabled
        self.bar = None
        self.steps = 0
        self.t1 = self.n1 = None          # time and image count after the first step
        self.eta_printed = False

    def start_tick(self, cur_tick: int, cur_nimg: int, tick_end_nimg: float) -> None:
        if self.enabled:
            self.close()
            self.bar = dnnlib.util.progress_bar(total=max(int(min(tick_end_nimg, self.total_nimg)) - cur_nimg, 0),
                                                desc=f'tick {cur_tick}')

    def step(self, cur_nimg: int, batch_size: int) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(batch_size)
        self.steps += 1
        now = time.time()
        if self.steps == 1:
            self.t1, self.n1 = now, cur_nimg
        elif self.steps == self.ETA_AFTER_STEPS and not self.eta_printed and cur_nimg < self.total_nimg:
            self.eta_printed = True
            sec_per_img = (now - self.t1) / max(cur_nimg - self.n1, 1)
            eta = (self.total_nimg - cur_nimg) * sec_per_img
            self.log.info(f'Speed over steps 2-{self.steps}: {sec_per_img * 1e3:.2f} sec/kimg; '
                          f'ETA {dnnlib.util.format_time(eta)} for the remaining {(self.total_nimg - cur_nimg) / 1e3:g} kimg '
                          f'(training only; snapshots and metrics add to it)')

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


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

# One PNG per group; each panel is (y-axis label, [(statistic, legend label), ...]) and gets its own axes,
# so quantities of different scales (β in [0, 0.72] and an EMD of ~10) are never drawn on one y-axis.
PLOT_GROUPS = {
    'plot-losses.png': ('Losses', [
        ('loss (mean over the tick)', [('Loss/G/loss', 'generator loss'), ('Loss/D/loss', 'discriminator loss')]),
        ('regulariser (weighted)', [('Loss/G/reg', 'G: path length (PL)'), ('Loss/D/reg', 'D: R1 or gradient penalty')]),
    ]),
    'plot-scores.png': ('Discriminator outputs', [
        ('D logit (mean)', [('Loss/scores/real', 'real images'), ('Loss/scores/fake', 'generated images')]),
        ('mean sign of D logit', [('Loss/signs/real', 'real images (ADA r_t)'), ('Loss/signs/fake', 'generated images')]),
    ]),
    'plot-beta-emd.png': ('SoftGAN β and batch EMD', [
        ('β (softening)', [('Loss/beta', 'β')]),
        ('batch EMD (pixel space)', [('Loss/emd', 'EMD, fakes vs reals'), ('Loss/emd_smooth', 'EMD, moving average'),
                                ('Loss/emd_floor', 'EMD floor, reals vs reals')]),
    ]),
    'plot-augment.png': ('Augmentation', [
        ('augmentation probability p', [('Progress/augment', 'p')]),
    ]),
}
X_LABEL = 'training progress (kimg)'


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


def _pyplot():
    import matplotlib
    matplotlib.use('Agg', force=False)      # headless
    import matplotlib.pyplot as plt
    return plt


def _panels_figure(plt, title: str, panels: list[tuple[str, dict[str, tuple[np.ndarray, np.ndarray]]]]):
    """A figure with one axes per panel (stacked, shared x): each has its y label and legend."""
    crowded = max(len(curves) for _, curves in panels) > LEGEND_INSIDE_MAX
    fig, axes = plt.subplots(len(panels), 1, figsize=(9.5 if crowded else 7, 2.2 + 1.8 * len(panels)), dpi=100,
                             sharex=True, squeeze=False)
    for ax, (ylabel, curves) in zip(axes[:, 0], panels):
        colours = curve_colours(plt, len(curves))
        for k, (label, (x, y)) in enumerate(curves.items()):
            ax.plot(x, y, label=label, marker='.' if len(x) < 30 else None, color=colours[k % len(colours)])
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        _readable_flat_axis(ax, [y for _, y in curves.values()])
        if len(curves) > LEGEND_INSIDE_MAX:     # a long legend beside the axes instead of over the curves
            ax.legend(fontsize=7, loc='upper left', bbox_to_anchor=(1.01, 1.0), ncol=1 + (len(curves) > 12))
        else:
            ax.legend(fontsize=8)
    axes[-1, 0].set_xlabel(X_LABEL)
    axes[0, 0].set_title(title)
    fig.tight_layout()
    return fig


LEGEND_INSIDE_MAX = 6     # more curves than this: the legend goes beside the axes


def curve_colours(plt, n: int) -> list:
    """Colours for n curves that must stay apart: matplotlib's ten-colour cycle, or past ten curves the
    twenty distinct colours of tab20 (the cycle would repeat)."""
    return [f'C{k}' for k in range(10)] if n <= 10 else list(plt.get_cmap('tab20').colors)


def _readable_flat_axis(ax, ys: list[np.ndarray]) -> None:
    """A panel whose curves are constant up to float rounding (a fixed β averaged over a tick) would be
    autoscaled onto that rounding noise (an axis of 1e-13 around 0.7213); give it a band of ±10 % (at least
    ±0.1) around the value instead, without an offset."""
    values = np.concatenate([np.asarray(y, dtype=np.float64).ravel() for y in ys]) if ys else np.zeros(0)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return
    lo, hi = float(values.min()), float(values.max())
    if hi - lo > 1e-6 * max(1.0, abs(lo), abs(hi)):
        return
    centre = (lo + hi) / 2
    half = max(0.1 * abs(centre), 0.1)
    ax.set_ylim(centre - half, centre + half)
    ax.ticklabel_format(axis='y', useOffset=False)


def _scale_groups(curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[list[str]]:
    """Split one metric's result keys into panels whose values share a scale: every key whose values all
    lie in [0, 1] (coverages, shares, precision ...) together, the others grouped so that no key's largest
    magnitude is under a tenth of its panel's largest. Keys keep their order; the panel holding the first
    key comes first."""
    unit = [k for k, (_, y) in curves.items() if np.all((y >= 0) & (y <= 1))]
    rest = sorted((k for k in curves if k not in unit), key=lambda k: -float(np.max(np.abs(curves[k][1]))))
    groups = [unit] if unit else []
    top = None
    for key in rest:
        size = float(np.max(np.abs(curves[key][1])))
        if top is None or size < top / 10:
            groups.append([])
            top = size
        groups[-1].append(key)
    order = list(curves)
    groups = [sorted(g, key=order.index) for g in groups]
    return sorted(groups, key=lambda g: order.index(g[0]))


def _result_label(metric: str, key: str) -> str:
    """'cat_cov1k_share3' in the cat_cov1k panel reads 'share3'; the headline key keeps its name."""
    return key[len(metric) + 1:] if key.startswith(metric + '_') else key


def plot_figures(run_dir: str) -> dict:
    """{file name: matplotlib figure} for the curves in stats.jsonl and metric-*.jsonl (groups with no data
    are left out). The caller saves and closes them."""
    from torch_utils.checkpoint import snapshot_nimg
    plt = _pyplot()

    records = read_stats(os.path.join(run_dir, 'stats.jsonl'))
    kimg = np.array([r.get('Progress/kimg', {}).get('mean', np.nan) for r in records], dtype=np.float64)
    figures = {}
    for fname, (title, group) in PLOT_GROUPS.items():
        panels = []
        for ylabel, stats in group:
            curves = {}
            for name, label in stats:
                values = np.array([r.get(name, {}).get('mean', np.nan) for r in records], dtype=np.float64)
                ok = np.isfinite(values) & np.isfinite(kimg)
                if ok.any():
                    curves[label] = (kimg[ok], values[ok])
            if curves:
                panels.append((ylabel, curves))
        if panels:
            figures[fname] = _panels_figure(plt, title, panels)

    # Metrics: one panel per metric file, its result values against the snapshot's kimg.
    panels = []
    for mf in sorted(f for f in os.listdir(run_dir) if f.startswith('metric-') and f.endswith('.jsonl')):
        curves = {}
        for r in read_stats(os.path.join(run_dir, mf)):
            nimg = snapshot_nimg(str(r.get('snapshot_pkl')))
            for key, value in (r.get('results') or {}).items():
                if isinstance(value, (int, float)) and nimg is not None:
                    curves.setdefault(key, []).append((nimg / 1e3, float(value)))
        curves = {key: tuple(np.array(v) for v in zip(*sorted(pts))) for key, pts in curves.items()}
        metric = mf[len('metric-'):-len('.jsonl')]
        for group in _scale_groups(curves):
            panels.append((metric, {_result_label(metric, key): curves[key] for key in group}))
    if panels:
        figures['plot-metrics.png'] = _panels_figure(plt, 'Metrics at each snapshot', panels)
    return figures


def write_plots(run_dir: str) -> list[str]:
    """Redraw the PNG plots from stats.jsonl and metric-*.jsonl; returns the files written."""
    plt = _pyplot()
    written = []
    for fname, fig in plot_figures(run_dir).items():
        try:
            _save_fig(fig, os.path.join(run_dir, fname))
        finally:
            plt.close(fig)
        written.append(fname)
    return written


def _save_fig(fig, path: str) -> None:
    import io
    buf = io.BytesIO()
    fig.savefig(buf, format='png')
    atomic_write_bytes(path, buf.getvalue())
