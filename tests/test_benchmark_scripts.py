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
    assert 'res=16 batch=4 loss=stylegan2 ops=textbook' in text and 'x the reference codebase' in text
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
    assert all(float(ln.split()[-2].rstrip('x')) > 0 for ln in lines)   # the speed-up column
