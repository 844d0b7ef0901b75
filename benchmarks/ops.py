"""Micro-benchmark of torch_utils.ops on the shapes StyleGAN2 uses at a given resolution.

For every op it times our reference implementation (impl='ref') against a textbook one (the definition
written with ordinary torch ops: explicit zero insertion, a full 2-D depthwise filter, subsampling by
slicing; separate add / activation / scale / clamp for bias_act), which is how the original codebase's
reference ops compute, and, on a CUDA device, also our impl='cuda' path; with --compile also the
reference ops with torch.compile'd kernels (benchmarks/op_modes.py). Every variant is checked to give
the same result before it is timed. Forward ("fwd") and forward + backward w.r.t. the input
("fwd+bwd") are timed; the figure is the minimum over the repetitions, which is the most stable
statistic on a shared machine; the implementations run in turn within each repetition.

On CUDA, each forward row also gives the CUDA kernel's achieved bandwidth, counting the bytes it must
move at least (read the input once, write the output once), as a fraction of the device's datasheet
peak (PEAK_BANDWIDTH below) and of a device-to-device copy measured in the same run.

    python benchmarks/ops.py --quick
    python benchmarks/ops.py --res 64 256 --batch 8 --threads 2 --device cpu
    python benchmarks/ops.py --res 256 1024 --batch 8 --device cuda --compile --json-out ops.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import dnnlib  # noqa: E402
from benchmarks.op_modes import op_mode  # noqa: E402
from benchmarks.textbook_ops import textbook_bias_act, textbook_upfirdn2d  # noqa: E402
from dnnlib.cli import OneLineArgumentParser  # noqa: E402
from torch_utils.ops import bias_act, conv2d_resample, grid_sample_gradfix, upfirdn2d  # noqa: E402

# Datasheet memory bandwidth (GB/s) by a substring of torch.cuda.get_device_name(); the first match wins.
PEAK_BANDWIDTH = [
    ('H200', 4800, 'NVIDIA H200 Tensor Core GPU datasheet: 4.8 TB/s HBM3e (SXM and NVL)'),
    ('H100 NVL', 3900, 'NVIDIA H100 Tensor Core GPU datasheet: H100 NVL 3.9 TB/s'),
    ('H100 PCIe', 2000, 'NVIDIA H100 Tensor Core GPU datasheet: H100 PCIe 2 TB/s'),
    ('H100', 3350, 'NVIDIA H100 Tensor Core GPU datasheet: H100 SXM 3.35 TB/s HBM3'),
    ('A100-SXM4-80GB', 2039, 'NVIDIA A100 Tensor Core GPU datasheet: A100 80GB SXM 2,039 GB/s'),
    ('A100 80GB PCIe', 1935, 'NVIDIA A100 Tensor Core GPU datasheet: A100 80GB PCIe 1,935 GB/s'),
    ('A100', 1555, 'NVIDIA A100 Tensor Core GPU datasheet: A100 40GB 1,555 GB/s'),
]


def peak_bandwidth(device_name: str) -> tuple[float | None, str]:
    """(GB/s, source) of the datasheet figure for a device name; (None, reason) when not in the table."""
    for key, gbs, source in PEAK_BANDWIDTH:
        if key in device_name:
            return float(gbs), source
    return None, f'{device_name!r} is not in benchmarks/ops.py PEAK_BANDWIDTH'


def copy_bandwidth(device, nbytes=2**30, reps=5) -> float:
    """GB/s of a device-to-device copy, counting the bytes read and written."""
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    best = min(time_interleaved({'copy': lambda: dst.copy_(src)}, reps, device).values())
    return 2 * nbytes / best / 1e9

# ----------------------------------------------------------------------------
# Textbook implementations (the baseline).


def textbook_conv_up(x, w, f):
    """SynthesisLayer's up=2 3x3 convolution: transposed conv, then the textbook 4x4 filter."""
    y = F.conv_transpose2d(x, w.transpose(0, 1), stride=2)   # flip_weight=False: w is a convolution kernel
    return textbook_upfirdn2d(y, f, padding=(1, 1, 1, 1), gain=4)


def textbook_conv_down(x, w, f):
    """Discriminator's down=2 3x3 convolution: textbook 4x4 filter with padding 2, strided conv."""
    return F.conv2d(textbook_upfirdn2d(x, f, padding=(2, 2, 2, 2)), w, stride=2)

# ----------------------------------------------------------------------------


def time_interleaved(fns, reps, device):
    """Minimum wall time of each callable, running them in turn so that load changes hit all alike."""
    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
    for fn in fns.values():
        fn()
        fn()
    sync()
    best = {label: float('inf') for label in fns}
    for _ in range(reps):
        for label, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            sync()
            best[label] = min(best[label], time.perf_counter() - t0)
    return best


def fwd_bwd(make_out, x):
    def run():
        y = make_out(x)
        y.backward(torch.ones_like(y))
        x.grad = None
    return run


def fwd(make_out, x):
    def run():
        with torch.no_grad():
            make_out(x)
    return run


def cases(res, batch, channel_base, device, dtype):
    """(name, input tensor, {impl label: fn(x) -> y})."""
    ch = lambda r: min(channel_base // r, 512)  # noqa: E731 - StyleGAN2's channels at resolution r
    c, c_half = ch(res), ch(res // 2)
    f = upfirdn2d.setup_filter([1, 3, 3, 1], device=device)
    gen = torch.Generator(device='cpu').manual_seed(0)

    def rand(*shape):
        return torch.randn(shape, generator=gen).to(device=device, dtype=dtype)

    b = rand(c)
    w_up = rand(c, c_half, 3, 3) * 0.05
    w_down = rand(c, c, 3, 3) * 0.05
    geom_f = upfirdn2d.setup_filter([0.0157, -0.0153, -0.0598, 0.0279, 0.1966, -0.1146, -0.5576, -0.2007,
                                     1.0024, 0.6424, -0.2148, -0.0802], device=device, normalize=False,
                                    separable=True)   # a 12-tap wavelet-like filter, as in ADA's geometric pipe
    theta = torch.tensor([[0.9, -0.2, 0.05], [0.25, 0.95, -0.1]], device=device, dtype=dtype)
    grid = F.affine_grid(theta[None].repeat(batch, 1, 1), [batch, 3, res, res], align_corners=False)

    out = []
    out.append((f'bias_act lrelu+clamp  [{batch},{c},{res},{res}]', rand(batch, c, res, res), {
        'ours': lambda x: bias_act.bias_act(x, b, act='lrelu', clamp=256, impl='ref'),
        'textbook': lambda x: textbook_bias_act(x, b, act='lrelu', clamp=256),
        'cuda': lambda x: bias_act.bias_act(x, b, act='lrelu', clamp=256, impl='cuda'),
    }))
    out.append((f'upsample2d (ToRGB)    [{batch},3,{res // 2},{res // 2}]', rand(batch, 3, res // 2, res // 2), {
        'ours': lambda x: upfirdn2d.upsample2d(x, f, impl='ref'),
        'textbook': lambda x: textbook_upfirdn2d(x, f, up=2, padding=(2, 1, 2, 1), gain=4),
        'cuda': lambda x: upfirdn2d.upsample2d(x, f, impl='cuda'),
    }))
    out.append((f'upsample2d (features) [{batch},{c_half},{res // 2},{res // 2}]', rand(batch, c_half, res // 2, res // 2), {
        'ours': lambda x: upfirdn2d.upsample2d(x, f, impl='ref'),
        'textbook': lambda x: textbook_upfirdn2d(x, f, up=2, padding=(2, 1, 2, 1), gain=4),
        'cuda': lambda x: upfirdn2d.upsample2d(x, f, impl='cuda'),
    }))
    out.append((f'filter2d pad 2        [{batch},{c},{res},{res}]', rand(batch, c, res, res), {
        'ours': lambda x: upfirdn2d.upfirdn2d(x, f, padding=2, impl='ref'),
        'textbook': lambda x: textbook_upfirdn2d(x, f, padding=(2, 2, 2, 2)),
        'cuda': lambda x: upfirdn2d.upfirdn2d(x, f, padding=2, impl='cuda'),
    }))
    out.append((f'downsample2d (skip)   [{batch},{c},{res},{res}]', rand(batch, c, res, res), {
        'ours': lambda x: upfirdn2d.downsample2d(x, f, impl='ref'),
        'textbook': lambda x: textbook_upfirdn2d(x, f, down=2, padding=(1, 1, 1, 1)),
        'cuda': lambda x: upfirdn2d.downsample2d(x, f, impl='cuda'),
    }))
    out.append((f'upsample2d 12-tap ADA [{batch},3,{res},{res}]', rand(batch, 3, res, res), {
        'ours': lambda x: upfirdn2d.upsample2d(x, geom_f, impl='ref'),
        'textbook': lambda x: textbook_upfirdn2d(x, geom_f, up=2, padding=(6, 5, 6, 5), gain=4),
        'cuda': lambda x: upfirdn2d.upsample2d(x, geom_f, impl='cuda'),
    }))
    out.append((f'conv up 3x3 {c_half}->{c}    [{batch},{c_half},{res // 2},{res // 2}]', rand(batch, c_half, res // 2, res // 2), {
        'ours': lambda x: conv2d_resample.conv2d_resample(x, w_up, f, up=2, padding=1, flip_weight=False),
        'textbook': lambda x: textbook_conv_up(x, w_up, f),
    }))
    out.append((f'conv down 3x3 {c}->{c}  [{batch},{c},{res},{res}]', rand(batch, c, res, res), {
        'ours': lambda x: conv2d_resample.conv2d_resample(x, w_down, f, down=2, padding=1),
        'textbook': lambda x: textbook_conv_down(x, w_down, f),
    }))
    out.append((f'grid_sample (ADA)     [{batch},3,{res},{res}]', rand(batch, 3, res, res), {
        'ours': lambda x: grid_sample_gradfix.grid_sample(x, grid),
        'textbook': lambda x: F.grid_sample(x, grid, mode='bilinear', padding_mode='zeros', align_corners=False),
    }))
    return out


def with_mode(mode, fn):
    def run(x):
        with op_mode(mode):
            return fn(x)
    return run


def main(argv=None):
    parser = OneLineArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--res', type=int, nargs='+', default=[64, 256], help='resolutions (default: 64 256)')
    parser.add_argument('--batch', type=int, default=None, help='batch size (default: 8, or 2 with --quick)')
    parser.add_argument('--channel-base', type=int, default=16384, help='StyleGAN2 channel_base (default: 16384)')
    parser.add_argument('--reps', type=int, default=None, help='timed repetitions (default: 10, or 3 with --quick)')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch default)')
    parser.add_argument('--device', choices=['cpu', 'cuda', 'all'], default='all', help='devices to time')
    parser.add_argument('--channels-last', action='store_true', help='use channels_last inputs')
    parser.add_argument('--compile', action='store_true', help='also time the reference ops with torch.compile\'d kernels')
    parser.add_argument('--json-out', help='also write the rows as JSON to this file')
    parser.add_argument('--quick', action='store_true', help='small batch, few repetitions')
    args = parser.parse_args(argv)
    if any(r < 8 or r & (r - 1) for r in args.res):
        parser.error('--res: expected powers of two >= 8')
    batch = args.batch or (2 if args.quick else 8)
    reps = args.reps or (3 if args.quick else 10)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = []
    if args.device in ('cpu', 'all'):
        devices.append(torch.device('cpu'))
    if args.device in ('cuda', 'all') and torch.cuda.is_available():
        devices.append(torch.device('cuda'))
    if args.device == 'cuda' and not devices:
        parser.error('--device cuda: no CUDA device is available')

    print(f'torch {torch.__version__}, python {platform.python_version()}, {platform.machine()}')
    rows, device_info = [], []

    def write_json():     # after every row, so that a run stopped by a time limit keeps what it measured
        if args.json_out:
            text = json.dumps(dict(torch=torch.__version__, devices=device_info, batch=batch, reps=reps,
                                   channel_base=args.channel_base, channels_last=args.channels_last, rows=rows),
                              indent=2)
            dnnlib.util.atomic_write_bytes(args.json_out, text.encode('utf-8'))
    for device in devices:
        peak = copy_gbs = None
        if device.type == 'cuda':
            name = torch.cuda.get_device_name(device)
            peak, source = peak_bandwidth(name)
            copy_gbs = copy_bandwidth(device)
            print(f'\nbandwidth of {name}: datasheet {peak or "?"} GB/s ({source}); measured copy {copy_gbs:.0f} GB/s')
        else:
            name = f'{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads'
        device_info.append(dict(device=str(device), name=name, peak_gbs=peak, copy_gbs=copy_gbs))
        print(f'\ndevice: {device} ({name}); batch {batch}, channel_base {args.channel_base}, float32, '
              f'{"channels_last" if args.channels_last else "contiguous"}, min of {reps} reps')
        print(f'{"op":45s} {"pass":8s} {"ours ms":>9s} {"textbook ms":>12s} {"speed-up":>9s} {"cuda ms":>9s} '
              f'{"compile ms":>11s} {"cuda GB/s":>10s} {"of peak":>8s} {"of copy":>8s}')
        for res in args.res:
            for name_, x, impls in cases(res, batch, args.channel_base, device, torch.float32):
                if args.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                impls = {label: fn for label, fn in impls.items() if label != 'cuda' or device.type == 'cuda'}
                if args.compile:
                    impls['compile'] = with_mode('compile', impls['ours'])
                with torch.no_grad(), warnings.catch_warnings():
                    warnings.simplefilter('ignore')
                    want = impls['textbook'](x)
                    scale = want.abs().max().item() + 1e-30
                    for label, fn in impls.items():
                        got = fn(x)
                        assert got.shape == want.shape and (got - want).abs().max().item() <= 1e-4 * scale, \
                            f'{name_}: {label} differs from textbook'
                    moved = (x.numel() + want.numel()) * x.element_size()   # read the input, write the output
                for pass_name, wrap in (('fwd', fwd), ('fwd+bwd', fwd_bwd)):
                    xg = x.detach().clone().requires_grad_(pass_name == 'fwd+bwd')
                    fns = {label: wrap(fn, xg) for label, fn in impls.items()}
                    with warnings.catch_warnings():
                        warnings.simplefilter('ignore')
                        times = {label: t * 1e3 for label, t in time_interleaved(fns, reps, device).items()}
                    row = {'device': str(device), 'res': res, 'op': name_.strip(), 'pass': pass_name, 'ms': times,
                           'bytes': moved}
                    cols = [f'{times[k]:9.2f}' if k in times else f'{"-":>9s}' for k in ('cuda',)]
                    cols.append(f'{times["compile"]:11.2f}' if 'compile' in times else f'{"-":>11s}')
                    if 'cuda' in times and pass_name == 'fwd':
                        gbs = moved / (times['cuda'] * 1e-3) / 1e9
                        row.update(cuda_gbs=gbs, of_peak=gbs / peak if peak else None, of_copy=gbs / copy_gbs)
                        cols += [f'{gbs:10.0f}', f'{gbs / peak:8.0%}' if peak else f'{"?":>8s}', f'{gbs / copy_gbs:8.0%}']
                    rows.append(row)
                    write_json()
                    print(f'{name_:45s} {pass_name:8s} {times["ours"]:9.2f} {times["textbook"]:12.2f} '
                          f'{times["textbook"] / times["ours"]:8.2f}x ' + ' '.join(cols), flush=True)
    write_json()


if __name__ == '__main__':
    main()
