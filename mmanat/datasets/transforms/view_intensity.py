"""Intensity normalisation of the SAM views with one window per VOLUME (SAM).

Why normalise the views rather than the whole volume: the CT rule is a pointwise map
(clip [-1024, 3071] HU, rescale to [0, 255], minus 50), so applying it to the two
32x96x96 views gives exactly what normalising the volume first would give, at a fraction of
the cost (a cached 2 mm CT has ~10 M voxels, a view pair 0.6 M). The MR rule depends on the
0.2 / 99.8 percentiles of the whole volume; they are taken once per volume (from the cache
sidecar written by ``tools/preprocess.py``, or estimated from a strided subsample of the
volume) and the same linear map is applied to both views, so both views of a pair get
identical intensities for identical anatomy - per-view percentiles would not.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from mmanat.registry import TRANSFORMS
from mmanat.structures.image import MedicalImage
from mmanat.utils.exceptions import InvalidInputError

from .intensity import CT_WINDOW, MR_PERCENTILES, OFFSET, normalize_ct


def volume_percentile_window(array: np.ndarray, percentiles: Sequence[float] = MR_PERCENTILES,
                             max_samples: int = 2_000_000) -> tuple:
    """``(low, high)`` intensity percentiles of a volume, from a regular strided subsample of
    at most ``max_samples`` voxels (exact for small volumes; deterministic)."""
    arr = np.asarray(array)
    step = max(1, int(np.ceil((arr.size / float(max_samples)) ** (1.0 / arr.ndim))))
    sub = arr[tuple(slice(None, None, step) for _ in range(arr.ndim))].reshape(-1)
    if sub.dtype.kind == 'f':
        sub = sub[np.isfinite(sub)]
    if sub.size == 0:
        raise InvalidInputError('cannot normalise: the volume has no finite voxel.')
    lo, hi = np.percentile(sub, percentiles)
    return float(lo), float(hi)


def apply_window(array: np.ndarray, low: float, high: float) -> np.ndarray:
    """Clip to ``[low, high]``, map linearly to [0, 255], subtract 50 (float32); a flat
    window maps everything to -50."""
    out = np.asarray(array, dtype=np.float32)
    if not high > low:
        return np.full(out.shape, -OFFSET, dtype=np.float32)
    out = np.clip(out, low, high)
    return ((out - np.float32(low)) * np.float32(255.0 / (high - low))
            - np.float32(OFFSET)).astype(np.float32, copy=False)


@TRANSFORMS.register_module()
class NormalizeViewIntensity(BaseTransform):
    """Normalise ``view_imgs`` with the modality rule, one window per volume.

    CT: :func:`mmanat.datasets.transforms.intensity.normalize_ct` (window [-1024, 3071] HU).
    MR / XR: the 0.2 / 99.8 percentile window of the whole volume, taken from
    ``results['intensity_window']``, else ``image.meta['intensity_window']`` (cache sidecar),
    else estimated from ``results['image']``; recorded in ``results['intensity_window']``.

    Required keys: ``view_imgs``; ``modality`` (or ``image.modality``); ``image`` for MR
    without a stored window.
    Modified keys: ``view_imgs`` (float32 in [-50, 205]), ``view_pad_value``.

    Args:
        modality: force a modality; ``None`` = ``results['modality']`` or the image's.
        percentiles: MR percentiles.
        max_samples: voxels used to estimate the MR window of a volume.
    """

    def __init__(self, modality: Optional[str] = None,
                 percentiles: Sequence[float] = MR_PERCENTILES, max_samples: int = 2_000_000):
        self.modality = modality
        self.percentiles = tuple(float(p) for p in percentiles)
        self.max_samples = int(max_samples)

    def transform(self, results: dict) -> dict:
        if 'view_imgs' not in results:
            raise InvalidInputError('NormalizeViewIntensity needs results["view_imgs"]; put it '
                                    'after RandomTwoViewCrop.')
        image = results.get('image')
        mod = self.modality or results.get('modality') or getattr(image, 'modality', None)
        mod = None if mod is None else str(mod).upper()
        if mod == 'CT':
            window = CT_WINDOW
            results['view_imgs'] = normalize_ct(results['view_imgs'])
        elif mod in ('MR', 'XR'):
            window = results.get('intensity_window')
            if window is None and isinstance(image, MedicalImage):
                window = image.meta.get('intensity_window')
            if window is None:
                if not isinstance(image, MedicalImage):
                    raise InvalidInputError(
                        'NormalizeViewIntensity: MR needs results["image"] (the whole volume) '
                        'or results["intensity_window"] to compute the percentile window.')
                window = volume_percentile_window(image.array, self.percentiles,
                                                  self.max_samples)
            results['view_imgs'] = apply_window(results['view_imgs'], *window)
        else:
            src = results.get('img_path') or getattr(image, 'path', None) or '<sample>'
            raise InvalidInputError(
                f'{src}: cannot normalise intensities of modality {mod!r}: known are CT, MR, '
                "XR; set results['modality'] (dataset column 'modality') or "
                'NormalizeViewIntensity(modality=...).')
        results['intensity_window'] = tuple(float(v) for v in window)
        if 'view_pad_value' in results:
            results['view_pad_value'] = float(apply_window(
                np.float32(results['view_pad_value']), *window))
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(modality={self.modality}, '
                f'percentiles={self.percentiles})')
