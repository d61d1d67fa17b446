"""Lift a 2D radiograph of a results dict to the one-slice volume the 2D SAM trains on."""
from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np
from mmcv.transforms import BaseTransform

from mmanat.registry import TRANSFORMS
from mmanat.structures.image import MedicalImage
from mmanat.structures.planar import as_planar_volume, is_planar
from mmanat.utils.exceptions import InvalidInputError


def area_resample_2d(image: MedicalImage, spacing: float) -> MedicalImage:
    """Downsample a 2D image to (about) ``spacing`` mm pixels by area averaging
    (``cv2.INTER_AREA``, no aliasing), keeping its extent: the new pixels tile the old image
    exactly (spacing ``old * n_old / n_new``), the origin moves to the new first pixel centre.
    An image already at ``spacing`` or coarser is returned as it is."""
    import cv2
    sp = np.asarray(image.spacing, dtype=np.float64)
    h, w = image.array.shape
    new_w = max(1, int(round(w * sp[0] / spacing)))
    new_h = max(1, int(round(h * sp[1] / spacing)))
    if new_w >= w and new_h >= h:
        return image
    new_w, new_h = min(new_w, w), min(new_h, h)
    arr = cv2.resize(np.ascontiguousarray(image.array, dtype=np.float32), (new_w, new_h),
                     interpolation=cv2.INTER_AREA)
    new_sp = sp * np.array([w / new_w, h / new_h])
    # pixel edges stay put: first centre moves from edge + sp/2 to edge + new_sp/2
    origin = np.asarray(image.origin) + np.asarray(image.direction) @ ((new_sp - sp) / 2.0)
    return MedicalImage(arr, spacing=new_sp, origin=origin, direction=image.direction,
                        modality=image.modality, path=image.path, meta=dict(image.meta))


@TRANSFORMS.register_module()
class ToPlanarVolume(BaseTransform):
    """Make ``results['image']`` the one-slice volume ``(1, H, W)`` of a radiograph.

    The 2D SAM handles a radiograph as a volume of depth 1 in the world plane z = 0
    (:func:`mmanat.structures.planar.as_planar_volume`), so the two-view crop, the coordinate
    maps and the model run unchanged. Sources, in this order:

    * ``results['image']``: a 2D :class:`MedicalImage` (lifted) or a planar volume (kept);
    * ``results[key]``: a 2D array (``'img'`` of :class:`RadiographDataset` and
      :class:`SyntheticRadiographDataset`, values in [0, 1]) with the pixel spacing
      ``results[spacing_key]`` (``(sx, sy)`` mm; 1.0 when absent).

    With ``resample_to`` the image is first downsampled by area averaging to about that pixel
    size when it is finer (:func:`area_resample_2d`): the views are later resampled bilinearly,
    which would alias a 0.15 mm DICOM drawn at 1-2 mm.

    Added / updated keys: ``image`` (float32 planar volume, modality ``modality``),
    ``modality``, ``img_shape`` ``(1, H, W)``; ``key`` is removed (the volume replaces it).

    Args:
        key: results key of the 2D array.
        spacing_key: results key of its pixel spacing ``(sx, sy)``.
        spacing: pixel spacing ``(sx, sy)`` mm (or one number) that replaces the one of the
            item, for files whose spacing is missing or wrong (PNGs, DICOMs with Pixel
            Spacing 0): None keeps the item's.
        modality: modality of the volume ('XR': the intensity rule of radiographs, also
            used at inference by :func:`mmanat.apis.embed`).
        resample_to: pixel size in mm to downsample finer images to (None: keep).
    """

    def __init__(self, key: str = 'img', spacing_key: str = 'spacing', modality: str = 'XR',
                 resample_to: Optional[float] = None,
                 spacing: Union[None, float, Sequence[float]] = None):
        if resample_to is not None and not float(resample_to) > 0:
            raise InvalidInputError(f'ToPlanarVolume: resample_to must be > 0 mm or None, got '
                                    f'{resample_to!r}.')
        if spacing is not None:
            spacing = np.asarray(spacing, dtype=np.float64).reshape(-1)
            spacing = np.repeat(spacing, 2) if spacing.size == 1 else spacing
            if spacing.size != 2 or not np.all(spacing > 0):
                raise InvalidInputError(f'ToPlanarVolume: spacing must be > 0 mm, got '
                                        f'{spacing.tolist()}.')
            spacing = tuple(float(v) for v in spacing)
        self.spacing = spacing
        self.key = key
        self.spacing_key = spacing_key
        self.modality = str(modality).upper()
        self.resample_to = None if resample_to is None else float(resample_to)

    def _image_2d(self, results: dict) -> Optional[MedicalImage]:
        image = results.get('image')
        if isinstance(image, MedicalImage):
            if image.ndim == 2:
                return image
            if is_planar(image) or image.shape[0] == 1:
                return None  # already a one-slice volume
            raise InvalidInputError(
                f'{image.path or results.get("img_path") or "<sample>"}: ToPlanarVolume got a '
                f'3D volume of shape {image.shape}; the 2D SAM needs radiographs.')
        arr = results.get(self.key)
        if arr is None or np.ndim(arr) != 2:
            raise InvalidInputError(
                f'{results.get("img_path") or "<sample>"}: ToPlanarVolume needs results'
                f'["image"] (a 2D MedicalImage) or results["{self.key}"] (a 2D array), got '
                f'{None if arr is None else np.shape(arr)}.')
        spacing = results.get(self.spacing_key)
        return MedicalImage(np.asarray(arr, dtype=np.float32),
                            spacing=(1.0, 1.0) if spacing is None else spacing,
                            modality=self.modality, path=results.get('img_path'))

    def transform(self, results: dict) -> dict:
        image = self._image_2d(results)
        if image is None:
            volume = results['image']
            if self.spacing is not None:
                volume = volume.with_array(volume.array,
                                           spacing=(*self.spacing, volume.spacing[2]))
        else:
            if self.spacing is not None:
                image = image.with_array(image.array, spacing=self.spacing)
            if self.resample_to is not None:
                image = area_resample_2d(image, self.resample_to)
            image = image.with_array(np.asarray(image.array, dtype=np.float32),
                                     modality=self.modality)
            volume = as_planar_volume(image)
        results.pop(self.key, None)
        results['image'] = volume
        results['modality'] = volume.modality or self.modality
        results['img_shape'] = tuple(volume.shape)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(key={self.key!r}, spacing_key='
                f'{self.spacing_key!r}, modality={self.modality!r}, '
                f'resample_to={self.resample_to}, spacing={self.spacing})')
