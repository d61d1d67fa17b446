"""Registration driven by anatomical embeddings (UAE-M, SPEC 3).

Pipeline of :func:`register_with_embeddings` (moving image -> fixed image):

1. a regular grid of points over the moving image's body (``grid_spacing_mm`` along the
   moving image's voxel axes; body mask from
   :func:`mmanat.datasets.transforms.body_mask.body_mask`);
2. each point is matched into the fixed image with :func:`mmanat.apis.match`; matches with a
   score below ``score_threshold`` are dropped (optionally also those that do not map back
   within ``cycle_tolerance_mm`` of their source);
3. a rigid transform is fitted by RANSAC (:func:`fit_rigid_ransac`: 3-point
   :func:`kabsch` samples, reflection corrected, inliers within ``ransac_threshold_mm``),
   then an affine one on its inliers (:func:`fit_affine_robust`: Huber IRLS, then a refit on
   the inliers);
4. optionally a SimpleITK cubic B-spline registration (Mattes mutual information,
   multi-resolution) initialised by the affine refines it (the SimpleITK set-up of
   :mod:`mmanat.evaluation.baselines` is reused).

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

from ..structures.image import MedicalImage
from ..utils.exceptions import InvalidInputError

__all__ = ['kabsch', 'fit_rigid_robust', 'fit_rigid_ransac', 'fit_affine_robust',
           'fit_landmark_transform', 'body_grid_points',
           'register_with_embeddings', 'EmbeddingRegistration', 'save_registration',
           'apply_affine']


# ------------------------------------------------------------------------------ point fits
def _as_pairs(src, dst) -> Tuple[np.ndarray, np.ndarray]:
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.ndim != 2 or src.shape[1] != 3 or src.shape != dst.shape:
        raise InvalidInputError(f'point sets must both be (N, 3), got {src.shape} and '
                                f'{dst.shape}.')
    if not (np.all(np.isfinite(src)) and np.all(np.isfinite(dst))):
        raise InvalidInputError('point sets contain NaN or infinite coordinates.')
    return src, dst


def apply_affine(matrix: np.ndarray, translation: np.ndarray, points) -> np.ndarray:
    """``points @ matrix.T + translation`` for ``(N, 3)`` points."""
    return np.asarray(points, dtype=np.float64) @ np.asarray(matrix).T + np.asarray(translation)


def kabsch(src, dst, weights=None) -> Tuple[np.ndarray, np.ndarray]:
    """Least-squares rigid transform ``dst ~ R @ src + t`` (weighted Kabsch / SVD).

    The rotation is reflection-corrected: ``det(R) = +1`` always, even where the unconstrained
    orthogonal optimum is a reflection (coplanar or noisy points).

    Args:
        src, dst: ``(N, 3)`` corresponding points, ``N >= 3`` (non-collinear).
        weights: optional ``(N,)`` non-negative weights.

    Returns:
        ``(R (3, 3), t (3,))``.
    """
    src, dst = _as_pairs(src, dst)
    n = len(src)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape != (n,) or np.any(w < 0) or not np.all(np.isfinite(w)):
        raise InvalidInputError(f'weights must be {n} finite values >= 0.')
    if n < 3 or np.count_nonzero(w) < 3:
        raise InvalidInputError(f'a rigid fit needs at least 3 weighted point pairs, got '
                                f'{int(np.count_nonzero(w))}.')
    w = w / w.sum()
    cs, cd = w @ src, w @ dst
    h = (src - cs).T @ ((dst - cd) * w[:, None])  # 3x3 cross-covariance
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    d = 1.0 if d == 0 else d
    r = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return r, cd - r @ cs


def _huber_weights(res: np.ndarray, k: float, scale: float) -> np.ndarray:
    c = k * scale
    return np.where(res <= c, 1.0, c / np.maximum(res, 1e-12))


def _robust_scale(res: np.ndarray, floor: float) -> float:
    """1.4826 * median absolute residual (residuals are norms, >= 0), floored."""
    return max(1.4826 * float(np.median(res)), floor)


def fit_rigid_robust(src, dst, k: float = 1.345, iters: int = 10, inlier_factor: float = 3.0,
                     min_scale: float = 0.5) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rigid fit robust to outliers: Huber-weighted Kabsch (IRLS on residual norms), then a
    plain Kabsch on the inliers (residual <= ``inlier_factor`` x robust scale).

    Returns:
        ``(R, t, inliers (N,) bool)``.
    """
    src, dst = _as_pairs(src, dst)
    r, t = kabsch(src, dst)
    w = np.ones(len(src))
    for _ in range(int(iters)):
        res = np.linalg.norm(apply_affine(r, t, src) - dst, axis=1)
        w = _huber_weights(res, k, _robust_scale(res, min_scale))
        r, t = kabsch(src, dst, w)
    res = np.linalg.norm(apply_affine(r, t, src) - dst, axis=1)
    inl = res <= inlier_factor * _robust_scale(res, min_scale)
    if inl.sum() >= 3:
        r, t = kabsch(src[inl], dst[inl])
    return r, t, inl


class _RigidModel:
    """A rigid transform as a model of :func:`skimage.measure.ransac` (estimated by our
    reflection-corrected :func:`kabsch`; skimage's ``EuclideanTransform`` does not guarantee
    ``det(R) = +1`` on the noisy 3-point samples RANSAC draws)."""

    def __init__(self, r: np.ndarray, t: np.ndarray):
        self.r, self.t = r, t

    @classmethod
    def from_estimate(cls, src, dst):
        return cls(*kabsch(src, dst))

    def residuals(self, src, dst) -> np.ndarray:
        return np.linalg.norm(apply_affine(self.r, self.t, src) - dst, axis=1)


def fit_rigid_ransac(src, dst, threshold_mm: float = 15.0, max_trials: int = 2000,
                     seed: int = 0) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rigid fit by RANSAC (:func:`skimage.measure.ransac`, 3-point Kabsch samples): the
    rigid transform that brings the most matches within ``threshold_mm`` of their partner,
    refitted on those inliers. Unlike the Huber fits, whose inlier test is relative to the
    median residual, it survives a majority of wrong matches as long as the right ones agree
    on one transform.

    Args:
        src, dst: ``(N, 3)`` corresponding points, ``N >= 3``.
        threshold_mm: inlier distance.
        max_trials: random 3-point samples.
        seed: sampling seed (repeatable results).

    Returns:
        ``(R, t, inliers (N,) bool)``.
    """
    from skimage.measure import ransac
    src, dst = _as_pairs(src, dst)
    if len(src) < 3:
        raise InvalidInputError(f'a rigid fit needs at least 3 point pairs, got {len(src)}.')
    if not threshold_mm > 0:
        raise InvalidInputError(f'threshold_mm must be > 0, got {threshold_mm}.')
    model, inl = ransac((src, dst), _RigidModel, min_samples=3,
                        residual_threshold=float(threshold_mm), max_trials=int(max_trials),
                        rng=int(seed))
    if model is None or inl is None or int(np.sum(inl)) < 3:
        raise InvalidInputError(
            f'RANSAC found no rigid transform that brings 3 or more of the {len(src)} matches '
            f'within {threshold_mm} mm of each other; raise the threshold or check the matches.')
    inl = np.asarray(inl, bool)
    r, t = kabsch(src[inl], dst[inl])
    return r, t, inl


def _thinnest_extent(points: np.ndarray) -> float:
    """RMS spread (mm) of ``(N, 3)`` points along their thinnest principal direction (0 for
    fewer than 4 points or a plane)."""
    if len(points) < 4:
        return 0.0
    s = np.linalg.svd(points - points.mean(0), compute_uv=False)
    return float(s[-1] / np.sqrt(len(points)))


def _weighted_affine(src, dst, w) -> Tuple[np.ndarray, np.ndarray]:
    x = np.concatenate([src, np.ones((len(src), 1))], 1)
    sw = np.sqrt(w)[:, None]
    sol, *_ = np.linalg.lstsq(x * sw, dst * sw, rcond=None)  # (4, 3)
    return sol[:3].T, sol[3]


def fit_affine_robust(src, dst, k: float = 1.345, iters: int = 20,
                      inlier_factor: float = 3.0, min_scale: float = 0.5,
                      init: Optional[Tuple[np.ndarray, np.ndarray]] = None
                      ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Affine fit ``dst ~ A @ src + t`` robust to outliers.

    Iteratively re-weighted least squares with Huber weights on the residual norms (scale =
    1.4826 x median residual, floored at ``min_scale`` mm), started from ``init`` (e.g. the
    rigid fit) or the plain least-squares fit; finally a least-squares refit on the inliers
    (residual <= ``inlier_factor`` x scale), which makes gross outliers have no influence.

    Args:
        src, dst: ``(N, 3)`` corresponding points, ``N >= 4`` not coplanar.
        k: Huber constant (in units of the robust scale).
        iters: IRLS iterations.
        inlier_factor: inlier threshold of the final refit.
        min_scale: lower bound of the residual scale in mm (exact data have scale 0).
        init: optional ``(A, t)`` start.

    Returns:
        ``(A (3, 3), t (3,), inliers (N,) bool)``.
    """
    src, dst = _as_pairs(src, dst)
    if len(src) < 4:
        raise InvalidInputError(f'an affine fit needs at least 4 point pairs, got {len(src)}.')
    centred = src - src.mean(0)
    if np.linalg.matrix_rank(centred, tol=1e-6 * max(1.0, np.abs(centred).max())) < 3:
        raise InvalidInputError('an affine fit needs points that are not coplanar.')
    a, t = init if init is not None else _weighted_affine(src, dst, np.ones(len(src)))
    for _ in range(int(iters)):
        res = np.linalg.norm(apply_affine(a, t, src) - dst, axis=1)
        w = _huber_weights(res, k, _robust_scale(res, min_scale))
        a, t = _weighted_affine(src, dst, w)
    res = np.linalg.norm(apply_affine(a, t, src) - dst, axis=1)
    inl = res <= inlier_factor * _robust_scale(res, min_scale)
    if inl.sum() >= 4 and np.linalg.matrix_rank(src[inl] - src[inl].mean(0)) == 3:
        a, t = _weighted_affine(src[inl], dst[inl], np.ones(int(inl.sum())))
    return a, t, inl


def fit_landmark_transform(src, dst, ransac_threshold_mm: Optional[float] = 15.0,
                           min_affine_extent_mm: float = 10.0):
    """The point-fit step of :func:`register_with_embeddings`: ``dst ~ A src + t``.

    A rigid fit (:func:`fit_rigid_ransac` with ``ransac_threshold_mm``, or the Huber
    :func:`fit_rigid_robust` on all pairs when it is ``None``), then a robust affine
    (:func:`fit_affine_robust`) on the pairs the rigid fit used, started from it - unless those
    points spread less than ``min_affine_extent_mm`` (RMS) across their thinnest direction:
    an affine is then undetermined across that plane, so the rigid transform is returned as
    the affine.

    Returns:
        ``(R, t, rigid_inliers, A, t_affine, affine_inliers, info)``; ``info['affine']`` is
        ``'fitted'`` or says why the rigid fit was kept.
    """
    src, dst = _as_pairs(src, dst)
    info: Dict = {}
    if ransac_threshold_mm is None:
        r, t, rigid_inl = fit_rigid_robust(src, dst)
        use = np.ones(len(src), bool)
    else:
        r, t, rigid_inl = fit_rigid_ransac(src, dst, ransac_threshold_mm)
        use = rigid_inl.copy()
        info['n_ransac_inliers'] = int(rigid_inl.sum())
    thickness = _thinnest_extent(src[use])
    if use.sum() >= 4 and thickness >= min_affine_extent_mm:
        a, ta, inl_sub = fit_affine_robust(src[use], dst[use], init=(r, t))
        inl_k = use.copy()
        inl_k[np.flatnonzero(use)[~inl_sub]] = False
        info['affine'] = 'fitted'
    else:
        # the points (nearly) lie in one plane: an affine is undetermined across it (it can
        # flatten the volume), so the rigid fit stands in for it
        a, ta, inl_k = r, t, rigid_inl.copy()
        info['affine'] = (f'rigid kept: the {int(use.sum())} point pairs span {thickness:.1f} mm '
                          f'across their thinnest direction (< {min_affine_extent_mm:g} mm)')
    return r, t, rigid_inl, a, ta, inl_k, info


# ------------------------------------------------------------------------------ grid points
def body_grid_points(image: MedicalImage, grid_spacing_mm=(48.0, 48.0, 32.0),
                     mask: Optional[np.ndarray] = None, min_points: int = 8,
                     **mask_kwargs) -> np.ndarray:
    """World LPS points ``(N, 3)`` of a regular grid over the body of ``image``.

    The grid runs along the image's voxel axes with steps ``grid_spacing_mm`` (ITK order
    ``(x, y, z)`` axes, mm), centred in the image; points whose nearest voxel is outside the
    body mask are dropped. ``mask``: a precomputed boolean body mask ``(z, y, x)``; otherwise
    :func:`~mmanat.datasets.transforms.body_mask.body_mask` with ``mask_kwargs``. When fewer
    than ``min_points`` grid points fall in the mask (a tiny or odd body), the whole image
    grid is used, with a warning.
    """
    import warnings
    from ..datasets.transforms.body_mask import body_mask
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
        from ..evaluation.baselines import transform_points
        return transform_points(self.transform, points_mm)


def _sitk_affine(a: np.ndarray, t: np.ndarray):
    import SimpleITK as sitk
    aff = sitk.AffineTransform(3)
    aff.SetMatrix([float(v) for v in np.asarray(a).reshape(-1)])
    aff.SetTranslation([float(v) for v in t])
    return aff


def _bspline_refine(fixed: MedicalImage, moving: MedicalImage, affine, preset: str,
                    overrides: Dict):
    """Cubic B-spline (Mattes MI, L-BFGS-B) on top of ``affine``; the set-up of
    :func:`mmanat.evaluation.baselines.register_bspline`, with our affine as the start."""
    from ..evaluation.baselines import refine_bspline
    return refine_bspline(fixed, moving, affine, preset, **overrides)


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
    """Register ``moving_image`` to ``fixed_image`` from embedding matches (UAE-M, SPEC 3).

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
            :data:`mmanat.evaluation.baselines.PRESETS`; ``'quick'`` = 4 mm, 2 levels).
        warp: also resample the moving image on the fixed grid.
        moving_maps, fixed_maps: precomputed :class:`EmbeddingMaps` (skip embedding).
        progress: print progress lines.
        ransac_threshold_mm: the rigid fit is :func:`fit_rigid_ransac` with this inlier
            distance and the affine is fitted (Huber) on its inliers only; ``None``: the
            Huber fits :func:`fit_rigid_robust` / :func:`fit_affine_robust` on all kept
            matches, which break down when most matches are wrong (README, UAE-M: 33.2 vs
            6.7 mm landmark error with the same model).
        min_affine_extent_mm: the affine is fitted only when the matches it uses spread at
            least this far (RMS) across their thinnest direction; otherwise the rigid fit is
            the landmark transform (``info['affine']`` says which).

    Returns:
        :class:`EmbeddingRegistration` (transform fixed -> moving, ITK convention).
    """
    from .inference import _as_image, embed
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
    affine = _sitk_affine(a, ta)
    transform = affine
    if deformable == 'bspline':
        say('[4/5] B-spline refinement (SimpleITK, Mattes MI) ...')
        t2 = time.perf_counter()
        transform, binfo = _bspline_refine(fixed_image, moving_image, affine, bspline_preset,
                                           dict(bspline_overrides or {}))
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
