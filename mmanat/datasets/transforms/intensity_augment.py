"""Mild intensity augmentation of the two SAM views: Gaussian blur (in mm) and noise."""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from mmanat.registry import TRANSFORMS
from mmanat.utils.exceptions import InvalidInputError

#: border modes of scipy.ndimage.gaussian_filter accepted for the blur
BLUR_MODES = ('nearest', 'reflect', 'mirror', 'constant', 'wrap')


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

    The defaults (blur and noise each with p = 0.5, one isotropic blur sigma, noise std up to
    4) are stronger than the released recipe. The released one
    (alibaba-damo-academy/self-supervised-anatomical-embedding-v2, view pipelines of
    ``configs/sam/sam_NIHLN.py`` and ``configs/sam/sam_deeplesion.py``, transforms in
    ``sam/datasets/piplines/process3d.py``) is, after ``RescaleIntensity`` ([-1024, 3071] HU
    -> [0, 255] - 50):

    - ``RandomNoise3d``: ``torchio.RandomNoise(mean=0, std=(0, 0.001))`` on every view
      (p = 1): noise std ~ U(0, 0.001) intensity units, i.e. practically none;
    - ``RandomBlur3d`` (sam_deeplesion.py only; commented out in sam_NIHLN.py):
      ``torchio.RandomBlur(std=(0, 4))`` on every view after the noise: one sigma per axis,
      each ~ U(0, 4) mm, scipy ``gaussian_filter`` with its default 'reflect' border.

    ``noise_first``, ``blur_per_axis`` and ``blur_mode`` reproduce it; the configs name the
    two variants ``view_augment_released`` (sam_NIHLN.py) and
    ``view_augment_released_blur`` (sam_deeplesion.py) in
    ``configs/_base_/datasets/sam_two_view.py``.

    Required keys: ``view_imgs`` (2, D, H, W) float32; ``view_geometries`` (for the blur
    spacing; without it ``default_spacing`` is used).
    Modified keys: ``view_imgs``; adds ``two_view_meta['augment']`` with the drawn values
    (``blur_sigma_mm`` a float, or the (x, y, z) sigmas with ``blur_per_axis``).

    Args:
        blur_prob: probability of blurring a view.
        blur_sigma_mm: range of the blur std in mm (SAM: 0-4 mm).
        noise_prob: probability of adding noise to a view.
        noise_std: range of the noise std (intensity units).
        default_spacing: view spacing in mm when the geometry is unknown.
        blur_per_axis: draw one sigma per axis (x, y, z) instead of one for all axes.
        blur_mode: border mode of ``scipy.ndimage.gaussian_filter`` ('nearest' by default;
            'reflect' as torchio).
        noise_first: add the noise before blurring (the released order) instead of after.
    """

    def __init__(self, blur_prob: float = 0.5, blur_sigma_mm: Sequence[float] = (0.0, 4.0),
                 noise_prob: float = 0.5, noise_std: Sequence[float] = (0.0, 4.0),
                 default_spacing: float = 2.0, blur_per_axis: bool = False,
                 blur_mode: str = 'nearest', noise_first: bool = False):
        for name, p in (('blur_prob', blur_prob), ('noise_prob', noise_prob)):
            if not 0.0 <= p <= 1.0:
                raise InvalidInputError(f'{name} must be in [0, 1], got {p}.')
        if blur_mode not in BLUR_MODES:
            raise InvalidInputError(
                f'RandomIntensityAugment: blur_mode={blur_mode!r}; use one of {BLUR_MODES}.')
        self.blur_prob = float(blur_prob)
        self.blur_sigma_mm = _check_range('blur_sigma_mm', blur_sigma_mm)
        self.noise_prob = float(noise_prob)
        self.noise_std = _check_range('noise_std', noise_std)
        self.default_spacing = float(default_spacing)
        self.blur_per_axis = bool(blur_per_axis)
        self.blur_mode = blur_mode
        self.noise_first = bool(noise_first)

    def _blur(self, view: np.ndarray, spacing: np.ndarray):
        """Blur one view with probability ``blur_prob``; returns (view, drawn sigma in mm)."""
        from scipy.ndimage import gaussian_filter
        if not np.random.random_sample() < self.blur_prob:
            return view, ([0.0] * 3 if self.blur_per_axis else 0.0)
        if self.blur_per_axis:
            sigma_mm = np.array([np.random.uniform(*self.blur_sigma_mm) for _ in range(3)])
            drawn = [float(v) for v in sigma_mm]
        else:
            drawn = float(np.random.uniform(*self.blur_sigma_mm))
            sigma_mm = np.full(3, drawn)
        if np.any(sigma_mm > 0):
            sigma_vox = (sigma_mm / spacing)[::-1]  # (x, y, z) -> (z, y, x) array order
            view = gaussian_filter(view, sigma=sigma_vox, mode=self.blur_mode)
        return view, drawn

    def _noise(self, view: np.ndarray):
        """Add noise with probability ``noise_prob``; returns (view, drawn std)."""
        if not np.random.random_sample() < self.noise_prob:
            return view, 0.0
        noise = float(np.random.uniform(*self.noise_std))
        if noise > 0:
            view = view + (np.random.standard_normal(view.shape) * noise).astype(np.float32)
        return view, noise

    def transform(self, results: dict) -> dict:
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
            view = views[v]
            if self.noise_first:
                view, noise = self._noise(view)
                view, blur_mm = self._blur(view, spacing)
            else:
                view, blur_mm = self._blur(view, spacing)
                view, noise = self._noise(view)
            views[v] = view
            record.append(dict(blur_sigma_mm=blur_mm, noise_std=noise))
        results['view_imgs'] = views
        results.setdefault('two_view_meta', {})['augment'] = record
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(blur_prob={self.blur_prob}, '
                f'blur_sigma_mm={self.blur_sigma_mm}, noise_prob={self.noise_prob}, '
                f'noise_std={self.noise_std}, blur_per_axis={self.blur_per_axis}, '
                f'blur_mode={self.blur_mode!r}, noise_first={self.noise_first})')
