from .sam import SAM
from .uae_s import UAES

__all__ = ['SAM', 'UAES']

from .adam import Adam  # noqa: F401,E402
from .radiograph_classifier import RadiographClassifier  # noqa: F401,E402
from .adam_v2 import AdamV2  # noqa: F401,E402
