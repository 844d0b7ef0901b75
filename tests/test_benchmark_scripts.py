"""The speed benchmarks in benchmarks/: the textbook ops they compare against compute the same thing as
ours, and each script runs end to end at a tiny size (smoke tests, nothing is timed against a bound)."""

import json

import numpy as np
import pytest
import torch

from benchmarks import textbook_ops
from torch_utils.ops import bias_act, upfirdn2d


@pytest.mark.parametrize('up, down, padding, flip, separable, gain', [
    (1, 1, 0, False, True, 1.0),
    (2, 1, [2, 1, 2, 1], False, True, 4.0),
    ([2, 1], 1, [1, 2, 0, 1], True, False, 2.0),
    (1, 2, 1, False, True, 1.0),
    (1, [1, 2], [3, 0, 1, 2], True, True, 1.0),
    (4, 2, [-1, 3, 2, -1], False, False, 3.0),
])
def test_textbook_upfirdn2d_equals_ours(up, down, padding, flip, separable, gain):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn([2, 3, 7, 9], generator=gen, dtype=torch.float64, requires_grad=True)
    taps = [1, 3, 4, 3, 1] if separable else [[1, 2, 0], [3, 1, 1], [0, 2, 5]]
    f = upfirdn2d.setup_filter(taps, separable=separable).to(torch.float64)
    ours = upfirdn2d.upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip, gain=gain, impl='ref')
    text = textbook_ops.textbook_upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip, gain=gain)
    assert ours.shape == text.shape
    torch.testing.assert_close(text, ours, rtol=1e-10, atol=1e-10)
    w = torch.randn(ours.shape, generator=gen, dtype=torch.float64)
    g_ours, = torch.autograd.grad((ours * w).sum(), x)
    g_text, = torch.autograd.grad((text * w).sum(), x)
    torch.testing.assert_close(g_text, g_ours, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('act, clamp, dim', [('lrelu', None, 1), ('lrelu', 0.5, 1), ('relu', None, 2),
                                             ('tanh', 0.3, 1), ('linear', None, 0), ('swish', None, 1)])
def test_textbook_bias_act_equals_ours(act, clamp, dim):
    gen = torch.Generator().manual_seed(2)
    x = torch.randn([3, 4, 5], generator=gen, dtype=torch.float64)
    b = torch.randn([x.shape[dim]], generator=gen, dtype=torch.float64)
    ours = bias_act.bias_act(x, b, dim=dim, act=act, clamp=clamp, impl='ref')
    text = textbook_ops.textbook_bias_act(x, b, dim=dim, act=act, clamp=clamp)
    torch.testing.assert_close(text, ours, rtol=1e-12, atol=1e-12)


def test_textbook_ops_swap_covers_the_whole_network_and_is_undone():
    from training.networks import Discriminator, Generator
    torch.manual_seed(0)
    G = Generator(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=1),
                  synthesis_kwargs=dict(channel_base=256, channel_max=32, num_fp16_res=0))
    D = Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=32,
                      num_fp16_res=0)
    z = torch.randn([2, 16])
    c = torch.zeros([2, 0])
    calls = []
    original, original_ba = textbook_ops.textbook_upfirdn2d, textbook_ops.textbook_bias_act

    def counting(*args, **kwargs):
        calls.append('upfirdn2d')
        return original(*args, **kwargs)

    def counting_ba(*args, **kwargs):
        calls.append('bias_act')
        return original_ba(*args, **kwargs)

    img, logits = G(z, c, noise_mode='const'), D(G(z, c, noise_mode='const'), c)
    textbook_ops.textbook_upfirdn2d, textbook_ops.textbook_bias_act = counting, counting_ba
    try:
        with textbook_ops.textbook_ops():
            img_t = G(z, c, noise_mode='const')
            logits_t = D(img_t, c)
    finally:
        textbook_ops.textbook_upfirdn2d, textbook_ops.textbook_bias_act = original, original_ba
    assert set(calls) == {'upfirdn2d', 'bias_act'}, 'the network bypassed a textbook op'
    # The blocks compute in float32 whatever the parameters' dtype (as StyleGAN2): float32 rounding only.
    torch.testing.assert_close(img_t, img, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(logits_t, logits, rtol=1e-4, atol=1e-5)
    assert upfirdn2d.upfirdn2d.__module__ == bias_act.bias_act.__module__.replace('bias_act', 'upfirdn2d')
    assert bias_act.bias_act.__module__ == 'torch_utils.ops.bias_act'      # restored after the block


def test_train_step_benchmark_runs_side_by_side(tmp_path, capsys, one_thread):
    from benchmarks.train_step import main
    out = tmp_path / 'speed.json'
    args = ['--mode=networks', '--res=16', '--batch=4', '--cbase=256', '--cmax=32', '--map=1', '--reps=1',
            '--warmup=0', '--ops=ours,textbook', f'--json-out={out}']
    assert main.main(args, standalone_mode=False) in (None, 0)
    text = capsys.readouterr().out
    assert 'res=16 batch=4 loss=stylegan2 ops=textbook' in text and 'vs_nvidia_cpu.py' in text
    data = json.loads(out.read_text())
    rows = data['results']
    assert [r['label'] for r in rows] == ['res=16 batch=4 loss=stylegan2 ops=ours',
                                          'res=16 batch=4 loss=stylegan2 ops=textbook']
    for r in rows:
        assert r['median_s'] > 0 and r['images_per_s'] == pytest.approx(4 / r['median_s'])
        assert r['sec_per_kimg'] == pytest.approx(r['median_s'] / 4 * 1000)
    assert rows[0]['ratio'] == 1.0 and rows[1]['ratio'] == pytest.approx(rows[1]['median_s'] / rows[0]['median_s'])
    assert 'torch' in data and data['memory']['peak_cpu_rss_gb'] > 0
    # Both configurations were built from the same options (click consumes its argument list).
    opts = list(data['options'].values())
    assert opts[0] == opts[1] and 'StyleGAN2Loss' in json.dumps(opts[0])


def test_train_step_benchmark_train_mode_amortises_regularisers(tmp_path, capsys, one_thread):
    from benchmarks.train_step import main
    args = ['--mode=train', '--cfg=digits', '--res=16', '--batch=4', '--loss=stylegan2,soft', '--reps=1',
            '--warmup=0', f'--json-out={tmp_path / "t.json"}']
    assert main.main(args, standalone_mode=False) in (None, 0)
    rows = json.loads((tmp_path / 't.json').read_text())['results']
    assert [r['label'] for r in rows] == ['res=16 batch=4 loss=stylegan2', 'res=16 batch=4 loss=soft']
    assert all(r['cycle'] == 16 for r in rows)      # lazy R1 every 16 steps, timed per full cycle
    assert capsys.readouterr().out.count('aug off') == 2


def test_train_step_benchmark_bad_option_is_one_line(tmp_path, capsys):
    from benchmarks.train_step import main
    code = main.main(['--ops=fast', f'--json-out={tmp_path / "x.json"}'], standalone_mode=False)
    err = capsys.readouterr().err
    assert code == 2 and "--ops: unknown implementation 'fast'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / 'x.json').exists()


def test_ops_benchmark_checks_and_times_every_op(capsys, monkeypatch, one_thread):
    from benchmarks import ops
    monkeypatch.setattr('sys.argv', ['ops.py', '--quick', '--res', '16', '--channel-base', '256', '--device', 'cpu'])
    ops.main()
    lines = [ln for ln in capsys.readouterr().out.splitlines() if 'fwd' in ln]
    assert len(lines) == 18
    speed_ups = [float(tok[:-1]) for ln in lines for tok in ln.split() if tok.endswith('x') and tok[:-1][:1].isdigit()]
    assert len(speed_ups) == 18 and all(v > 0 for v in speed_ups)


# ----------------------------------------------------------------------------
# Issue 18: op modes (ref / torch.compile of ref) and the one-call GPU check, on the CPU.


def test_op_modes_force_the_reference_and_compiled_kernels(monkeypatch, one_thread):
    from benchmarks import op_modes
    monkeypatch.setenv(op_modes.BACKEND_ENV_VAR, 'eager')    # dynamo traces the kernels; no code generation
    gen = torch.Generator().manual_seed(3)
    x = torch.randn([2, 4, 6, 6], generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn([4], generator=gen, dtype=torch.float64, requires_grad=True)
    f = upfirdn2d.setup_filter([1, 3, 3, 1]).double()

    def run():
        y = upfirdn2d.upsample2d(bias_act.bias_act(x, b, act='swish', clamp=1.5), f)
        gx, = torch.autograd.grad((y * y).sum(), x, create_graph=True)
        ggx, gb = torch.autograd.grad(gx.sum(), [x, b])
        return y, gx, ggx, gb

    expected = run()
    impls = []
    original_select = bias_act._plugin.select
    monkeypatch.setattr(bias_act._plugin, 'select', lambda impl, t: impls.append(impl) or original_select(impl, t))
    kernels = {}
    for mode in ('ref', 'compile'):
        impls.clear()
        with op_modes.op_mode(mode):
            kernels[mode] = bias_act._ref_kernel
            got = run()
        assert set(impls) == {'ref'}, f'{mode}: bias_act was called with impl={impls}'
        for g, e in zip(got, expected):
            torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-10)
    assert kernels['compile'] is op_modes.compiled_kernels('eager')['bias_act']
    assert bias_act._ref_kernel is kernels['ref'] and bias_act.bias_act.__module__ == 'torch_utils.ops.bias_act'
    with pytest.raises(ValueError, match="unknown ops mode 'fast'"):
        with op_modes.op_mode('fast'):
            pass


def test_gpu_check_parses_nvidia_ticks_and_writes_the_summary(tmp_path):
    from benchmarks import gpu_check
    # stylegan3's training_loop prints fields padded to fixed widths (tick <5d, kimg <8.1f, sec/kimg <7.2f, gpumem <6.2f).
    log = '\n'.join(f'tick {t:<5d} kimg {t * 1.024:<8.1f} time 1m 0{t}s       sec/tick {3.1 + t:<7.1f} '
                    f'sec/kimg {2.0 + 0.1 * t:<7.2f} maintenance 0.0    cpumem 4.21   gpumem {9.5 + t:<6.2f} '
                    f'reserved 11.00  augment 0.500' for t in range(5))
    ticks = gpu_check.parse_ticks('Exporting sample images...\n' + log + '\nExiting...')
    assert [t['tick'] for t in ticks] == [0, 1, 2, 3, 4]
    assert ticks[3]['sec_per_kimg'] == pytest.approx(2.3) and ticks[4]['gpumem_gb'] == pytest.approx(13.5)
    row = dict(variant='cuda ops', loss='stylegan2', sec_per_kimg=2.0, median_s=0.064, min_s=0.060, max_s=0.070,
               reps=4, warmup_s=3.0, peak_gpu_allocated_gb=8.0, batch=32, samples_s=[0.060, 0.064, 0.064, 0.070])
    soft = dict(row, loss='soft', sec_per_kimg=2.05)
    nvidia = dict(status='ok', sec_per_kimg=3.0, min=2.9, max=3.2, n=3, samples=[2.9, 3.0, 3.2], peak_gpu_gb=10.0)
    text = gpu_check.summary_markdown(dict(mode='full', steps=[], train=[row, soft], nvidia=nvidia, ops=[
        {'op': 'bias_act', 'res': 256, 'pass': 'fwd', 'ms': {'ours': 1.0, 'cuda': 0.1}, 'cuda_gbs': 2500, 'of_peak': 0.75,
         'of_copy': 0.8}]))
    assert '| ours, cuda ops | stylegan2 | 2.000 |' in text and '1.50x' in text
    assert 'SoftGAN over the StyleGAN2 loss, cuda ops: +2.5%' in text
    assert '1.50x the speed (target >= 1.3x); Mann-Whitney p = ' in text
    assert 'at >= 70% of the datasheet bandwidth: 1 of 1' in text


def test_gpu_check_weight_transport_round_trip(tmp_path):
    from benchmarks import gpu_check
    torch.manual_seed(0)
    net = torch.jit.script(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 1)))
    src, packed, back = tmp_path / 'net.pt', tmp_path / 'net16.pt', tmp_path / 'net32.pt'
    torch.jit.save(net, str(src))
    gpu_check.main(['--convert-weights', str(src), str(packed), 'float16'])
    gpu_check.main(['--convert-weights', str(packed), str(back), 'float32'])
    x = torch.randn([1, 3, 8, 8])
    restored = torch.jit.load(str(back))
    for p, q in zip(net.parameters(), restored.parameters()):
        assert q.dtype == torch.float32
        torch.testing.assert_close(q, p.half().float(), rtol=0, atol=0)    # exactly the float16 rounding
    torch.testing.assert_close(restored(x), net(x), rtol=1e-2, atol=1e-2)
    import zipfile
    sizes = [sum(i.file_size for i in zipfile.ZipFile(path).infolist() if '/data/' in i.filename) for path in (src, packed)]
    assert sizes[1] * 2 == sizes[0] > 0      # the weights travel at half their size


def test_gpu_check_cpu_smoke_quick(tmp_path):
    import subprocess
    import sys
    done = subprocess.run([sys.executable, 'benchmarks/gpu_check.py', '--cpu-smoke', '--quick', '--out', str(tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=str(textbook_ops.__file__).rsplit('/', 2)[0])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / 'results.json').read_text())
    assert [s['status'] for s in results['steps']] == ['ok', 'ok']
    assert 'tests collected' in results['tests']['summary']
    assert [(r['variant'], r['loss']) for r in results['train']] == [('cuda ops', 'stylegan2')]
    assert results['train'][0]['sec_per_kimg'] > 0
    summary = (tmp_path / 'summary.md').read_text()
    assert '| ours, cuda ops | stylegan2 |' in summary
    assert sorted(p.name for p in tmp_path.iterdir()) == ['gpu_check.log', 'pytest.log', 'results.json', 'summary.md']
