"""The DeepLesion "DLS" lesion-tracking evaluation of DLT-layout records.

The file layout itself (:class:`LesionPair`, reading and writing ``test.json`` and prediction
files) lives in :mod:`mmanat.datasets.dlt_format`, below this layer, so that the
``LesionPairDataset`` can read it; its names are re-exported here.
"""
from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

from ..datasets.dlt_format import (KEYS, REQUIRED, LesionPair,  # noqa: F401
                                   attach_predictions, mm_to_voxel, read_dlt_json,
                                   read_predictions, voxel_to_mm, write_dlt_json,
                                   write_predictions)
from ..utils.exceptions import InvalidInputError
from .metrics.lesion_tracking_metric import lesion_tracking_metrics

__all__ = [
    'LesionPair', 'read_dlt_json', 'write_dlt_json', 'read_predictions', 'write_predictions',
    'attach_predictions', 'voxel_to_mm', 'mm_to_voxel', 'evaluate_dlt'
]


def evaluate_dlt(records: Sequence[LesionPair]) -> Dict[str, float]:
    """DLS lesion-tracking metrics of records carrying ``pred_center`` (see
    :mod:`mmanat.evaluation.metrics.lesion_tracking_metric`), computed in the DLT frame
    (voxel differences times the target spacing). Records without a prediction count as
    misses."""
    if not records:
        raise InvalidInputError('evaluate_dlt: no lesion pairs.')
    spacing = np.stack([r.target_spacing for r in records])
    gt = np.stack([r.target_center for r in records]) * spacing
    pred = np.stack([r.pred_center if r.pred_center is not None else np.full(3, np.nan)
                     for r in records]) * spacing
    radius = np.array([r.radius_mm('target') for r in records])
    lo = hi = None
    if all(r.target_box is not None for r in records):
        boxes = np.stack([r.target_box for r in records])
        a, b = boxes[:, :3] * spacing, (boxes[:, :3] + boxes[:, 3:]) * spacing
        lo, hi = np.minimum(a, b), np.maximum(a, b)
    out = lesion_tracking_metrics(pred, gt, radius, lo, hi)
    out['n_missing'] = int(sum(r.pred_center is None for r in records))
    return out
