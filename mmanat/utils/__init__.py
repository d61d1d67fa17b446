from .checkpoint import allow_mmengine_checkpoint_globals
from .dist import setup_distributed
from .exceptions import InvalidInputError, MMAnatError
from .setup_env import register_all_modules

__all__ = ['MMAnatError', 'InvalidInputError', 'register_all_modules', 'setup_distributed',
           'allow_mmengine_checkpoint_globals']
