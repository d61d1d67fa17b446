"""Mean ROC AUC over the classes of a multi-label classification (ChestX-ray14's metric)."""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric

from ...registry import METRICS
from ...utils.exceptions import InvalidInputError


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC of one class: the Mann-Whitney U statistic with tied scores counted half.

    ``nan`` when ``labels`` holds only one class (AUC undefined). Written with scipy's
    ``rankdata`` so the package does not need scikit-learn.
    """
    from scipy.stats import rankdata
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel() > 0.5
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float('nan')
    ranks = rankdata(scores)  # average ranks for ties
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def mean_auc(scores: np.ndarray, labels: np.ndarray,
             classes: Optional[Sequence[str]] = None) -> Dict[str, float]:
    """Per-class AUCs and their mean over the classes where AUC is defined.

    Args:
        scores, labels: ``(N, C)`` predicted scores and multi-hot ground truth.

    Returns:
        ``{'mAUC': mean, 'AUC/<class>': auc, ..., 'classes_scored': k}``.
    """
    scores, labels = np.asarray(scores), np.asarray(labels)
    if scores.shape != labels.shape or scores.ndim != 2:
        raise InvalidInputError(f'mean_auc: scores {scores.shape} and labels {labels.shape} '
                                'must both be (N, C).')
    names = list(classes) if classes is not None else [str(c) for c in range(scores.shape[1])]
    out = {f'AUC/{n}': roc_auc(scores[:, c], labels[:, c]) for c, n in enumerate(names)}
    valid = [v for v in out.values() if not np.isnan(v)]
    out['mAUC'] = float(np.mean(valid)) if valid else float('nan')
    out['classes_scored'] = len(valid)
    return out


@METRICS.register_module()
class MultiLabelAUC(BaseMetric):
    """Mean ROC AUC over classes (``mAUC``) plus per-class AUCs.

    Reads ``pred_score`` and ``gt_label`` of every predicted sample (see
    :class:`~mmanat.models.algorithms.RadiographClassifier`). Classes whose test labels are
    all 0 or all 1 have no AUC and are left out of the mean (``classes_scored`` says how
    many counted).
    """

    default_prefix = 'cls'

    def process(self, data_batch, data_samples: Sequence) -> None:
        for s in data_samples:
            get = s.get if isinstance(s, dict) else (lambda k: getattr(s, k, None))
            score, label = get('pred_score'), get('gt_label')
            if score is None or label is None:
                raise InvalidInputError('MultiLabelAUC needs pred_score and gt_label in every '
                                        'sample (a test set with labels).')
            self.results.append((np.asarray(score, dtype=np.float64),
                                 np.asarray(label, dtype=np.float64)))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        scores = np.stack([r[0] for r in results])
        labels = np.stack([r[1] for r in results])
        classes = (self.dataset_meta or {}).get('classes')
        if classes is not None and len(classes) != scores.shape[1]:
            classes = None
        return mean_auc(scores, labels, classes)
