"""2D images as one-slice volumes: how mmanat runs its 3D machinery on radiographs.

A 2D image (``(y, x)`` array, 2D world ``(x, y)`` in mm) becomes a volume of shape
``(1, H, W)`` whose slice lies in the world plane ``z = 0``: spacing ``(sx, sy, 1)``,
origin ``(ox, oy, 0)`` and direction ``[[D, 0], [0, 1]]`` with ``D`` the 2x2 direction of the
image. Its world coordinates are the 2D world coordinates with ``z = 0`` appended, so the
geometry stays exact and every 3D tool (coordinate maps, embedding maps, matching, resampling)
applies unchanged; 2D points are lifted with :func:`lift_points` and brought back with
:func:`drop_points`. The networks of the 2D SAM run 2D convolutions on the single slice (see
:class:`mmanat.models.utils.Planar`).
"""
from __future__ import annotations

import numpy as np

from ..utils.exceptions import InvalidInputError
from .image import MedicalImage

#: ``meta`` key set on volumes made by :func:`as_planar_volume`
PLANAR_KEY = 'planar_2d'


def as_planar_volume(image: MedicalImage) -> MedicalImage:
    """A 2D image as a ``(1, H, W)`` volume in the world plane ``z = 0`` (a 3D image is
    returned as it is when it already is one slice made by this function)."""
    if image.ndim == 3:
        if image.meta.get(PLANAR_KEY):
            return image
        raise InvalidInputError(
            f'{image.path or "<in-memory image>"}: as_planar_volume expects a 2D image, got a '
            f'3D volume of shape {image.shape}.')
    direction = np.eye(3)
    direction[:2, :2] = image.direction
    meta = dict(image.meta)
    meta[PLANAR_KEY] = True
    return MedicalImage(image.array[None], spacing=(*image.spacing, 1.0),
                        origin=(*image.origin, 0.0), direction=direction,
                        modality=image.modality, path=image.path, meta=meta)


def is_planar(image) -> bool:
    """True for a 2D image or a one-slice volume made by :func:`as_planar_volume`, and for
    :class:`~mmanat.structures.EmbeddingMaps` of such an image (``meta[PLANAR_KEY]``)."""
    if isinstance(image, MedicalImage):
        return image.ndim == 2 or bool(image.meta.get(PLANAR_KEY))
    meta = getattr(image, 'meta', None)
    return bool(meta.get(PLANAR_KEY)) if isinstance(meta, dict) else False


def as_2d_image(volume: MedicalImage) -> MedicalImage:
    """The inverse of :func:`as_planar_volume`: a ``(1, H, W)`` planar volume as a 2D image."""
    if volume.ndim == 2:
        return volume
    if volume.shape[0] != 1 or not np.allclose(volume.direction[:2, 2], 0) \
            or not np.allclose(volume.direction[2, :2], 0):
        raise InvalidInputError(
            f'{volume.path or "<in-memory image>"}: not a one-slice planar volume (shape '
            f'{volume.shape}); only volumes made by as_planar_volume turn back into 2D images.')
    meta = {k: v for k, v in volume.meta.items() if k != PLANAR_KEY}
    return MedicalImage(volume.array[0], spacing=volume.spacing[:2], origin=volume.origin[:2],
                        direction=volume.direction[:2, :2], modality=volume.modality,
                        path=volume.path, meta=meta)


def lift_points(xy) -> np.ndarray:
    """2D world points ``(N, 2)`` -> ``(N, 3)`` with ``z = 0`` (3D points are returned as
    float arrays, unchanged)."""
    xy = np.asarray(xy, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] not in (2, 3):
        raise InvalidInputError(f'points must be an (N, 2) or (N, 3) array, got {xy.shape}.')
    if xy.shape[1] == 3:
        return xy
    return np.concatenate([xy, np.zeros((len(xy), 1))], axis=1)


def drop_points(xyz) -> np.ndarray:
    """``(N, 3)`` world points of a planar volume -> 2D ``(N, 2)`` (the z column dropped)."""
    xyz = np.asarray(xyz, dtype=np.float64)
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise InvalidInputError(f'points must be an (N, 3) array, got {xyz.shape}.')
    return xyz[:, :2].copy()
