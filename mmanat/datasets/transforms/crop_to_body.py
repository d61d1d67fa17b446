"""``CropToBody``: crop a volume (and its label map / body mask) to the body bounding box."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from mmanat.registry import TRANSFORMS
from mmanat.structures.geometry import bbox_of_mask, crop_image
from mmanat.structures.image import MedicalImage
from mmanat.utils.exceptions import InvalidInputError

from .body_mask import body_bbox


@TRANSFORMS.register_module()
class CropToBody(BaseTransform):
    """Crop to the body box (as in SAM: voxels > -500 HU for CT, Otsu for MR).

    The origin of every cropped image moves to the world position of the first kept voxel,
    so every kept voxel keeps its world (LPS mm) coordinates exactly; world points stored in
    the results stay valid.

    Required keys: ``'image'`` (:class:`MedicalImage`). Modified keys: ``'image'`` and, when
    present, the ``extra_keys`` (``'label'``, ``'body_mask'``): MedicalImages on the same grid
    as the image, or arrays of the same shape. Added keys: ``'body_bbox'``, the array-order
    slices used (in the input grid).

    Args:
        threshold: see :func:`body_bbox`.
        margin: voxels kept around the box on each side.
        use_body_mask: take the box of ``results['body_mask']`` (from :class:`BodyMask`)
            instead of thresholding.
        extra_keys: further keys cropped with the image.
    """

    def __init__(self, threshold: Optional[float] = None, margin: int = 0,
                 use_body_mask: bool = False,
                 extra_keys: Sequence[str] = ('label', 'body_mask')):
        self.threshold = threshold
        self.margin = int(margin)
        self.use_body_mask = use_body_mask
        self.extra_keys = tuple(extra_keys)

    def transform(self, results: dict) -> dict:
        image = results.get('image')
        if not isinstance(image, MedicalImage):
            raise InvalidInputError(
                'CropToBody: results["image"] must be a MedicalImage, got '
                f'{type(image).__name__}.')
        if self.use_body_mask:
            mask = results.get('body_mask')
            if mask is None:
                raise InvalidInputError(
                    'CropToBody(use_body_mask=True) needs results["body_mask"]; put BodyMask '
                    'before it in the pipeline.')
            arr = mask.array if isinstance(mask, MedicalImage) else np.asarray(mask)
            if not arr.any():
                raise InvalidInputError(f'{image.path}: the body mask is empty.')
            bbox = bbox_of_mask(arr > 0, margin=self.margin)
        else:
            modality = results.get('modality') if image.modality is None else None
            bbox = body_bbox(image, threshold=self.threshold, modality=modality,
                             margin=self.margin)
        for key in self.extra_keys:
            value = results.get(key)
            if value is None:
                continue
            if isinstance(value, MedicalImage):
                if not value.same_geometry(image):
                    raise InvalidInputError(
                        f'CropToBody: results[{key!r}] ({value!r}) is not on the grid of the '
                        f'image ({image!r}); resample it to the image first.')
                results[key] = crop_image(value, bbox)
            else:
                value = np.asarray(value)
                if value.shape != image.shape:
                    raise InvalidInputError(
                        f'CropToBody: results[{key!r}] has shape {value.shape}, the image '
                        f'{image.shape}.')
                results[key] = value[bbox].copy()
        results['image'] = crop_image(image, bbox)
        results['body_bbox'] = bbox
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(threshold={self.threshold}, margin={self.margin}, '
                f'use_body_mask={self.use_body_mask}, extra_keys={self.extra_keys})')
