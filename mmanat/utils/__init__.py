"""Bottom-layer helpers: user-facing errors, devices, checkpoint loading, distributed set-up.

Names are loaded on first use (PEP 562), so ``import mmanat`` and the ``--help`` of every
console command stay fast: only the helpers that need torch import it.
"""
from importlib import import_module

from .exceptions import InvalidInputError, MissingDependencyError, MMAnatError

# public name -> submodule that defines it
_LAZY = {
    'allow_mmengine_checkpoint_globals': 'checkpoint',
    'fit_state_dict': 'checkpoint',
    'load_checkpoint_file': 'checkpoint',
    'state_dict_of': 'checkpoint',
    'default_device': 'device',
    'model_device': 'device',
    'setup_distributed': 'dist',
    'register_all_modules': 'setup_env',
    'to_plain': 'misc',
}

__all__ = ['MMAnatError', 'InvalidInputError', 'MissingDependencyError'] + sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(f'.{_LAZY[name]}', __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
