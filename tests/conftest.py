"""Shared test configuration: CUDA-only tests are skipped without a GPU; paths to the shared data."""

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

# One thread per process: the suite's tensors are tiny, and the tests that start subprocesses (two-rank
# training, the command-line scripts) would otherwise have every process spin on every core; on a
# 2-core machine that oversubscription made the suite several times slower. Set before torch is imported.
os.environ.setdefault('OMP_NUM_THREADS', '1')

# One empty cache folder for the whole session (subprocesses inherit it): no test may pass only because
# this machine's ~/.cache holds a classifier, a detector or real-data statistics from earlier runs, and
# the suite writes nothing there. Files the tests need are made by the tests or skip with a reason.
_SESSION_CACHE = tempfile.mkdtemp(prefix='stylegan2-softgan-test-cache-')
os.environ['GANMC_CACHE_DIR'] = _SESSION_CACHE
atexit.register(shutil.rmtree, _SESSION_CACHE, ignore_errors=True)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / 'shared' / 'data'

# The command-line scripts (train.py, generate.py, ...) live at the repository root, outside the packages.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def pytest_collection_modifyitems(config, items):
    import torch
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason='needs a CUDA device')
    for item in items:
        if 'cuda' in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """Point the project's cache directory (GANMC_CACHE_DIR) at an empty temporary folder."""
    path = tmp_path / 'cache'
    monkeypatch.setenv('GANMC_CACHE_DIR', str(path))
    return path


@pytest.fixture
def shared_data():
    """Path of ../shared/data; skips the test when the folder is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f'shared data folder {SHARED_DATA} is absent')
    return SHARED_DATA


@pytest.fixture(scope='module')
def one_thread():
    """Run a module's tests with one torch thread: tiny tensors gain nothing from threads, and on a busy
    machine every parallel region can wait a scheduler tick for the second thread."""
    import torch
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
