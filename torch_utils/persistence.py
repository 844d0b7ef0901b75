"""Rebuilding modules from data: a registry of persistent classes and their JSON-able constructor kwargs.

stylegan2-ada-pytorch pickles the source code of its networks into every snapshot and executes it
when the snapshot is loaded. We store data only: for each module, the registered class name and the
keyword arguments it was constructed with (JSON), plus its state dict. Loading looks the class name
up in this registry (importing only our own packages to populate it) and refuses anything else, so a
crafted checkpoint cannot make the loader call an arbitrary callable.
"""

from __future__ import annotations

import copy
import functools
import importlib
import inspect
import json
from typing import Any

import dnnlib

# Only modules of these packages are imported to find a class named in a checkpoint.
ALLOWED_PACKAGES = ('training', 'metrics', 'stylegan2_softgan', 'torch_utils')

_registry: dict[str, type] = {}


def _qualified_name(cls: type) -> str:
    return f'{cls.__module__}.{cls.__qualname__}'


def _check_json(value: Any, where: str) -> None:
    try:
        json.dumps(value, allow_nan=True)
    except (TypeError, ValueError) as e:
        raise TypeError(f'{where}: constructor arguments of persistent classes must be JSON-able ({e})') from None


def persistent_class(cls: type) -> type:
    """Class decorator: record the constructor's arguments in ``self.init_kwargs`` and register the class.

    Positional arguments are bound to their parameter names, so the record is always keyword-only
    and can rebuild the object as ``cls(**init_kwargs)``.
    """
    if not isinstance(cls, type):
        raise TypeError('persistent_class decorates classes')
    name = _qualified_name(cls)
    if '<locals>' in name:
        raise TypeError(f'{name}: persistent classes must be defined at module level')
    if name in _registry and _registry[name] is not cls:
        # Re-executing the same module (e.g. importlib.reload) legitimately re-registers.
        if _registry[name].__module__ != cls.__module__:
            raise ValueError(f'persistent class name {name} is already registered')
    orig_init = cls.__init__
    signature = inspect.signature(orig_init)

    @functools.wraps(orig_init)
    def __init__(self, *args, **kwargs):
        # Only the outermost constructor records: a persistent subclass calling super().__init__
        # must not overwrite its own record with its parent's.
        if '_persistent_recorded' not in self.__dict__:
            bound = signature.bind(self, *args, **kwargs)
            record = {}
            for pname, value in list(bound.arguments.items())[1:]:
                kind = signature.parameters[pname].kind
                if kind is inspect.Parameter.VAR_KEYWORD:
                    record.update(value)
                elif kind is inspect.Parameter.VAR_POSITIONAL:
                    if value:
                        raise TypeError(f'{name}: persistent classes cannot take *args')
                else:
                    record[pname] = value
            _check_json(record, name)
            object.__setattr__(self, '_persistent_recorded', True)
            object.__setattr__(self, '_init_kwargs_record', copy.deepcopy(record))
        orig_init(self, *args, **kwargs)

    cls.__init__ = __init__
    cls.persistent_name = name
    _registry[name] = cls
    return cls


def is_persistent(obj: Any) -> bool:
    return '_init_kwargs_record' in getattr(obj, '__dict__', {})


def get_init_kwargs(obj: Any) -> dnnlib.EasyDict:
    """The keyword arguments `obj` was constructed with (a deep copy)."""
    if not is_persistent(obj):
        raise TypeError(f'{type(obj).__name__} is not an instance of a persistent class')
    return dnnlib.EasyDict(copy.deepcopy(obj.__dict__['_init_kwargs_record']))


def get_config(obj: Any) -> dict:
    """JSON-able description from which ``build`` reconstructs an equivalent (untrained) object."""
    return {'class_name': type(obj).persistent_name, 'init_kwargs': dict(get_init_kwargs(obj))}


def lookup_class(class_name: str, registry: dict[str, type] | None = None, what: str = 'persistent class') -> type:
    """The registered class with this name, importing it from our own packages if needed."""
    registry = _registry if registry is None else registry
    if not isinstance(class_name, str):
        raise ValueError(f'class name must be a string, got {type(class_name).__name__}')
    parts = class_name.split('.')
    if class_name not in registry and parts[0] in ALLOWED_PACKAGES:
        # The class may be nested (a qualname with dots): import the longest prefix that is a module.
        for i in range(len(parts) - 1, 0, -1):
            candidate = '.'.join(parts[:i])
            try:
                importlib.import_module(candidate)
                break
            except ModuleNotFoundError as e:
                if e.name != candidate:
                    raise
    cls = registry.get(class_name)
    if cls is None:
        raise ValueError(f'refusing to construct {class_name!r}: it is not a registered {what} '
                         f'of this project')
    return cls


def build(config: dict, **override_kwargs) -> Any:
    """Construct an object from ``get_config`` output. `override_kwargs` replace recorded arguments."""
    if not isinstance(config, dict) or set(config) != {'class_name', 'init_kwargs'}:
        raise ValueError('invalid module config: expected a dict with exactly "class_name" and "init_kwargs"')
    cls = lookup_class(config['class_name'])
    kwargs = config['init_kwargs']
    if not isinstance(kwargs, dict):
        raise ValueError(f'invalid module config for {config["class_name"]}: init_kwargs must be a dict')
    _check_json(kwargs, config['class_name'])
    kwargs = copy.deepcopy(kwargs)
    kwargs.update(override_kwargs)
    return cls(**kwargs)


# ----------------------------------------------------------------------------
# Data classes: objects that are not networks but whose settings a file may still carry (the data set of a
# snapshot's meta, `{"class_name": ..., **kwargs}`). Only classes registered here can be named, and only
# with the keyword parameters their constructors declare, each a JSON scalar or a list of them.

_data_registry: dict[str, type] = {}

_JSON_SCALARS = (str, int, float, bool, type(None))


def data_class(cls: type) -> type:
    """Class decorator: allow `cls` to be built from file data by its qualified name (see build_data)."""
    if not isinstance(cls, type):
        raise TypeError('data_class decorates classes')
    _data_registry[_qualified_name(cls)] = cls
    return cls


def _accepted_kwargs(cls: type) -> set[str]:
    """Keyword parameters of cls.__init__, following **kwargs up the base classes' constructors."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if '__init__' not in klass.__dict__ or klass is object:
            continue
        params = list(inspect.signature(klass.__dict__['__init__']).parameters.values())[1:]
        names.update(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return names


def check_data_kwargs(kwargs: Any) -> type:
    """Validate `{"class_name": ..., **kwargs}` read from a file; returns the class. ValueError names the field."""
    if not isinstance(kwargs, dict):
        raise ValueError(f'expected an object with "class_name", got {type(kwargs).__name__}')
    if 'class_name' not in kwargs:
        raise ValueError('class_name: missing')
    try:
        cls = lookup_class(kwargs['class_name'], registry=_data_registry, what='data class')
    except ValueError as e:
        raise ValueError(f'class_name: {e}') from None
    accepted = _accepted_kwargs(cls)
    for key, value in kwargs.items():
        if key == 'class_name':
            continue
        if key not in accepted:
            raise ValueError(f'{key}: not a parameter of {kwargs["class_name"]} (it takes {", ".join(sorted(accepted))})')
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(v, _JSON_SCALARS) for v in items):
            raise ValueError(f'{key}: expected a number, string, boolean, null or a list of them')
    return cls


def build_data(kwargs: dict) -> Any:
    """Construct a registered data class from `{"class_name": ..., **kwargs}` after check_data_kwargs."""
    cls = check_data_kwargs(kwargs)
    return cls(**{k: copy.deepcopy(v) for k, v in kwargs.items() if k != 'class_name'})
