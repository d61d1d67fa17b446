"""Lesion-tracking metrics of the DeepLesion "DLS" benchmark (Deep Lesion Tracker, Cai et
al., CVPR 2021).

Definitions follow the evaluation script of the Deep Lesion Tracker project
(https://github.com/JimmyCai91/DLT, ``evaluation.py``, ``LTEvaluator``):

* centre error ``d`` = Euclidean distance in mm between the predicted and the annotated centre
  of the target lesion (DLT: voxel differences times the target spacing, per axis);
* lesion radius ``r`` (mm) = half of the long RECIST diameter of the target lesion times the
  in-plane spacing (``max(target recist diameter) / 2 * target spacing[0]``); where no RECIST
  diameter is given, :mod:`mmanat.evaluation.dlt_format` derives it from the target box (half
  of its larger in-plane side in mm);
* **CPM@Radius** = fraction of pairs with ``d / max(r, 1e-3) < 1`` (DLT ``offset_ratio_th=1``,
  strict inequality);
* **CPM@10mm** = fraction with ``d <= min(r, 10 mm)`` (DLT ``offset_ratio_th=10``);
* **hit@10mm** = fraction with ``d <= 10 mm`` whatever the lesion size (DLT ``evaluation.py``
  keeps this plain threshold as a commented-out alternative of its CPM@10mm line); it is
  never below CPM@10mm, and unlike CPM@10mm it is not capped by small lesions' radii;
* **MED** = mean (population std) of ``d``, and per axis the mean (std) of ``|d_x|``, ``|d_y|``,
  ``|d_z|``;
* box accuracy (DLT's "lesion tracking accuracy") = fraction of predicted centres inside the
  target box, borders included; reported when boxes are given.

A failed prediction (non-finite) counts as a miss everywhere and is left out of MED.

Reading the numbers beside the papers: UAE (Bai et al., 2023, arXiv:2311.15111, DeepLesion
lesion-tracking table) reports CPM@Radius 0.967 and CPM@10mm 0.883, computed with the DLT
evaluation script; they correspond to the keys ``cpm_radius`` and ``cpm_10mm`` here (the
``min(r, 10 mm)`` rule). ``hit_10mm`` has no number in that table: it is the plain 10 mm hit
rate, reported for comparison with works that count a hit at a fixed 10 mm. ``box_acc`` is
DLT's "lesion tracking accuracy" (inside the target box).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric

from ...registry import METRICS
from ...utils.exceptions import InvalidInputError

AXES = ('x', 'y', 'z')


def _arr(value, what: str, width: Optional[int] = 3) -> np.ndarray:
    if hasattr(value, 'xyz'):
        value = value.xyz
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value, dtype=np.float64)
    if width is None:
        return arr.reshape(-1)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != width:
        raise InvalidInputError(f'{what} must have shape (N, {width}), got {arr.shape}.')
    return arr


def lesion_tracking_metrics(pred_mm, gt_mm, radius_mm, box_min_mm=None,
                            box_max_mm=None) -> Dict[str, float]:
    """CPM@Radius, CPM@10mm, hit@10mm and MED (overall and per axis) of lesion-centre
    predictions.

    Args:
        pred_mm: ``(N, 3)`` predicted target-lesion centres (mm); non-finite rows = failures.
        gt_mm: ``(N, 3)`` annotated target-lesion centres (mm), same frame as ``pred_mm``.
        radius_mm: ``(N,)`` target-lesion radii (mm).
        box_min_mm, box_max_mm: optional ``(N, 3)`` corners of the target boxes (mm, same
            frame); when given, ``box_acc`` is reported.

    Returns:
        dict with ``n``, ``n_failed``, ``cpm_radius`` (UAE's / DLT's CPM@Radius),
        ``cpm_10mm`` (UAE's / DLT's CPM@10mm: ``d <= min(r, 10 mm)``), ``hit_10mm`` (plain
        ``d <= 10 mm``), ``med``, ``med_std``, ``med_x``/``med_y``/``med_z`` and their
        ``_std``, and ``box_acc`` if boxes are given.
    """
    pred, gt = _arr(pred_mm, 'pred_mm'), _arr(gt_mm, 'gt_mm')
    radius = _arr(radius_mm, 'radius_mm', None)
    if pred.shape != gt.shape or radius.shape[0] != gt.shape[0]:
        raise InvalidInputError(
            f'lesion_tracking_metrics: {len(pred)} predictions, {len(gt)} ground-truth centres '
            f'and {len(radius)} radii; give one of each per lesion pair.')
    if not np.all(np.isfinite(gt)) or not np.all(np.isfinite(radius)) or np.any(radius < 0):
        raise InvalidInputError('ground-truth centres must be finite and radii finite >= 0.')
    n = len(gt)
    diff = pred - gt
    dist = np.linalg.norm(diff, axis=1)
    ok = np.isfinite(dist)
    nan = float('nan')
    with np.errstate(invalid='ignore'):
        hit_radius = ok & (dist / np.maximum(radius, 1e-3) < 1.0)
        hit_10 = ok & (dist <= np.minimum(radius, 10.0))
        hit_10_plain = ok & (dist <= 10.0)
    out: Dict[str, float] = {
        'n': n, 'n_failed': int(n - ok.sum()),
        'cpm_radius': float(hit_radius.mean()) if n else nan,
        'cpm_10mm': float(hit_10.mean()) if n else nan,
        'hit_10mm': float(hit_10_plain.mean()) if n else nan,
        'med': float(dist[ok].mean()) if ok.any() else nan,
        'med_std': float(dist[ok].std()) if ok.any() else nan,
    }
    absd = np.abs(diff[ok])
    for i, ax in enumerate(AXES):
        out[f'med_{ax}'] = float(absd[:, i].mean()) if ok.any() else nan
        out[f'med_{ax}_std'] = float(absd[:, i].std()) if ok.any() else nan
    if box_min_mm is not None and box_max_mm is not None:
        lo, hi = _arr(box_min_mm, 'box_min_mm'), _arr(box_max_mm, 'box_max_mm')
        if lo.shape != gt.shape or hi.shape != gt.shape:
            raise InvalidInputError('box_min_mm / box_max_mm must be (N, 3) like gt_mm.')
        lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
        with np.errstate(invalid='ignore'):
            inside = ok & np.all((pred >= lo) & (pred <= hi), axis=1)
        out['box_acc'] = float(inside.mean()) if n else nan
    return out


def _get(sample, key):
    if isinstance(sample, dict):
        return sample.get(key)
    return getattr(sample, key, None)


@METRICS.register_module()
class LesionTrackingMetric(BaseMetric):
    """CPM@Radius, CPM@10mm, hit@10mm and MED for the mmengine evaluator (keys in
    :func:`lesion_tracking_metrics`).

    Each data sample (dict or data element) carries one lesion pair: the predicted target
    centre ``pred_center`` (mm), the annotated ``gt_center`` (mm) and ``gt_radius`` (mm);
    optionally ``gt_box_min`` / ``gt_box_max`` (mm) for the box accuracy. Key names are
    configurable.

    Config example::

        test_evaluator = dict(type='LesionTrackingMetric')
    """

    default_prefix = 'lesion'

    def __init__(self, pred_key: str = 'pred_center', gt_key: str = 'gt_center',
                 radius_key: str = 'gt_radius', box_min_key: str = 'gt_box_min',
                 box_max_key: str = 'gt_box_max', collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.keys = (pred_key, gt_key, radius_key, box_min_key, box_max_key)

    def process(self, data_batch, data_samples: Sequence) -> None:
        """Store (pred, gt, radius, box_min, box_max) per sample."""
        pk, gk, rk, bmin, bmax = self.keys
        for i, sample in enumerate(data_samples):
            pred, gt, rad = _get(sample, pk), _get(sample, gk), _get(sample, rk)
            if gt is None or rad is None:
                raise InvalidInputError(
                    f'LesionTrackingMetric: data sample {i} lacks {gk!r} or {rk!r} (the '
                    'annotated target centre and radius in mm).')
            gt = _arr(gt, gk)
            pred = np.full_like(gt, np.nan) if pred is None else _arr(pred, pk)
            rad = _arr(rad, rk, None)
            lo, hi = _get(sample, bmin), _get(sample, bmax)
            lo = None if lo is None else _arr(lo, bmin)
            hi = None if hi is None else _arr(hi, bmax)
            self.results.append((pred, gt, rad, lo, hi))

    def compute_metrics(self, results: List) -> Dict[str, float]:
        """Aggregate every stored pair with :func:`lesion_tracking_metrics`."""
        if not results:
            return lesion_tracking_metrics(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0))
        pred = np.concatenate([r[0] for r in results])
        gt = np.concatenate([r[1] for r in results])
        rad = np.concatenate([r[2] for r in results])
        boxes = all(r[3] is not None and r[4] is not None for r in results)
        lo = np.concatenate([r[3] for r in results]) if boxes else None
        hi = np.concatenate([r[4] for r in results]) if boxes else None
        return lesion_tracking_metrics(pred, gt, rad, lo, hi)
