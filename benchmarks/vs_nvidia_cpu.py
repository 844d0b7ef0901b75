"""Training-step speed against NVIDIA's own code, side by side on this machine.

One G step + one D step (main logistic terms only: no R1, no path length, no style mixing, no
augmentation), followed by the G_ema update, with matched networks on both sides: StyleGAN2 G (skip) and
D (resnet) at the same resolution, channel_base, channel_max, mapping depth, minibatch-std group, batch,
fp32 everywhere and no conv clamp, Adam(lr 0.0025, betas (0, 0.99)).

  ours    this project's networks, loss and step runner (benchmarks/train_step.py --mode=networks)
  nvidia  NVIDIA's stylegan3 tree (training.networks_stylegan2 and training.loss.StyleGAN2Loss, driven
          phase by phase as its training loop drives them), imported from --reference

Both codebases have top-level packages called dnnlib, torch_utils and training, so each side lives in its
own worker process (only its own tree on sys.path). The workers are started once and built before timing;
then the parent asks them for one step in turn, round after round (warm-up rounds first, untimed), so slow
drifts of a shared machine hit both sides alike. Printed: the device, each side's median, min and max
seconds per G+D step, and the ratio ours / nvidia.

Example (the figures in docs/performance.md):
  python benchmarks/vs_nvidia_cpu.py --reference=../shared/reference/stylegan3 --res=64 --batch=8 --rounds=5
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

import click

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SIDES = ('ours', 'nvidia')


# ----------------------------------------------------------------------------
# Workers: build once, then answer "step" with the seconds one G+D step took.


def _worker_loop(step, describe: str) -> None:
    print(f'ready {describe}', flush=True)
    for line in sys.stdin:
        if line.strip() != 'step':
            break
        print(f'{step():.6f}', flush=True)


def _real_images(batch, channels, res, device):
    import torch
    gen = torch.Generator().manual_seed(0)
    return (torch.randint(0, 256, [batch, channels, res, res], generator=gen, dtype=torch.uint8).to(device)
            .to(torch.float32) / 127.5 - 1)


def worker_ours(args) -> None:
    import torch
    sys.path.insert(0, ROOT)
    from benchmarks.train_step import Config
    cli = [f'--data=builtin:digits{args["res"]}-rgb', '--cfg=auto', f'--batch={args["batch"]}', '--loss=stylegan2',
           '--aug=noaug', '--metrics=none', '--workers=0', f'--cbase={args["cbase"]}', f'--cmax={args["cmax"]}',
           f'--map={args["map"]}', f'--mbstd-group={args["mbstd"]}', '--fp32=1']
    cfg = Config('ours', cli, 'networks', torch.device('cpu'))
    G, D = cfg.parts.G, cfg.parts.D
    _worker_loop(cfg.run_cycle, f'G {sum(p.numel() for p in G.parameters())} params, '
                                f'D {sum(p.numel() for p in D.parameters())} params')


def worker_nvidia(args) -> None:
    import copy
    import torch
    ref = os.path.abspath(args['reference'])
    # Only NVIDIA's tree may provide dnnlib / torch_utils / training in this process.
    sys.path[:] = [ref] + [p for p in sys.path if os.path.abspath(p or '.') not in (ROOT, HERE)]
    try:
        import pkg_resources  # noqa: F401  (their conv2d_gradfix imports parse_version from it)
    except ImportError:       # setuptools without pkg_resources: give them packaging's parse_version under that name
        import types
        from packaging.version import parse as parse_version
        sys.modules['pkg_resources'] = types.SimpleNamespace(parse_version=parse_version)
    from training import networks_stylegan2, loss as loss_module
    for module in (networks_stylegan2, loss_module):
        if not os.path.abspath(module.__file__).startswith(ref + os.sep):
            raise RuntimeError(f'{module.__name__} was imported from {module.__file__}, not from {ref}')
    device = torch.device('cpu')
    res, batch = args['res'], args['batch']
    common = dict(c_dim=0, img_resolution=res, img_channels=3)
    G = networks_stylegan2.Generator(z_dim=512, w_dim=512, mapping_kwargs=dict(num_layers=args['map']),
                                     channel_base=args['cbase'], channel_max=args['cmax'], num_fp16_res=0,
                                     conv_clamp=None, fused_modconv_default='inference_only', **common)
    D = networks_stylegan2.Discriminator(channel_base=args['cbase'], channel_max=args['cmax'], num_fp16_res=0,
                                         conv_clamp=None, epilogue_kwargs=dict(mbstd_group_size=args['mbstd']),
                                         **common)
    G = G.train().requires_grad_(False).to(device)
    D = D.train().requires_grad_(False).to(device)
    G_ema = copy.deepcopy(G).eval()
    loss = loss_module.StyleGAN2Loss(device=device, G=G, D=D, r1_gamma=0, pl_weight=0, style_mixing_prob=0)
    opts = {name: torch.optim.Adam(module.parameters(), lr=0.0025, betas=(0.0, 0.99), eps=1e-8)
            for name, module in (('G', G), ('D', D))}
    reals = _real_images(batch, 3, res, device)
    state = dict(cur_nimg=0)

    def step() -> float:
        t0 = time.perf_counter()
        c = torch.zeros([batch, 0], device=device)
        for name, module, phase in (('G', G, 'Gboth'), ('D', D, 'Dboth')):   # 'both' = their loop without regularisers
            z = torch.randn([batch, G.z_dim], device=device)
            opts[name].zero_grad(set_to_none=True)
            module.requires_grad_(True)
            loss.accumulate_gradients(phase=phase, real_img=reals, real_c=c, gen_z=z, gen_c=c, gain=1,
                                      cur_nimg=state['cur_nimg'])
            module.requires_grad_(False)
            params = [p for p in module.parameters() if p.grad is not None]
            if params:
                flat = torch.cat([p.grad.flatten() for p in params]).nan_to_num(nan=0, posinf=1e5, neginf=-1e5)
                for p, g in zip(params, flat.split([p.numel() for p in params])):
                    p.grad = g.reshape(p.shape)
            opts[name].step()
        state['cur_nimg'] += batch
        with torch.no_grad():   # G_ema as in their loop (ema_kimg 10 * batch / 32, ramp-up 0.05)
            ema_nimg = min(10 * batch / 32 * 1000, state['cur_nimg'] * 0.05)
            beta = 0.5 ** (batch / max(ema_nimg, 1e-8))
            for p_ema, p in zip(G_ema.parameters(), G.parameters()):
                p_ema.copy_(p.lerp(p_ema, beta))
            for b_ema, b in zip(G_ema.buffers(), G.buffers()):
                b_ema.copy_(b)
        return time.perf_counter() - t0

    _worker_loop(step, f'G {sum(p.numel() for p in G.parameters())} params, '
                       f'D {sum(p.numel() for p in D.parameters())} params')


# ----------------------------------------------------------------------------
# Parent: start both workers, interleave rounds, report.


class Worker:
    def __init__(self, side: str, args: dict, threads: int | None):
        env = dict(os.environ)
        if threads:
            env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        self.side = side
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), '--worker', side, '--worker-args',
                                      json.dumps(args)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=env, cwd=ROOT if side == 'ours' else args['reference'])
        line = self.proc.stdout.readline().strip()
        if not line.startswith('ready'):
            self.proc.kill()
            raise click.ClickException(f'{side} worker failed to start (exit status {self.proc.wait()}); see its error above')
        self.description = line[len('ready '):]

    def step(self) -> float:
        self.proc.stdin.write('step\n')
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise click.ClickException(f'{self.side} worker died (exit status {self.proc.wait()})')
        return float(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


def cpu_name() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return 'CPU'


def _usage_error(message: str) -> None:
    print(f'Error: {message}', file=sys.stderr, flush=True)
    sys.exit(2)


@click.command(context_settings=dict(help_option_names=['-h', '--help']), help=__doc__)
@click.option('--reference', metavar='DIR', help="NVIDIA's stylegan3 tree (holds training/networks_stylegan2.py)")
@click.option('--res', type=click.IntRange(min=4), default=64, show_default=True)
@click.option('--batch', type=click.IntRange(min=1), default=8, show_default=True)
@click.option('--cbase', type=click.IntRange(min=1), default=16384, show_default=True)
@click.option('--cmax', type=click.IntRange(min=1), default=512, show_default=True)
@click.option('--map', 'map_layers', type=click.IntRange(min=1), default=2, show_default=True)
@click.option('--mbstd', type=click.IntRange(min=1), default=4, show_default=True)
@click.option('--rounds', type=click.IntRange(min=1), default=5, show_default=True, help='Timed rounds')
@click.option('--warmup', type=click.IntRange(min=0), default=1, show_default=True, help='Untimed rounds first')
@click.option('--threads', type=click.IntRange(min=1), help='Threads per worker [default: torch default]')
@click.option('--json-out', metavar='FILE', help='Also write the results as JSON')
@click.option('--worker', type=click.Choice(SIDES), hidden=True)
@click.option('--worker-args', hidden=True)
def main(reference, res, batch, cbase, cmax, map_layers, mbstd, rounds, warmup, threads, json_out, worker, worker_args):
    if worker is not None:
        (worker_ours if worker == 'ours' else worker_nvidia)(json.loads(worker_args))
        return
    # Usage errors are one line and exit status 2 (our dnnlib.cli is not imported here: the NVIDIA worker
    # runs this same file and must see only NVIDIA's dnnlib).
    if reference is None or not os.path.isfile(os.path.join(reference, 'training', 'networks_stylegan2.py')):
        _usage_error(f'--reference: expected NVIDIA\'s stylegan3 folder (with training/networks_stylegan2.py), got {reference!r}')
    if batch % mbstd and mbstd < batch:
        _usage_error(f'--mbstd={mbstd}: must divide --batch={batch}')
    args = dict(reference=os.path.abspath(reference), res=res, batch=batch, cbase=cbase, cmax=cmax, map=map_layers,
                mbstd=mbstd)
    import torch
    workers = [Worker(side, args, threads) for side in SIDES]
    try:
        times = {w.side: [] for w in workers}
        for r in range(warmup + rounds):
            for w in (workers if r % 2 == 0 else workers[::-1]):   # alternate who goes first
                t = w.step()
                if r >= warmup:
                    times[w.side].append(t)
    finally:
        for w in workers:
            w.close()
    device = f'{cpu_name()}, {os.cpu_count()} cores, threads per worker: {threads or "torch default"}'
    print(f'machine: {device}; torch {torch.__version__}')
    print(f'networks: StyleGAN2 G (skip) + D (resnet), {res}x{res} RGB, batch {batch}, channel_base {cbase}, '
          f'channel_max {cmax}, mapping {map_layers} layers, mbstd {mbstd}, fp32, no conv clamp; '
          f'{rounds} interleaved rounds after {warmup} warm-up')
    rows = {}
    for w in workers:
        t = times[w.side]
        rows[w.side] = dict(median_s=statistics.median(t), min_s=min(t), max_s=max(t), all_s=t, networks=w.description)
        print(f'  {w.side:7s} {w.description}: median {statistics.median(t):.2f} s per G+D step '
              f'(min {min(t):.2f}, max {max(t):.2f})')
    ratio = rows['ours']['median_s'] / rows['nvidia']['median_s']
    print(f'ratio ours / nvidia: {ratio:.2f} (median over median)')
    if json_out:
        sys.path.insert(0, ROOT)    # our dnnlib (the parent process imports nothing of NVIDIA's)
        from dnnlib.util import atomic_output
        with atomic_output(json_out) as f:
            f.write(json.dumps(dict(machine=device, torch=torch.__version__, args=args, rounds=rounds, warmup=warmup,
                                    results=rows, ratio=ratio), indent=2).encode())


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
