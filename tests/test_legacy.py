"""Importing NVIDIA's network pickles as data (torch_utils/legacy.py, legacy.py): parity with the outputs
NVIDIA's code computed from the shared pickles, refusal of anything outside the allowlist, no code from the
file ever run, strict weight matching with one-line errors, and the entry points that load networks."""

import io
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from nvidia_reference import NVIDIA_PICKLES, module_record, nvidia_pickle_bytes, python_path, stylegan3_copy
from torch_utils import checkpoint, legacy
from training import augment, networks

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PICKLES = ['sg2ada-uncond-32', 'sg2ada-cond-32', 'sg3-uncond-32']


@pytest.fixture(autouse=True)
def _forget_last_import():
    legacy._last_import.clear()
    yield
    legacy._last_import.clear()


def shared_pickle(name):
    path = NVIDIA_PICKLES / f'{name}.pkl'
    if not path.is_file():
        pytest.skip(f'{path} is absent (NVIDIA-written test pickles live in ../shared/data/nvidia-pickles)')
    return str(path)


def tiny_nets(c_dim=0, seed=0):
    torch.manual_seed(seed)
    G = networks.Generator(z_dim=8, c_dim=c_dim, w_dim=8, img_resolution=8, img_channels=3,
                           mapping_kwargs=dict(num_layers=2),
                           synthesis_kwargs=dict(channel_base=64, channel_max=16, num_fp16_res=1, conv_clamp=256))
    D = networks.Discriminator(c_dim=c_dim, img_resolution=8, img_channels=3, channel_base=64, channel_max=16,
                               num_fp16_res=1, conv_clamp=256, epilogue_kwargs=dict(mbstd_group_size=2))
    with torch.no_grad():   # move every weight away from its initial value
        for t in list(G.parameters()) + list(D.parameters()):
            t.add_(torch.randn_like(t) * 0.1)
        G.mapping.w_avg.normal_()
    pipe = augment.AugmentPipe(xflip=1, rotate90=1, xint=1)
    pipe.p.fill_(0.3)
    return G, D, pipe


def write(tmp_path, obj, name='x.pkl'):
    path = tmp_path / name
    path.write_bytes(nvidia_pickle_bytes(obj))
    return str(path)


# ----------------------------------------------------------------------------
# Parity with NVIDIA's own outputs.


@pytest.mark.parametrize('name', PICKLES)
def test_shared_pickles_reproduce_nvidia_outputs(name):
    path = shared_pickle(name)
    ref = np.load(NVIDIA_PICKLES / f'{name}-reference.npz')
    G = checkpoint.load_network(path, 'G_ema')
    D = checkpoint.load_network(path, 'D')
    assert type(G) is networks.Generator and type(D) is networks.Discriminator
    z, c = torch.from_numpy(ref['z']), torch.from_numpy(ref['c'])
    assert G.c_dim == c.shape[1]
    with torch.no_grad():
        for psi, key in ((1, 'psi1'), (0.7, 'psi07')):
            ws = G.mapping(z, c, truncation_psi=psi)
            assert (ws - torch.from_numpy(ref[f'ws_{key}'])).abs().max() < 1e-4
            img = G.synthesis(ws, noise_mode='const', force_fp32=True)
            err = (img - torch.from_numpy(ref[f'img_{key}'])).abs().max()
            assert err < 1e-4, f'{name} img_{key}: max error {err}'
        logits = D(torch.from_numpy(ref['d_input']), c, force_fp32=True)
    assert (logits - torch.from_numpy(ref['d_logits'])).abs().max() < 1e-4


@pytest.mark.parametrize('name', PICKLES)
def test_shared_pickles_keep_augment_p_and_training_set(name):
    snap = checkpoint.load_snapshot(shared_pickle(name))
    assert set(snap['modules']) == {'G', 'D', 'G_ema', 'augment_pipe'}
    assert 'state' not in snap
    pipe = checkpoint.unpack_module(snap['modules']['augment_pipe'])
    assert type(pipe) is augment.AugmentPipe and abs(float(pipe.p) - 0.23) < 1e-6
    tsk = snap['meta']['training_set_kwargs']
    assert tsk['resolution'] == 32 and tsk['use_labels'] == name.startswith('sg2ada-cond')
    assert snap['meta']['imported_from'] == 'nvidia-pickle'


def test_stylegan3_generator_kwargs_are_mapped():
    snap = checkpoint.load_snapshot(shared_pickle('sg3-uncond-32'))
    import json
    kwargs = json.loads(snap['modules']['G_ema']['config'])['init_kwargs']
    # Flat synthesis arguments moved under synthesis_kwargs; fused_modconv_default dropped.
    assert kwargs['synthesis_kwargs'] == dict(channel_base=2048, channel_max=64, num_fp16_res=2, conv_clamp=256)
    assert 'fused_modconv_default' not in json.dumps(kwargs)


# ----------------------------------------------------------------------------
# Nothing in the file runs; only allowed globals resolve.


def test_import_runs_no_code_and_touches_no_modules():
    """In a fresh process: no exec/compile/import audit event while importing, sys.modules unchanged."""
    path = shared_pickle('sg2ada-cond-32')
    script = textwrap.dedent(f'''
        import sys
        from torch_utils import checkpoint, legacy
        import training.networks, training.augment, training.dataset
        checkpoint.load_snapshot({str(NVIDIA_PICKLES / 'sg2ada-uncond-32.pkl')!r})   # warm every import
        legacy._last_import.clear()
        before = dict(sys.modules)
        events = []
        sys.addaudithook(lambda ev, args: events.append(ev) if ev in ('exec', 'compile', 'import') else None)
        checkpoint.load_network({path!r}, 'G_ema')
        after = dict(sys.modules)
        assert events == [], events
        assert after.keys() == before.keys(), set(after) ^ set(before)
        assert all(after[k] is before[k] for k in before)
        print('clean')
    ''')
    out = subprocess.run([sys.executable, '-c', script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and 'clean' in out.stdout, out.stderr[-2000:]


def test_stored_source_is_never_run(tmp_path):
    """A record carrying NVIDIA's reconstructor and source that writes a file: refused, nothing written."""
    marker = tmp_path / 'marker'
    src = f'open({str(marker)!r}, "w").write("executed")\n'
    evil = module_record(torch.nn.Linear(2, 2), module_src=src, class_name='Payload', init_kwargs={})
    path = write(tmp_path, {'G': evil, 'D': evil, 'G_ema': evil})
    with pytest.raises(checkpoint.CheckpointError, match=r'G: class Payload is not one this project can import') as e:
        checkpoint.load_snapshot(path)
    assert '\n' not in str(e.value)
    assert not marker.exists()


@pytest.mark.parametrize('module,name', [('os', 'system'), ('builtins', 'eval'), ('torch', 'load'),
                                         ('training.networks', 'Generator'), ('subprocess', 'Popen')])
def test_globals_outside_the_allowlist_are_refused(tmp_path, module, name):
    marker = tmp_path / 'marker'
    arg = f'touch {marker}'.encode()
    data = (b'\x80\x02c' + f'{module}\n{name}\n'.encode() + b'X' + len(arg).to_bytes(4, 'little') + arg + b'\x85R.')
    path = tmp_path / 'x.pkl'
    path.write_bytes(data)
    with pytest.raises(checkpoint.CheckpointError, match=rf'refusing to load global {module}\.{name}:'):
        checkpoint.load_snapshot(str(path))
    assert not marker.exists()


def test_real_pickle_with_payload_source_imports_without_running_it(tmp_path):
    """The shared pickle with every stored module_src swapped (same byte length) for code writing a marker:
    NVIDIA's loader runs it (so the payload is live); ours imports the same networks and writes nothing."""
    data = open(shared_pickle('sg2ada-uncond-32'), 'rb').read()
    with open(NVIDIA_PICKLES / 'sg2ada-uncond-32.pkl', 'rb') as f:
        class Peek(legacy._RestrictedUnpickler):
            sources = set()

            def find_class(self, module, name):
                if name == '_reconstruct_persistent_obj':
                    return lambda meta: Peek.sources.add(meta['module_src']) or legacy._persistent_record(meta)
                return super().find_class(module, name)
        Peek(f).load()
    marker = tmp_path / 'marker'
    for src in Peek.sources:
        raw = src.encode('utf-8')
        payload = f'open({str(marker)!r}, "w").write("executed")\n'.encode()
        swapped = payload + b'#' * (len(raw) - len(payload))
        assert len(swapped) == len(raw) and data.count(raw) >= 1
        data = data.replace(raw, swapped)
    path = tmp_path / 'payload.pkl'
    path.write_bytes(data)

    G = checkpoint.load_network(str(path), 'G_ema')
    assert isinstance(G, networks.Generator) and not marker.exists()

    if (NVIDIA_PICKLES.parent.parent / 'reference' / 'stylegan3').is_dir():
        tree = stylegan3_copy(tmp_path)
        code = f'import legacy; legacy.load_network_pkl(open({str(path)!r}, "rb"))'
        subprocess.run([sys.executable, '-c', code], cwd=tree, capture_output=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=python_path(tree)))
        assert marker.exists(), "NVIDIA's loader did not run the payload: the crafted file tests nothing"


# ----------------------------------------------------------------------------
# Strict mapping onto our classes (crafted pickles built from tiny networks of ours).


def test_crafted_round_trip_reproduces_our_networks(tmp_path):
    G, D, pipe = tiny_nets(c_dim=2)
    path = write(tmp_path, {'training_set_kwargs': {'class_name': 'training.dataset.ImageFolderDataset',
                                                    'path': 'x.zip', 'use_labels': True},
                            'G': module_record(G), 'D': module_record(D), 'G_ema': module_record(G),
                            'augment_pipe': module_record(pipe)})
    G2 = checkpoint.load_network(path, 'G_ema')
    D2 = checkpoint.load_network(path, 'D')
    z, c = torch.randn(3, 8), torch.eye(2)[[0, 1, 0]]
    with torch.no_grad():
        assert torch.equal(G2(z, c, noise_mode='const'), G.eval()(z, c, noise_mode='const'))
        img = torch.randn(2, 3, 8, 8)
        assert torch.equal(D2(img, c[:2]), D.eval()(img, c[:2]))


def test_missing_or_extra_weights_are_named(tmp_path):
    G, D, _ = tiny_nets()
    rec = module_record(G)
    fc0 = rec.meta['state']['_modules']['mapping'].meta['state']['_modules']['fc0']
    del fc0.meta['state']['_parameters']['bias']
    path = write(tmp_path, {'G_ema': rec})
    with pytest.raises(checkpoint.CheckpointError, match=r"G_ema: stored tensors do not match our "
                                                         r"training.networks.Generator: missing \['mapping.fc0.bias'\]"):
        checkpoint.load_snapshot(path)
    rec = module_record(G)
    rec.meta['state']['_buffers']['surprise'] = torch.zeros(1)
    with pytest.raises(checkpoint.CheckpointError, match=r"unexpected \['surprise'\]"):
        checkpoint.load_snapshot(write(tmp_path, {'G_ema': rec}, 'y.pkl'))


def test_shape_mismatch_is_named(tmp_path):
    G, _, _ = tiny_nets()
    rec = module_record(G)
    rec.meta['state']['_init_kwargs'] = dict(rec.meta['state']['_init_kwargs'], w_dim=16)
    with pytest.raises(checkpoint.CheckpointError, match=r'G_ema: \S+ has shape \[.*\] in the file, \[.*\] in our'):
        checkpoint.load_snapshot(write(tmp_path, {'G_ema': rec}))


def test_stylegan3_networks_and_unknown_classes_are_named(tmp_path):
    G, _, _ = tiny_nets()
    rec = module_record(G)
    synth = rec.meta['state']['_modules']['synthesis']
    synth.meta['state']['_modules']['input'] = module_record(torch.nn.Identity(), class_name='SynthesisInput',
                                                             init_kwargs={})
    with pytest.raises(checkpoint.CheckpointError, match=r'G_ema: a StyleGAN3 \(-T/-R\) network \(class SynthesisInput\)'):
        checkpoint.load_snapshot(write(tmp_path, {'G_ema': rec}))
    rec = module_record(G)
    rec.meta['state']['_modules']['mapping'].meta['class_name'] = 'FancyMapping'
    with pytest.raises(checkpoint.CheckpointError, match=r'G_ema: class FancyMapping is not one'):
        checkpoint.load_snapshot(write(tmp_path, {'G_ema': rec}, 'y.pkl'))


def test_unbuildable_arguments_and_derived_buffers(tmp_path):
    G, _, pipe = tiny_nets()
    rec = module_record(G)
    rec.meta['state']['_init_kwargs'] = dict(rec.meta['state']['_init_kwargs'], warp_drive=True)
    with pytest.raises(checkpoint.CheckpointError, match=r'G_ema: our training.networks.Generator cannot be built '
                                                         r'from the stored arguments \(.*warp_drive'):
        checkpoint.load_snapshot(write(tmp_path, {'G_ema': rec}))
    # NVIDIA stores the augmentation filters; they must equal the ones ours derives.
    good = {'Hz_geom': pipe.Hz_geom.clone(), 'Hz_fbank': pipe.Hz_fbank.clone()}
    ok = write(tmp_path, {'G_ema': module_record(G), 'augment_pipe': module_record(pipe, extra_buffers=good)}, 'ok.pkl')
    assert float(checkpoint.unpack_module(checkpoint.load_snapshot(ok)['modules']['augment_pipe']).p) == pytest.approx(0.3)
    bad = dict(good, Hz_geom=good['Hz_geom'] * 1.01)
    path = write(tmp_path, {'G_ema': module_record(G), 'augment_pipe': module_record(pipe, extra_buffers=bad)}, 'bad.pkl')
    with pytest.raises(checkpoint.CheckpointError, match=r'augment_pipe: stored buffer Hz_geom differs'):
        checkpoint.load_snapshot(path)


def test_other_pickles_give_one_line_errors(tmp_path):
    cases = {
        'list.pkl': nvidia_pickle_bytes([1, 2]),
        'noema.pkl': nvidia_pickle_bytes({'G': None}),
        'truncated.pkl': nvidia_pickle_bytes({'G_ema': module_record(tiny_nets()[0])})[:5000],
    }
    messages = {'list.pkl': 'expected a dict of networks', 'noema.pkl': 'holds no G_ema',
                'truncated.pkl': 'not a readable network pickle'}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(checkpoint.CheckpointError, match=messages[name]) as e:
            checkpoint.load_snapshot(str(tmp_path / name))
        assert '\n' not in str(e.value)


def test_nonfinite_weights_are_refused_like_our_snapshots(tmp_path):
    G, _, _ = tiny_nets()
    rec = module_record(G)
    rec.meta['state']['_modules']['synthesis'].meta['state']['_modules']['b4'].meta['state']['_parameters']['const'] \
        = torch.full([16, 4, 4], float('nan'))
    rec.meta['state']['_modules']['mapping'].meta['state']['_buffers']['w_avg'] = torch.full([8], float('nan'))
    with pytest.raises(checkpoint.CheckpointError, match=r'2 of \d+ tensors hold NaN or Inf .* the run diverged'):
        checkpoint.load_snapshot(write(tmp_path, {'G_ema': rec}))


def test_nonfinite_w_avg_with_finite_weights_is_recomputed(tmp_path):
    """stylegan2-ada's loop can leave NaN in w_avg alone (its module summary feeds G torch.empty latents in training
    mode). The import replaces it by the mean W, which the EMA NVIDIA's loop keeps would converge to."""
    G, _, _ = tiny_nets()
    records = {}
    for key in ('G', 'G_ema'):
        records[key] = module_record(G)
        records[key].meta['state']['_modules']['mapping'].meta['state']['_buffers']['w_avg'] = torch.full([8], float('nan'))
    with pytest.warns(legacy.RecomputedWAvgWarning, match=r'G.mapping.w_avg, G_ema.mapping.w_avg: not finite'):
        snap = checkpoint.load_snapshot(write(tmp_path, records))
    assert set(snap['meta']['recomputed']) == {'G.mapping.w_avg', 'G_ema.mapping.w_avg'}
    recomputed = snap['modules']['G_ema']['state_dict']['mapping.w_avg']
    # Independently: the moving average the mapping keeps itself (update_emas, beta 0.995), from zero, over
    # 3,000 batches of 64 fresh latents. Both estimate the mean W from samples (W's spread is 0.6-1.1 per
    # component here: standard errors about 0.01 for 10,000 latents and 0.007 for the EMA's ~25,600), so 0.05
    # is about four sigma of their difference; the components themselves are 0.17-0.68.
    torch.manual_seed(1)
    G.mapping.w_avg.zero_()
    with torch.no_grad():
        for _ in range(3000):
            G.mapping(torch.randn(64, 8), None, update_emas=True)
    assert torch.isfinite(recomputed).all()
    assert torch.allclose(recomputed, G.mapping.w_avg, atol=0.05, rtol=0), (recomputed, G.mapping.w_avg)
    # Truncation now works on the imported generator.
    G2 = checkpoint.unpack_module(snap['modules']['G_ema'])
    with torch.no_grad():
        assert torch.isfinite(G2(torch.randn(2, 8), None, truncation_psi=0.5, noise_mode='const')).all()


def test_nonfinite_w_avg_of_a_conditional_generator_is_refused(tmp_path):
    G, _, _ = tiny_nets(c_dim=2)
    rec = module_record(G)
    rec.meta['state']['_modules']['mapping'].meta['state']['_buffers']['w_avg'] = torch.full([8], float('inf'))
    with pytest.raises(checkpoint.CheckpointError, match=r'G_ema: mapping.w_avg holds NaN or Inf while every weight '
                                                         r'is finite .* conditional generator depends on its training labels'):
        checkpoint.load_snapshot(write(tmp_path, {'G_ema': rec}))


# ----------------------------------------------------------------------------
# Names, URLs and the converter script.


def test_resume_names_resolve_to_nvidia_urls_and_offline_error_says_where(tmp_path, tmp_cache):
    assert legacy.resolve_pretrained('ffhq256').endswith('/ffhq-res256-mirror-paper256-noaug.pkl')
    assert set(legacy.PRETRAINED_URLS) == {'ffhq256', 'ffhq512', 'ffhq1024', 'celebahq256', 'lsundog256'}
    assert legacy.resolve_pretrained('some.pkl') == 'some.pkl'
    # A file placed where the offline error says is used without any download.
    G, D, _ = tiny_nets()
    data = nvidia_pickle_bytes({'G_ema': module_record(G), 'D': module_record(D)})
    dl = tmp_cache / 'downloads'
    dl.mkdir(parents=True)
    (dl / 'lsundog-res256-paper256-kimg100000-noaug.pkl').write_bytes(data)
    assert isinstance(checkpoint.load_network('lsundog256'), networks.Generator)
    url = 'http://127.0.0.1:9/nothing-here.pkl'     # port 9 (discard): refused at once
    with pytest.raises(checkpoint.CheckpointError, match=rf'place the file at {dl}/nothing-here.pkl'):
        checkpoint.load_snapshot(url)


def test_file_url_and_convert_script(tmp_path, capsys):
    G, D, pipe = tiny_nets()
    src = write(tmp_path, {'G': module_record(G), 'D': module_record(D), 'G_ema': module_record(G),
                           'augment_pipe': module_record(pipe)})
    assert isinstance(checkpoint.load_network('file://' + src), networks.Generator)
    dest = tmp_path / 'out.pt'
    assert run_script('convert', f'--source={src}', f'--dest={dest}') == 0
    with open(dest, 'rb') as f:
        assert f.read(2) == b'PK'      # a torch.save zip, not a pickle
    snap = checkpoint.load_snapshot(str(dest))
    assert set(snap['modules']) == {'G', 'D', 'G_ema', 'augment_pipe'}
    G2 = checkpoint.load_network(str(dest))
    z = torch.randn(2, 8)
    with torch.no_grad():
        assert torch.equal(G2(z, None, noise_mode='const'), G.eval()(z, None, noise_mode='const'))
    # Errors: one line, exit 2, nothing written.
    bad = tmp_path / 'bad.pkl'
    bad.write_bytes(b'\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R.')
    dest2 = tmp_path / 'never.pt'
    assert run_script(f'--source={bad}', f'--dest={dest2}') == 2 and not dest2.exists()
    err = capsys.readouterr().err
    assert err.strip().count('\n') == 0 and 'refusing to load global os.system' in err
    assert run_script(f'--source={src}', f'--dest={tmp_path / "nodir" / "x.pt"}') == 2
    assert 'nodir does not exist' in capsys.readouterr().err


def run_script(*args):
    import legacy as script      # the top-level legacy.py (tests put the repository root on sys.path)
    try:
        script.main(list(args))
    except SystemExit as e:
        return e.code
    return None


# ----------------------------------------------------------------------------
# train.py --resume from NVIDIA's networks: transfer learning.

TINY_TRAIN = ['--data=builtin:digits8', '--cfg=digits', '--cbase=64', '--cmax=16', '--map=1', '--batch=16',
              '--metrics=none', '--workers=0', '--kimg=0.064', '--tick=0.064', '--snap=1']


def digits_nets(channels=1, seed=0):
    torch.manual_seed(seed)
    G = networks.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=channels,
                           mapping_kwargs=dict(num_layers=1), synthesis_kwargs=dict(channel_base=64, channel_max=16))
    D = networks.Discriminator(c_dim=0, img_resolution=8, img_channels=channels, channel_base=64, channel_max=16,
                               epilogue_kwargs=dict(mbstd_group_size=4))
    pipe = augment.AugmentPipe(xflip=1, rotate90=1, xint=1)
    pipe.p.fill_(0.3)
    return G, D, pipe


def test_resume_from_nvidia_pickle_is_transfer_learning(tmp_path):
    import train as train_script
    from training import training_loop
    G, D, pipe = digits_nets()
    src = write(tmp_path, {'G': module_record(G), 'D': module_record(D), 'G_ema': module_record(G),
                           'augment_pipe': module_record(pipe)})
    ctx = train_script.main.make_context('train.py', [*TINY_TRAIN, '--aug=ada', f'--resume={src}'])
    desc, c = train_script.resolve_options(**ctx.params)
    assert c.resume == src
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    c = dict(c, image_snapshot_ticks=None)
    training_loop.training_loop(run_dir=str(run_dir), rank=0, **c)
    log = (run_dir / 'log.txt').read_text()
    assert log.count('Transfer learning from') == 1 and 'optimisers, counters and random state start fresh' in log
    snaps = checkpoint.list_snapshots(str(run_dir))
    assert [checkpoint.snapshot_nimg(p) for p in snaps] == [64]    # counters started at zero
    snap = checkpoint.load_snapshot(snaps[-1], require_state=True)
    assert snap['state']['cur_nimg'] == 64 and snap['state']['batch_idx'] == 4
    # p from the file (ADA moves it by at most 64 / 500k); weights are the file's, nudged by 4 steps.
    assert abs(float(snap['modules']['augment_pipe']['state_dict']['p']) - 0.3) < 1e-3
    for key, net in (('D', D), ('G_ema', G)):
        for name, ref in net.state_dict().items():
            got = snap['modules'][key]['state_dict'][name]
            if ref.is_floating_point() and ref.numel() > 8 and name.endswith('weight'):
                cos = torch.nn.functional.cosine_similarity(got.flatten(), ref.flatten(), dim=0)
                assert cos > 0.9, (key, name, float(cos))


def test_resume_from_nvidia_pickle_that_does_not_fit_the_data_is_refused(tmp_path):
    import train as train_script
    from dnnlib.cli import UserError
    G, D, pipe = digits_nets(channels=3)
    src = write(tmp_path, {'G': module_record(G), 'D': module_record(D), 'G_ema': module_record(G)})
    ctx = train_script.main.make_context('train.py', [*TINY_TRAIN, '--aug=noaug', f'--resume={src}'])
    with pytest.raises(UserError, match=r'--resume: the imported networks have img_channels=3, the training data needs 1'):
        train_script.resolve_options(**ctx.params)
    G, _, _ = digits_nets()
    src = write(tmp_path, {'G_ema': module_record(G)}, 'onlyG.pkl')
    ctx = train_script.main.make_context('train.py', [*TINY_TRAIN, '--aug=noaug', f'--resume={src}'])
    with pytest.raises(UserError, match=r'--resume: the imported file has no G \(transfer learning needs G, D and G_ema\)'):
        train_script.resolve_options(**ctx.params)


# ----------------------------------------------------------------------------
# generate.py and calc_metrics.py take NVIDIA's pickles.


def test_generate_and_calc_metrics_accept_nvidia_pickles(tmp_path):
    import io as _io
    import zipfile

    import PIL.Image
    from click.testing import CliRunner

    import calc_metrics
    import generate
    from test_metrics_pipeline import make_detector_dir
    path = shared_pickle('sg2ada-cond-32')
    res = CliRunner().invoke(generate.main, [f'--network={path}', '--seeds=0-2', '--class=1', f'--outdir={tmp_path / "g"}'])
    assert res.exit_code == 0, res.output
    assert sorted(os.listdir(tmp_path / 'g')) == ['seed0000.png', 'seed0001.png', 'seed0002.png']
    assert PIL.Image.open(tmp_path / 'g' / 'seed0000.png').size == (32, 32)

    path = shared_pickle('sg3-uncond-32')
    rng = np.random.default_rng(0)
    data = tmp_path / 'data.zip'
    with zipfile.ZipFile(data, 'w') as zf:
        for i in range(24):
            buf = _io.BytesIO()
            PIL.Image.fromarray((rng.random([32, 32, 3]) * 255).astype(np.uint8), 'RGB').save(buf, format='png')
            zf.writestr(f'img{i:05d}.png', buf.getvalue())
    res = CliRunner().invoke(calc_metrics.calc_metrics, [
        f'--network={path}', '--metrics=fid50k_full', f'--data={data}', '--num-gen=16', '--no-download', '--quiet',
        '--device=cpu', f'--cache-dir={tmp_path / "stats"}', f'--detector-dir={make_detector_dir(tmp_path / "det")}'])
    assert res.exit_code == 0, res.output
    import json
    line = [json.loads(x) for x in res.output.splitlines() if x.startswith('{')][0]
    assert len(line['results']) == 1 and list(line['results'].values())[0] > 0 and line['num_gen'] == 16
