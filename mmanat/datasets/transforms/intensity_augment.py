"""Mild intensity augmentation of the two SAM views: Gaussian blur (in mm) and noise."""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from mmanat.registry import TRANSFORMS
from mmanat.utils.exceptions import InvalidInputError



def _check_range(name: str, rng: Sequence[float]) -> Tuple[float, float]:
    rng = tuple(float(v) for v in rng)
    if len(rng) != 2 or rng[0] < 0 or rng[1] < rng[0]:
        raise InvalidInputError(f'{name} must be (low, high) with 0 <= low <= high, got {rng}.')
    return rng


@TRANSFORMS.register_module()
class RandomIntensityAugment(BaseTransform):
    """Per-view random Gaussian blur and additive Gaussian noise (SAM), independently
    for each view. Only intensities change; the coordinate maps stay exact.

    Place it after the intensity normalisation: ``noise_std`` is in the units of the
    normalised scale (CT/MR map to [-50, 205]), so the default ``(0, 4)`` is mild.
    The blur standard deviation is given in mm and converted to voxels with each view's own
    spacing (``2 mm * s``), so the same physical blur is applied whatever the view scale.

    Required keys: ``view_imgs`` (2, D, H, W) float32; ``view_geometries`` (for the blur
    spacing; without it ``default_spacing`` is used).
    Modified keys: ``view_imgs``; adds ``two_view_meta['augment']`` with the drawn values.

    Args:
        blur_prob: probability of blurring a view.
        blur_sigma_mm: range of the blur std in mm (SAM: 0-4 mm).
        noise_prob: probability of adding noise to a view.
        noise_std: range of the noise std (intensity units).
        default_spacing: view spacing in mm when the geometry is unknown.
    """

    def __init__(self, blur_prob: float = 0.5, blur_sigma_mm: Sequence[float] = (0.0, 4.0),
                 noise_prob: float = 0.5, noise_std: Sequence[float] = (0.0, 4.0),
                 default_spacing: float = 2.0):
        for name, p in (('blur_prob', blur_prob), ('noise_prob', noise_prob)):
            if not 0.0 <= p <= 1.0:
                raise InvalidInputError(f'{name} must be in [0, 1], got {p}.')
        self.blur_prob = float(blur_prob)
        self.blur_sigma_mm = _check_range('blur_sigma_mm', blur_sigma_mm)
        self.noise_prob = float(noise_prob)
        self.noise_std = _check_range('noise_std', noise_std)
        self.default_spacing = float(default_spacing)

    def transform(self, results: dict) -> dict:
        from scipy.ndimage import gaussian_filter
        views = results.get('view_imgs')
        if views is None:
            raise InvalidInputError('RandomIntensityAugment needs results["view_imgs"]; put it '
                                    'after RandomTwoViewCrop.')
        views = np.array(views, dtype=np.float32, copy=True)
        geoms = results.get('view_geometries') or [None] * len(views)
        record = []
        for v in range(len(views)):
            spacing = (np.asarray(geoms[v]['spacing'], dtype=np.float64)
                       if geoms[v] is not None else np.full(3, self.default_spacing))
            blur_mm = 0.0
            if np.random.random_sample() < self.blur_prob:
                blur_mm = float(np.random.uniform(*self.blur_sigma_mm))
                if blur_mm > 0:
                    sigma_vox = blur_mm / spacing[::-1]  # (z, y, x) array order
                    views[v] = gaussian_filter(views[v], sigma=sigma_vox, mode='nearest')
            noise = 0.0
            if np.random.random_sample() < self.noise_prob:
                noise = float(np.random.uniform(*self.noise_std))
                if noise > 0:
                    views[v] += (np.random.standard_normal(views[v].shape) * noise).astype(
                        np.float32)
            record.append(dict(blur_sigma_mm=blur_mm, noise_std=noise))
        results['view_imgs'] = views
        results.setdefault('two_view_meta', {})['augment'] = record
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(blur_prob={self.blur_prob}, '
                f'blur_sigma_mm={self.blur_sigma_mm}, noise_prob={self.noise_prob}, '
                f'noise_std={self.noise_std})')
