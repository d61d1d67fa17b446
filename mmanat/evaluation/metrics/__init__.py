"""Registered evaluation metrics: landmark radial error, lesion-tracking CPM/MED."""
from .landmark_metric import LandmarkMetric, landmark_summary, radial_errors, summarize_errors
from .lesion_tracking_metric import LesionTrackingMetric, lesion_tracking_metrics

__all__ = [
    'LandmarkMetric', 'radial_errors', 'summarize_errors', 'landmark_summary',
    'LesionTrackingMetric', 'lesion_tracking_metrics'
]
from .multilabel_auc import MultiLabelAUC, mean_auc, roc_auc  # noqa: E402

__all__ += ['MultiLabelAUC', 'mean_auc', 'roc_auc']
