"""Geometry helpers on :class:`MedicalImage`: checking points against an image, cropping
while keeping world coordinates."""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from ..utils.exceptions import InvalidInputError
from .image import MedicalImage
from .points import PointSet


def check_points_inside(image: MedicalImage, points, margin: float = 0.5) -> np.ndarray:
    """Check that world points lie inside ``image`` and return their continuous ITK indices.

    Args:
        image: the image the points belong to.
        points: a :class:`PointSet` or an ``(N, ndim)`` array of world LPS mm.
        margin: tolerance in voxels beyond the outer voxel centres (0.5 = the voxel edges).

    Returns:
        ``(N, ndim)`` continuous ITK indices ``(i, j[, k])``.

    Raises:
        InvalidInputError: naming every point outside, its coordinates and the image's world
            bounds.
    """
    if isinstance(points, PointSet):
        xyz, names = points.xyz, points.names
    else:
        xyz = np.asarray(points, dtype=np.float64)
        if xyz.ndim == 1:
            xyz = xyz[None]
        names = [f'p{i}' for i in range(len(xyz))]
    if xyz.ndim != 2 or xyz.shape[1] != image.ndim:
        raise InvalidInputError(
            f'points of shape {xyz.shape} do not match a {image.ndim}D image; expected '
            f'(N, {image.ndim}) world coordinates.')
    index = image.world_to_index(xyz)
    inside = np.all((index >= -margin) & (index <= image.size - 1 + margin), axis=-1)
    if not np.all(inside):
        bad = np.nonzero(~inside)[0]
        lo, hi = image.world_bounds()
        listing = '; '.join(f'{names[i]} at {np.round(xyz[i], 2).tolist()} mm (index '
                            f'{np.round(index[i], 1).tolist()})' for i in bad[:10])
        more = f' and {len(bad) - 10} more' if len(bad) > 10 else ''
        raise InvalidInputError(
            f'{image.path or "<in-memory image>"}: {len(bad)} point(s) outside the image: '
            f'{listing}{more}. The image spans {np.round(lo, 2).tolist()} to '
            f'{np.round(hi, 2).tolist()} mm (LPS). Check the coordinate convention (RAS '
            'points need space="RAS") and that the points belong to this image.')
    return index


def crop_image(image: MedicalImage, bbox: Sequence[slice]) -> MedicalImage:
    """Crop ``image`` to array slices ``bbox`` (numpy order ``(z, y, x)`` / ``(y, x)``, step 1),
    moving the origin so that every kept voxel keeps its world coordinates exactly."""
    bbox = tuple(bbox)
    if len(bbox) != image.ndim:
        raise InvalidInputError(f'bbox {bbox} has {len(bbox)} slices for a {image.ndim}D image.')
    norm = []
    for s, n in zip(bbox, image.shape):
        start, stop, step = s.indices(n)
        if step != 1 or stop <= start:
            raise InvalidInputError(f'bbox slice {s} is empty or strided for axis size {n}.')
        norm.append(slice(start, stop))
    start_zyx = np.array([s.start for s in norm], dtype=np.float64)
    origin = image.array_index_to_world(start_zyx)
    return image.with_array(image.array[tuple(norm)].copy(), origin=origin)


def bbox_of_mask(mask: np.ndarray, margin: int = 0) -> Tuple[slice, ...]:
    """Array-order bounding box (tuple of slices) of the non-zero voxels of ``mask``, grown
    by ``margin`` voxels and clipped to the array; raises when the mask is empty."""
    mask = np.asarray(mask)
    if not mask.any():
        raise InvalidInputError('the mask is empty: no bounding box.')
    out = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        nz = np.nonzero(mask.any(axis=other))[0]
        out.append(slice(max(0, int(nz[0]) - margin),
                         min(mask.shape[axis], int(nz[-1]) + 1 + margin)))
    return tuple(out)
