"""Random points inside the body of an image (query points of the benchmark cases)."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ...structures.body import BENCHMARK_CASE_MASK, body_mask
from ...structures.image import MedicalImage
from ...utils.exceptions import InvalidInputError

__all__ = ['sample_body_points']


def sample_body_points(image: MedicalImage, n: int, rng: np.random.Generator,
                       erode_mm: float = 10.0, mask: Optional[np.ndarray] = None) -> np.ndarray:
    """``n`` random world points (mm) inside the body of ``image``, at least ``erode_mm`` from
    its surface (fewer if the body is smaller).

    Args:
        image: a 3D image or a 2D image (radiograph).
        n: number of points.
        rng: random generator (the draw is a function of it only).
        erode_mm: minimum distance (mm) of a point from the body surface.
        mask: ``(z, y, x)`` body mask; default: :func:`mmanat.structures.body.body_mask`
            with :data:`~mmanat.structures.body.BENCHMARK_CASE_MASK` (CT above -500 HU,
            largest 3D connected component, which drops the CT table and cables, 3D hole
            filling, no minimum in-plane object size, which would empty the body of a small
            or coarse image). These settings keep the query points of every published
            benchmark case unchanged.

    Returns:
        ``(min(n, body voxels), 3)`` world LPS points (mm), each uniformly jittered within
        its voxel.

    Raises:
        InvalidInputError: when no body voxel is left after the erosion.
    """
    from scipy import ndimage
    if mask is None:
        mask = body_mask(image, **BENCHMARK_CASE_MASK)
    mask = np.asarray(mask, dtype=bool)
    if erode_mm > 0:
        dist = ndimage.distance_transform_edt(mask, sampling=image.spacing[::-1])
        mask = dist >= erode_mm
    idx = np.argwhere(mask)
    if len(idx) == 0:
        raise InvalidInputError(f'{image.path or "<image>"}: no body voxels to sample points '
                                'from (empty foreground after erosion).')
    pick = idx[rng.choice(len(idx), size=min(n, len(idx)), replace=False)].astype(np.float64)
    pick += rng.uniform(-0.5, 0.5, size=pick.shape)
    return image.array_index_to_world(pick)
