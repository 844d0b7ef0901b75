"""runner.refreshed_batchnorm (PacGAN's BatchNorm refresh before evaluation) and the probe script that
compares it with training's running statistics."""

import copy
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from stylegan2_softgan.bench import protocols, runner, scoring, vectorised
from stylegan2_softgan.bench.__main__ import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _standard_seed_run(seed=0):
    cfg = protocols.make_run_configs(['grid25'], ['ns'], [seed], 'standard', steps=4, eval_every=4)[0]
    return runner.SeedRun(cfg)


def _state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_refresh_is_an_ema_of_the_batch_statistics_and_leaves_g_alone():
    G = _standard_seed_run().G
    before = _state(G)
    norms = [m for m in G.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert len(norms) == 4
    # Inputs each BatchNorm layer sees during the refresh, captured on a second copy run by hand.
    probe = copy.deepcopy(G)                                          # a copy to hook
    seen = {i: [] for i in range(4)}
    probe_norms = [m for m in probe.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for i, m in enumerate(probe_norms):
        m.register_forward_pre_hook(lambda mod, args, i=i: seen[i].append(args[0].detach().clone()))
    probe.train()
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for _ in range(5):
            probe(torch.randn([30, probe.z_dim], generator=gen), torch.zeros([30, 0]))
    H = runner.refreshed_batchnorm(G, 5, 30, torch.Generator().manual_seed(7), momentum=0.2)
    refreshed = [m for m in H.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for i, (m0, m) in enumerate(zip(norms, refreshed)):
        mean, var = m0.running_mean.double().clone(), m0.running_var.double().clone()
        for x in seen[i]:                               # the EMA written out, with the unbiased batch variance
            x = x.double()
            mean = 0.8 * mean + 0.2 * x.mean(0)
            var = 0.8 * var + 0.2 * x.var(0, unbiased=True)
        assert torch.allclose(m.running_mean.double(), mean, rtol=1e-5, atol=1e-6)
        assert torch.allclose(m.running_var.double(), var, rtol=1e-5, atol=1e-6)
        assert m.momentum == 0.2 and not m.training
    after = _state(G)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert all(m.momentum == 0.05 for m in norms)                     # the protocol's own momentum kept
    # The weights are untouched: only the statistics moved.
    for (name, p), (_, q) in zip(G.named_parameters(), H.named_parameters()):
        assert torch.equal(p, q), name


def test_refresh_rejects_bad_arguments_and_networks_without_batchnorm():
    G = _standard_seed_run().G
    with pytest.raises(ValueError, match='batches >= 1'):
        runner.refreshed_batchnorm(G, 0, 100, torch.Generator())
    with pytest.raises(ValueError, match='batch >= 2'):
        runner.refreshed_batchnorm(G, 1, 1, torch.Generator())

    class Plain(torch.nn.Module):                     # a generator without BatchNorm
        z_dim, c_dim = 2, 0

        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(2, 2)

        def forward(self, z, c):
            return self.fc(z)

    with pytest.raises(ValueError, match='no BatchNorm'):
        runner.refreshed_batchnorm(Plain(), 1, 100, torch.Generator())


def test_probe_script_scores_a_checkpoint_both_ways(tmp_path, capsys):
    out = tmp_path / 'bench'
    code = main.main(['--suite=2d', '--datasets=grid25', '--objectives=ns', '--protocol=standard', '--steps=40',
                      '--eval-every=20', '--no-gs', '--seeds=1', '--checkpoint-every=10', '--stop-after=1e-9',
                      f'--outdir={out}'], standalone_mode=False)
    assert code in (None, 0)
    capsys.readouterr()
    (path,) = [os.path.join(d, f) for d, _, fs in os.walk(out / 'partial') for f in fs if f.endswith('.pt')]
    script = os.path.join(ROOT, 'benchmarks', 'bn_refresh_probe.py')
    res = subprocess.run([sys.executable, script, '--draws=2', '--batches=3', path], capture_output=True, text=True,
                         timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[1] == f'{path}: 2 evaluations, generator step 1'
    assert lines[2].startswith('  seed 0 draw 0: running modes ') and '| refreshed modes ' in lines[2]
    assert lines[4].startswith('  mean difference (refreshed - running): modes_captured ')
    # Running statistics scored by the script equal the bench's own scoring of the same G and latents.
    state = vectorised.read_partial(path)
    seed_run = _standard_seed_run()
    G = vectorised.StackedModule([seed_run.G])
    G.load_state_dict(state['G'])
    scores = seed_run.evaluator.final(runner.generate(G.copy_of(0), 2500, torch.Generator().manual_seed(1000)).numpy())
    assert f'running modes {scores["modes_captured"]} hq {scores["hq_fraction"]:.3f}' in lines[2]


def test_probe_script_refuses_a_file_that_is_not_a_checkpoint(tmp_path):
    bad = tmp_path / 'run.pt'
    bad.write_bytes(b'not a checkpoint')
    res = subprocess.run([sys.executable, os.path.join(ROOT, 'benchmarks', 'bn_refresh_probe.py'), str(bad)],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert res.returncode == 2
    err = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(err) == 1 and str(bad) in err[0] and 'not a partial benchmark run' in err[0]


# ----------------------------------------------------------------------------
# The standard protocol scores with the refresh (protocols' eval_bn_refresh, --eval-bn).


def test_standard_protocol_records_the_refresh_and_running_statistics_are_stored_apart():
    cfg = protocols.make_run_config('grid25', 'ns', 0, 'standard')
    assert cfg.eval_bn_refresh == {'batches': 50, 'batch': 100, 'momentum': 0.05}
    assert runner.protocol_label(cfg) == 'standard'
    running = protocols.make_run_config('grid25', 'ns', 0, 'standard', eval_bn='running')
    assert 'eval_bn_refresh' not in running and runner.protocol_label(running) == 'standard-runningbn'
    assert {k: v for k, v in cfg.items() if k != 'eval_bn_refresh'} == running
    both = protocols.make_run_config('ring8', 'ns', 0, 'standard', updates='alternating', adam_beta1=0.2,
                                     eval_bn='running')
    assert runner.protocol_label(both) == 'standard-alternating-runningbn-beta1-0.2'
    # Protocols without BatchNorm refresh: the option changes nothing, configuration and label alike.
    quick = protocols.make_run_config('grid25', 'ns', 0, 'quick')
    assert 'eval_bn_refresh' not in quick and runner.protocol_label(quick) == 'quick'
    assert protocols.make_run_config('grid25', 'ns', 0, 'quick', eval_bn='running') == quick
    with pytest.raises(ValueError, match=r'--eval-bn=population: expected one of protocol, running'):
        protocols.make_run_config('grid25', 'ns', 0, 'standard', eval_bn='population')


def test_curve_points_and_final_scores_use_refreshed_statistics():
    cfg = protocols.make_run_config('grid25', 'ns', 3, 'standard', steps=4, eval_every=4, save_samples=True)
    seed_run = runner.SeedRun(cfg)
    G = seed_run.G
    gen = torch.Generator().manual_seed(11)
    with torch.no_grad():                              # spread the samples over several modes
        for name, p in G.named_parameters():
            if name.endswith('weight') and p.ndim == 2:
                p.copy_(torch.randn(p.shape, generator=gen) * (2.0 / p.shape[1]) ** 0.5)
        for m in G.modules():                          # stale statistics that the refresh must replace
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.fill_(3.0)
                m.running_var.fill_(50.0)
    before = _state(G)

    def by_hand(step):
        """The refresh written out: 50 training-mode passes of 100 latents from the run's refresh stream
        at this step, each moving the statistics 5 % towards the batch's; then the samples scored."""
        probe = copy.deepcopy(G)                       # a copy to hook, in training mode (batch statistics)
        norms = [m for m in probe.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        inputs = {}
        for i, m in enumerate(norms):
            m.register_forward_pre_hook(lambda mod, args, i=i: inputs.__setitem__(i, args[0].detach().double()))
        probe.train()
        stream = runner.STREAM_BN_REFRESH if step is None else runner.STREAM_BN_REFRESH * 1_000_003 + step
        gen = runner._generator(3, stream)
        stats = [(m.running_mean.double().clone(), m.running_var.double().clone()) for m in norms]
        with torch.no_grad():
            for _ in range(50):
                probe(torch.randn([100, 2], generator=gen), torch.zeros([100, 0]))
                stats = [(0.95 * mean + 0.05 * inputs[i].mean(0), 0.95 * var + 0.05 * inputs[i].var(0, unbiased=True))
                         for i, (mean, var) in enumerate(stats)]
            H = copy.deepcopy(G)
            for m, (mean, var) in zip([m for m in H.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)],
                                      stats):
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)
        eval_stream = runner.STREAM_EVAL if step is None else runner.STREAM_EVAL * 1_000_003 + step
        samples = runner.generate(H, 2500, runner._generator(3, eval_stream)).numpy()
        return scoring.mode_scores(samples, seed_run.evaluator.data.means, seed_run.evaluator.data.sigma), samples

    scored = []                                        # the samples each curve point scores
    curve_point = seed_run.evaluator.curve_point
    seed_run.evaluator.curve_point = lambda samples, real: scored.append(samples) or curve_point(samples, real)
    seed_run.evaluate(G, 7, None, lambda msg: None)
    expected, samples = by_hand(7)
    assert np.allclose(scored[0], samples, rtol=1e-4, atol=1e-5)
    assert seed_run.curve[-1]['modes_captured'] == expected['modes_captured']
    result = seed_run.finish(G, 0.0, 0, 0)
    expected, refreshed = by_hand(None)
    assert np.allclose(result['_samples'], refreshed, rtol=1e-4, atol=1e-5)
    assert result['final']['hq_counts'] == expected['hq_counts']
    after = _state(G)
    assert all(torch.equal(before[k], after[k]) for k in before)            # G itself is scored on a copy
    # With training's running statistics the same G scores differently (here: the stale ones).
    running = runner.SeedRun(protocols.make_run_config('grid25', 'ns', 3, 'standard', steps=4, eval_every=4,
                                                       eval_bn='running'))
    assert running.evaluation_copy(G, None) is G
    stale = runner.generate(G, 2500, runner._generator(3, runner.STREAM_EVAL)).numpy()
    assert float(abs(stale - refreshed).mean()) > 0.1 * float(abs(refreshed).mean())


def test_the_refresh_leaves_training_unchanged(monkeypatch):
    """The refresh draws from its own stream and works on a copy: a run trains the same networks with and
    without it, and only the scores differ."""
    finished = []
    original = runner.SeedRun.finish

    def keep(self, G, *args, **kwargs):
        finished.append((self.cfg.get('eval_bn_refresh'), _state(G)))
        return original(self, G, *args, **kwargs)

    monkeypatch.setattr(runner.SeedRun, 'finish', keep)
    cfgs = [protocols.make_run_config('ring8', 'ns', 1, 'standard', steps=6, eval_every=3, eval_bn=e)
            for e in ('protocol', 'running')]
    for cfg in cfgs:
        cfg.update(num_eval=500, num_curve=500)        # fewer samples: only the training is compared
    results = [runner.run(cfg) for cfg in cfgs]
    (refresh, a), (none, b) = finished
    assert refresh is not None and none is None
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [p['step'] for p in results[0]['curve']] == [p['step'] for p in results[1]['curve']] == [0, 3, 6]
    assert [p['batch_emd'] for p in results[0]['curve']] != [p['batch_emd'] for p in results[1]['curve']]
    assert results[0]['final']['emd_to_true'] != results[1]['final']['emd_to_true']


def test_eval_bn_option_stores_running_statistics_runs_apart(tmp_path, capsys):
    out = tmp_path / 'bench'
    code = main.main(['--suite=2d', '--datasets=ring8', '--objectives=ns', '--protocol=standard', '--steps=2',
                      '--eval-every=2', '--no-gs', '--seeds=1', '--eval-bn=running', f'--outdir={out}'],
                     standalone_mode=False)
    assert code in (None, 0)
    stored = runner.load_result(str(out / 'runs' / 'standard-runningbn' / 'ring8' / 'ns-seed0.json'))
    assert 'eval_bn_refresh' not in stored['config']
    assert '--eval-bn=running' in (out / 'commands.txt').read_text()
    assert not (out / 'runs' / 'standard').exists()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main.main(['--suite=2d', '--protocol=standard', '--eval-bn=stale', f'--outdir={tmp_path / "other"}'])
    assert exit_info.value.code == 2
    assert "--eval-bn" in capsys.readouterr().err and not (tmp_path / 'other').exists()
