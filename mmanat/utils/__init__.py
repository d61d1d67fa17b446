from .exceptions import InvalidInputError, MMAnatError
from .setup_env import register_all_modules

__all__ = ['MMAnatError', 'InvalidInputError', 'register_all_modules']
