"""Persistence registry and snapshot files: data-only round trips, refusal of code, atomic writes."""

import json
import os
import pickle
import subprocess
import sys

import pytest
import torch

from torch_utils import checkpoint, persistence


@persistence.persistent_class
class TinyNet(torch.nn.Module):
    def __init__(self, in_features, out_features=2, hidden=(4,), act='relu', **extra):
        super().__init__()
        self.extra = extra
        dims = [in_features, *hidden, out_features]
        self.layers = torch.nn.Sequential(*[torch.nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:])])
        self.register_buffer('counter', torch.zeros([]))

    def forward(self, x):
        return self.layers(x)


@persistence.persistent_class
class TinyNetChild(TinyNet):
    def __init__(self, scale=2.0):
        super().__init__(in_features=3, out_features=1)
        self.scale = scale


def test_init_kwargs_recorded_with_positional_and_extra_arguments():
    net = TinyNet(3, hidden=[5, 6], note='x')
    assert persistence.get_init_kwargs(net) == {'in_features': 3, 'hidden': [5, 6], 'note': 'x'}
    # Only the outermost constructor records.
    child = TinyNetChild(scale=3.0)
    assert persistence.get_init_kwargs(child) == {'scale': 3.0}
    assert persistence.get_config(child)['class_name'].endswith('TinyNetChild')
    # The record is a copy: mutating it does not change the object.
    persistence.get_init_kwargs(net)['hidden'].append(9)
    assert persistence.get_init_kwargs(net)['hidden'] == [5, 6]


def test_non_json_kwargs_are_rejected():
    with pytest.raises(TypeError, match='JSON-able'):
        TinyNet(3, act=torch.nn.ReLU)


def test_build_refuses_unregistered_classes():
    for name in ['os.system', 'builtins.eval', 'training.os.system', 'torch_utils.misc.os.system',
                 'torch.nn.Linear']:
        with pytest.raises(ValueError, match='refusing to construct'):
            persistence.build({'class_name': name, 'init_kwargs': {}})
    with pytest.raises(ValueError, match='exactly'):
        persistence.build({'class_name': 'x', 'init_kwargs': {}, 'extra': 1})


DATA_KWARGS = {'class_name': 'training.dataset.ImageFolderDataset', 'path': 'x.zip'}


def test_snapshot_round_trip(tmp_path):
    torch.manual_seed(0)
    G = TinyNet(3, hidden=[7])
    D = TinyNetChild(scale=0.5)
    G.counter += 4
    path = tmp_path / 'network-snapshot-000010.pt'
    state = {'cur_nimg': 10, 'rng': torch.get_rng_state(), 'opt': torch.optim.Adam(G.parameters()).state_dict()}
    checkpoint.save_snapshot(str(path), {'G': G, 'D': D, 'G_ema': G, 'augment_pipe': None},
                             meta={'training_set_kwargs': DATA_KWARGS}, state=state)
    snap = checkpoint.load_snapshot(str(path))
    assert sorted(snap['modules']) == ['D', 'G', 'G_ema']
    assert snap['meta']['training_set_kwargs'] == DATA_KWARGS
    assert snap['state']['cur_nimg'] == 10 and torch.equal(snap['state']['rng'], state['rng'])
    G2 = checkpoint.load_network(str(path), key='G')
    assert not G2.training and not any(p.requires_grad for p in G2.parameters())
    x = torch.randn(4, 3)
    assert torch.equal(G2(x), G(x)) and G2.counter.item() == 4
    D2 = checkpoint.unpack_module(snap['modules']['D'])
    assert isinstance(D2, TinyNetChild) and D2.scale == 0.5
    with pytest.raises(checkpoint.CheckpointError, match="no 'X'"):
        checkpoint.load_network(str(path), key='X')
    assert checkpoint.load_snapshot_meta(str(path))['training_set_kwargs']['path'] == 'x.zip'


class _Exploit:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


def test_crafted_pickle_is_refused_and_executes_nothing(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'network-snapshot-000000.pt'
    torch.save({'format': checkpoint.FORMAT, 'version': 1, 'modules': {}, 'meta': '{}',
                'payload': _Exploit(marker)}, str(path))
    with pytest.raises(checkpoint.CheckpointError, match='not a loadable snapshot'):
        checkpoint.load_snapshot(str(path))
    assert not marker.exists()
    # Plain pickle files (NVIDIA-style .pkl) are refused the same way.
    pkl = tmp_path / 'network.pkl'
    with open(pkl, 'wb') as f:
        pickle.dump(_Exploit(marker), f)
    with pytest.raises(checkpoint.CheckpointError):
        checkpoint.load_snapshot(str(pkl))
    assert not marker.exists()


def test_config_naming_foreign_class_is_refused(tmp_path):
    path = tmp_path / 'network-snapshot-000000.pt'
    evil = {'config': json.dumps({'class_name': 'os.system', 'init_kwargs': {'command': 'true'}}), 'state_dict': {}}
    torch.save({'format': checkpoint.FORMAT, 'version': 1, 'modules': {'G_ema': evil}, 'meta': '{}'}, str(path))
    with pytest.raises(ValueError, match='refusing to construct'):
        checkpoint.load_network(str(path))


def test_wrong_files_give_clear_errors(tmp_path):
    with pytest.raises(checkpoint.CheckpointError, match='no such file'):
        checkpoint.load_snapshot(str(tmp_path / 'missing.pt'))
    other = tmp_path / 'other.pt'
    torch.save({'weights': torch.zeros(1)}, str(other))
    with pytest.raises(checkpoint.CheckpointError, match='not a stylegan2-softgan-snapshot'):
        checkpoint.load_snapshot(str(other))
    truncated = tmp_path / 'network-snapshot-000004.pt'
    checkpoint.save_snapshot(str(truncated), {'G': TinyNet(2)})
    truncated.write_bytes(truncated.read_bytes()[:100])
    with pytest.raises(checkpoint.CheckpointError, match='not a loadable snapshot'):
        checkpoint.load_snapshot(str(truncated))


def test_find_latest_skips_damaged_and_temporary_files(tmp_path):
    for n in (4, 8, 12):
        checkpoint.save_snapshot(str(tmp_path / f'network-snapshot-{n:06d}.pt'), {'G': TinyNet(2)}, meta={'n': n})
    (tmp_path / 'network-snapshot-000016.pt').write_bytes(b'partial')   # damaged newest
    (tmp_path / '.tmp-network-snapshot-000020.pt-abc').write_bytes(b'partial')
    latest = checkpoint.find_latest_snapshot(str(tmp_path))
    assert latest.endswith('network-snapshot-000012.pt')
    assert [os.path.basename(p) for p in checkpoint.list_snapshots(str(tmp_path))] == \
        ['network-snapshot-000004.pt', 'network-snapshot-000008.pt', 'network-snapshot-000012.pt',
         'network-snapshot-000016.pt']
    (tmp_path / 'empty').mkdir()
    with pytest.raises(checkpoint.CheckpointError, match='no complete'):
        checkpoint.find_latest_snapshot(str(tmp_path / 'empty'))
    with pytest.raises(checkpoint.CheckpointError, match='not a run folder'):
        checkpoint.find_latest_snapshot(str(tmp_path / 'nowhere'))


_KILL_DURING_SAVE = r'''
import os, sys, torch
from torch_utils import checkpoint
path = sys.argv[1]
orig_save = torch.save
def slow_save(obj, f, *a, **k):
    orig_save(obj, f, *a, **k)
    f.flush()
    os.kill(os.getpid(), 9)          # killed after writing the temporary file, before the rename
torch.save = slow_save
checkpoint.atomic_save({'new': torch.ones(3)}, path)
'''


def test_kill_during_save_leaves_previous_file_intact(tmp_path):
    path = tmp_path / 'network-snapshot-000001.pt'
    checkpoint.atomic_save({'old': torch.zeros(3)}, str(path))
    proc = subprocess.run([sys.executable, '-c', _KILL_DURING_SAVE, str(path)], capture_output=True)
    assert proc.returncode == -9
    assert torch.equal(torch.load(str(path), weights_only=True)['old'], torch.zeros(3))
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith('.tmp-')] == [path.name]
