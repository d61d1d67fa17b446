"""Landmark localisation error: mean radial error (MRE) in mm and its companions.

All coordinates are world millimetres (LPS, ``(x, y, z)``), so the errors are physical
distances whatever the voxel spacing of the images.

A prediction that failed (a row with a non-finite coordinate, e.g. a registration that did not
converge) is counted in ``n`` and in ``n_failed``, never as a hit (``within_5mm`` /
``within_10mm`` count it as a miss), and is left out of the mean/median/percentile statistics,
which are taken over the ``n - n_failed`` finite errors.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric

from ...registry import METRICS
from ...utils.exceptions import InvalidInputError

AXES = ('x', 'y', 'z')


def _as_points(value, what: str) -> np.ndarray:
    """An ``(N, D)`` float array from a PointSet, tensor, list or array."""
    if hasattr(value, 'xyz'):  # PointSet
        value = value.xyz
    if hasattr(value, 'detach'):  # torch tensor
        value = value.detach().cpu().numpy()
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] not in (2, 3):
        raise InvalidInputError(
            f'{what} must be an (N, 3) or (N, 2) array of world coordinates in mm, got shape '
            f'{arr.shape}.')
    return arr


def radial_errors(pred_mm, gt_mm) -> np.ndarray:
    """Euclidean distance (mm) between predicted and ground-truth points, one per row.

    Args:
        pred_mm: ``(N, D)`` predicted world coordinates (mm); NaN rows mark failures.
        gt_mm: ``(N, D)`` ground-truth world coordinates (mm).

    Returns:
        ``(N,)`` radial errors; NaN where the prediction is not finite.
    """
    pred, gt = _as_points(pred_mm, 'pred_mm'), _as_points(gt_mm, 'gt_mm')
    if pred.shape != gt.shape:
        raise InvalidInputError(
            f'pred_mm has shape {pred.shape} but gt_mm has shape {gt.shape}; give one '
            'prediction per ground-truth point, in the same order.')
    if not np.all(np.isfinite(gt)):
        raise InvalidInputError('gt_mm contains non-finite coordinates; fix the annotation.')
    return np.linalg.norm(pred - gt, axis=1)


def summarize_errors(errors, thresholds: Sequence[float] = (5.0, 10.0)) -> Dict[str, float]:
    """Summary statistics of landmark errors.

    Args:
        errors: either ``(N,)`` radial errors in mm, or ``(N, D)`` displacement vectors
            ``pred - gt`` in mm (then the per-axis mean absolute errors are reported too).
            Non-finite entries mark failed predictions (see the module docstring).
        thresholds: distances (mm) for the ``within_<t>mm`` hit fractions.

    Returns:
        dict with ``n``, ``n_failed``, ``mre`` (mean radial error), ``std`` (population
        standard deviation), ``median``, ``p90`` (90th percentile), ``max``,
        ``within_5mm``, ``within_10mm`` (fractions of all ``n`` points) and, for
        displacement input, ``mae_x``, ``mae_y``, ``mae_z`` (mean absolute error per world
        axis). Statistics of an empty (or all-failed) set are NaN.
    """
    arr = np.asarray(errors, dtype=np.float64)
    if arr.ndim == 2:
        if arr.shape[1] not in (2, 3):
            raise InvalidInputError(
                f'errors of shape {arr.shape}: expected (N,) radial errors or (N, 3) '
                'displacements pred - gt.')
        vectors = arr
        radial = np.linalg.norm(arr, axis=1)
    elif arr.ndim == 1:
        vectors = None
        radial = arr
    else:
        raise InvalidInputError(f'errors must be 1D or 2D, got shape {arr.shape}.')
    if np.any(radial[np.isfinite(radial)] < 0):
        raise InvalidInputError('radial errors must be >= 0 (distances in mm).')
    n = int(radial.shape[0])
    ok = np.isfinite(radial)
    good = radial[ok]
    nan = float('nan')
    out: Dict[str, float] = {'n': n, 'n_failed': int(n - ok.sum())}
    if good.size:
        out.update(mre=float(good.mean()), std=float(good.std()),
                   median=float(np.median(good)), p90=float(np.percentile(good, 90)),
                   max=float(good.max()))
    else:
        out.update(mre=nan, std=nan, median=nan, p90=nan, max=nan)
    for t in thresholds:
        key = f'within_{t:g}mm'
        out[key] = float(np.sum(good <= t) / n) if n else nan
    if vectors is not None:
        absv = np.abs(vectors[ok])
        for i in range(vectors.shape[1]):
            out[f'mae_{AXES[i]}'] = float(absv[:, i].mean()) if absv.size else nan
    return out


def landmark_summary(pred_mm, gt_mm, thresholds: Sequence[float] = (5.0, 10.0)) -> Dict:
    """:func:`summarize_errors` of the displacements ``pred_mm - gt_mm`` (with per-axis
    errors)."""
    radial_errors(pred_mm, gt_mm)  # validates shapes
    return summarize_errors(_as_points(pred_mm, 'pred_mm') - _as_points(gt_mm, 'gt_mm'),
                            thresholds)


def _get(sample, key):
    if isinstance(sample, dict):
        return sample.get(key)
    return getattr(sample, key, None)


@METRICS.register_module()
class LandmarkMetric(BaseMetric):
    """Landmark mean radial error (mm) for the mmengine evaluator.

    Each data sample (a dict or a data element) must carry the predicted and ground-truth
    points in world mm, under ``pred_key`` and ``gt_key`` (defaults ``'pred_points'`` and
    ``'gt_points'``), as ``(N, 3)`` arrays, tensors or :class:`~mmanat.structures.PointSet`.
    An optional boolean ``valid_key`` entry selects the points that are annotated.

    Config example::

        val_evaluator = dict(type='LandmarkMetric', thresholds=(5, 10))

    ``compute_metrics`` returns :func:`summarize_errors` of all points of all samples.
    """

    default_prefix = 'landmark'

    def __init__(self, pred_key: str = 'pred_points', gt_key: str = 'gt_points',
                 valid_key: str = 'valid', thresholds: Sequence[float] = (5.0, 10.0),
                 collect_device: str = 'cpu', prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.pred_key, self.gt_key, self.valid_key = pred_key, gt_key, valid_key
        self.thresholds = tuple(float(t) for t in thresholds)

    def process(self, data_batch, data_samples: Sequence) -> None:
        """Store the displacement vectors ``pred - gt`` (mm) of every sample."""
        for i, sample in enumerate(data_samples):
            pred, gt = _get(sample, self.pred_key), _get(sample, self.gt_key)
            if pred is None or gt is None:
                raise InvalidInputError(
                    f'LandmarkMetric: data sample {i} lacks {self.pred_key!r} or '
                    f'{self.gt_key!r}; the model must output predicted points (world mm) and '
                    'the dataset must provide ground-truth points under these keys.')
            pred, gt = _as_points(pred, self.pred_key), _as_points(gt, self.gt_key)
            radial_errors(pred, gt)
            diff = pred - gt
            valid = _get(sample, self.valid_key)
            if valid is not None:
                if hasattr(valid, 'detach'):
                    valid = valid.detach().cpu().numpy()
                diff = diff[np.asarray(valid, dtype=bool).reshape(-1)]
            self.results.append(diff)

    def compute_metrics(self, results: List[np.ndarray]) -> Dict[str, float]:
        """Summarise all stored displacements."""
        dims = {r.shape[1] for r in results if len(r)}
        if len(dims) > 1:
            raise InvalidInputError(f'LandmarkMetric: samples mix point dimensions {dims}.')
        dim = dims.pop() if dims else 3
        allv = np.concatenate([r.reshape(-1, dim) for r in results]) if results else \
            np.zeros((0, dim))
        return summarize_errors(allv, self.thresholds)
