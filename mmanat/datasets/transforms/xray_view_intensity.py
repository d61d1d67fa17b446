"""Per-view X-ray intensity augmentation of the 2D SAM views: exposure (gamma), brightness
and contrast, blur in mm, noise, and an optional inversion."""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from mmanat.registry import TRANSFORMS
from mmanat.utils.exceptions import InvalidInputError

from .intensity import OFFSET

#: the normalised scale of mmanat: [0, 1] -> [-50, 205] (see :mod:`.intensity`)
SCALE = 255.0


def _range(name: str, rng: Sequence[float], low: float = 0.0) -> Tuple[float, float]:
    rng = tuple(float(v) for v in rng)
    if len(rng) != 2 or rng[0] < low or rng[1] < rng[0]:
        raise InvalidInputError(
            f'RandomXrayViewIntensity: {name} must be (low, high) with {low} <= low <= high, '
            f'got {rng}.')
    return rng


def _prob(name: str, p: float) -> float:
    if not 0.0 <= float(p) <= 1.0:
        raise InvalidInputError(f'RandomXrayViewIntensity: {name} must be in [0, 1], got {p}.')
    return float(p)


@TRANSFORMS.register_module()
class RandomXrayViewIntensity(BaseTransform):
    """Independent random X-ray intensity changes of each view of a 2D SAM pair.

    Radiographs of one anatomy differ by exposure (the film / detector curve), window,
    sharpness and noise; the two views of a pair get independent draws so that the embeddings
    learn to ignore them. Place it after :class:`NormalizeViewIntensity` (views on the
    normalised scale, [0, 1] -> [-50, 205]); per view, on ``u = (x + 50) / 255``:

    1. gamma (exposure curve), with probability ``gamma_prob``: ``u ** g``, ``log g`` uniform
       in ``log(gamma_range)``;
    2. brightness and contrast, with probability ``jitter_prob``: ``(u - m) * c + m + b``,
       ``c ~ U(contrast_range)``, ``b ~ U(brightness_range)``, ``m`` the mean of the valid
       pixels; then clipped to [0, 1];
    3. Gaussian blur, with probability ``blur_prob``: ``sigma ~ U(blur_sigma_mm)`` mm, in
       pixels with the view's own in-plane spacing (same physical blur at every view scale);
    4. additive Gaussian noise, with probability ``noise_prob``: ``std ~ U(noise_std)``
       (units of ``u``);
    5. inversion ``u -> 1 - u`` (bright air, MONOCHROME1-like), with probability
       ``invert_prob`` (0 by default: :func:`mmanat.fileio.read_xray` already returns dark
       air).

    The geometry (coordinate maps, validity) is untouched. Defaults are moderate; the real
    radiograph of the CPU recipe uses stronger ranges (configs/_base_/datasets/
    sam2d_two_view.py).

    Required keys: ``view_imgs`` (V, D, H, W) float32 (D = 1 for radiographs; every slice is
    treated alike); optional ``view_valid`` (the mean of step 2), ``view_geometries`` (blur
    spacing; else ``default_spacing``).
    Modified keys: ``view_imgs``; adds ``two_view_meta['xray_augment']`` (the drawn values).

    Args:
        gamma_range, gamma_prob: exposure curve.
        brightness_range, contrast_range, jitter_prob: window changes.
        blur_sigma_mm, blur_prob: blur in mm.
        noise_std, noise_prob: noise std in units of the [0, 1] scale.
        invert_prob: probability of inverting a view.
        default_spacing: in-plane view spacing (mm) when the geometries are unknown.
    """

    def __init__(self, gamma_range: Sequence[float] = (0.7, 1.4), gamma_prob: float = 0.8,
                 brightness_range: Sequence[float] = (-0.1, 0.1),
                 contrast_range: Sequence[float] = (0.75, 1.25), jitter_prob: float = 0.8,
                 blur_sigma_mm: Sequence[float] = (0.0, 2.0), blur_prob: float = 0.5,
                 noise_std: Sequence[float] = (0.0, 0.03), noise_prob: float = 0.5,
                 invert_prob: float = 0.0, default_spacing: float = 1.0):
        self.gamma_range = _range('gamma_range', gamma_range, low=1e-3)
        self.gamma_prob = _prob('gamma_prob', gamma_prob)
        self.brightness_range = _range('brightness_range', brightness_range, low=-1.0)
        self.contrast_range = _range('contrast_range', contrast_range)
        self.jitter_prob = _prob('jitter_prob', jitter_prob)
        self.blur_sigma_mm = _range('blur_sigma_mm', blur_sigma_mm)
        self.blur_prob = _prob('blur_prob', blur_prob)
        self.noise_std = _range('noise_std', noise_std)
        self.noise_prob = _prob('noise_prob', noise_prob)
        self.invert_prob = _prob('invert_prob', invert_prob)
        if not float(default_spacing) > 0:
            raise InvalidInputError(
                f'RandomXrayViewIntensity: default_spacing must be > 0, got {default_spacing}.')
        self.default_spacing = float(default_spacing)

    def augment(self, u: np.ndarray, valid: np.ndarray, spacing_yx: np.ndarray):
        """Augment one view ``u`` (D, H, W) on the [0, 1] scale; returns (view, record)."""
        from scipy.ndimage import gaussian_filter
        rng = np.random
        rec = dict(gamma=1.0, brightness=0.0, contrast=1.0, blur_sigma_mm=0.0, noise_std=0.0,
                   inverted=False)
        u = np.clip(u, 0.0, 1.0)
        if rng.random_sample() < self.gamma_prob:
            lo, hi = np.log(self.gamma_range)
            rec['gamma'] = float(np.exp(rng.uniform(lo, hi)))
            u = np.power(u, np.float32(rec['gamma']))
        if rng.random_sample() < self.jitter_prob:
            rec['contrast'] = float(rng.uniform(*self.contrast_range))
            rec['brightness'] = float(rng.uniform(*self.brightness_range))
            m = np.float32(u[valid].mean() if valid.any() else u.mean())
            u = np.clip((u - m) * np.float32(rec['contrast']) + m
                        + np.float32(rec['brightness']), 0.0, 1.0)
        if rng.random_sample() < self.blur_prob:
            rec['blur_sigma_mm'] = float(rng.uniform(*self.blur_sigma_mm))
            if rec['blur_sigma_mm'] > 0:
                sigma = (0.0, ) + tuple(rec['blur_sigma_mm'] / spacing_yx)  # never across
                u = gaussian_filter(u, sigma=sigma, mode='nearest')
        if rng.random_sample() < self.noise_prob:
            rec['noise_std'] = float(rng.uniform(*self.noise_std))
            if rec['noise_std'] > 0:
                u = u + (rng.standard_normal(u.shape) * rec['noise_std']).astype(np.float32)
        if rng.random_sample() < self.invert_prob:
            rec['inverted'] = True
            u = 1.0 - u
        return u.astype(np.float32, copy=False), rec

    def transform(self, results: dict) -> dict:
        views = results.get('view_imgs')
        if views is None or np.ndim(views) != 4:
            raise InvalidInputError(
                'RandomXrayViewIntensity needs results["view_imgs"] (V, D, H, W); put it after '
                'RandomTwoViewCrop and NormalizeViewIntensity.')
        views = np.asarray(views, dtype=np.float32)
        valid = results.get('view_valid')
        valid = np.ones(views.shape, bool) if valid is None else np.asarray(valid, bool)
        geoms = results.get('view_geometries') or [None] * len(views)
        out, record = np.empty_like(views), []
        for v in range(len(views)):
            spacing = (np.asarray(geoms[v]['spacing'], dtype=np.float64)[[1, 0]]
                       if geoms[v] is not None else np.full(2, self.default_spacing))
            u = (views[v] + np.float32(OFFSET)) / np.float32(SCALE)
            u, rec = self.augment(u, valid[v], spacing)
            out[v] = u * np.float32(SCALE) - np.float32(OFFSET)
            record.append(rec)
        results['view_imgs'] = out
        results.setdefault('two_view_meta', {})['xray_augment'] = record
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(gamma_range={self.gamma_range}, '
                f'brightness_range={self.brightness_range}, '
                f'contrast_range={self.contrast_range}, blur_sigma_mm={self.blur_sigma_mm}, '
                f'noise_std={self.noise_std}, invert_prob={self.invert_prob})')
