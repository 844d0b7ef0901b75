"""The EMD-spread measurement behind docs/benchmarks/beta_schedule.md."""

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

pytest.importorskip('ot')

from stylegan2_softgan.bench import data2d, emd_spread  # noqa: E402


def test_missing_mode_samples_avoid_the_missing_modes():
    data = data2d.get_dataset('grid25')
    x = emd_spread.sample_missing_modes(data, 2000, 4, np.random.default_rng(0))
    nearest = np.argmin(cdist(x, data.means), axis=1)
    assert set(nearest.tolist()) == set(range(4, 25))
    with pytest.raises(ValueError, match='can miss'):
        emd_spread.sample_missing_modes(data, 10, 25, np.random.default_rng(0))


def test_emd_of_equal_batches_is_the_optimal_assignment():
    # Uniform weights and equal sizes: the EMD is the mean cost of the best one-to-one matching.
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((40, 2)), rng.standard_normal((40, 2)) + 0.5
    cost = cdist(x, y)
    r, c = linear_sum_assignment(cost)
    assert emd_spread.emd_of(x, y) == pytest.approx(cost[r, c].mean(), rel=1e-9)


def test_floor_below_a_generator_missing_many_modes():
    data = data2d.get_dataset('ring8')
    row = emd_spread.spread_row(data, 200, [4], floor_pairs=4, gen_pairs=4, rng=np.random.default_rng(0))
    assert len(row['floor']) == 4 and len(row['miss4']) == 4
    assert max(row['floor']) < min(row['miss4'])


def test_command_prints_a_table_and_refuses_bad_input(capsys):
    emd_spread.main.main(['--datasets=ring8', '--sizes=50', '--missing=1', '--floor-pairs=2', '--gen-pairs=2'],
                         standalone_mode=False)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith('| data | n | real vs real (floor) | misses 1 mode |')
    assert out[2].startswith('| ring8 | 50 | ')
    with pytest.raises(SystemExit) as e:
        emd_spread.main.main(['--datasets=ring8', '--missing=8'])
    assert e.value.code == 2
