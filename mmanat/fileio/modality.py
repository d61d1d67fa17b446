"""The modality rule: which of ``'CT'``, ``'MR'``, ``'XR'``, ``'OT'`` an image is.

Rule (``modality=None`` when reading), in this order; the source is kept in
``image.meta['modality_source']``:

1. ``modality`` given by the caller -> used as is (``'argument'``).
2. DICOM Modality tag (0008,0060): ``CT`` -> ``'CT'``, ``MR`` -> ``'MR'``, projection
   radiography (``CR``, ``DX``, ``DR``, ``RG``, ``MG``, ``RF``, ``XA``, ``PX``, ``IO``) -> ``'XR'``,
   anything else -> ``'OT'`` (``'dicom'``).
3. A ``mmanat_modality`` header key written by :func:`~mmanat.fileio.write_image` in
   NRRD/MetaImage files (``'header'``).
4. Intensity range (``'intensity'``): a 2D image is ``'XR'``; a 3D integer volume holding
   at most 64 distinct values in [0, 255] is a label map, ``'OT'``; a 3D volume whose minimum
   is <= -500 (air in Hounsfield units) is ``'CT'``; one whose minimum is >= -50 is ``'MR'``;
   anything else is ``'OT'`` (unknown: pass ``modality=`` explicitly). A CT stored without
   its rescale intercept (all values >= 0) is therefore taken for MR: pass ``modality='CT'``.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from ..structures.image import MODALITIES
from ..utils.exceptions import InvalidInputError
from .dicom import XR_DICOM_MODALITIES

__all__ = ['MODALITY_KEY', 'guess_modality', 'resolve_modality']

#: NRRD/MetaImage header key holding the modality written by ``write_image``
MODALITY_KEY = 'mmanat_modality'


def guess_modality(array: np.ndarray, dicom_modality: Optional[str] = None) -> str:
    """Guess the modality of an image (steps 2 and 4 of the module's rule).

    Args:
        array: the pixel data (2D or 3D).
        dicom_modality: the DICOM Modality tag (0008,0060) if known.

    Returns:
        One of ``'CT'``, ``'MR'``, ``'XR'``, ``'OT'``.
    """
    if dicom_modality:
        tag = str(dicom_modality).strip().upper()
        if tag in ('CT', 'MR'):
            return tag
        if tag in XR_DICOM_MODALITIES:
            return 'XR'
        return 'OT'
    array = np.asarray(array)
    if array.ndim == 2:
        return 'XR'
    if array.size == 0:
        return 'OT'
    low = float(array.min())
    if (array.dtype == np.bool_ or np.issubdtype(array.dtype, np.integer)) and low >= 0 \
            and float(array.max()) <= 255 \
            and np.count_nonzero(np.bincount(array.reshape(-1).astype(np.int64))) <= 64:
        return 'OT'  # a label map / mask: few small non-negative integers
    if low <= -500:
        return 'CT'
    if low >= -50:
        return 'MR'
    return 'OT'


def resolve_modality(array: np.ndarray, modality: Optional[str],
                     dicom_modality: Optional[str], header_modality: Optional[str],
                     src: str) -> Tuple[str, str]:
    """Apply the whole modality rule.

    Args:
        array: the pixel data.
        modality: what the caller asked for (``None``: guess).
        dicom_modality: the DICOM Modality tag, if any.
        header_modality: the :data:`MODALITY_KEY` header value, if any.
        src: the file, for error messages.

    Returns:
        ``(modality, source)`` with source ``'argument'``, ``'dicom'``, ``'header'`` or
        ``'intensity'``.

    Raises:
        InvalidInputError: ``modality`` is not one of ``MODALITIES``.
    """
    if modality is not None:
        mod = str(modality).upper()
        if mod not in MODALITIES:
            raise InvalidInputError(
                f'{src}: unknown modality {modality!r}; use one of {MODALITIES}.')
        return mod, 'argument'
    if dicom_modality:
        return guess_modality(array, dicom_modality), 'dicom'
    if header_modality and str(header_modality).upper() in MODALITIES:
        return str(header_modality).upper(), 'header'
    return guess_modality(array), 'intensity'
