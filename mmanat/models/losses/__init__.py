from .info_nce_loss import InfoNCELoss
from .supcon_mean_loss import SupConMeanLoss

__all__ = ['InfoNCELoss', 'SupConMeanLoss']

from .pruned_infonce_loss import PrunedInfoNCELoss  # noqa: F401,E402
from .composability_loss import ComposabilityLoss  # noqa: F401,E402
from .decomposability_loss import DecomposabilityLoss  # noqa: F401,E402
from .localizability_loss import LocalizabilityLoss  # noqa: F401,E402
