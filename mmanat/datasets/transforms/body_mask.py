"""Body mask and body bounding box (SPEC 1.2), and the ``BodyMask`` transform.

Body mask: threshold (CT: -300 HU; MR and others: Otsu), then per axial slice a binary
closing and an opening with a disk of radius 3 pixels, removal of connected objects smaller
than 2000 pixels, and hole filling. Every step works on all slices at once with in-plane
structuring elements (no Python loop over slices or voxels). Removing what lies outside the
mask removes the CT table.

Body box: the bounding box of the voxels above -500 HU (CT) or above the Otsu threshold (MR).
"""
from __future__ import annotations

from typing import Optional, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform

from mmanat.registry import TRANSFORMS
from mmanat.structures.geometry import bbox_of_mask
from mmanat.structures.image import MedicalImage
from mmanat.utils.exceptions import InvalidInputError

CT_BODY_THRESHOLD = -300.0
CT_BBOX_THRESHOLD = -500.0
CT_AIR = -1024.0


def _array_and_modality(image, modality):
    if isinstance(image, MedicalImage):
        arr, mod, src = image.array, image.modality, image.path
    else:
        arr, mod, src = np.asarray(image), None, None
    mod = modality if modality is not None else mod
    return arr, (None if mod is None else str(mod).upper()), src or '<in-memory image>'


def _threshold(arr: np.ndarray, modality: Optional[str], threshold: Optional[float],
               ct_default: float) -> float:
    if threshold is not None:
        return float(threshold)
    if modality == 'CT':
        return ct_default
    from skimage.filters import threshold_otsu
    values = arr[np.isfinite(arr)] if arr.dtype.kind == 'f' else arr
    if values.size == 0 or values.min() == values.max():
        return float(values.min()) if values.size else 0.0
    return float(threshold_otsu(values))


def body_mask(image: Union[MedicalImage, np.ndarray], threshold: Optional[float] = None,
              modality: Optional[str] = None, radius: int = 3, min_object_size: int = 2000,
              fill_holes: bool = True) -> np.ndarray:
    """Boolean body mask on the grid of ``image`` (same shape as its array).

    Args:
        image: a :class:`MedicalImage` (3D ``(z, y, x)`` or 2D) or an array.
        threshold: intensity above which a voxel may be body; default -300 for CT, Otsu's
            threshold for other modalities (MR).
        modality: overrides ``image.modality``.
        radius: radius in pixels of the in-plane disk for the closing and opening.
        min_object_size: in-plane connected objects with fewer pixels are dropped (per slice).
        fill_holes: fill in-plane holes (lungs, bowel gas).
    """
    from scipy import ndimage as ndi
    from skimage.morphology import disk
    arr, mod, _ = _array_and_modality(image, modality)
    if arr.ndim not in (2, 3):
        raise InvalidInputError(f'body_mask needs a 2D or 3D image, got shape {arr.shape}.')
    thr = _threshold(arr, mod, threshold, CT_BODY_THRESHOLD)
    vol = arr[None] if arr.ndim == 2 else arr
    mask = vol > thr
    if radius > 0:
        se = disk(int(radius)).astype(bool)[None]  # (1, 2r+1, 2r+1): per slice
        # replicate the in-plane border so that a body cut by the field of view is neither
        # eroded nor rounded at the image edge: each erosion eats `radius` pixels from the
        # (zero) outside of the padded array and the last dilation rounds corners up to
        # another `radius`, hence 3 * radius
        p = 3 * int(radius)
        padded = np.pad(mask, ((0, 0), (p, p), (p, p)), mode='edge')
        padded = ndi.binary_closing(padded, structure=se)
        padded = ndi.binary_opening(padded, structure=se)
        mask = padded[:, p:-p, p:-p]
    in_plane = np.zeros((3, 3, 3), dtype=bool)
    in_plane[1] = True  # 8-connectivity within a slice, none across slices
    if min_object_size and min_object_size > 1 and mask.any():
        labels, _ = ndi.label(mask, structure=in_plane)
        sizes = np.bincount(labels.reshape(-1))
        keep = sizes >= int(min_object_size)
        keep[0] = False
        mask = keep[labels]
    if fill_holes:
        cross = np.zeros((3, 3, 3), dtype=bool)
        cross[1] = ndi.generate_binary_structure(2, 1)  # 4-connected background in-plane
        # one empty slice above and below, so the first and last slices are not all "border"
        padded = np.pad(mask, ((1, 1), (0, 0), (0, 0)))
        mask = ndi.binary_fill_holes(padded, structure=cross)[1:-1]
    return mask[0] if arr.ndim == 2 else mask


def body_bbox(image: Union[MedicalImage, np.ndarray], threshold: Optional[float] = None,
              modality: Optional[str] = None, margin: int = 0) -> Tuple[slice, ...]:
    """Array-order bounding box ``(z, y, x)`` slices (``(y, x)`` for 2D) of the body.

    Args:
        image: a :class:`MedicalImage` or an array.
        threshold: voxels above it count as body; default -500 for CT (SPEC 1.2), Otsu's
            threshold for other modalities.
        modality: overrides ``image.modality``.
        margin: voxels added on each side (clipped to the image).

    Raises:
        InvalidInputError: when no voxel is above the threshold.
    """
    arr, mod, src = _array_and_modality(image, modality)
    thr = _threshold(arr, mod, threshold, CT_BBOX_THRESHOLD)
    mask = arr > thr
    if not mask.any():
        raise InvalidInputError(
            f'{src}: no voxel above {thr:g} (modality {mod}), so no body was found; check that '
            'a CT is in Hounsfield units (read it with read_image) or pass threshold=.')
    return bbox_of_mask(mask, margin=margin)


def air_value(image: MedicalImage) -> float:
    """Intensity of air: -1024 for CT, the image minimum otherwise."""
    if image.modality == 'CT':
        return CT_AIR
    return float(image.array.min())


@TRANSFORMS.register_module()
class BodyMask(BaseTransform):
    """Compute the body mask of ``results[key]`` (SPEC 1.2) and optionally remove the table.

    Required keys: ``key`` (a :class:`MedicalImage`). Added keys: ``'body_mask'``, a uint8
    :class:`MedicalImage` on the same grid (1 = body). Modified keys (``remove_table=True``):
    ``key``, with every voxel outside the mask set to air (-1024 for CT, the minimum else).

    Args:
        key: the image key.
        threshold, radius, min_object_size: see :func:`body_mask`.
        remove_table: set voxels outside the body to air.
    """

    def __init__(self, key: str = 'image', threshold: Optional[float] = None, radius: int = 3,
                 min_object_size: int = 2000, remove_table: bool = False):
        self.key = key
        self.threshold = threshold
        self.radius = radius
        self.min_object_size = min_object_size
        self.remove_table = remove_table

    def transform(self, results: dict) -> dict:
        image = results.get(self.key)
        if not isinstance(image, MedicalImage):
            raise InvalidInputError(
                f'BodyMask: results[{self.key!r}] must be a MedicalImage, got '
                f'{type(image).__name__}; load it with read_image first.')
        modality = results.get('modality') if image.modality is None else None
        mask = body_mask(image, threshold=self.threshold, modality=modality,
                         radius=self.radius, min_object_size=self.min_object_size)
        results['body_mask'] = image.with_array(mask.astype(np.uint8), modality=None)
        if self.remove_table:
            arr = image.array.copy()
            arr[~mask] = air_value(image)
            results[self.key] = image.with_array(arr)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(key={self.key!r}, threshold={self.threshold}, '
                f'radius={self.radius}, min_object_size={self.min_object_size}, '
                f'remove_table={self.remove_table})')
