"""Benchmark 1: a real volume (or radiograph) warped by a known random deformation.

The template is a real volume; the target is the template warped by a random affine + smooth
deformation (:mod:`.deformation`), with a change of contrast and a field-of-view cut; query
points are sampled inside the body of the template and their exact positions in the target
are the ground truth.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

from ...structures.image import MedicalImage
from .deformation import RandomDeformation, random_deformation, random_target_grid, warp_image
from .landmark_case import LandmarkCase
from .sampling import sample_body_points

__all__ = ['random_intensity_change', 'deform_case', 'deformation_cases']


def random_intensity_change(array: np.ndarray, modality: Optional[str],
                            rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """A plausible change of contrast between two scans (float32 result).

    CT: linear ``a x + b`` (a = 1 +- 0.05, b = +-30 HU) plus Gaussian noise (0-25 HU).
    Other modalities: gamma 0.8-1.25 on the min-max normalised values, a smooth multiplicative
    bias field (+-15 %) and noise (0-2 % of the range), mapped back to the original range (for
    a radiograph, ``'XR'``: another exposure and display curve, uneven exposure and noise).
    ``strength`` scales every change (0 = none).
    """
    from scipy.ndimage import zoom
    arr = np.asarray(array, dtype=np.float32)
    s = float(strength)
    if modality == 'CT':
        a = 1.0 + s * rng.uniform(-0.05, 0.05)
        b = s * rng.uniform(-30, 30)
        out = a * arr + b + rng.normal(0, s * rng.uniform(0, 25), arr.shape).astype(np.float32)
        return out.astype(np.float32)
    lo, hi = float(arr.min()), float(arr.max())
    rng_ = max(hi - lo, 1e-6)
    x = (arr - lo) / rng_
    gamma = float(np.exp(s * rng.uniform(np.log(0.8), np.log(1.25))))
    x = np.power(np.clip(x, 0, 1), gamma)
    coarse = 1.0 + s * 0.15 * np.tanh(rng.normal(size=(4, 4, 4)) if arr.ndim == 3
                                       else rng.normal(size=(4, 4)))
    bias = zoom(coarse, [d / c for d, c in zip(arr.shape, coarse.shape)], order=1,
                grid_mode=True, mode='nearest')
    x = x * bias + rng.normal(0, s * rng.uniform(0, 0.02), arr.shape)
    return (x * rng_ + lo).astype(np.float32)



def deform_case(template: MedicalImage, rng: np.random.Generator, n_points: int = 50,
                name: str = 'case', fov_cut=None, spacing_jitter: float = 0.15,
                intensity_strength: float = 1.0, edge_margin_mm: float = 8.0,
                body: Optional[np.ndarray] = None, erode_mm: float = 10.0,
                **deformation_kwargs) -> Tuple[LandmarkCase, RandomDeformation]:
    """Warp ``template`` (3D, or 2D: a radiograph) into a new target and return the case and
    its deformation.

    Points are sampled inside the template's body (``body``: its mask, default that of
    :func:`.sample_body_points`), at least ``erode_mm`` from the body surface; a point is kept
    only when its ground-truth position lies inside the target grid at least
    ``edge_margin_mm`` from its border. ``fov_cut`` (per axis x, y[, z]) defaults to
    ``(0.1, 0.1, 0.2)`` for a volume and ``(0.1, 0.1)`` for a 2D image.
    """
    if fov_cut is None:
        fov_cut = (0.1, 0.1, 0.2) if template.ndim == 3 else (0.1, 0.1)
    deformation = random_deformation(template, rng, **deformation_kwargs)
    grid = random_target_grid(template, rng, fov_cut, spacing_jitter)
    default = float(template.array.min())
    target = warp_image(template, deformation, grid, default_value=default)
    target = target.with_array(random_intensity_change(target.array, template.modality, rng,
                                                       intensity_strength))
    pts = sample_body_points(template, 4 * n_points, rng, erode_mm=erode_mm, mask=body)
    gt = deformation.template_to_target(pts)
    idx = target.world_to_index(gt)
    margin = edge_margin_mm / target.spacing
    keep = np.all((idx >= margin) & (idx <= target.size - 1 - margin), axis=1)
    pts, gt = pts[keep][:n_points], gt[keep][:n_points]
    case = LandmarkCase(name, template, target, pts, gt,
                        meta=dict(kind='deformation', fov_cut=list(map(float, np.ravel(fov_cut))),
                                  **{k: float(v) for k, v in deformation_kwargs.items()}))
    return case, deformation


def deformation_cases(images: Dict[str, MedicalImage], n_per_image: int = 2,
                      n_points: int = 50, spacing: Optional[float] = 2.0, seed: int = 0,
                      **kwargs) -> List[LandmarkCase]:
    """Benchmark 1: each image (e.g. the two real CTs) resampled to ``spacing`` mm (``None``:
    kept) and warped ``n_per_image`` times (see :func:`deform_case`)."""
    from ...structures.resample import resample_to_spacing
    cases = []
    for i, (key, image) in enumerate(sorted(images.items())):
        tmpl = image if spacing is None else resample_to_spacing(image, spacing)
        for j in range(n_per_image):
            rng = np.random.default_rng([seed, i, j])
            case, _ = deform_case(tmpl, rng, n_points=n_points, name=f'{key}/def{j}', **kwargs)
            case.meta.update(seed=[seed, i, j], source=image.path)
            cases.append(case)
    return cases
