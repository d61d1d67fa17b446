"""UAE-M stage 2 (Bai et al., 2023): the same region cut from an aligned CT and MR of one subject.

The two views are packed in the SAM data contract (view 0 = CT, view 1 = MR), each with its
exact world-coordinate map, so the SAM fine / coarse pair samplers and InfoNCE losses give the
inter-modality loss unchanged: positives are voxel pairs within 2 mm in world coordinates
(the images are aligned), and the samplers draw queries in both directions (symmetric).

The released recipe (repository ``alibaba-damo-academy/self-supervised-anatomical-embedding-v2``,
config ``configs/samv2/samv2_ct_mri_inter.py``; data steps in
``sam/datasets/piplines/process3d.py`` and ``process3d_cross_mod.py``; crop and loss in
``sam/models/frameworks/sam_v2_uniform_cross_volume_mask_dual_head_MRI_CT.py``) does, per
registered pair:

* each view (CT, MR) is resampled to an isotropic spacing ``2 mm * s``, ``s ~ U(0.8, 1.2)``
  drawn per view (``DynamicSpacing``), and rotated by ``U(-5, 5)`` degrees about each axis
  (``RandomAffine3d(degrees=(-5, 5, -5, 5, -5, 5))``), independently for the two views;
* the crop window, ``(104, 128, 128)`` (z, y, x) MR voxels, is placed uniformly at random
  inside the bounding box of the MR body mask (``mask == 1``); along an axis where that box
  is smaller than the window, the crop is the box's whole extent;
* the CT crop is the same region in CT voxels; every border of each view's crop then moves
  independently by ``randint(-10, 10)`` voxels of that view;
* fine-level queries are MR voxels inside the MR mask only (``mri_fine_mask == 1``); their CT
  partners are the CT queries of the reverse direction; the coarse loss uses all voxels.

Here each view is one regular grid of exactly ``patch_size`` voxels resampled once from the
original image (the batch needs equal view shapes). With ``scale_range`` the MR view has
spacing ``spacing * s_MR`` over the window as above, and the CT view spacing ``spacing * s_CT``
over a box of ``patch_size`` CT voxels centred on the same point (the released crop keeps the
MR box and lets the CT voxel count vary instead); rotations act about each view's box centre
(the released rotation is about the volume centre, which adds a shift of the same order as the
jitter). Jitter is continuous, ``U(-jitter, jitter)`` view voxels per border.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from mmanat.registry import TRANSFORMS
from mmanat.structures.image import MedicalImage
from mmanat.utils.exceptions import InvalidInputError

from .intensity import normalize_ct
from .two_view_crop import _rotation_matrix, grid_world_coords, sample_on_grid
from .view_intensity import apply_window, volume_percentile_window

PLACEMENTS = ('volume', 'mr_body')


def _three(value, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    arr = np.repeat(arr, 3) if arr.size == 1 else arr
    if arr.size != 3 or np.any(arr < 0) or not np.all(np.isfinite(arr)):
        raise InvalidInputError(f'RandomInterModalityCrop: {name} must be one or three finite '
                                f'values >= 0, got {value}.')
    return arr


def mask_bbox_mm(mask: np.ndarray, spacing_xyz: np.ndarray) -> Optional[Tuple[np.ndarray,
                                                                                np.ndarray]]:
    """Bounding box of a ``(z, y, x)`` mask in mm from the volume's lower voxel edge, as
    ``(lo_xyz, hi_xyz)`` (voxel ``i`` spans ``[i, i + 1] * spacing``); ``None`` if empty."""
    idx = np.nonzero(mask)
    if len(idx[0]) == 0:
        return None
    lo = np.array([idx[a].min() for a in (2, 1, 0)], dtype=np.float64)
    hi = np.array([idx[a].max() for a in (2, 1, 0)], dtype=np.float64) + 1.0
    return lo * spacing_xyz, hi * spacing_xyz


@TRANSFORMS.register_module()
class RandomInterModalityCrop(BaseTransform):
    """Cut one random box from both images of an aligned CT/MR pair (UAE-M).

    A box of ``patch_size`` voxels of ``spacing`` mm is placed at random inside the volume
    (``placement='volume'``) or inside the bounding box of the MR body mask
    (``placement='mr_body'``, the released recipe); each view then moves every border of it
    independently by up to ``jitter`` voxels and resamples its (slightly different) box onto
    exactly ``patch_size`` voxels (trilinear), with the world coordinates of every output voxel.
    Options of the released recipe (module docstring): a per-view spacing scale
    (``scale_range``), a per-view rotation (``rotation_range``) and body masks of the views
    (``with_masks``). The defaults keep the plain crop (no scale, no rotation, no masks).

    Required keys: ``image`` and ``pair_image`` (3D :class:`MedicalImage` on the same grid),
    ``modality`` and ``pair_modality`` (one ``'CT'``, one ``'MR'``). Optional: body masks
    ``body_mask`` (of ``image``) and ``pair_body_mask`` (of ``pair_image``), each a
    :class:`MedicalImage` or array on that grid (nonzero = body), e.g. from
    :class:`~mmanat.datasets.PairedVolumeDataset` mask columns; where a mask is needed
    (``placement='mr_body'`` or ``with_masks``) and absent, it is computed with
    :func:`~mmanat.structures.body.body_mask` (modality rule).

    Added keys: ``view_imgs`` (2, D, H, W) normalised (CT rule for view 0, MR percentile
    window of the whole MR volume for view 1) when ``normalize``, else raw;
    ``view_coords`` (2, 3, D, H, W) world LPS mm; ``view_valid``; ``view_geometries``;
    ``view_modalities`` (``['CT', 'MR']``); ``view_pad_value``; ``two_view_meta``
    (``crop_boxes`` (2, 2, 3) ITK index boxes before rotation, ``overlap=True``, ``jitter``
    (2, 2, 3) view voxels, ``scales`` (2, 3), ``rotations`` (2, 3) degrees, ``placement``).
    With ``with_masks``: ``view_body_mask`` (2, D, H, W) bool, each view's own body mask (CT
    mask on view 0, MR mask on view 1; :class:`RandHistogramShift` uses it, as the released
    ``RandHistogramShift`` acts inside each image's mask), and ``view_query_mask``
    (2, D, H, W) bool, the MR body mask at every voxel of both views (world position), also
    packed by ``PackSAMInputs`` as ``data_samples['query_mask']`` (B, 2, D, H, W) for the
    fine pair sampler (a copy stays in ``two_view_meta['query_mask']``): the released fine
    loss draws its queries only from MR foreground voxels (their CT partners lie in the same
    world region).

    Args:
        patch_size: output ``(z, y, x)`` voxels (UAE-M: (104, 128, 128)).
        spacing: base voxel size in mm of the box (2 mm).
        jitter: maximal independent shift of every box border in voxels of the view, one
            value or ``(z, y, x)`` (UAE-M: 10).
        normalize: apply the modality normalisation per view.
        placement: ``'volume'`` (box anywhere in the volume, centred where larger) or
            ``'mr_body'`` (inside the MR body bounding box, centred on it along axes where the
            box is larger; falls back to ``'volume'`` for an empty mask).
        scale_range: ``(low, high)`` of a per-view isotropic scale ``s ~ U(low, high)`` of
            ``spacing`` (released: (0.8, 1.2)); ``None`` = no scaling.
        rotation_range: maximal rotation in degrees about each axis per view, one value or
            ``(x, y, z)`` (released: 5); 0 = none.
        with_masks: add ``view_body_mask`` and ``view_query_mask`` (see above).
        mask_min_object_size: ``min_object_size`` (pixels per slice) of computed body masks.
        mask_radius: morphology radius (pixels) of computed body masks.
        mr_mask_source: where the MR body mask comes from when ``results`` holds none:
            ``'mr'`` (computed on the MR: Otsu threshold) or ``'ct'`` (the CT body mask, HU
            rule; the pair is aligned, so the body is the same region). On synthetic MR the
            Otsu mask keeps only the bright tissue (5-18 % of the volume against 48-68 % for
            the CT body mask on three subjects), hence ``'ct'`` in the synthetic recipe.
    """

    def __init__(self, patch_size: Sequence[int] = (104, 128, 128), spacing: float = 2.0,
                 jitter=10, normalize: bool = True, placement: str = 'volume',
                 scale_range: Optional[Sequence[float]] = None, rotation_range=0.0,
                 with_masks: bool = False, mask_min_object_size: int = 2000,
                 mask_radius: int = 3, mr_mask_source: str = 'mr'):
        if mr_mask_source not in ('mr', 'ct'):
            raise InvalidInputError(f"RandomInterModalityCrop: mr_mask_source={mr_mask_source!r};"
                                    " use 'mr' or 'ct'.")
        if len(patch_size) != 3 or min(patch_size) < 2:
            raise InvalidInputError(f'patch_size must be 3 ints >= 2 (z, y, x), got '
                                    f'{patch_size}.')
        if spacing <= 0:
            raise InvalidInputError(f'spacing must be > 0, got {spacing}.')
        if placement not in PLACEMENTS:
            raise InvalidInputError(f'RandomInterModalityCrop: placement={placement!r}; use one '
                                    f'of {PLACEMENTS}.')
        if scale_range is not None:
            scale_range = tuple(float(v) for v in scale_range)
            if len(scale_range) != 2 or not 0 < scale_range[0] <= scale_range[1]:
                raise InvalidInputError(f'RandomInterModalityCrop: scale_range must be (low, '
                                        f'high) with 0 < low <= high, got {scale_range}.')
        self.patch_size = tuple(int(v) for v in patch_size)
        self.spacing = float(spacing)
        self.jitter_zyx = _three(jitter, 'jitter')
        self.normalize = bool(normalize)
        self.placement = placement
        self.scale_range = scale_range
        self.rotation_range = _three(rotation_range, 'rotation_range')  # (x, y, z) degrees
        self.with_masks = bool(with_masks)
        self.mask_min_object_size = int(mask_min_object_size)
        self.mask_radius = int(mask_radius)
        self.mr_mask_source = mr_mask_source

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
        return (a, b, 'body_mask', 'pair_body_mask') if mods[0] == 'CT' else \
            (b, a, 'pair_body_mask', 'body_mask')

    def _mask(self, results: dict, key: str, image: MedicalImage, modality: str) -> np.ndarray:
        """Body mask of ``image`` (bool, array shape): ``results[key]`` or computed."""
        m = results.get(key)
        if m is not None:
            arr = np.asarray(m.array if isinstance(m, MedicalImage) else m)
            if arr.shape != image.array.shape:
                raise InvalidInputError(
                    f'RandomInterModalityCrop: results[{key!r}] has shape {arr.shape}, the '
                    f'{modality} image {image.array.shape}; the body mask must be on the '
                    'image grid.')
            return arr > 0
        from mmanat.structures.body import body_mask
        return body_mask(image, modality=modality, radius=self.mask_radius,
                         min_object_size=self.mask_min_object_size)

    def _box(self, ct: MedicalImage, mr_mask: Optional[np.ndarray], box: np.ndarray):
        """Lower corner (mm from the volume's lower edge, x, y, z) of the common box."""
        extent = ct.size * ct.spacing  # mm along the image axes
        lo_r, ext = np.zeros(3), extent
        used = 'volume'
        if mr_mask is not None:
            bb = mask_bbox_mm(mr_mask, np.asarray(ct.spacing, dtype=np.float64))
            if bb is not None:
                lo_r, ext, used = bb[0], bb[1] - bb[0], 'mr_body'
        lower = lo_r + np.random.random_sample(3) * np.maximum(ext - box, 0.0) \
            + np.minimum(ext - box, 0.0) / 2.0  # centred when larger than the region
        return lower, used

    def _view_geometry(self, image: MedicalImage, lo_mm, hi_mm, size_xyz, rotation):
        step = (hi_mm - lo_mm) / size_xyz  # per-axis output spacing (mm)
        direction = np.asarray(image.direction, dtype=np.float64)
        if rotation is None:
            # voxel centres: half a step inside the box; mm from lower edge -> ITK index
            first_idx = (lo_mm + step / 2.0) / image.spacing - 0.5
            origin = image.index_to_world(first_idx)
        else:
            centre = image.index_to_world((lo_mm + hi_mm) / 2.0 / image.spacing - 0.5)
            direction = direction @ rotation
            origin = centre - direction @ ((size_xyz - 1) / 2.0 * step)
        return dict(origin=origin, spacing=step, direction=direction,
                    size=size_xyz.astype(np.int64))

    def transform(self, results: dict) -> dict:
        ct, mr, ct_key, mr_key = self._ct_mr(results)
        need_mr = self.placement == 'mr_body' or self.with_masks
        from_ct = need_mr and self.mr_mask_source == 'ct' and results.get(mr_key) is None
        ct_mask = self._mask(results, ct_key, ct, 'CT') if self.with_masks or from_ct else None
        mr_mask = None
        if need_mr:
            mr_mask = ct_mask if from_ct else self._mask(results, mr_key, mr, 'MR')
        size_xyz = np.asarray(self.patch_size[::-1], dtype=np.float64)
        jit = self.jitter_zyx[::-1]  # (x, y, z) view voxels
        scales = np.ones(2) if self.scale_range is None else \
            np.random.uniform(self.scale_range[0], self.scale_range[1], 2)
        rotate = bool(np.any(self.rotation_range > 0))
        angles = (np.random.uniform(-1.0, 1.0, (2, 3)) * self.rotation_range
                  if rotate else np.zeros((2, 3)))
        # the window is defined in MR voxels (view 1), as in the released crop
        box_mr = size_xyz * self.spacing * scales[1]
        lower, used = self._box(ct, mr_mask if self.placement == 'mr_body' else None, box_mr)
        centre = lower + box_mr / 2.0
        imgs, coords, valids, geoms, boxes, jits = [], [], [], [], [], []
        body, query = [], []
        for v, image in enumerate((ct, mr)):
            vox = self.spacing * scales[v]
            box = size_xyz * vox
            d = (np.random.random_sample((2, 3)) * 2.0 - 1.0) * jit * vox  # mm
            lo_mm, hi_mm = centre - box / 2.0 + d[0], centre + box / 2.0 + d[1]
            geom = self._view_geometry(image, lo_mm, hi_mm, size_xyz,
                                       _rotation_matrix(angles[v]) if rotate else None)
            if self.normalize:
                pad = -1024.0 if v == 0 else float(image.array.min())
            else:
                pad = float(image.array.min())
            extra = []
            if self.with_masks:
                extra = [((ct_mask if v == 0 else mr_mask).astype(np.float32), 0, 0.0)]
                if v == 0:
                    extra.append((mr_mask.astype(np.float32), 0, 0.0))
            vals, valid, *masks = sample_on_grid(image, geom, pad, order=1, extra=extra)
            if self.with_masks:
                body.append((masks[0] > 0.5) & valid)
                query.append((masks[-1] > 0.5) & valid)
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
            jits.append(d / vox)
        results['view_imgs'] = np.stack(imgs).astype(np.float32)
        results['view_coords'] = np.stack(coords)
        results['view_valid'] = np.stack(valids)
        results['view_geometries'] = geoms
        results['view_modalities'] = ['CT', 'MR']
        results['view_pad_value'] = float(min(v.min() for v in imgs))
        meta = dict(scales=np.stack([g['spacing'] for g in geoms]) / self.spacing,
                    crop_boxes=np.stack(boxes), overlap=True, seed_world=None,
                    jitter=np.stack(jits),
                    centres_world=np.stack([ct.index_to_world((b[0] + b[1]) / 2.0)
                                            for b in boxes]),
                    rotations=angles, placement=used)
        if self.with_masks:
            results['view_body_mask'] = np.stack(body)
            results['view_query_mask'] = np.stack(query)
            meta['query_mask'] = results['view_query_mask']
        results['two_view_meta'] = meta
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(patch_size={self.patch_size}, '
                f'spacing={self.spacing}, jitter={self.jitter_zyx.tolist()}, '
                f'normalize={self.normalize}, placement={self.placement!r}, '
                f'scale_range={self.scale_range}, '
                f'rotation_range={self.rotation_range.tolist()}, '
                f'with_masks={self.with_masks}, mr_mask_source={self.mr_mask_source!r})')
