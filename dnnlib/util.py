"""Small generic helpers: attribute dicts, construction by name, URL/cache opening, run folders.

Nothing here imports torch; importing this module is cheap.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import os
import re
import shutil
import sys
import tempfile
import time
import types
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

# ----------------------------------------------------------------------------


class EasyDict(dict):
    """A dict whose keys are also attributes: ``d.lr`` is ``d['lr']``."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    # dict's own pickling would skip the attribute protocol; keep it plain.
    def __reduce__(self):
        return (EasyDict, (dict(self),))


# ----------------------------------------------------------------------------
# Human-readable durations.


def format_time(seconds: float) -> str:
    """Format a duration like ``5s``, ``3m 04s``, ``2h 03m 04s`` or ``1d 02h 03m``."""
    s = int(round(max(float(seconds), 0.0)))
    days, rem = divmod(s, 86400)
    hours, rem = divmod(rem, 3600)
    minutes, secs = divmod(rem, 60)
    if days:
        return f'{days}d {hours:02d}h {minutes:02d}m'
    if hours:
        return f'{hours}h {minutes:02d}m {secs:02d}s'
    if minutes:
        return f'{minutes}m {secs:02d}s'
    return f'{secs}s'


# ----------------------------------------------------------------------------
# Construction by name. Settings flow as JSON-able dicts with a `class_name`.


def get_module_from_obj_name(obj_name: str) -> tuple[types.ModuleType, str]:
    """Split ``'pkg.mod.Class.attr'`` into the longest importable module and the remaining attribute path."""
    if not isinstance(obj_name, str) or not obj_name or not re.fullmatch(r'[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*', obj_name):
        raise ValueError(f'invalid object name {obj_name!r}: expected a dotted Python name like "package.module.Class"')
    parts = obj_name.split('.')
    for split in range(len(parts) - 1, 0, -1):
        module_name = '.'.join(parts[:split])
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            # Only swallow "this candidate module does not exist", never an import error *inside* it.
            if e.name is not None and (module_name == e.name or module_name.startswith(e.name + '.')):
                continue
            raise
        attr_path = '.'.join(parts[split:])
        try:
            _get_attr_path(module, attr_path)
        except AttributeError:
            continue
        return module, attr_path
    raise ValueError(f'cannot find {obj_name!r}: no importable module provides it')


def _get_attr_path(obj: Any, attr_path: str) -> Any:
    for part in attr_path.split('.'):
        obj = getattr(obj, part)
    return obj


def get_obj_by_name(name: str) -> Any:
    """Return the Python object with the given dotted name, importing its module."""
    module, attr_path = get_module_from_obj_name(name)
    return _get_attr_path(module, attr_path)


def call_func_by_name(*args, func_name: str, **kwargs) -> Any:
    """Look up a function by dotted name and call it."""
    func = get_obj_by_name(func_name)
    if not callable(func):
        raise TypeError(f'{func_name!r} is not callable')
    return func(*args, **kwargs)


def construct_class_by_name(*args, class_name: str, **kwargs) -> Any:
    """Look up a class by dotted name and instantiate it with the given arguments."""
    cls = get_obj_by_name(class_name)
    if not isinstance(cls, type):
        raise TypeError(f'{class_name!r} is not a class')
    return cls(*args, **kwargs)


# ----------------------------------------------------------------------------
# Atomic writes: a reader (or a process killed mid-write) sees the old file or the new one, never half.


@contextlib.contextmanager
def atomic_output(path: str, fsync: bool = False):
    """Yield a binary file object writing to a temporary file beside `path`; on success it is renamed
    to `path`, on any error it is removed and `path` is left as it was."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # The writer's pid is in the name so that remove_stale_temp_files can tell a killed write from a live one.
    try:
        fd, tmp = tempfile.mkstemp(prefix=f'{TEMP_PREFIX}{os.path.basename(path)}-{os.getpid()}-', dir=folder)
    except OSError as e:    # EACCES, EROFS, ENOSPC: name the file the caller asked for, not the temporary one
        raise OSError(e.errno, e.strerror, path) from None
    try:
        # mkstemp makes the file private (0600); the finished file gets the mode open() would give it.
        os.chmod(tmp, 0o666 & ~current_umask())
        with os.fdopen(fd, 'wb') as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(e, OSError) and e.filename is None:     # write() errors (ENOSPC, EIO) name no file
            raise OSError(e.errno, e.strerror, path) from None
        raise


TEMP_PREFIX = '.tmp-'
_TEMP_PID_RE = re.compile(r'-(\d+)-[^-]+$')


def remove_stale_temp_files(folder: str, min_age_s: float = 30.0, unnamed_age_s: float = 600.0) -> list[str]:
    """Remove the temporary files of atomic writes that were killed: their writer's pid no longer exists here and
    the file has not changed for `min_age_s` (a live writer on another machine sharing the folder keeps writing),
    or, for names without a pid, it has not changed for `unnamed_age_s`. Complete files never carry the prefix,
    so they are never touched. Returns the removed paths."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    now = time.time()
    for name in names:
        path = os.path.join(folder, name)
        if not name.startswith(TEMP_PREFIX) or not os.path.isfile(path):
            continue
        m = _TEMP_PID_RE.search(name)
        try:
            age = now - os.path.getmtime(path)
        except OSError:
            continue
        stale = age > min_age_s and not _process_exists(int(m.group(1))) if m is not None else age > unnamed_age_s
        if stale:
            try:
                os.remove(path)
                removed.append(path)
            except OSError:
                pass
    return removed


def _process_exists(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:     # someone else's live process
        return True
    return True


def current_umask() -> int:
    """The process's file-creation mask, read without changing it where /proc allows (os.umask can only
    be read by setting it, which would briefly affect files other threads create)."""
    try:
        with open('/proc/self/status', encoding='ascii') as f:
            for line in f:
                if line.startswith('Umask:'):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str, data: bytes) -> None:
    with atomic_output(path) as f:
        f.write(data)


# ----------------------------------------------------------------------------
# Cache directory and URL opening.

CACHE_ENV_VAR = 'GANMC_CACHE_DIR'
CACHE_ENV_VARS = (CACHE_ENV_VAR, 'DNNLIB_CACHE_DIR')     # first one set wins


def make_cache_dir_path(*paths: str) -> str:
    """Path inside the cache directory: ``$GANMC_CACHE_DIR`` if set, else ``$DNNLIB_CACHE_DIR`` (the variable
    of NVIDIA's dnnlib) if set, else ``$XDG_CACHE_HOME/stylegan2-softgan`` (``~/.cache/stylegan2-softgan``
    by default). The project's own variable wins when both are set. The directory is not created."""
    root = next((os.environ[v] for v in CACHE_ENV_VARS if os.environ.get(v)), None)
    if not root:
        base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
        root = os.path.join(base, 'stylegan2-softgan')
    return os.path.join(root, *paths)


class DownloadError(OSError):
    """A remote file could not be fetched and no cached copy exists. The message says where to put the file."""


def is_url(obj: Any, allow_file_urls: bool = False) -> bool:
    """True if `obj` is an http(s) URL (or file:// when allowed)."""
    if not isinstance(obj, str) or '://' not in obj:
        return False
    parsed = urllib.parse.urlparse(obj)
    if parsed.scheme in ('http', 'https'):
        return bool(parsed.netloc)
    return allow_file_urls and parsed.scheme == 'file'


def url_basename(url: str) -> str:
    """The file name at the end of a URL's path (query and fragment removed)."""
    name = os.path.basename(urllib.parse.urlparse(url).path)
    name = re.sub(r'[^\w.\-]', '_', name)
    return name or 'download'


def url_cache_paths(url: str, cache_dir: str) -> list[str]:
    """Where a cached copy of `url` may live: the plain file name (what a user places by hand) and a
    digest-prefixed name (what a download writes, immune to clashes between URLs with equal names)."""
    digest = hashlib.md5(url.encode('utf-8')).hexdigest()
    name = url_basename(url)
    return [os.path.join(cache_dir, name), os.path.join(cache_dir, f'{digest}_{name}')]


def open_url(url: str, cache_dir: str | None = None, num_attempts: int = 3, verbose: bool = True,
             return_filename: bool = False, cache: bool = True, timeout: float = 30.0):
    """Open a local path, a ``file://`` URL or an ``http(s)://`` URL for binary reading.

    Remote files are cached in `cache_dir` (default: ``make_cache_dir_path('downloads')``). When the
    file is not cached and cannot be downloaded, raises DownloadError with one line naming the place
    where the user can put the file by hand.
    """
    if not isinstance(url, (str, os.PathLike)):
        raise TypeError(f'open_url expects a path or URL string, got {type(url).__name__}')
    url = os.fspath(url)

    # Local files: plain paths and file:// URLs.
    if not is_url(url):
        if '://' in url and not url.startswith('file://'):
            raise ValueError(f'unsupported URL scheme in {url!r}: expected a local path, file://, http:// or https://')
        path = urllib.request.url2pathname(urllib.parse.urlparse(url).path) if url.startswith('file://') else url
        path = os.path.expanduser(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f'{path}: no such file')
        return path if return_filename else open(path, 'rb')

    if cache_dir is None:
        cache_dir = make_cache_dir_path('downloads')
    candidates = url_cache_paths(url, cache_dir)
    if cache:
        for path in candidates:
            if os.path.isfile(path):
                return path if return_filename else open(path, 'rb')

    data = _download(url, num_attempts=num_attempts, verbose=verbose, timeout=timeout,
                     manual_path=candidates[0])

    if cache:
        dst = candidates[1]
        atomic_write_bytes(dst, data)
        return dst if return_filename else open(dst, 'rb')

    if return_filename:
        raise ValueError('open_url: return_filename=True requires cache=True for remote URLs')
    return io.BytesIO(data)


def _download(url: str, num_attempts: int, verbose: bool, timeout: float, manual_path: str) -> bytes:
    last_error: BaseException | None = None
    if verbose:
        print(f'Downloading {url} ...', flush=True)
    for attempt in range(max(int(num_attempts), 1)):
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return response.read()
        except urllib.error.HTTPError as e:
            # The server answered: retrying will not change a 404.
            last_error = e
            if 400 <= e.code < 500:
                break
        except (urllib.error.URLError, OSError) as e:
            last_error = e
        if attempt + 1 < num_attempts:
            time.sleep(min(2.0 ** attempt, 5.0))
    reason = getattr(last_error, 'reason', None) or last_error
    raise DownloadError(f'cannot download {url} ({reason}); if this machine is offline, '
                        f'place the file at {manual_path} (or pass a local path instead of the URL)')


# ----------------------------------------------------------------------------
# Progress bars (tqdm) on stderr: drawn only on a terminal, so log files and pipes get no bar updates.


class _NoBar:
    """Stands in for a bar that is not drawn (not a terminal, or tqdm not installed)."""
    disable = True

    def update(self, n=1):
        pass

    def close(self):
        pass

    def set_postfix_str(self, s='', refresh=True):
        pass


def stderr_is_terminal() -> bool:
    return hasattr(sys.stderr, 'isatty') and sys.stderr.isatty()


def progress_bar(total: int | float | None, desc: str, unit: str = 'img', enabled: bool = True):
    """A tqdm bar with ETA on stderr, or a silent stand-in when `enabled` is false, stderr is not a
    terminal, or tqdm is missing. ``TQDM_DISABLE=1`` in the environment turns every bar off."""
    if not enabled or not stderr_is_terminal():
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True,
                unit_scale=True, mininterval=0.5)


def console_print(msg: str, file=None) -> None:
    """print() that first clears any progress bar drawn on the terminal and redraws it below the text."""
    file = sys.stdout if file is None else file
    tqdm_module = sys.modules.get('tqdm')
    if tqdm_module is None:
        print(msg, file=file, flush=True)
        return
    with tqdm_module.tqdm.external_write_mode(file=file):
        print(msg, file=file, flush=True)


# ----------------------------------------------------------------------------
# Run folders.


def kimg_tag(nimg: int, exact: bool = False) -> str:
    """The kimg part of snapshot and grid file names: stylegan2-ada's whole kimg (``000004`` after 4008
    images), or with `exact` the image count as kimg with three decimals (``000004.008``; ``000004`` at a
    whole kimg). Runs whose ticks are shorter than 1 kimg use `exact`, so their files never share a name."""
    nimg = int(nimg)
    if nimg < 0:
        raise ValueError(f'image count must be >= 0, got {nimg}')
    whole, part = divmod(nimg, 1000)
    return f'{whole:06d}' if part == 0 or not exact else f'{whole:06d}.{part:03d}'


KIMG_TAG_RE = r'(\d+)(?:\.(\d{3}))?'


def nimg_from_kimg_tag(whole: str, part: str | None) -> int:
    """Inverse of kimg_tag from the two groups of KIMG_TAG_RE."""
    return int(whole) * 1000 + (int(part) if part else 0)


_RUN_DIR_RE = re.compile(r'^(\d+)-')


def make_run_dir(outdir: str, desc: str, create: bool = True) -> str:
    """Create ``<outdir>/<NNNNN>-<desc>`` with NNNNN one more than the largest number already there.

    Safe against concurrent callers: if another process takes the number first, the next one is tried.
    With ``create=False`` only the would-be path is returned (for --dry-run).
    """
    if not desc or not re.fullmatch(r'[\w.\-]+', desc):
        raise ValueError(f'invalid run description {desc!r}: use letters, digits, ".", "_" and "-"')
    outdir = os.path.expanduser(outdir)
    for _ in range(1000):
        existing = []
        if os.path.isdir(outdir):
            for name in os.listdir(outdir):
                m = _RUN_DIR_RE.match(name)
                if m and os.path.isdir(os.path.join(outdir, name)):
                    existing.append(int(m.group(1)))
        run_id = max(existing, default=-1) + 1
        path = os.path.join(outdir, f'{run_id:05d}-{desc}')
        if not create:
            return path
        os.makedirs(outdir, exist_ok=True)
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f'could not create a run folder in {outdir}')


def remove_tree_quietly(path: str) -> None:
    """Remove a folder if it exists (used to undo a run folder created before a failure)."""
    shutil.rmtree(path, ignore_errors=True)
