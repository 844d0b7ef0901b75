"""The vectorised benchmark trainer (seeds stacked in one process): its results equal the per-seed
trainer's, a partial run resumes exactly, objectives with batch-wide terms are refused, and the command
line groups, checkpoints and reuses runs."""

import copy
import json
import os

import pytest
import torch

import dnnlib

import stylegan2_softgan  # noqa: F401  (registers the objectives)
from stylegan2_softgan.bench import protocols, runner, vectorised


def _cfgs(objective, seeds=(0, 1), steps=24, eval_every=8, dataset='grid25'):
    cfgs = []
    for s in seeds:
        cfg = protocols.make_run_config(dataset, objective, s, 'quick', steps=steps, eval_every=eval_every)
        cfg.G_kwargs.hidden_features = 16
        cfg.D_kwargs.hidden_features = 16
        cfg.num_eval = cfg.num_curve = 400
        cfgs.append(cfg)
    return cfgs


def _assert_results_close(a, b):
    assert a['config'] == b['config']
    assert a['final']['modes_captured'] == b['final']['modes_captured']
    assert a['final']['hq_counts'] == b['final']['hq_counts']
    assert [p['step'] for p in a['curve']] == [p['step'] for p in b['curve']]
    for pa, pb in zip(a['curve'], b['curve']):
        assert pa['modes_captured'] == pb['modes_captured']
        assert pa['batch_emd'] == pytest.approx(pb['batch_emd'], rel=1e-4)
        assert (pa['beta'] is None) == (pb['beta'] is None)
        if pa['beta'] is not None:
            assert pa['beta'] == pytest.approx(pb['beta'], rel=1e-3, abs=1e-6)
    assert a['final']['emd_to_true'] == pytest.approx(b['final']['emd_to_true'], rel=1e-4)


@pytest.mark.parametrize('objective', ['ns', 'rpgan', 'soft-floor-multi', 'soft-reference', 'wgan'])
def test_two_stacked_seeds_equal_two_single_runs(objective):
    cfgs = _cfgs(objective)
    singles = [runner.run(c) for c in cfgs]
    stacked = vectorised.run_stacked(cfgs)
    assert len(stacked) == 2
    for a, b in zip(singles, stacked):
        _assert_results_close(a, b)
    assert stacked[0]['timing']['stacked_seeds'] == 2


def test_simultaneous_updates_stacked_equal_single_runs_and_share_one_batch_of_fakes():
    cfgs = []
    for s in (0, 1):
        cfg = protocols.make_run_config('ring8', 'ns', s, 'standard', steps=24, eval_every=8)
        cfg.G_kwargs.hidden_features = 16
        cfg.D_kwargs.hidden_features = 16
        cfg.num_eval = cfg.num_curve = 400
        cfgs.append(cfg)
    seed_run = runner.SeedRun(cfgs[0])
    _real, z = seed_run.next_inputs(2, torch.device('cpu'))
    assert torch.equal(z[0], z[1])
    singles = [runner.run(c) for c in cfgs]
    stacked = vectorised.run_stacked(cfgs)
    for a, b in zip(singles, stacked):
        _assert_results_close(a, b)
    alternating = runner.run({k: v for k, v in cfgs[0].items() if k != 'update_rule'})
    assert alternating['curve'][-1]['batch_emd'] != singles[0]['curve'][-1]['batch_emd']


@pytest.mark.parametrize('objective,protocol', [('ns', 'standard'), ('soft-floor-multi', 'quick')])
def test_one_stacked_seed_runs_without_vmap_and_equals_the_single_run_exactly(objective, protocol, monkeypatch):
    """S = 1 (how the long standard-protocol runs are checkpointed) calls the network directly on views of
    the stacked tensors: the same numbers as the per-seed trainer, bit for bit, and vmap is never called."""
    cfg = protocols.make_run_config('ring8', objective, 3, protocol, steps=24, eval_every=8)
    cfg.G_kwargs.hidden_features = 16
    cfg.D_kwargs.hidden_features = 16
    cfg.num_eval = cfg.num_curve = 400
    single = runner.run(cfg)

    def no_vmap(*args, **kwargs):
        raise AssertionError('vmap called for one copy')
    monkeypatch.setattr(vectorised, 'vmap', no_vmap)
    stacked = vectorised.run_stacked([cfg])[0]
    assert stacked['curve'] == single['curve'] and stacked['final'] == single['final']
    assert stacked['timing']['stacked_seeds'] == 1
    # BatchNorm's running statistics are updated in the stacked buffers through the views.
    plain = runner.SeedRun(cfg).G.train()
    G = vectorised.StackedModule([copy.deepcopy(plain)]).train()
    z = torch.randn(10, 2)
    G(z, torch.zeros(10, 0))
    plain(z, torch.zeros(10, 0))
    bn = [name for name, _ in plain.named_buffers() if name.endswith('running_mean')]
    assert bn
    for (name, b), b_stacked in zip(plain.named_buffers(), G.copy_of(0).buffers()):
        assert torch.equal(b, b_stacked), name


def test_stacked_networks_equal_the_per_seed_networks_after_training():
    """Parameters themselves, not only scores: run both trainers a few steps and compare copy by copy."""
    cfgs = _cfgs('hinge', steps=12, eval_every=12)
    seeds = [runner.SeedRun(c) for c in cfgs]
    G = vectorised.StackedModule([r.G for r in seeds])
    for s, r in enumerate(seeds):
        for (name, p), q in zip(r.G.state_dict().items(), G.copy_of(s).state_dict().values()):
            assert torch.equal(p, q), name          # stacking copies the networks exactly
    z = torch.randn(2 * 7, 2)
    c = torch.zeros(2 * 7, 0)
    out = G(z, c)
    for s, r in enumerate(seeds):
        assert torch.allclose(out[7 * s:7 * (s + 1)], r.G(z[7 * s:7 * (s + 1)], c[:7]), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match='divisible by 2'):
        G(z[:5], c[:5])


def test_partial_run_resumes_exactly(tmp_path):
    cfgs = _cfgs('soft-floor-multi', steps=24, eval_every=8)
    whole = vectorised.run_stacked(cfgs)
    partial = tmp_path / 'partial'
    stopped = vectorised.run_stacked(cfgs, partial_dir=str(partial), checkpoint_every=8, stop_after_s=0.0)
    assert stopped is None                                   # stopped after its first generator step
    path = vectorised.partial_path(str(partial), cfgs)
    assert os.path.isfile(path)
    state = torch.load(path, weights_only=True)
    assert state['gen_steps'] == 1 and json.loads(state['configs'])[0]['seed'] == 0
    resumed = vectorised.run_stacked(cfgs, partial_dir=str(partial), checkpoint_every=8)
    assert not os.path.exists(path)                          # a finished run removes its checkpoint
    for a, b in zip(whole, resumed):
        assert a['curve'] == b['curve'] and a['final'] == b['final']
    # Progress of other configurations is never picked up.
    other = _cfgs('soft-floor-multi', seeds=(0, 2), steps=24, eval_every=8)
    assert vectorised.partial_path(str(partial), other) != path


def test_checkpoint_of_other_configs_is_refused(tmp_path):
    cfgs = _cfgs('ns', steps=16, eval_every=8)
    vectorised.run_stacked(cfgs, partial_dir=str(tmp_path), stop_after_s=0.0)
    path = vectorised.partial_path(str(tmp_path), cfgs)
    state = torch.load(path, weights_only=True)
    state['configs'] = json.dumps(_cfgs('ns', steps=18, eval_every=9), sort_keys=True)
    torch.save(state, path)
    with pytest.raises(ValueError, match='other configurations'):
        vectorised.run_stacked(cfgs, partial_dir=str(tmp_path))


@pytest.mark.parametrize('objective', ['ms', 'far', 'wgan-gp', 'swgan'])
def test_batch_wide_objectives_are_not_stacked(objective):
    cfgs = _cfgs(objective, steps=2, eval_every=2)
    assert not vectorised.stackable(cfgs[0])
    with pytest.raises(ValueError, match='one by one|mode-seeking'):
        vectorised.run_stacked(cfgs)


def test_stacked_runs_must_share_their_configuration():
    a = _cfgs('ns', seeds=(0,))[0]
    b = _cfgs('hinge', seeds=(1,))[0]
    with pytest.raises(ValueError, match='share everything but the seed'):
        vectorised.run_stacked([a, b])
    with pytest.raises(ValueError, match='distinct seeds'):
        vectorised.run_stacked([a, a])


def test_command_stacks_seeds_checkpoints_and_reuses(tmp_path, capsys):
    from stylegan2_softgan.bench.__main__ import main
    out = tmp_path / 'bench'
    args = ['--suite=2d', '--datasets=ring8', '--objectives=ns,ms', '--seeds=2', '--steps=6', '--eval-every=3',
            '--no-gs', f'--outdir={out}']
    with pytest.raises(SystemExit) as info:
        main(args + ['--stop-after=0.00001'])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert 'stacked' in text and 'stopped; resume with the same command' in text
    assert list((out / 'partial').rglob('*.pt'))
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert 'resumed from' in text and '2 seed(s) stacked' in text
    assert not list((out / 'partial').rglob('*.pt'))
    for obj in ('ns', 'ms'):
        for seed in (0, 1):
            assert (out / 'runs' / 'quick' / 'ring8' / f'{obj}-seed{seed}.json').is_file()
    with pytest.raises(SystemExit):
        main(args)
    assert '4 runs (4 already stored' in capsys.readouterr().out
    # Another process can train further seeds of the same table; they join the stored runs.
    with pytest.raises(SystemExit):
        main([a for a in args if a != '--seeds=2'] + ['--seeds=1', '--first-seed=2'])
    assert '2 runs (0 already stored' in capsys.readouterr().out
    assert sorted(p.name for p in (out / 'runs' / 'quick' / 'ring8').glob('ns-seed*.json')) == \
        ['ns-seed0.json', 'ns-seed1.json', 'ns-seed2.json']
    assert any('--seeds=1 --first-seed=2' in line for line in (out / 'commands.txt').read_text().splitlines())
    with pytest.raises(SystemExit):
        main([a for a in args if a != '--seeds=2'] + ['--seeds=3'])
    assert '6 runs (6 already stored' in capsys.readouterr().out


def test_standard_protocol_is_pacgans_released_configuration():
    cfg = protocols.make_run_config('grid25', 'ns', 0, 'standard')
    assert cfg.steps == 400_000 and cfg.batch == 100 and cfg.train_size == 100_000 and cfg.num_eval == 2500
    assert cfg.G_kwargs.z_dim == 2 and cfg.G_kwargs.hidden_features == 400 and cfg.G_kwargs.num_layers == 4
    assert cfg.G_kwargs.batchnorm is True
    assert (cfg.D_kwargs.activation, cfg.D_kwargs.hidden_features, cfg.D_kwargs.num_layers,
            cfg.D_kwargs.maxout_pieces) == ('maxout', 200, 3, 5)
    assert cfg.G_opt == cfg.D_opt == {'class_name': 'torch.optim.Adam', 'lr': 1e-4, 'betas': [0.8, 0.999]}
    assert cfg.init == {'weight_std': 0.02, 'bn_momentum': 0.05}
    # ALI's simultaneous updates, as PacGAN's code trains; --updates=alternating is stored apart, and its
    # configuration is the one this protocol had before it recorded its update rule.
    assert cfg.update_rule == 'simultaneous' and runner.protocol_label(cfg) == 'standard'
    alt = protocols.make_run_config('grid25', 'ns', 0, 'standard', updates='alternating')
    assert 'update_rule' not in alt and runner.protocol_label(alt) == 'standard-alternating'
    assert {k: v for k, v in cfg.items() if k != 'update_rule'} == alt
    quick = protocols.make_run_config('grid25', 'ns', 0, 'quick')
    assert 'update_rule' not in quick and runner.protocol_label(quick) == 'quick'
    assert protocols.make_run_config('grid25', 'ns', 0, 'quick', updates='alternating') == quick
    with pytest.raises(ValueError, match='unknown update policy'):
        protocols.make_run_config('grid25', 'ns', 0, 'standard', updates='jacobi')
    seed_run = runner.SeedRun(cfg)
    linears = [m for net in (seed_run.G, seed_run.D) for m in net.modules() if isinstance(m, torch.nn.Linear)]
    weights = torch.cat([m.weight.flatten() for m in linears])
    assert abs(float(weights.std()) - 0.02) < 0.0005 and abs(float(weights.mean())) < 0.0005
    assert all(float(m.bias.abs().max()) == 0 for m in linears)
    assert all(m.momentum == 0.05 for m in seed_run.G.modules() if isinstance(m, torch.nn.BatchNorm1d))
    with pytest.raises(ValueError, match='2-D setting'):
        protocols.make_run_config('stacked-quarter', 'ns', 0, 'standard')
    with pytest.raises(ValueError, match='unknown initialisation'):
        runner.initialise(seed_run.G, {'weight_sd': 0.1})


def test_adam_beta1_override_changes_only_beta1_and_is_stored_apart():
    base = protocols.make_run_config('grid25', 'ns', 0, 'standard')
    cfg = protocols.make_run_config('grid25', 'ns', 0, 'standard', adam_beta1=0.2)
    assert cfg.G_opt == cfg.D_opt == {'class_name': 'torch.optim.Adam', 'lr': 1e-4, 'betas': [0.2, 0.999]}
    assert cfg.adam_beta1 == 0.2 and runner.protocol_label(cfg) == 'standard-beta1-0.2'
    rest = {k: v for k, v in cfg.items() if k not in ('adam_beta1', 'G_opt', 'D_opt')}
    assert rest == {k: v for k, v in base.items() if k not in ('G_opt', 'D_opt')}
    alt = protocols.make_run_config('ring8', 'ns', 1, 'standard', updates='alternating', adam_beta1=0.5)
    assert runner.protocol_label(alt) == 'standard-alternating-beta1-0.5'
    # The optimiser really gets the value: one built from the configuration reads beta1 back.
    seed_run = runner.SeedRun(cfg)
    opt = dnnlib.util.construct_class_by_name(params=seed_run.G.parameters(), **cfg.G_opt)
    assert opt.param_groups[0]['betas'] == (0.2, 0.999)
    with pytest.raises(ValueError, match=r"--adam-beta1: objective 'wgan' trains G with torch\.optim\.RMSprop"):
        protocols.make_run_config('ring8', 'wgan', 0, 'standard', adam_beta1=0.2)
    with pytest.raises(ValueError, match=r'--adam-beta1=1: expected a number in \[0, 1\)'):
        protocols.make_run_config('ring8', 'ns', 0, 'standard', adam_beta1=1.0)


def test_bench_soft_objectives_equal_their_stored_stand_ins():
    """`soft` (constant β) is soft-beta-fixed and, on the 2-D mixtures, `soft-emd` (the EMD schedule) is
    soft-floor-multi: only the objective's name differs, so the stored runs of one stand for the other."""
    def same(dataset, a_name, b_name, **kw):
        a = protocols.make_run_config(dataset, a_name, 3, 'quick', **kw)
        b = protocols.make_run_config(dataset, b_name, 3, 'quick', **kw)
        assert a.pop('objective') == a_name and b.pop('objective') == b_name
        assert a == b, (dataset, a_name, b_name)
        return a
    for dataset in ('ring8', 'grid25'):
        a = same(dataset, 'soft-emd', 'soft-floor-multi')
        assert a.loss_kwargs.beta_floor_pairs == 16 and a.loss_kwargs.beta_emd_samples == 400
    for dataset in ('ring8', 'grid25', 'stacked-quarter'):
        kw = dict(data_path='mnist.npz') if dataset.startswith('stacked') else {}
        assert same(dataset, 'soft', 'soft-beta-fixed', **kw).loss_kwargs.beta == pytest.approx(0.72134752)
    images = protocols.make_run_config('stacked-full', 'soft-emd', 0, 'quick', data_path='mnist.npz')
    assert 'beta_emd_samples' not in images.loss_kwargs          # images: the step's batch (not measured yet)
