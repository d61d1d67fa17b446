"""Registration driven by anatomical embeddings (UAE-M: Bai et al., "UAE: Universal anatomical
embedding on multi-modality medical images", arXiv:2311.15111).

Pipeline of :func:`register_with_embeddings` (moving image -> fixed image):

1. a regular grid of points over the moving image's body (``grid_spacing_mm`` along the
   moving image's voxel axes; body mask from :func:`mmanat.structures.body.body_mask`);
2. each point is matched into the fixed image with :func:`mmanat.apis.match`; matches with a
   score below ``score_threshold`` are dropped (optionally also those that do not map back
   within ``cycle_tolerance_mm`` of their source);
3. a rigid transform is fitted by RANSAC (:func:`mmanat.registration.fit_rigid_ransac`:
   3-point Kabsch samples, reflection corrected, inliers within ``ransac_threshold_mm``),
   then an affine one on its inliers (:func:`mmanat.registration.fit_affine_robust`: Huber
   IRLS, then a refit on the inliers);
4. optionally a SimpleITK cubic B-spline registration (Mattes mutual information,
   multi-resolution) initialised by the affine refines it
   (:func:`mmanat.registration.refine_bspline`).

The point fits are re-exported here from :mod:`mmanat.registration` (their home).

Transform direction (the ITK convention, what 3D Slicer expects of a resampling transform):
the returned transform maps points of the FIXED image's space to the MOVING image's space,
``p_moving = T(p_fixed)``; the warped moving image is ``moving`` resampled on the fixed grid
through ``T``. The fitted point transforms therefore map fixed points (the matches) onto the
moving points (the grid). All points are world LPS mm ``(x, y, z)``.
"""
from __future__ import annotations

import csv
import os
import os.path as osp
import time
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from ..registration.point_fits import (apply_affine, fit_affine_robust,  # noqa: F401
                                       fit_landmark_transform, fit_rigid_ransac,
                                       fit_rigid_robust, kabsch)
from ..registration.sitk_registration import affine_to_sitk, refine_bspline, transform_points
from ..structures.body import body_mask
from ..structures.image import MedicalImage
from ..utils.exceptions import InvalidInputError

__all__ = ['body_grid_points', 'register_with_embeddings', 'EmbeddingRegistration',
           'save_registration',
           # re-exported from mmanat.registration
           'kabsch', 'fit_rigid_robust', 'fit_rigid_ransac', 'fit_affine_robust',
           'fit_landmark_transform', 'apply_affine']


# ------------------------------------------------------------------------------ grid points
def body_grid_points(image: MedicalImage, grid_spacing_mm=(48.0, 48.0, 32.0),
                     mask: Optional[np.ndarray] = None, min_points: int = 8,
                     **mask_kwargs) -> np.ndarray:
    """World LPS points ``(N, 3)`` of a regular grid over the body of ``image``.

    The grid runs along the image's voxel axes with steps ``grid_spacing_mm`` (ITK order
    ``(x, y, z)`` axes, mm), centred in the image; points whose nearest voxel is outside the
    body mask are dropped. ``mask``: a precomputed boolean body mask ``(z, y, x)``; otherwise
    :func:`~mmanat.structures.body.body_mask` with ``mask_kwargs``. When fewer
    than ``min_points`` grid points fall in the mask (a tiny or odd body), the whole image
    grid is used, with a warning.

    Args:
        image: a 3D :class:`MedicalImage`.
        grid_spacing_mm: one step for all axes or three steps ``(x, y, z)`` in mm.
        mask: optional boolean body mask ``(z, y, x)`` on the grid of ``image``.
        min_points: fewest grid points in the body before the whole grid is used.
        **mask_kwargs: arguments of ``body_mask`` (``threshold``, ``min_object_size``, ...).

    Returns:
        ``(N, 3)`` world points (LPS mm).
    """
    import warnings
    if image.ndim != 3:
        raise InvalidInputError(f'{image.path or "<image>"}: registration needs 3D volumes.')
    step = np.asarray(grid_spacing_mm, dtype=np.float64).reshape(-1)
    step = np.repeat(step, 3) if step.size == 1 else step
    if step.size != 3 or np.any(step <= 0):
        raise InvalidInputError(f'grid_spacing_mm must be 1 or 3 positive values, got '
                                f'{grid_spacing_mm}.')
    if mask is None:
        mask = body_mask(image, **mask_kwargs)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != image.shape:
        raise InvalidInputError(f'body mask shape {mask.shape} differs from image shape '
                                f'{image.shape}.')
    size = image.size.astype(np.float64)  # (nx, ny, nz)
    step_vox = step / image.spacing
    axes = []
    for n, s in zip(size, step_vox):
        count = int(np.floor((n - 1) / s)) + 1
        start = ((n - 1) - (count - 1) * s) / 2.0
        axes.append(start + s * np.arange(count))
    ii, jj, kk = np.meshgrid(*axes, indexing='ij')
    idx = np.stack([ii, jj, kk], -1).reshape(-1, 3)
    r = np.clip(np.rint(idx).astype(np.int64), 0, image.size - 1)
    keep = mask[r[:, 2], r[:, 1], r[:, 0]]
    if keep.sum() < int(min_points):
        warnings.warn(f'{image.path or "<image>"}: only {int(keep.sum())} of {len(idx)} grid '
                      'points lie in the body mask; using the whole image grid.')
        keep[:] = True
    return image.index_to_world(idx[keep])


# ------------------------------------------------------------------------------ result
@dataclass
class EmbeddingRegistration:
    """Result of :func:`register_with_embeddings`.

    Attributes:
        transform: ``SimpleITK.Transform`` fixed -> moving world points (the final one:
            composite affine + B-spline, or the affine).
        affine: ``SimpleITK.AffineTransform`` of the landmark fit (fixed -> moving).
        rigid: ``(R, t)`` of the rigid fit, ``p_moving = R p_fixed + t``.
        moving_points: ``(N, 3)`` grid points of the moving image (world LPS mm).
        fixed_points: ``(N, 3)`` their matches in the fixed image.
        scores: ``(N,)`` match scores.
        kept: ``(N,)`` bool, confident (and cycle-consistent) matches used for the fits.
        inliers: ``(N,)`` bool, kept matches that are inliers of the robust affine fit.
        warped: the moving image resampled on the fixed grid through ``transform``.
        info: timings, counts and residuals.
    """

    transform: object
    affine: object
    rigid: Tuple[np.ndarray, np.ndarray]
    moving_points: np.ndarray
    fixed_points: np.ndarray
    scores: np.ndarray
    kept: np.ndarray
    inliers: np.ndarray
    warped: Optional[MedicalImage] = None
    info: Dict = field(default_factory=dict)

    def map_fixed_to_moving(self, points_mm) -> np.ndarray:
        """Map fixed-image world points into the moving image with the final transform."""
        return transform_points(self.transform, points_mm)


def register_with_embeddings(model, moving_image, fixed_image,
                             grid_spacing_mm: Sequence[float] = (48.0, 48.0, 32.0),
                             score_threshold: float = 0.5, deformable: str = 'bspline',
                             cycle_tolerance_mm: Optional[float] = None,
                             min_matches: int = 6, moving_mask: Optional[np.ndarray] = None,
                             mask_kwargs: Optional[dict] = None,
                             match_cfg: Optional[dict] = None, bspline_preset: str = 'quick',
                             bspline_overrides: Optional[dict] = None, warp: bool = True,
                             moving_maps=None, fixed_maps=None, progress: bool = False,
                             ransac_threshold_mm: Optional[float] = 15.0,
                             min_affine_extent_mm: float = 10.0,
                             ) -> EmbeddingRegistration:
    """Register ``moving_image`` to ``fixed_image`` from embedding matches (UAE-M).

    Args:
        model: an embedding model (:func:`mmanat.apis.init_model`); may be ``None`` when both
            ``moving_maps`` and ``fixed_maps`` are given.
        moving_image, fixed_image: 3D :class:`MedicalImage` (or paths), any modality / grid.
        grid_spacing_mm: grid step over the moving body along its (x, y, z) voxel axes (mm).
        score_threshold: keep matches with a similarity score above it (scores are <= 1).
        deformable: ``'bspline'`` (SimpleITK B-spline refinement) or ``'none'``.
        cycle_tolerance_mm: if set, also keep only matches whose back-match lands within this
            distance of the source grid point.
        min_matches: fewer kept matches than this raises :class:`InvalidInputError`.
        moving_mask: optional boolean body mask of the moving image ``(z, y, x)``.
        mask_kwargs: arguments of ``body_mask`` (e.g. ``min_object_size`` for small images).
        match_cfg: keyword arguments of :func:`mmanat.apis.match` (e.g. ``method``).
        bspline_preset / bspline_overrides: SimpleITK set-up (see
            :data:`mmanat.registration.PRESETS`; ``'quick'`` = 4 mm, 2 levels).
        warp: also resample the moving image on the fixed grid.
        moving_maps, fixed_maps: precomputed :class:`EmbeddingMaps` (skip embedding).
        progress: print progress lines.
        ransac_threshold_mm: the rigid fit is :func:`fit_rigid_ransac` with this inlier
            distance and the affine is fitted (Huber) on its inliers only; ``None``: the
            Huber fits :func:`fit_rigid_robust` / :func:`fit_affine_robust` on all kept
            matches, which break down when most matches are wrong (33.2 vs 6.7 mm landmark
            error with the same model; docs/en/user_guides/registration.md).
        min_affine_extent_mm: the affine is fitted only when the matches it uses spread at
            least this far (RMS) across their thinnest direction; otherwise the rigid fit is
            the landmark transform (``info['affine']`` says which).

    Returns:
        :class:`EmbeddingRegistration` (transform fixed -> moving, ITK convention).
    """
    from .embedding import embed
    from .preprocessing import as_medical_image as _as_image
    from .matching import match
    from ..structures.resample import resample_to_reference
    if deformable not in ('bspline', 'none'):
        raise InvalidInputError(f"deformable must be 'bspline' or 'none', got {deformable!r}.")
    moving_image, fixed_image = _as_image(moving_image), _as_image(fixed_image)
    info: Dict = {}
    say = print if progress else (lambda *a, **k: None)
    t0 = time.perf_counter()
    if moving_maps is None or fixed_maps is None:
        if model is None:
            raise InvalidInputError('register_with_embeddings needs a model or both maps.')
        say('[1/5] embedding the moving and the fixed image ...')
        moving_maps = moving_maps if moving_maps is not None else embed(model, moving_image)
        fixed_maps = fixed_maps if fixed_maps is not None else embed(model, fixed_image)
    info['embed_s'] = time.perf_counter() - t0

    t1 = time.perf_counter()
    pts = body_grid_points(moving_image, grid_spacing_mm, moving_mask, **(mask_kwargs or {}))
    say(f'[2/5] matching {len(pts)} grid points of the moving body ...')
    res = match(moving_maps, pts, fixed_maps, **(match_cfg or {}))
    fixed_pts, scores = np.asarray(res.points, np.float64), np.asarray(res.scores, np.float64)
    kept = scores > float(score_threshold)
    if cycle_tolerance_mm is not None and kept.any():
        back = match(fixed_maps, fixed_pts[kept], moving_maps, **(match_cfg or {}))
        ok = np.linalg.norm(np.asarray(back.points) - pts[kept], axis=1) <= cycle_tolerance_mm
        kept[np.flatnonzero(kept)[~ok]] = False
    info.update(match_s=time.perf_counter() - t1, n_grid=int(len(pts)), n_kept=int(kept.sum()))
    if kept.sum() < max(int(min_matches), 4):
        raise InvalidInputError(
            f'only {int(kept.sum())} of {len(pts)} grid matches have a score above '
            f'{score_threshold} (need {max(int(min_matches), 4)}): the images may not show the '
            'same anatomy, or the model does not fit them; lower --score-threshold or use a '
            'finer --grid-spacing.')

    say(f'[3/5] fitting rigid then affine transforms to {int(kept.sum())} matches ...')
    src, dst = fixed_pts[kept], pts[kept]  # fixed -> moving (ITK direction)
    r, t, rigid_inl, a, ta, inl_k, fit_info = fit_landmark_transform(
        src, dst, ransac_threshold_mm, min_affine_extent_mm)
    info.update(fit_info)
    inliers = np.zeros(len(pts), bool)
    inliers[np.flatnonzero(kept)] = inl_k
    res_rigid = np.linalg.norm(apply_affine(r, t, src) - dst, axis=1)
    res_aff = np.linalg.norm(apply_affine(a, ta, src) - dst, axis=1)
    info.update(rigid_residual_mm=float(np.median(res_rigid[rigid_inl])),
                affine_residual_mm=float(np.median(res_aff[inl_k])),
                n_inliers=int(inl_k.sum()))
    affine = affine_to_sitk(a, ta)
    transform = affine
    if deformable == 'bspline':
        say('[4/5] B-spline refinement (SimpleITK, Mattes MI) ...')
        t2 = time.perf_counter()
        transform, binfo = refine_bspline(fixed_image, moving_image, affine, bspline_preset,
                                          **dict(bspline_overrides or {}))
        info.update(bspline=binfo, bspline_s=time.perf_counter() - t2)
    warped = None
    if warp:
        say('[5/5] warping the moving image onto the fixed grid ...')
        warped = resample_to_reference(moving_image, fixed_image, 'linear', transform)
    info['total_s'] = time.perf_counter() - t0
    return EmbeddingRegistration(transform, affine, (r, t), pts, fixed_pts, scores, kept,
                                 inliers, warped, info)


def save_registration(result: EmbeddingRegistration, out_dir: str) -> Dict[str, str]:
    """Write a registration for 3D Slicer and scripts (all atomically).

    Files: ``transform.h5`` (the final transform, fixed -> moving, ITK HDF5; Slicer: Add Data,
    then apply it to the moving volume), ``affine.tfm`` (the landmark affine, ITK text),
    ``warped_moving.nii.gz`` (when warped), ``landmarks.csv`` (one row per grid point:
    moving x,y,z, fixed x,y,z in world LPS mm, score, kept, inlier).

    Returns:
        dict name -> absolute path.
    """
    import SimpleITK as sitk

    from ..fileio import atomic_path, write_image
    out_dir = osp.abspath(os.fspath(out_dir))
    os.makedirs(out_dir, exist_ok=True)
    paths = {}
    for name, tr in (('transform.h5', result.transform), ('affine.tfm', result.affine)):
        p = osp.join(out_dir, name)
        with atomic_path(p) as tmp:
            sitk.WriteTransform(tr, tmp)
        paths[name.split('.')[0]] = p
    if result.warped is not None:
        paths['warped'] = write_image(result.warped, osp.join(out_dir, 'warped_moving.nii.gz'))
    p = osp.join(out_dir, 'landmarks.csv')
    with atomic_path(p) as tmp, open(tmp, 'w', newline='') as fh:
        w = csv.writer(fh)
        w.writerow(['moving_x', 'moving_y', 'moving_z', 'fixed_x', 'fixed_y', 'fixed_z',
                    'score', 'kept', 'inlier'])
        rows = np.concatenate([result.moving_points, result.fixed_points,
                               result.scores[:, None]], 1)
        for row, k, i in zip(rows, result.kept, result.inliers):
            w.writerow([f'{v:.4f}' for v in row] + [int(k), int(i)])
    paths['landmarks'] = p
    return paths
