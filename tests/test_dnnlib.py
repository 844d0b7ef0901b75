"""dnnlib: EasyDict, construction by name, open_url and its offline message, run folders, format_time."""

import os
import subprocess
import sys
import threading

import pytest

import dnnlib
from dnnlib import util


def test_easydict_attribute_access_and_errors():
    d = dnnlib.EasyDict(a=1)
    d.b = 2
    assert d == {'a': 1, 'b': 2} and d.a == 1 and d['b'] == 2
    del d.a
    assert 'a' not in d
    with pytest.raises(AttributeError):
        _ = d.missing
    with pytest.raises(AttributeError):
        del d.missing


def test_construct_and_get_by_name():
    od = util.construct_class_by_name(class_name='collections.OrderedDict', a=1)
    assert type(od).__name__ == 'OrderedDict' and od['a'] == 1
    assert util.get_obj_by_name('os.path.join') is os.path.join
    assert util.call_func_by_name('a', 'b', func_name='os.path.join') == os.path.join('a', 'b')
    with pytest.raises(ValueError, match='cannot find'):
        util.get_obj_by_name('os.path.no_such_function')
    with pytest.raises(ValueError, match='invalid object name'):
        util.get_obj_by_name('os.path;rm')
    with pytest.raises(TypeError, match='not a class'):
        util.construct_class_by_name(class_name='os.path.join')


def test_format_time():
    assert util.format_time(0) == '0s'
    assert util.format_time(59.4) == '59s'
    assert util.format_time(61) == '1m 01s'
    assert util.format_time(3600 * 2 + 3 * 60 + 4) == '2h 03m 04s'
    assert util.format_time(86400 + 2 * 3600 + 3 * 60 + 59) == '1d 02h 03m'


def test_make_run_dir_numbering(tmp_path):
    out = tmp_path / 'runs'
    a = util.make_run_dir(str(out), 'first')
    b = util.make_run_dir(str(out), 'second')
    assert os.path.basename(a) == '00000-first' and os.path.basename(b) == '00001-second'
    # Gaps and foreign entries: numbering continues after the largest number; files are ignored.
    os.mkdir(out / '00007-manual')
    (out / '00042-not-a-dir').write_text('x')
    (out / 'notes').mkdir()
    c = util.make_run_dir(str(out), 'third')
    assert os.path.basename(c) == '00008-third'
    assert util.make_run_dir(str(out), 'dry', create=False).endswith('00009-dry')
    assert not os.path.exists(out / '00009-dry')
    with pytest.raises(ValueError, match='invalid run description'):
        util.make_run_dir(str(out), 'bad/desc')


def test_make_run_dir_concurrent_callers_get_distinct_folders(tmp_path):
    results = []
    lock = threading.Lock()

    def worker():
        path = util.make_run_dir(str(tmp_path), 'x')
        with lock:
            results.append(path)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 8
    assert sorted(os.path.basename(p) for p in results) == [f'{i:05d}-x' for i in range(8)]


def test_open_url_local_paths_and_file_urls(tmp_path):
    f = tmp_path / 'data.bin'
    f.write_bytes(b'hello')
    with util.open_url(str(f)) as fp:
        assert fp.read() == b'hello'
    with util.open_url(f.as_uri()) as fp:
        assert fp.read() == b'hello'
    assert util.open_url(str(f), return_filename=True) == str(f)
    with pytest.raises(FileNotFoundError, match='no such file'):
        util.open_url(str(tmp_path / 'missing.bin'))
    with pytest.raises(ValueError, match='unsupported URL scheme'):
        util.open_url('ftp://example.com/x')


def test_open_url_uses_cache_before_network(tmp_path):
    url = 'https://example.invalid/models/net.pt'
    # A file the user placed by hand under its plain name is found without any network access.
    (tmp_path / 'net.pt').write_bytes(b'weights')
    with util.open_url(url, cache_dir=str(tmp_path)) as fp:
        assert fp.read() == b'weights'
    assert util.open_url(url, cache_dir=str(tmp_path), return_filename=True) == str(tmp_path / 'net.pt')


def test_open_url_offline_error_names_where_to_put_the_file(tmp_path, monkeypatch):
    # An unroutable host: urlopen fails at once; the error is one line naming the cache path.
    url = 'http://127.0.0.1:9/models/inception.pt'
    monkeypatch.setenv(util.CACHE_ENV_VAR, str(tmp_path / 'cache'))
    with pytest.raises(util.DownloadError) as info:
        util.open_url(url, num_attempts=1, verbose=False, timeout=2)
    msg = str(info.value)
    assert '\n' not in msg
    expected = os.path.join(str(tmp_path / 'cache'), 'downloads', 'inception.pt')
    assert f'place the file at {expected}' in msg
    assert url in msg
    assert not os.path.exists(tmp_path / 'cache' / 'downloads' / 'inception.pt')


def test_cache_dir_env_override(monkeypatch, tmp_path):
    monkeypatch.setenv(util.CACHE_ENV_VAR, str(tmp_path))
    assert util.make_cache_dir_path('a', 'b') == os.path.join(str(tmp_path), 'a', 'b')
    monkeypatch.delenv(util.CACHE_ENV_VAR)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))
    assert util.make_cache_dir_path('a') == os.path.join(str(tmp_path / 'xdg'), 'stylegan2-softgan', 'a')


def test_import_is_light():
    # Importing the foundation packages must not pull torch, numpy or compile anything.
    code = ('import sys, dnnlib, torch_utils; '
            'heavy = [m for m in ("torch", "numpy", "scipy", "ot", "gudhi", "sklearn") if m in sys.modules]; '
            'print(",".join(heavy))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ''
