from .info_nce_loss import InfoNCELoss
from .supcon_mean_loss import SupConMeanLoss

__all__ = ['InfoNCELoss', 'SupConMeanLoss']

from .pruned_infonce_loss import PrunedInfoNCELoss  # noqa: F401,E402
