"""Preparing an image for the embedding network (SAM, Yan et al., IEEE TMI 2022,
arXiv:2012.02383: inference on a canonical, isotropically resampled volume).

Pipeline::

    image (any orientation/spacing) --reorient LPS--> --resample 2 mm--> --normalise-->
    --pad with air to a multiple of the coarse stride (4, 16, 16) at the END of each axis-->

Padding only appends voxels after the last one, so the origin, spacing and direction of the
padded volume are those of the unpadded one (geometry never shifts). Arrays are (z, y, x).

A 2D image (a radiograph; :mod:`mmanat.structures.planar`) becomes a one-slice volume in the
world plane z = 0 and follows the same pipeline in-plane only: its axes are flipped/permuted
to +x, +y, it is resampled to ``spacing`` mm in x and y (z untouched), normalised by the
``'XR'`` rule (percentiles; ``'CT'`` for a CT slice) and padded in y and x only (to
:data:`DEFAULT_PAD_MULTIPLE_2D` by default, the 2D SAM's coarse stride).
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np

from ..structures.embedding_map import GridGeometry
from ..structures.image import MedicalImage
from ..structures.planar import PLANAR_KEY, as_planar_volume, is_planar
from ..utils.exceptions import InvalidInputError

#: isotropic voxel size of the network input, mm
DEFAULT_SPACING = 2.0
#: the network's total stride (z, y, x): inputs are padded to a multiple of it
DEFAULT_PAD_MULTIPLE = (4, 16, 16)
#: the same for 2D images (one-slice volumes): the 2D SAM's coarse stride
DEFAULT_PAD_MULTIPLE_2D = (1, 32, 32)
#: intensity of air in CT, HU
CT_AIR_HU = -1024.0
#: ``meta`` key marking an image already prepared by :func:`preprocess_image`
PREPROCESSED_KEY = 'mmanat_preprocessed'


def as_medical_image(image) -> MedicalImage:
    """``image`` as a :class:`MedicalImage`.

    Args:
        image: a :class:`MedicalImage` (returned as is) or a path to a volume or a 2D image
            (read with :func:`mmanat.fileio.read_image`: a single radiograph, DICOM or PNG,
            comes back 2D).

    Returns:
        The image.

    Raises:
        InvalidInputError: ``image`` is neither.
    """
    if isinstance(image, MedicalImage):
        return image
    if isinstance(image, (str, os.PathLike)):
        from ..fileio import read_image
        return read_image(image)
    raise InvalidInputError(f'expected a MedicalImage or an image path, got '
                            f'{type(image).__name__}.')


def _air_value(normalised: np.ndarray, modality: str) -> float:
    """Normalised intensity of air: the CT rule applied to -1024 HU; for MR (no absolute
    scale) the darkest normalised value."""
    if modality == 'CT':
        from ..datasets.transforms.intensity import normalize_intensity
        return float(normalize_intensity(np.array([CT_AIR_HU], np.float32), 'CT')[0])
    return float(normalised.min()) if normalised.size else 0.0


def preprocess_image(image, spacing: float = DEFAULT_SPACING,
                     pad_multiple: Optional[Sequence[int]] = None,
                     orientation: str = 'LPS', modality: Optional[str] = None
                     ) -> MedicalImage:
    """Prepare an image for the network.

    Reorient to ``orientation`` (voxel axes along L, P, S; no resampling), resample to
    ``spacing`` mm (linear), normalise intensities by modality (CT: HU window; MR:
    percentiles), and pad at the end of each axis with the normalised value of air to a
    multiple of ``pad_multiple`` (z, y, x) - the network's total stride - so that every map
    voxel is a whole block of input voxels. Padding appends voxels after the last one: origin,
    spacing and direction are unchanged.

    Args:
        image: :class:`MedicalImage` (3D, or 2D: see the module docstring) or a path.
        spacing: isotropic voxel size of the network input in mm (in-plane for 2D images).
        pad_multiple: (z, y, x) multiple to pad to; default :data:`DEFAULT_PAD_MULTIPLE`
            for volumes, :data:`DEFAULT_PAD_MULTIPLE_2D` for 2D images (whose z multiple is
            always 1).
        orientation: voxel-axis orientation code for :func:`reorient` (volumes).
        modality: ``'CT'`` / ``'MR'`` (/ ``'XR'`` for 2D images); default: the image's own
            modality (2D images that are not CT: ``'XR'``).

    Returns:
        float32 :class:`MedicalImage` (padded). ``meta`` holds ``unpadded_shape`` (z, y, x),
        ``pad_value``, ``source_grid`` (dict of the original geometry; for a 2D image, of its
        one-slice volume), ``source_path`` and ``input_spacing``; for a 2D image also
        ``meta[PLANAR_KEY] = True``.
    """
    from ..datasets.transforms.intensity import normalize_intensity
    from ..fileio import guess_modality
    from ..structures.resample import reorient, resample_to_spacing
    image = as_medical_image(image)
    if is_planar(image):
        return _preprocess_planar(image, spacing, pad_multiple, modality)
    if pad_multiple is None:
        pad_multiple = DEFAULT_PAD_MULTIPLE
    source_grid = GridGeometry.from_image(image)
    mod = str(modality or image.modality or guess_modality(image.array)).upper()
    if mod not in ('CT', 'MR'):
        raise InvalidInputError(
            f'{image.path or "<in-memory image>"}: modality {mod!r} cannot be normalised for '
            "SAM; pass modality='CT' or 'MR' (e.g. read_volume(path, modality='CT')).")
    img = reorient(image, orientation)
    img = resample_to_spacing(img, spacing, interpolation='linear')
    arr = normalize_intensity(img.array, mod).astype(np.float32, copy=False)
    pad_value = _air_value(arr, mod)
    unpadded = tuple(int(v) for v in arr.shape)
    mult = tuple(int(v) for v in pad_multiple)
    if len(mult) != 3 or min(mult) < 1:
        raise InvalidInputError(f'pad_multiple must be 3 positive ints (z, y, x), got '
                                f'{pad_multiple!r}.')
    pads = [(0, (-n) % m) for n, m in zip(unpadded, mult)]
    if any(p for _, p in pads):
        arr = np.pad(arr, pads, mode='constant', constant_values=pad_value)
    meta = dict(img.meta)
    meta.update({PREPROCESSED_KEY: True, 'unpadded_shape': unpadded, 'pad_value': pad_value,
                 'source_grid': source_grid.to_dict(), 'source_path': image.path,
                 'input_spacing': float(spacing), 'orientation': orientation,
                 'modality': mod})
    return img.with_array(np.ascontiguousarray(arr), modality=mod, meta=meta)


def _pad_end(arr: np.ndarray, mult: Sequence[int], value: float):
    """``arr`` padded with ``value`` at the end of each axis to a multiple of ``mult``."""
    pads = [(0, (-n) % m) for n, m in zip(arr.shape, mult)]
    if any(p for _, p in pads):
        arr = np.pad(arr, pads, mode='constant', constant_values=value)
    return arr


def _preprocess_planar(image: MedicalImage, spacing: float,
                       pad_multiple: Optional[Sequence[int]], modality: Optional[str]
                       ) -> MedicalImage:
    """:func:`preprocess_image` of a 2D image: its one-slice volume, axes along +x / +y,
    resampled in-plane to ``spacing``, normalised, padded in y and x."""
    from ..datasets.transforms.intensity import normalize_intensity
    from ..structures.resample import reorient, resample_to_spacing
    src = image.path or '<in-memory image>'
    vol = as_planar_volume(image)
    source_grid = GridGeometry.from_image(vol)
    mod = str(modality or vol.modality or 'XR').upper()
    if mod not in ('CT', 'MR', 'XR'):  # 'OT' (a PNG, a screenshot): the radiograph rule
        mod = 'XR'
    mult = tuple(int(v) for v in (DEFAULT_PAD_MULTIPLE_2D if pad_multiple is None
                                  else pad_multiple))
    if len(mult) != 3 or min(mult) < 1:
        raise InvalidInputError(f'pad_multiple must be 3 positive ints (z, y, x), got '
                                f'{pad_multiple!r}.')
    mult = (1,) + mult[1:]  # a one-slice volume is never padded across its plane
    if not float(spacing) > 0:
        raise InvalidInputError(f'{src}: input spacing {spacing!r} mm must be > 0.')
    img = reorient(vol, 'LPS')  # in-plane flips / swaps only: z stays the slice normal
    img = resample_to_spacing(img, (float(spacing), float(spacing), float(img.spacing[2])),
                              interpolation='linear')
    arr = normalize_intensity(img.array, mod).astype(np.float32, copy=False)
    pad_value = _air_value(arr, mod)
    unpadded = tuple(int(v) for v in arr.shape)
    arr = _pad_end(arr, mult, pad_value)
    meta = dict(img.meta)
    meta.update({PREPROCESSED_KEY: True, 'unpadded_shape': unpadded, 'pad_value': pad_value,
                 'source_grid': source_grid.to_dict(), 'source_path': image.path,
                 'input_spacing': float(spacing), 'orientation': 'planar',
                 'modality': mod, PLANAR_KEY: True})
    return img.with_array(np.ascontiguousarray(arr), modality=mod, meta=meta)
