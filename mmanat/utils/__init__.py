from .checkpoint import (allow_mmengine_checkpoint_globals, fit_state_dict,
                         load_checkpoint_file, state_dict_of)
from .device import default_device, model_device
from .dist import setup_distributed
from .exceptions import InvalidInputError, MMAnatError
from .setup_env import register_all_modules

__all__ = ['MMAnatError', 'InvalidInputError', 'register_all_modules', 'setup_distributed',
           'allow_mmengine_checkpoint_globals', 'load_checkpoint_file', 'state_dict_of',
           'fit_state_dict', 'default_device', 'model_device']
from .misc import to_plain  # noqa: E402

__all__ += ['to_plain']
