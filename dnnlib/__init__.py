"""Generic helpers with no dependency on torch: EasyDict, construction by name, URL opening with a cache."""

from . import util
from .util import EasyDict, make_cache_dir_path

__all__ = ['util', 'EasyDict', 'make_cache_dir_path']
