"""SAM two-view sampling (Yan et al., 2022): two randomly scaled, cropped views of one volume, each
with an exact per-voxel map of world coordinates.

How the reference recipe maps onto one resampling step
------------------------------------------------------
The reference pipeline, per view, (1) crops a box of ``ceil(patch * s * 1.05)`` 2-mm voxels
from the volume, (2) resamples the crop to spacing ``2 mm * s`` and (3) centre-crops exactly
``patch`` voxels. Steps 2-3 only decide *which* world points end up in the output: the
centre-crop of the resampled box is the regular grid of ``patch`` points with spacing
``2 mm * s``, centred on the box centre, axis-aligned with the volume. Here that output grid
is defined directly (origin, spacing ``2*s``, direction of the volume, optionally rotated by a
small random angle about the view centre) and the ORIGINAL volume is resampled onto it once
(trilinear). The result is the same view with one interpolation instead of two, and its
geometry is known analytically, so the coordinate map of a view is simply
``index_to_world`` of every output voxel - exact under any scale, rotation or origin.
Voxels of the output grid that fall outside the original image are filled with a padding
value (air for CT) and flagged ``valid = False``.

The 1.05 box margin still matters for placement: the common seed point of an overlapping pair
lies at least ``seed_margin`` voxels inside both boxes, which keeps it inside both views.

2D images (planar volumes)
--------------------------
A radiograph is a one-slice volume ``(1, H, W)`` in the world plane z = 0
(:func:`mmanat.structures.planar.as_planar_volume`). With ``patch_size = (1, h, w)`` and such a
volume, the views are drawn in its plane: boxes and seed point only in-plane, the single output
slice lies exactly on the image slice (index k = 0, so every coordinate map has the image's z),
a rotation only about the plane normal (``rotation_range``'s z angle), and the view spacing is
``spacing * s`` in-plane and the image's own (1 mm) across it. Everything else - scales,
overlap probability, one-step resampling, exact coordinate maps - is the 3D recipe.
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmcv.transforms import BaseTransform

from mmanat.registry import TRANSFORMS
from mmanat.structures.image import MedicalImage
from mmanat.structures.planar import as_planar_volume, is_planar
from mmanat.utils.exceptions import InvalidInputError


__all__ = ['RandomTwoViewCrop', 'view_grid_geometry', 'sample_on_grid', 'grid_world_coords']


def _rotation_matrix(angles_deg: Sequence[float]) -> np.ndarray:
    """Rotation about the x, then y, then z axis (angles in degrees), as a 3x3 matrix."""
    ax, ay, az = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    rx = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
    ry = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
    rz = np.array([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def view_grid_geometry(image: MedicalImage, centre_index, size_xyz, spacing: float,
                       rotation: Optional[np.ndarray] = None) -> Dict[str, np.ndarray]:
    """Geometry of a regular output grid centred on a point of ``image``.

    Args:
        image: the source volume (its direction defines the grid axes).
        centre_index: continuous ITK index ``(i, j, k)`` of the grid centre in ``image``.
        size_xyz: output size in ITK order ``(nx, ny, nz)``.
        spacing: isotropic output spacing in mm.
        rotation: optional 3x3 rotation applied in the image's axis frame about the centre.

    Returns:
        dict with ``origin`` (3,), ``spacing`` (3,), ``direction`` (3, 3) and ``size`` (3,)
        in ITK order, usable as a :class:`MedicalImage` geometry.
    """
    size_xyz = np.asarray(size_xyz, dtype=np.int64)
    direction = np.asarray(image.direction, dtype=np.float64)
    if rotation is not None:
        direction = direction @ rotation
    spacing_v = np.full(3, float(spacing))
    centre_world = image.index_to_world(np.asarray(centre_index, dtype=np.float64))
    half = (size_xyz - 1) / 2.0 * spacing_v
    origin = centre_world - direction @ half
    return dict(origin=origin, spacing=spacing_v, direction=direction, size=size_xyz)


def grid_world_coords(geometry: Dict[str, np.ndarray], dtype=np.float32) -> np.ndarray:
    """World LPS mm ``(x, y, z)`` of every voxel centre of a grid: array ``(3, D, H, W)``."""
    nx, ny, nz = (int(v) for v in geometry['size'])
    mat = np.asarray(geometry['direction']) * np.asarray(geometry['spacing'])[None, :]
    i = np.arange(nx, dtype=np.float64)[None, None, :]
    j = np.arange(ny, dtype=np.float64)[None, :, None]
    k = np.arange(nz, dtype=np.float64)[:, None, None]
    out = np.empty((3, nz, ny, nx), dtype=dtype)
    for c in range(3):  # 3 broadcast sums over the whole grid, vectorised per component
        out[c] = geometry['origin'][c] + mat[c, 0] * i + mat[c, 1] * j + mat[c, 2] * k
    return out


def sample_on_grid(image: MedicalImage, geometry: Dict[str, np.ndarray], pad_value: float,
                   order: int = 1, extra: Sequence[Tuple[np.ndarray, int, float]] = ()):
    """Resample ``image`` onto an arbitrary regular grid in one step.

    Only the block of the source array that the grid touches is read (cheap on memory-mapped
    caches). Linear (``order=1``) or nearest (``order=0``) interpolation; a grid voxel is
    valid when its centre lies inside the source image's voxel extent
    ``[-0.5, n - 0.5]`` (values there use edge replication); invalid voxels get
    ``pad_value``.

    Args:
        image: source volume.
        geometry: output grid (see :func:`view_grid_geometry`).
        pad_value: value of voxels outside the source image.
        order: 1 = trilinear, 0 = nearest.
        extra: further arrays on the same grid as ``image`` (e.g. a label map), each as
            ``(array, order, pad_value)``.

    Returns:
        ``(values (D, H, W) float32, valid (D, H, W) bool, [extra arrays...])``.
    """
    src_arr = image.array
    if src_arr.ndim != 3:
        raise InvalidInputError(f'{image.path or "<image>"}: a 3D volume is required for '
                                f'two-view sampling, got shape {src_arr.shape}.')
    nx, ny, nz = (int(v) for v in geometry['size'])
    out_size = np.array([nx, ny, nz], dtype=np.float64)
    # continuous source index (ITK order) = m @ out_index + b
    src_mat = image.direction * image.spacing[None, :]
    src_inv = np.linalg.inv(src_mat)
    out_mat = np.asarray(geometry['direction']) * np.asarray(geometry['spacing'])[None, :]
    m = src_inv @ out_mat
    b = src_inv @ (np.asarray(geometry['origin']) - image.origin)
    src_size = np.asarray(src_arr.shape[::-1], dtype=np.int64)  # (nx, ny, nz) of the source

    # bounding block of the source array touched by the grid (from the 8 grid corners)
    corners = np.array(np.meshgrid([0, nx - 1], [0, ny - 1], [0, nz - 1], indexing='ij'))
    corners = corners.reshape(3, -1).T.astype(np.float64)
    corner_idx = corners @ m.T + b
    lo = np.clip(np.floor(corner_idx.min(0)).astype(np.int64), 0, src_size - 1)
    hi = np.clip(np.ceil(corner_idx.max(0)).astype(np.int64) + 1, 1, src_size)
    hi = np.maximum(hi, lo + 1)
    block_slices = (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))
    denom = np.maximum(hi - lo - 1, 1).astype(np.float64)

    # One affine map from normalised output coordinates (affine_grid, align_corners=True:
    # -1/+1 = first/last voxel centre) to normalised block coordinates:
    #   out_index = a_o * x_n + a_o,  a_o = (n_out - 1) / 2
    #   block_n   = (2 / denom) * (m @ out_index + b - lo) - 1
    a_o = (out_size - 1) / 2.0
    s_b = 2.0 / denom
    theta = np.zeros((3, 4))
    theta[:, :3] = s_b[:, None] * m * a_o[None, :]
    theta[:, 3] = s_b * (m @ a_o + b - lo) - 1.0
    # Grid and validity in numpy float32 (single-threaded elementwise work: torch's
    # multi-threaded elementwise kernels are ~30x slower on a busy 2-core machine); the grid
    # is F.affine_grid(theta, align_corners=True) written as broadcast sums.
    theta32 = theta.astype(np.float32)
    xn = np.linspace(-1.0, 1.0, nx, dtype=np.float32)
    yn = np.linspace(-1.0, 1.0, ny, dtype=np.float32)
    zn = np.linspace(-1.0, 1.0, nz, dtype=np.float32)
    # valid <=> source index inside [-0.5, n - 0.5] (the image's voxel extent); values in
    # the half-voxel rim come from edge replication (padding_mode='border')
    v_lo = (s_b * (-0.5 - lo) - 1.0 - 1e-5).astype(np.float32)
    v_hi = (s_b * (src_size - 0.5 - lo) - 1.0 + 1e-5).astype(np.float32)
    grid_np = np.empty((nz, ny, nx, 3), dtype=np.float32)
    valid = np.ones((nz, ny, nx), dtype=bool)
    for c in range(3):
        comp = ((theta32[c, 3] + theta32[c, 0] * xn)[None, None, :]
                + (theta32[c, 1] * yn)[None, :, None] + (theta32[c, 2] * zn)[:, None, None])
        grid_np[..., c] = comp
        valid &= (comp >= v_lo[c]) & (comp <= v_hi[c])
    grid = torch.from_numpy(grid_np)[None]

    def _resample(arr, interp_order, fill):
        block = np.ascontiguousarray(arr[block_slices], dtype=np.float32)
        inp = torch.from_numpy(block)[None, None]
        mode = 'bilinear' if interp_order == 1 else 'nearest'
        out = F.grid_sample(inp, grid, mode=mode, padding_mode='border', align_corners=True)
        out = out[0, 0].numpy()
        out[~valid] = fill
        return out

    values = _resample(src_arr, order, pad_value)
    extras = []
    for arr, ord_, fill in extra:
        if tuple(arr.shape) != tuple(src_arr.shape):
            raise InvalidInputError(
                f'{image.path or "<image>"}: label/extra array shape {arr.shape} differs from '
                f'the image shape {src_arr.shape}; they must share the grid.')
        extras.append(_resample(arr, ord_, fill))
    return (values, valid, *extras)


def _uniform(low, high):
    """Vectorised uniform draw from the global numpy RNG (seeded by mmengine per worker)."""
    low = np.asarray(low, dtype=np.float64)
    high = np.asarray(high, dtype=np.float64)
    return low + (high - low) * np.random.random_sample(low.shape)


@TRANSFORMS.register_module()
class RandomTwoViewCrop(BaseTransform):
    """Draw two views of one volume for SAM with exact world-coordinate maps.

    Required keys: ``image`` (:class:`MedicalImage`, 3D, any spacing/origin/direction; a 2D
    image is lifted to its one-slice volume, see "Planar volumes" below).
    Optional keys: ``label`` (MedicalImage on the same grid, resampled nearest when
    ``with_label``).

    Added keys:
        - ``view_imgs``: float32 ``(2, D, H, W)`` resampled intensities (same units as the
          input image; normalise before or after this transform).
        - ``view_coords``: float32 ``(2, 3, D, H, W)`` world LPS mm ``(x, y, z)`` of every view
          voxel centre in the frame of the input volume.
        - ``view_valid``: bool ``(2, D, H, W)``, True where the voxel lies inside the image.
        - ``view_labels``: int ``(2, D, H, W)`` (only with ``with_label`` and a ``label``).
        - ``view_geometries``: two dicts (origin, spacing, direction, size) of the view grids.
        - ``two_view_meta``: dict(scales, crop_boxes (2, 2, 3) lower/upper continuous ITK
          index of each crop box in the input image, centres_world (2, 3), overlap (bool),
          seed_world (3,) or None, rotations (2, 3) degrees).

    Args:
        patch_size: output size ``(D, H, W)`` = ``(z, y, x)``; SAM's patch (96, 96, 32) in
            (y, x, z) is the default ``(32, 96, 96)``.
        spacing: base output spacing in mm (2.0); a view has spacing ``spacing * s``.
        scale_range: range of the per-view scale ``s`` (drawn independently per view).
        box_margin: crop box = ``ceil(patch * s * box_margin)`` base voxels.
        overlap_prob: probability that both boxes contain a common random seed point.
        seed_margin: minimal distance ``(z, y, x)`` in base voxels between the seed point and
            the borders of each box (and of the volume).
        rotation_range: maximal random rotation in degrees about each axis (scalar or
            ``(x, y, z)``), applied about the view centre; 0 (SAM default) disables it. For a
            planar volume (see below) only the angle about z (the plane normal) is used.
        pad_value: intensity of voxels outside the image; ``None`` = the volume minimum
            (air in CT, background in MR; ``image.meta['min']`` when the cache recorded it,
            else estimated from a strided subsample), which stays right whether the volume
            is normalised before or after this transform (the normalisation is monotone).
        with_label: also resample ``results['label']`` (nearest) when present (off for SAM,
            which does not use labels; UAE-S needs it).

    Planar volumes (2D images): when the image has one slice and ``patch_size`` is
    ``(1, h, w)``, both views lie in the image plane (module docstring, "2D images"):
    in-plane boxes and seed, the output slice on the image slice, rotations about the plane
    normal only, view spacing ``(spacing * s, spacing * s, image z spacing)``.
    """

    def __init__(self,
                 patch_size: Sequence[int] = (32, 96, 96),
                 spacing: float = 2.0,
                 scale_range: Tuple[float, float] = (0.8, 1.2),
                 box_margin: float = 1.05,
                 overlap_prob: float = 0.8,
                 seed_margin: Sequence[int] = (4, 10, 10),
                 rotation_range: Union[float, Sequence[float]] = 0.0,
                 pad_value: Optional[float] = None,
                 with_label: bool = False):
        if len(patch_size) != 3 or min(patch_size) < 1:
            raise InvalidInputError(f'patch_size must be 3 positive ints (z, y, x), got '
                                    f'{patch_size}.')
        if not (0 < scale_range[0] <= scale_range[1]):
            raise InvalidInputError(f'scale_range must satisfy 0 < low <= high, got '
                                    f'{scale_range}.')
        if not 0.0 <= overlap_prob <= 1.0:
            raise InvalidInputError(f'overlap_prob must be in [0, 1], got {overlap_prob}.')
        if spacing <= 0 or box_margin < 1.0:
            raise InvalidInputError(f'spacing must be > 0 and box_margin >= 1, got {spacing}, '
                                    f'{box_margin}.')
        self.patch_size = tuple(int(v) for v in patch_size)
        self.spacing = float(spacing)
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.box_margin = float(box_margin)
        self.overlap_prob = float(overlap_prob)
        self.seed_margin = tuple(int(v) for v in seed_margin)
        rot = np.asarray(rotation_range, dtype=np.float64).reshape(-1)
        self.rotation_range = np.repeat(rot, 3) if rot.size == 1 else rot
        if self.rotation_range.size != 3:
            raise InvalidInputError(f'rotation_range must be a scalar or 3 values, got '
                                    f'{rotation_range}.')
        self.pad_value = pad_value
        self.with_label = with_label

    # ------------------------------------------------------------------ helpers
    def _pad_value(self, image: MedicalImage) -> float:
        if self.pad_value is not None:
            return float(self.pad_value)
        if image.meta.get('min') is not None:  # recorded by tools/preprocess.py
            return float(image.meta['min'])
        arr = image.array
        steps = [max(1, int(round(n / 64))) for n in arr.shape]  # <= ~64^3 samples
        return float(np.min(arr[tuple(slice(None, None, s) for s in steps)]))

    def _place_boxes(self, extent_mm: np.ndarray, boxes_mm: np.ndarray):
        """Lower corners (2, 3) in mm along the image axes (0 = lower voxel edge).

        ``extent_mm``: (3,) image extent; ``boxes_mm``: (2, 3) box sizes (ITK order).
        A box larger than the volume along an axis is placed so that it covers the volume
        (random offset, padded); otherwise it lies inside the volume.
        """
        lo = np.minimum(0.0, extent_mm - boxes_mm)  # (2, 3)
        hi = np.maximum(0.0, extent_mm - boxes_mm)
        overlap = bool(np.random.random_sample() < self.overlap_prob)
        seed = None
        if overlap:
            margin = np.asarray(self.seed_margin[::-1], dtype=np.float64) * self.spacing
            margin = np.minimum(margin, extent_mm / 2.0)
            seed = _uniform(margin, extent_mm - margin)
            # seed at least `margin` inside each box: seed - box + margin <= L <= seed - margin
            lo = np.maximum(lo, seed - boxes_mm + margin)
            hi = np.minimum(hi, seed - margin)
            hi = np.maximum(hi, lo)  # guard against rounding; feasible by construction
        lower = _uniform(lo, hi)
        return lower, overlap, seed

    # ------------------------------------------------------------------ main
    def transform(self, results: dict) -> dict:
        image: MedicalImage = results['image']
        if isinstance(image, MedicalImage) and image.ndim == 2:  # a radiograph: lift it
            image = results['image'] = as_planar_volume(image)
        if not isinstance(image, MedicalImage) or image.ndim != 3:
            raise InvalidInputError(
                f'RandomTwoViewCrop needs results["image"] to be a 3D MedicalImage, got '
                f'{type(image).__name__} {getattr(image, "shape", "")}.')
        if is_planar(image) and self.patch_size[0] != 1:
            raise InvalidInputError(
                f'{image.path or "<image>"}: a 2D image (one-slice volume {image.shape}) needs '
                f'patch_size=(1, h, w), got {self.patch_size}; use the 2D SAM configs '
                '(configs/sam/sam2d_*.py).')
        pad = self._pad_value(image)
        label = results.get('label') if self.with_label else None
        if label is not None and not isinstance(label, MedicalImage):
            label = None

        size_xyz = np.asarray(self.patch_size[::-1], dtype=np.int64)
        scales = _uniform(np.full(2, self.scale_range[0]), np.full(2, self.scale_range[1]))
        boxes_mm = np.ceil(size_xyz[None, :] * scales[:, None] * self.box_margin) * self.spacing
        extent_mm = image.size * image.spacing
        lower, overlap, seed = self._place_boxes(extent_mm, boxes_mm)
        centres_mm = lower + boxes_mm / 2.0
        # mm along the image axes measured from the lower voxel edge -> continuous index
        centre_idx = centres_mm / image.spacing - 0.5
        box_idx = np.stack([lower / image.spacing - 0.5,
                            (lower + boxes_mm) / image.spacing - 0.5], axis=1)  # (2, 2, 3)
        rotations = _uniform(-np.tile(self.rotation_range, (2, 1)),
                             np.tile(self.rotation_range, (2, 1)))
        planar = self.patch_size[0] == 1 and image.shape[0] == 1
        if planar:  # views in the image plane: on its slice, rotated about its normal only
            centre_idx[:, 2] = 0.0
            box_idx[:, :, 2] = (-0.5, 0.5)
            rotations[:, :2] = 0.0
            if seed is not None:
                seed[2] = 0.5 * image.spacing[2]

        imgs, coords, valids, labels, geoms = [], [], [], [], []
        for v in range(2):
            rot = _rotation_matrix(rotations[v]) if np.any(self.rotation_range > 0) else None
            geom = view_grid_geometry(image, centre_idx[v], size_xyz,
                                      self.spacing * scales[v], rot)
            if planar:  # across the plane: the image's own slice spacing (one slice)
                geom['spacing'][2] = image.spacing[2]
            extra = [] if label is None else [(label.array, 0, 0.0)]
            out = sample_on_grid(image, geom, pad, order=1, extra=extra)
            imgs.append(out[0])
            valids.append(out[1])
            if label is not None:
                labels.append(np.rint(out[2]).astype(np.int64))
            coords.append(grid_world_coords(geom))
            geoms.append(geom)

        results['view_imgs'] = np.stack(imgs)
        results['view_coords'] = np.stack(coords)
        results['view_valid'] = np.stack(valids)
        if label is not None:
            results['view_labels'] = np.stack(labels)
        results['view_geometries'] = geoms
        results['view_pad_value'] = pad
        results['two_view_meta'] = dict(
            scales=scales,
            crop_boxes=box_idx,
            centres_world=image.index_to_world(centre_idx),
            overlap=overlap,
            seed_world=None if seed is None else image.index_to_world(
                seed / image.spacing - 0.5),
            rotations=rotations if np.any(self.rotation_range > 0) else np.zeros((2, 3)))
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(patch_size={self.patch_size}, '
                f'spacing={self.spacing}, scale_range={self.scale_range}, '
                f'box_margin={self.box_margin}, overlap_prob={self.overlap_prob}, '
                f'seed_margin={self.seed_margin}, '
                f'rotation_range={self.rotation_range.tolist()}, pad_value={self.pad_value})')
