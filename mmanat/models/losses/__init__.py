from .info_nce_loss import InfoNCELoss

__all__ = ['InfoNCELoss']
