"""Training-step speed: the real training components (networks, loss, augmentation, step runner, G_ema)
timed after warm-up, median of several repetitions, for one or more configurations side by side.

Modes:
  train     a full cycle of steps (lcm of the lazy-regularisation intervals and n_critic), so R1 and path
            length are amortised exactly as in training; reported per step.
  networks  one G step + one D step, main terms only (no R1, no path length, no style mixing, no
            augmentation): the figure other codebases publish for their networks.

Examples:
  # The CPU target of issue 10: StyleGAN2 networks at 64², batch 8, skip G / resnet D.
  python benchmarks/train_step.py --mode=networks --res=64 --batch=8 --cbase=16384 --cmax=512 --map=2
  # SoftGAN's overhead over the StyleGAN2 loss, measured side by side.
  python benchmarks/train_step.py --mode=train --res=256 --batch=32 --loss=stylegan2,soft --aug=ada
Each comma list (--loss, --res, --batch) is expanded; every configuration is timed in the same process,
interleaved rep by rep, and ratios to the first are printed.
"""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import statistics
import sys
import time

import click
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import dnnlib  # noqa: E402
import train as train_script  # noqa: E402
from benchmarks.op_modes import MODES as OP_MODES  # noqa: E402
from benchmarks.op_modes import op_mode  # noqa: E402
from dnnlib.cli import CommaSeparatedList, OneLineErrors, UserError  # noqa: E402
from training.phases import update_ema  # noqa: E402
from training.training_loop import build_components, images_to_float  # noqa: E402

def device_name(device: torch.device) -> str:
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    model = platform.processor() or 'CPU'
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    model = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return f'{model} ({torch.get_num_threads()} threads)'


def peak_cpu_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


class Config:
    """One configuration: options resolved by train.py, components built like the training loop."""

    def __init__(self, label: str, cli_args: list[str], mode: str, device: torch.device, ops: str = 'ours'):
        ctx = train_script.main.make_context('train.py', list(cli_args))   # click consumes the list
        _desc, c = train_script.resolve_options(**ctx.params)
        if mode == 'networks':
            c.loss_kwargs.update(r1_gamma=0.0, pl_weight=0.0, style_mixing_prob=0.0)
            c.augment_kwargs = None
        self.label = label
        self.ops = ops
        self.options = c
        self.device = device
        parts = build_components(c.G_kwargs, c.D_kwargs, c.augment_kwargs, 0.0, c.loss_kwargs, c.G_opt_kwargs,
                                 c.D_opt_kwargs, device=device, real_source=self._real_source)
        if parts.augment_pipe is not None:
            parts.augment_pipe.p.fill_(0.5)   # a representative ADA probability
        self.parts = parts
        self.batch = c.batch_size
        self.batch_gpu = c.batch_gpu
        self.shape = [c.G_kwargs.get('img_channels', 3), c.G_kwargs['img_resolution'], c.G_kwargs['img_resolution']]
        loss = parts.loss
        intervals = [loss.n_critic] + [k * (loss.n_critic if i == 0 else 1)
                                       for i, k in enumerate([loss.G_reg_interval, loss.D_reg_interval]) if k]
        self.cycle = 1 if mode == 'networks' else math.lcm(*intervals)
        self.batch_idx = 0
        self.cur_nimg = 0
        self.peak_gpu_gb = 0.0       # peak GPU memory allocated during one of its cycles
        gen = torch.Generator().manual_seed(0)
        self.reals = images_to_float(torch.randint(0, 256, [self.batch, *self.shape], generator=gen,
                                                   dtype=torch.uint8), device)

    def _real_source(self, n):
        return torch.rand([n, *self.shape], device=self.device) * 2 - 1

    def run_cycle(self) -> float:
        """Seconds for `cycle` steps."""
        sync(self.device)
        if self.device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(self.device)
        t0 = time.perf_counter()
        with op_mode(self.ops):
            self._steps()
        sync(self.device)
        seconds = time.perf_counter() - t0
        if self.device.type == 'cuda':
            self.peak_gpu_gb = max(self.peak_gpu_gb, torch.cuda.max_memory_allocated(self.device) / 2**30)
        return seconds

    def _steps(self) -> None:
        G, runner = self.parts.G, self.parts.runner
        n_phases = len(runner.phases)
        c_dim = self.options.G_kwargs.get('c_dim', 0)
        for _ in range(self.cycle):
            real = self.reals.split(self.batch_gpu)
            real_c = torch.zeros([self.batch, c_dim], device=self.device).split(self.batch_gpu)
            z = torch.randn([n_phases, self.batch, G.z_dim], device=self.device)
            c = torch.zeros([n_phases, self.batch, c_dim], device=self.device)
            runner.step(self.batch_idx, real, real_c, [x.split(self.batch_gpu) for x in z],
                        [x.split(self.batch_gpu) for x in c], self.cur_nimg)
            update_ema(self.parts.G_ema, G, self.cur_nimg, self.batch, self.options.ema_kimg, self.options.ema_rampup)
            self.batch_idx += 1
            self.cur_nimg += self.batch


def sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


@click.command(cls=OneLineErrors, help=__doc__)
@click.option('--mode', type=click.Choice(['train', 'networks']), default='train', show_default=True)
@click.option('--res', type=CommaSeparatedList(), default='64', show_default=True, help='Resolution(s)')
@click.option('--batch', type=CommaSeparatedList(), default='8', show_default=True, help='Total batch size(s)')
@click.option('--loss', type=CommaSeparatedList(), default='stylegan2', show_default=True, help='Objective(s)')
@click.option('--cfg', default='auto', show_default=True, help='train.py --cfg preset')
@click.option('--cbase', type=int, help='channel_base (default: the preset)')
@click.option('--cmax', type=int, help='channel_max (default: the preset)')
@click.option('--map', 'map_layers', type=int, help='Mapping depth (default: the preset)')
@click.option('--aug', type=click.Choice(['noaug', 'ada']), default='noaug', show_default=True)
@click.option('--extra', default='', help='More train.py options for every configuration, space-separated')
@click.option('--reps', type=click.IntRange(min=1), default=5, show_default=True, help='Timed repetitions')
@click.option('--warmup', type=click.IntRange(min=0), default=1, show_default=True, help='Untimed repetitions')
@click.option('--threads', type=click.IntRange(min=1), help='CPU threads (default: torch default)')
@click.option('--ops', type=CommaSeparatedList(), default='ours', show_default=True,
              help='ours (CUDA kernels on a GPU), ref (the reference ops), compile (the reference ops\' kernels '
                   'under torch.compile), textbook (the ops computed from their definitions, as the original '
                   'codebase\'s CPU path); a comma list runs them side by side (benchmarks/op_modes.py)')
@click.option('--json-out', help='Also write the results as JSON to this file')
def main(mode, res, batch, loss, cfg, cbase, cmax, map_layers, aug, extra, reps, warmup, threads, ops, json_out):
    if threads:
        torch.set_num_threads(threads)
    device = torch.device('cuda') if torch.cuda.is_available() else torch.device('cpu')
    for o in ops:
        if o not in OP_MODES:
            raise UserError(f'--ops: unknown implementation {o!r}; expected one of {", ".join(OP_MODES)}')
    configs = []
    for r in res:
        for b in batch:
            for lo in loss:
                args = [f'--data=builtin:digits{r}-rgb', f'--cfg={cfg}', f'--batch={b}', f'--loss={lo}', f'--aug={aug}',
                        '--metrics=none', '--workers=0']
                args += [f'--cbase={cbase}'] if cbase else []
                args += [f'--cmax={cmax}'] if cmax else []
                args += [f'--map={map_layers}'] if map_layers else []
                args += extra.split()
                for o in ops:
                    label = f'res={r} batch={b} loss={lo}' + (f' ops={o}' if len(ops) > 1 else '')
                    try:
                        configs.append(Config(label, args, mode, device, ops=o))
                    except (UserError, ValueError) as e:
                        raise UserError(f'configuration {label}: {e}') from None

    print(f'device: {device_name(device)}; torch {torch.__version__}; mode {mode}; reps {reps} (+{warmup} warm-up)')
    for cfg_ in configs:
        print(f'  {cfg_.label}: cycle {cfg_.cycle} step(s), batch_gpu {cfg_.batch_gpu}, '
              f'G {cfg_.options.G_kwargs["class_name"]}, loss {cfg_.options.loss_kwargs["class_name"]}, '
              f'aug {"on" if cfg_.parts.augment_pipe is not None else "off"}')
    times = {cfg_.label: [] for cfg_ in configs}
    warmup_s = {cfg_.label: 0.0 for cfg_ in configs}
    for rep in range(warmup + reps):       # interleaved, so slow drifts of the machine hit every config alike
        for cfg_ in configs:
            seconds = cfg_.run_cycle()
            if rep >= warmup:
                times[cfg_.label].append(seconds / cfg_.cycle)
            else:
                warmup_s[cfg_.label] += seconds   # includes cuDNN autotuning and torch.compile's compilation

    results = []
    base = None
    width = max(len(c_.label) for c_ in configs)
    print(f'\n{"configuration":{width}s} {"s/step":>9s} {"min":>8s} {"max":>8s} {"img/s":>8s} {"sec/kimg":>9s} '
          f'{"ratio":>6s} {"GPU GB":>7s}')
    for cfg_ in configs:
        t = times[cfg_.label]
        med = statistics.median(t)
        base = base or med
        row = dict(label=cfg_.label, median_s=med, min_s=min(t), max_s=max(t), images_per_s=cfg_.batch / med,
                   sec_per_kimg=med / cfg_.batch * 1000, ratio=med / base, cycle=cfg_.cycle, mode=mode,
                   ops=cfg_.ops, warmup_s=warmup_s[cfg_.label], reps=len(t), samples_s=t, batch=cfg_.batch,
                   peak_gpu_allocated_gb=cfg_.peak_gpu_gb if device.type == 'cuda' else None)
        results.append(row)
        gpu_gb = f'{cfg_.peak_gpu_gb:7.2f}' if device.type == 'cuda' else f'{"-":>7s}'
        print(f'{cfg_.label:{width}s} {med:9.3f} {min(t):8.3f} {max(t):8.3f} {row["images_per_s"]:8.2f} '
              f'{row["sec_per_kimg"]:9.2f} {row["ratio"]:6.3f} {gpu_gb}')
    mem = dict(peak_cpu_rss_gb=peak_cpu_rss_gb())
    if device.type == 'cuda':
        mem['peak_gpu_allocated_gb'] = max(c_.peak_gpu_gb for c_ in configs)
    print('memory: ' + ', '.join(f'{k} {v:.2f}' for k, v in mem.items()))
    if mode == 'networks' and device.type == 'cpu':
        print('for a ratio against NVIDIA\'s code, measured side by side: benchmarks/vs_nvidia_cpu.py')
    if json_out:
        text = json.dumps(dict(device=device_name(device), torch=torch.__version__, results=results, memory=mem,
                               options={c_.label: c_.options for c_ in configs}), indent=2, default=str)
        dnnlib.util.atomic_write_bytes(json_out, text.encode('utf-8'))


if __name__ == '__main__':
    main()
