"""The one body-mask rule of mmanat, and the body bounding box.

Body mask (:func:`body_mask`), on an array ``(z, y, x)`` (or a 2D ``(y, x)`` slice):

1. threshold: a voxel may be body when its intensity is above ``threshold``; by default
   ``ct_threshold`` (-300 HU) for CT and Otsu's threshold of the whole image for any other
   modality (MR) or an unknown one;
2. per axial slice, a binary closing then an opening with a disk of radius ``radius`` pixels
   (the in-plane border is replicated first, so a body cut by the field of view is neither
   eroded nor rounded at the image edge);
3. removal of in-plane connected objects (8-connected within a slice) smaller than
   ``min_object_size`` pixels - this removes the CT table and cables;
4. optionally (``largest_component=True``) only the largest 3D connected component
   (6-connected) is kept;
5. hole filling (lungs, bowel gas): per axial slice with a 4-connected background
   (``fill_holes=True`` or ``'slice'``), or in 3D with a 6-connected background
   (``fill_holes='3d'``: a cavity open to the outside anywhere in the volume, such as lungs
   reaching the top slice through the trachea, stays empty).

Every step works on all slices at once with in-plane structuring elements (no Python loop over
slices or voxels). This is the rule of the former ``mmanat.datasets.transforms.body_mask``
(the ``BodyMask`` transform, the registration grid, the volume cache and
``RandHistogramShift``), kept unchanged with the same defaults. The former
``mmanat.evaluation.cases.body_mask`` (CT > -500 HU, largest 3D component, 3D hole filling) is
these steps with :data:`BENCHMARK_CASE_MASK` (``ct_threshold=-500``, no morphology, no
small-object removal, largest component, 3D hole filling): identical masks for images with a
modality and float intensities, which keeps the query points of the benchmark cases. With the
defaults instead, the masks of the benchmark cases differ (lungs filled per slice; whole
slices dropped where a 4 mm image has fewer than 2000 body pixels).

Body box (:func:`body_bbox`): the bounding box of the voxels above -500 HU (CT) or above the
Otsu threshold (other modalities), without morphology.
"""
from __future__ import annotations

from typing import Optional, Tuple, Union

import numpy as np

from ..utils.exceptions import InvalidInputError
from .geometry import bbox_of_mask
from .image import MedicalImage

__all__ = ['body_mask', 'body_bbox', 'air_value', 'body_threshold', 'CT_BODY_THRESHOLD',
           'CT_BBOX_THRESHOLD', 'CT_AIR', 'BENCHMARK_CASE_MASK']

#: CT intensity (HU) above which a voxel may be body (mask)
CT_BODY_THRESHOLD = -300.0
#: CT intensity (HU) above which a voxel counts for the body bounding box
CT_BBOX_THRESHOLD = -500.0
#: CT intensity (HU) of air
CT_AIR = -1024.0
#: :func:`body_mask` arguments of the benchmark cases' query-point masks (see the module
#: docstring): threshold only, largest 3D component, 3D hole filling
BENCHMARK_CASE_MASK = dict(ct_threshold=CT_BBOX_THRESHOLD, radius=0, min_object_size=0,
                           largest_component=True, fill_holes='3d')


def _array_and_modality(image, modality):
    if isinstance(image, MedicalImage):
        arr, mod, src = image.array, image.modality, image.path
    else:
        arr, mod, src = np.asarray(image), None, None
    mod = modality if modality is not None else mod
    return arr, (None if mod is None else str(mod).upper()), src or '<in-memory image>'


def body_threshold(arr: np.ndarray, modality: Optional[str] = None,
                   threshold: Optional[float] = None,
                   ct_default: float = CT_BODY_THRESHOLD) -> float:
    """The intensity threshold of the body rule.

    Args:
        arr: the image array (any shape).
        modality: ``'CT'`` uses ``ct_default``; anything else (or ``None``) uses Otsu.
        threshold: an explicit threshold, returned as is.
        ct_default: the CT threshold in HU.

    Returns:
        the threshold; for a constant (or empty) image its value (so nothing is body).
    """
    if threshold is not None:
        return float(threshold)
    if modality is not None and str(modality).upper() == 'CT':
        return float(ct_default)
    from skimage.filters import threshold_otsu
    values = arr[np.isfinite(arr)] if arr.dtype.kind == 'f' else arr
    if values.size == 0 or values.min() == values.max():
        return float(values.min()) if values.size else 0.0
    return float(threshold_otsu(values))


def _largest_component(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage as ndi
    labels, n = ndi.label(mask)
    if n <= 1:
        return mask
    sizes = np.bincount(labels.reshape(-1))
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def body_mask(image: Union[MedicalImage, np.ndarray], threshold: Optional[float] = None,
              modality: Optional[str] = None, radius: int = 3, min_object_size: int = 2000,
              fill_holes: Union[bool, str] = True, largest_component: bool = False,
              ct_threshold: float = CT_BODY_THRESHOLD) -> np.ndarray:
    """Boolean body mask on the grid of ``image`` (same shape as its array); the rule is in
    the module docstring.

    Args:
        image: a :class:`MedicalImage` (3D ``(z, y, x)`` or 2D ``(y, x)``) or an array.
        threshold: intensity above which a voxel may be body; default ``ct_threshold`` for
            CT, Otsu's threshold for other modalities (MR) and unknown ones.
        modality: overrides ``image.modality``.
        radius: radius in pixels of the in-plane disk for the closing and opening (0: none).
        min_object_size: in-plane connected objects with fewer pixels are dropped (per slice;
            0 or 1: none dropped).
        fill_holes: ``True`` / ``'slice'``: fill in-plane holes (lungs, bowel gas);
            ``'3d'``: fill holes closed in 3D; ``False``: no filling.
        largest_component: keep only the largest 3D connected component (after step 3).
        ct_threshold: the CT threshold in HU used when ``threshold`` is None.

    Returns:
        bool array of the shape of ``image``'s array.

    Raises:
        InvalidInputError: for an image that is neither 2D nor 3D.
    """
    from scipy import ndimage as ndi
    arr, mod, src = _array_and_modality(image, modality)
    if arr.ndim not in (2, 3):
        raise InvalidInputError(f'{src}: body_mask needs a 2D or 3D image, got shape '
                                f'{arr.shape}.')
    if fill_holes not in (True, False, 'slice', '3d'):
        raise InvalidInputError(f"body_mask: fill_holes must be True, False, 'slice' or '3d', "
                                f'got {fill_holes!r}.')
    thr = body_threshold(arr, mod, threshold, ct_threshold)
    vol = arr[None] if arr.ndim == 2 else arr
    mask = vol > thr
    if radius > 0:
        from skimage.morphology import disk
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
    if largest_component and mask.any():
        mask = _largest_component(mask)
    if fill_holes == '3d':  # 6-connected background (4-connected in a 2D image)
        mask = ndi.binary_fill_holes(mask[0])[None] if arr.ndim == 2 else \
            ndi.binary_fill_holes(mask)
    elif fill_holes:
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
        threshold: voxels above it count as body; default -500 for CT, Otsu's threshold for
            other modalities.
        modality: overrides ``image.modality``.
        margin: voxels added on each side (clipped to the image).

    Returns:
        a tuple of slices, one per array axis.

    Raises:
        InvalidInputError: when no voxel is above the threshold.
    """
    arr, mod, src = _array_and_modality(image, modality)
    thr = body_threshold(arr, mod, threshold, CT_BBOX_THRESHOLD)
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
