"""UAE-M stage 2 (Bai et al., 2023): the same region cut from an aligned CT and MR of one subject.

The two views are packed in the SAM data contract (view 0 = CT, view 1 = MR), each with its
exact world-coordinate map, so the SAM fine / coarse pair samplers and InfoNCE losses give the
inter-modality loss unchanged: positives are voxel pairs within 2 mm in world coordinates
(the images are aligned), and the samplers draw queries in both directions (symmetric).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from mmanat.registry import TRANSFORMS
from mmanat.structures.image import MedicalImage
from mmanat.utils.exceptions import InvalidInputError

from .intensity import normalize_ct
from .two_view_crop import grid_world_coords, sample_on_grid
from .view_intensity import apply_window, volume_percentile_window


@TRANSFORMS.register_module()
class RandomInterModalityCrop(BaseTransform):
    """Cut one random box from both images of an aligned CT/MR pair (UAE-M).

    A box of ``patch_size`` voxels of ``spacing`` mm is placed at random inside the volume;
    each view then moves every border of it independently by up to ``jitter`` base voxels
    and resamples its (slightly different) box onto exactly ``patch_size`` voxels
    (trilinear), with the world coordinates of every output voxel.

    Required keys: ``image`` and ``pair_image`` (3D :class:`MedicalImage` on the same grid),
    ``modality`` and ``pair_modality`` (one ``'CT'``, one ``'MR'``).
    Added keys: ``view_imgs`` (2, D, H, W) normalised (CT rule for view 0, MR percentile
    window of the whole MR volume for view 1) when ``normalize``, else raw;
    ``view_coords`` (2, 3, D, H, W) world LPS mm; ``view_valid``; ``view_geometries``;
    ``view_modalities`` (``['CT', 'MR']``); ``view_pad_value``; ``two_view_meta``
    (``crop_boxes`` (2, 2, 3) ITK index boxes, ``overlap=True``, ``jitter`` (2, 2, 3)).

    Args:
        patch_size: output ``(z, y, x)`` voxels (UAE-M: (104, 128, 128)).
        spacing: base voxel size in mm of the box (2 mm).
        jitter: maximal independent shift of every box border in base voxels, one value or
            ``(z, y, x)`` (UAE-M: 10).
        normalize: apply the modality normalisation per view.
    """

    def __init__(self, patch_size: Sequence[int] = (104, 128, 128), spacing: float = 2.0,
                 jitter=10, normalize: bool = True):
        if len(patch_size) != 3 or min(patch_size) < 2:
            raise InvalidInputError(f'patch_size must be 3 ints >= 2 (z, y, x), got '
                                    f'{patch_size}.')
        jit = np.asarray(jitter, dtype=np.float64).reshape(-1)
        jit = np.repeat(jit, 3) if jit.size == 1 else jit
        if jit.size != 3 or np.any(jit < 0):
            raise InvalidInputError(f'jitter must be one or three values >= 0, got {jitter}.')
        if spacing <= 0:
            raise InvalidInputError(f'spacing must be > 0, got {spacing}.')
        self.patch_size = tuple(int(v) for v in patch_size)
        self.spacing = float(spacing)
        self.jitter_zyx = jit
        self.normalize = bool(normalize)

    def _ct_mr(self, results: dict):
        for k in ('image', 'pair_image'):
            if not isinstance(results.get(k), MedicalImage) or results[k].ndim != 3:
                raise InvalidInputError(
                    f'RandomInterModalityCrop needs results[{k!r}] as a 3D MedicalImage (use '
                    'SyntheticSubjectDataset(aligned_pair=True, modalities=("CT", "MR")) or a '
                    'dataset of registered pairs).')
        mods = [str(results.get('modality') or results['image'].modality).upper(),
                str(results.get('pair_modality') or results['pair_image'].modality).upper()]
        if sorted(mods) != ['CT', 'MR']:
            raise InvalidInputError(f'RandomInterModalityCrop needs one CT and one MR, got '
                                    f'{mods}.')
        a, b = results['image'], results['pair_image']
        if not a.same_geometry(b, tol=1e-4):
            raise InvalidInputError('RandomInterModalityCrop: image and pair_image must share '
                                    'the grid (register them first, tools/register.py).')
        return (a, b) if mods[0] == 'CT' else (b, a)

    def transform(self, results: dict) -> dict:
        ct, mr = self._ct_mr(results)
        size_xyz = np.asarray(self.patch_size[::-1], dtype=np.float64)
        jit = self.jitter_zyx[::-1]  # (x, y, z) base voxels
        extent = ct.size * ct.spacing  # mm along the image axes
        box = size_xyz * self.spacing
        lower = np.random.random_sample(3) * np.maximum(extent - box, 0.0) \
            + np.minimum(extent - box, 0.0) / 2.0  # centred when larger than the image
        imgs, coords, valids, geoms, boxes, jits = [], [], [], [], [], []
        for v, image in enumerate((ct, mr)):
            d = (np.random.random_sample((2, 3)) * 2.0 - 1.0) * jit * self.spacing  # mm
            lo_mm, hi_mm = lower + d[0], lower + box + d[1]
            step = (hi_mm - lo_mm) / size_xyz  # per-axis output spacing (mm)
            # voxel centres: half a step inside the box; mm from lower edge -> ITK index
            first_idx = (lo_mm + step / 2.0) / image.spacing - 0.5
            geom = dict(origin=image.index_to_world(first_idx), spacing=step,
                        direction=np.asarray(image.direction, dtype=np.float64),
                        size=size_xyz.astype(np.int64))
            if self.normalize:
                pad = -1024.0 if v == 0 else float(image.array.min())
            else:
                pad = float(image.array.min())
            vals, valid = sample_on_grid(image, geom, pad, order=1)
            if self.normalize:
                if v == 0:
                    vals = normalize_ct(vals)
                else:
                    window = image.meta.get('intensity_window') or \
                        volume_percentile_window(image.array)
                    vals = apply_window(vals, *window)
            imgs.append(vals)
            valids.append(valid)
            coords.append(grid_world_coords(geom))
            geoms.append(geom)
            boxes.append(np.stack([lo_mm / image.spacing - 0.5, hi_mm / image.spacing - 0.5]))
            jits.append(d / self.spacing)
        results['view_imgs'] = np.stack(imgs).astype(np.float32)
        results['view_coords'] = np.stack(coords)
        results['view_valid'] = np.stack(valids)
        results['view_geometries'] = geoms
        results['view_modalities'] = ['CT', 'MR']
        results['view_pad_value'] = float(min(v.min() for v in imgs))
        results['two_view_meta'] = dict(scales=np.stack([g['spacing'] for g in geoms])
                                        / self.spacing,
                                        crop_boxes=np.stack(boxes), overlap=True,
                                        seed_world=None, jitter=np.stack(jits),
                                        centres_world=np.stack([ct.index_to_world(
                                            (b[0] + b[1]) / 2.0) for b in boxes]),
                                        rotations=np.zeros((2, 3)))
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(patch_size={self.patch_size}, '
                f'spacing={self.spacing}, jitter={self.jitter_zyx.tolist()}, '
                f'normalize={self.normalize})')
