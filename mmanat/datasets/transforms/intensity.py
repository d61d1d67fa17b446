"""Modality-aware intensity normalisation (SAM: Yan et al., TMI 2022).

* CT: clip to [-1024, 3071] HU, map linearly to [0, 255], subtract 50.
* MR: clip to the 0.2 / 99.8 percentiles (inside ``mask`` when given), map linearly to
  [0, 255], subtract 50.
* XR (radiographs, no physical unit): the MR percentile rule.

Results are float32 in [-50, 205].
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np
from mmcv.transforms import BaseTransform

from mmanat.registry import TRANSFORMS
from mmanat.structures.image import MedicalImage
from mmanat.utils.exceptions import InvalidInputError

CT_WINDOW = (-1024.0, 3071.0)
MR_PERCENTILES = (0.2, 99.8)
OFFSET = 50.0


def _rescale(array: np.ndarray, lo: float, hi: float) -> np.ndarray:
    out = np.asarray(array, dtype=np.float32)
    if not hi > lo:  # constant image: nothing to stretch
        return np.zeros(out.shape, dtype=np.float32) - np.float32(OFFSET)
    out = np.clip(out, lo, hi)
    out = (out - np.float32(lo)) * np.float32(255.0 / (hi - lo)) - np.float32(OFFSET)
    return out.astype(np.float32, copy=False)


def normalize_ct(array: np.ndarray) -> np.ndarray:
    """CT in Hounsfield units -> float32: clip [-1024, 3071], map to [0, 255], minus 50."""
    return _rescale(array, *CT_WINDOW)


def normalize_mr(array: np.ndarray, mask: Optional[np.ndarray] = None,
                 percentiles: Sequence[float] = MR_PERCENTILES) -> np.ndarray:
    """MR (or any unit-less image) -> float32: clip to the 0.2 / 99.8 percentiles, map to
    [0, 255], minus 50.

    Args:
        array: the intensities.
        mask: optional boolean mask of the same shape; the percentiles are computed from the
            voxels inside it (e.g. the body), the mapping applies everywhere.
        percentiles: the low / high percentiles.
    """
    array = np.asarray(array)
    values = array
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != array.shape:
            raise InvalidInputError(
                f'mask shape {mask.shape} differs from the image shape {array.shape}.')
        values = array[mask]
    values = values[np.isfinite(values)] if values.dtype.kind == 'f' else values.reshape(-1)
    if values.size == 0:
        raise InvalidInputError('cannot normalise: the image (or its mask) has no finite voxel.')
    lo, hi = np.percentile(values, percentiles)
    return _rescale(array, float(lo), float(hi))


def normalize_intensity(array: np.ndarray, modality: str,
                        mask: Optional[np.ndarray] = None) -> np.ndarray:
    """Normalise by modality: ``'CT'`` -> :func:`normalize_ct`, ``'MR'`` and ``'XR'`` ->
    :func:`normalize_mr` (``mask`` is used for the percentiles only)."""
    mod = None if modality is None else str(modality).upper()
    if mod == 'CT':
        return normalize_ct(array)
    if mod in ('MR', 'XR'):
        return normalize_mr(array, mask=mask)
    raise InvalidInputError(
        f'cannot normalise intensities of modality {modality!r}: known are CT, MR, XR; pass '
        "modality='CT' or 'MR' (read_image(..., modality=...) or NormalizeIntensity(modality=))."
    )


@TRANSFORMS.register_module()
class NormalizeIntensity(BaseTransform):
    """Modality-aware intensity normalisation (SAM) of images in a results dict.

    Required keys: ``keys`` (each a :class:`MedicalImage` or an array). Modified keys: the
    same, replaced by float32 images on the same grid. Uses ``modality`` if given, else
    ``results['modality']``, else the image's own ``modality``.

    Args:
        keys: result keys to normalise.
        modality: ``'CT'``, ``'MR'``, ``'XR'`` or ``None`` (per image, see above).
        mask_key: optional result key of a mask (e.g. ``'body_mask'``) inside which the MR
            percentiles are computed.
    """

    def __init__(self, keys: Union[str, Sequence[str]] = ('image',),
                 modality: Optional[str] = None, mask_key: Optional[str] = None):
        self.keys = (keys,) if isinstance(keys, str) else tuple(keys)
        self.modality = modality
        self.mask_key = mask_key

    def _modality(self, results: dict, value) -> str:
        for cand in (self.modality, results.get('modality'),
                     getattr(value, 'modality', None)):
            if cand is not None:
                return str(cand).upper()
        src = getattr(value, 'path', None) or results.get('img_path') or '<results>'
        raise InvalidInputError(
            f'{src}: modality unknown; set NormalizeIntensity(modality=...), '
            "results['modality'], or read the image with read_image(..., modality=...).")

    def transform(self, results: dict) -> dict:
        mask = None
        if self.mask_key is not None and results.get(self.mask_key) is not None:
            m = results[self.mask_key]
            mask = (m.array if isinstance(m, MedicalImage) else np.asarray(m)) > 0
        for key in self.keys:
            if key not in results:
                raise InvalidInputError(
                    f'NormalizeIntensity: results have no key {key!r} (keys: '
                    f'{sorted(results)}).')
            value = results[key]
            modality = self._modality(results, value)
            if isinstance(value, MedicalImage):
                results[key] = value.with_array(
                    normalize_intensity(value.array, modality, mask=mask))
            else:
                results[key] = normalize_intensity(np.asarray(value), modality, mask=mask)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(keys={self.keys}, modality={self.modality}, '
                f'mask_key={self.mask_key})')
