"""TorchIO intensity transforms applied to each of the two training views."""
from __future__ import annotations

from typing import Dict, List, Sequence, Union

import numpy as np
from mmcv.transforms import BaseTransform

from mmanat.registry import TRANSFORMS
from mmanat.utils.exceptions import InvalidInputError


def _build_torchio(cfg: Union[dict, object]):
    import torchio as tio
    if isinstance(cfg, dict):
        cfg = dict(cfg)
        name = cfg.pop('type', None)
        cls = getattr(tio, str(name), None)
        if cls is None:
            raise InvalidInputError(
                f'TorchioViewIntensity: torchio has no transform named {name!r}; use a class '
                'name of torchio.transforms, e.g. "RandomBiasField", "RandomGamma".')
        cfg = cls(**cfg)
    if not isinstance(cfg, tio.IntensityTransform):
        raise InvalidInputError(
            f'TorchioViewIntensity accepts intensity-only torchio transforms, got '
            f'{type(cfg).__name__}: a spatial transform would move voxels and break the exact '
            'coordinate maps of the two views (use RandomTwoViewCrop for geometry).')
    return cfg


@TRANSFORMS.register_module()
class TorchioViewIntensity(BaseTransform):
    """Apply TorchIO intensity transforms to each view of a two-view sample, independently.

    TorchIO (Pérez-García et al., Comput. Methods Programs Biomed. 2021) maintains the
    standard library of MR/CT intensity augmentations (bias field, gamma, ghosting, spikes,
    motion-free blur and noise in mm). Only intensity transforms are accepted: the two views'
    coordinate maps (world mm per voxel) must stay exact, so spatial augmentation stays in
    :class:`RandomTwoViewCrop`. Each view is wrapped in a ``torchio.ScalarImage`` with its own
    spacing, so transforms given in mm (``RandomBlur(std=...)``) act in physical units.

    Example (an MR-style bias field on half of the views, then gamma)::

        dict(type='TorchioViewIntensity',
             transforms=[dict(type='RandomBiasField', coefficients=0.4, p=0.5),
                         dict(type='RandomGamma', log_gamma=(-0.3, 0.3))])

    Randomness comes from torch's generator (seeded by mmengine's ``randomness`` setting).

    Required keys: ``view_imgs`` (2, D, H, W) float32 in (z, y, x) order; optional
    ``view_geometries`` (each with ``spacing`` (x, y, z) in mm).
    Modified keys: ``view_imgs``.

    Args:
        transforms: torchio transforms as config dicts (``type`` = a class name of
            ``torchio``) or instances, applied in order.
        default_spacing: view spacing in mm when ``view_geometries`` is absent.
    """

    def __init__(self, transforms: Sequence[Union[dict, object]],
                 default_spacing: float = 2.0):
        if not transforms:
            raise InvalidInputError('TorchioViewIntensity needs at least one transform.')
        import torchio as tio
        self.transforms: List = [_build_torchio(t) for t in transforms]
        self._compose = tio.Compose(self.transforms)
        self.default_spacing = float(default_spacing)

    def _view_image(self, view: np.ndarray, geometry: Dict):
        import torch
        import torchio as tio
        spacing = (np.asarray(geometry['spacing'], dtype=np.float64) if geometry is not None
                   else np.full(3, self.default_spacing))
        # torchio tensors are (C, W, H, D) = (C, x, y, z) with a RAS affine; only the voxel
        # size matters for intensity transforms, so a diagonal affine with the spacing is exact.
        affine = np.diag([spacing[0], spacing[1], spacing[2], 1.0])
        tensor = torch.from_numpy(np.ascontiguousarray(view.transpose(2, 1, 0)))[None]
        return tio.ScalarImage(tensor=tensor, affine=affine)

    def transform(self, results: dict) -> dict:
        views = results.get('view_imgs')
        if views is None:
            raise InvalidInputError('TorchioViewIntensity needs results["view_imgs"]; put it '
                                    'after RandomTwoViewCrop.')
        views = np.array(views, dtype=np.float32, copy=True)
        geoms = results.get('view_geometries') or [None] * len(views)
        for v in range(len(views)):
            image = self._compose(self._view_image(views[v], geoms[v]))
            views[v] = image.data[0].numpy().transpose(2, 1, 0).astype(np.float32)
        results['view_imgs'] = views
        return results

    def __repr__(self) -> str:
        names = ', '.join(type(t).__name__ for t in self.transforms)
        return f'{self.__class__.__name__}(transforms=[{names}])'
