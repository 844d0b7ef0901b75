"""runner.refreshed_batchnorm (PacGAN's BatchNorm refresh before evaluation) and the probe script that
compares it with training's running statistics."""

import copy
import os
import subprocess
import sys

import pytest
import torch

from stylegan2_softgan.bench import protocols, runner, vectorised
from stylegan2_softgan.bench.__main__ import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _standard_seed_run(seed=0):
    cfg = protocols.make_run_configs(['grid25'], ['ns'], [seed], 'standard', steps=4, eval_every=4, gs=False)[0]
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
