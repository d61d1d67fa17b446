"""The ``BodyMask`` transform: the body mask of an image and, optionally, table removal.

The rule itself (threshold per modality, in-plane morphology, small-object removal, hole
filling) lives in :mod:`mmanat.structures.body`; ``body_mask``, ``body_bbox`` and
``air_value`` are re-exported here for the pipeline modules that import them from this file.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform

from mmanat.registry import TRANSFORMS
from mmanat.structures.body import (CT_AIR, CT_BBOX_THRESHOLD,  # noqa: F401
                                         CT_BODY_THRESHOLD, air_value, body_bbox, body_mask)
from mmanat.structures.image import MedicalImage
from mmanat.utils.exceptions import InvalidInputError

__all__ = ['BodyMask', 'body_mask', 'body_bbox', 'air_value']


@TRANSFORMS.register_module()
class BodyMask(BaseTransform):
    """Compute the body mask of ``results[key]`` and optionally remove the table.

    Required keys: ``key`` (a :class:`MedicalImage`). Added keys: ``'body_mask'``, a uint8
    :class:`MedicalImage` on the same grid (1 = body). Modified keys (``remove_table=True``):
    ``key``, with every voxel outside the mask set to air (-1024 for CT, the minimum else).

    Args:
        key: the image key.
        threshold, radius, min_object_size: see
            :func:`mmanat.structures.body.body_mask`.
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
