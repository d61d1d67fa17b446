from .sam import SAM
from .uae_s import UAES

__all__ = ['SAM', 'UAES']

from .adam import Adam  # noqa: F401,E402
