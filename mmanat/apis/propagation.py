"""Dense propagation of label maps, point sets and mesh vertices through embedding matches.

A :class:`CorrespondenceField` is a smooth map between the world spaces (LPS mm) of two
images, fitted to dense embedding matches:

1. points on a regular grid over the body of the *source* image are matched into the *dest*
   image (:class:`~mmanat.apis.Matcher`, by default the ``coarse_to_fine`` search);
2. matches whose similarity is at most ``score_threshold`` are dropped;
3. a rigid transform is fitted by RANSAC and an affine one (Huber IRLS) on its inliers
   (:func:`mmanat.registration.fit_landmark_transform`, as in the UAE-M registration);
4. with ``regularization='tps'`` the residuals of the matches that lie within
   ``outlier_mm`` of the affine prediction are interpolated by a smoothing thin-plate spline
   (:class:`scipy.interpolate.RBFInterpolator`; Bookstein, "Principal warps: thin-plate
   splines and the decomposition of deformations", IEEE TPAMI 11(6), 1989) on top of the
   affine.

Labels (:func:`propagate_labels`) go the "pull" way, as image resampling does: the field maps
TARGET points to TEMPLATE points (the ITK convention of a resampling transform), so every
target voxel takes the template label at its correspondence, by nearest neighbour, on the
target's own grid. Points and mesh vertices (:func:`propagate_points`) go the "push" way: the
field maps template points to target points. The field is evaluated on a coarse grid
(``field_spacing_mm``) and interpolated linearly by a SimpleITK displacement-field transform
for the resampling. All conversions between world mm and voxel indices go through the image
geometry (:mod:`mmanat.structures`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Union

import numpy as np

from ..registration.point_fits import apply_affine, fit_landmark_transform
from ..structures.embedding_map import EmbeddingMaps, GridGeometry
from ..structures.image import MedicalImage
from ..utils.exceptions import InvalidInputError

__all__ = ['CorrespondenceField', 'grid_points', 'fit_correspondence_field',
           'propagate_labels', 'propagate_points', 'reference_image', 'dice_per_label',
           'REGULARIZATIONS']

#: the regularising fits of :func:`fit_correspondence_field`
REGULARIZATIONS = ('affine', 'tps')
#: most matches the thin-plate spline is fitted to (an exact fit costs O(n^3))
MAX_TPS_POINTS = 1500


@dataclass
class CorrespondenceField:
    """A smooth map ``p_dest = A p_source + t + s(p_source)`` (world LPS mm).

    Attributes:
        matrix, translation: the affine part ``(3, 3)``, ``(3,)``.
        spline: the smoothing thin-plate spline of the residuals (a callable ``(N, 3) ->
            (N, 3)``), or ``None`` (affine only).
        source_points, dest_points: ``(N, 3)`` grid points and their matches.
        scores: ``(N,)`` match similarities.
        kept: ``(N,)`` bool, matches above the score threshold.
        used: ``(N,)`` bool, kept matches the final fit used.
        info: counts, residuals and timings.
    """

    matrix: np.ndarray
    translation: np.ndarray
    spline: Optional[object] = None
    source_points: np.ndarray = None
    dest_points: np.ndarray = None
    scores: np.ndarray = None
    kept: np.ndarray = None
    used: np.ndarray = None
    info: Dict = field(default_factory=dict)

    def map_points(self, points_mm, chunk: int = 200000) -> np.ndarray:
        """Map ``(N, 3)`` source world points (LPS mm) into the dest image."""
        pts = np.asarray(points_mm, dtype=np.float64).reshape(-1, 3)
        out = apply_affine(self.matrix, self.translation, pts)
        if self.spline is not None:
            for s in range(0, len(pts), chunk):
                out[s:s + chunk] += self.spline(pts[s:s + chunk])
        return out

    def to_sitk(self, reference, field_spacing_mm: float = 8.0):
        """The field as a ``SimpleITK`` transform over the grid of ``reference`` (a
        :class:`MedicalImage` or :class:`GridGeometry` of the SOURCE space): an
        ``AffineTransform`` without spline, otherwise a ``DisplacementFieldTransform``
        sampled every ``field_spacing_mm`` (one voxel beyond the grid on every side;
        linear interpolation in between)."""
        import SimpleITK as sitk

        from ..registration.sitk_registration import affine_to_sitk
        if self.spline is None:
            return affine_to_sitk(self.matrix, self.translation)
        step = float(field_spacing_mm)
        if not step > 0:
            raise InvalidInputError(f'field_spacing_mm must be > 0, got {field_spacing_mm}.')
        spacing = np.asarray(reference.spacing, dtype=np.float64)
        direction = np.asarray(reference.direction, dtype=np.float64).reshape(3, 3)
        extent = (np.asarray(reference.size, dtype=np.float64) - 1) * spacing
        size = np.ceil(extent / step).astype(np.int64) + 3
        origin = np.asarray(reference.origin, dtype=np.float64) - direction @ np.full(3, step)
        axes = [np.arange(n) * step for n in size]
        kk, jj, ii = np.meshgrid(axes[2], axes[1], axes[0], indexing='ij')  # (z, y, x)
        local = np.stack([ii, jj, kk], -1).reshape(-1, 3)
        world = local @ direction.T + origin
        disp = (self.map_points(world) - world).reshape(size[2], size[1], size[0], 3)
        img = sitk.GetImageFromArray(disp.astype(np.float64), isVector=True)
        img.SetOrigin([float(v) for v in origin])
        img.SetSpacing([step] * 3)
        img.SetDirection([float(v) for v in direction.reshape(-1)])
        return sitk.DisplacementFieldTransform(img)


def reference_image(geometry: Union[MedicalImage, GridGeometry, EmbeddingMaps]
                    ) -> MedicalImage:
    """A :class:`MedicalImage` (uint8 zeros) on the grid of ``geometry``: an image, a grid or
    the original image grid of embedding maps (``source_grid``)."""
    if isinstance(geometry, MedicalImage):
        return geometry
    if isinstance(geometry, EmbeddingMaps):
        geometry = geometry.source_grid
    if not isinstance(geometry, GridGeometry):
        raise InvalidInputError(f'expected a MedicalImage, GridGeometry or EmbeddingMaps, got '
                                f'{type(geometry).__name__}.')
    return MedicalImage(np.zeros(tuple(geometry.shape), np.uint8), spacing=geometry.spacing,
                        origin=geometry.origin, direction=geometry.direction)


def grid_points(geometry, spacing_mm: Union[float, Sequence[float]] = 16.0,
                mask: Optional[np.ndarray] = None) -> np.ndarray:
    """World points ``(N, 3)`` of a regular grid over an image.

    Args:
        geometry: a 3D :class:`MedicalImage` (the grid is restricted to its body mask,
            :func:`mmanat.apis.registration.body_grid_points`) or a :class:`GridGeometry` /
            :class:`EmbeddingMaps` (the whole original image grid; no pixels, no body mask).
        spacing_mm: grid step (mm), one value or ``(x, y, z)``.
        mask: optional boolean mask ``(z, y, x)`` of an image that restricts the grid.

    Returns:
        ``(N, 3)`` world LPS mm.
    """
    from .registration import body_grid_points
    step = np.asarray(spacing_mm, dtype=np.float64).reshape(-1)
    step = np.repeat(step, 3) if step.size == 1 else step
    if step.size != 3 or not np.all(step > 0):
        raise InvalidInputError(f'grid spacing must be 1 or 3 positive values (mm), got '
                                f'{spacing_mm}.')
    if isinstance(geometry, MedicalImage):
        return body_grid_points(geometry, step, mask)
    ref = reference_image(geometry)
    return body_grid_points(ref, step, np.ones(ref.shape, bool) if mask is None else mask)


def _fit_spline(src, res, smoothing: float, seed: int = 0):
    from scipy.interpolate import RBFInterpolator
    if len(src) > MAX_TPS_POINTS:  # a random subset keeps the exact fit fast
        pick = np.random.default_rng(seed).choice(len(src), MAX_TPS_POINTS, replace=False)
        src, res = src[pick], res[pick]
    return RBFInterpolator(src, res, kernel='thin_plate_spline', smoothing=float(smoothing),
                           degree=1)


def fit_correspondence_field(source_maps: EmbeddingMaps, dest_maps: EmbeddingMaps,
                             points_mm, *, score_threshold: float = 0.5,
                             regularization: str = 'tps', smoothing: float = 100.0,
                             ransac_threshold_mm: Optional[float] = 15.0,
                             outlier_mm: float = 20.0, min_matches: int = 12,
                             method: str = 'coarse_to_fine',
                             match_kwargs: Optional[dict] = None) -> CorrespondenceField:
    """Fit a smooth source -> dest map to the embedding matches of ``points_mm``.

    Args:
        source_maps, dest_maps: maps of the two images (same model).
        points_mm: ``(N, 3)`` world points of the source image to match (e.g.
            :func:`grid_points`).
        score_threshold: matches scoring at most this are dropped.
        regularization: ``'affine'`` (robust affine only) or ``'tps'`` (affine + smoothing
            thin-plate spline of the residuals).
        smoothing: the spline's smoothing (``RBFInterpolator(smoothing=...)``; 0
            interpolates every match exactly, larger values are smoother).
        ransac_threshold_mm: inlier distance of the RANSAC rigid fit (``None``: Huber fits on
            all kept matches, see :func:`~mmanat.registration.fit_landmark_transform`).
        outlier_mm: matches farther than this from the affine prediction are left out of the
            spline.
        min_matches: fewer kept matches raise :class:`InvalidInputError`.
        method: the matching method of :meth:`Matcher.match`.
        match_kwargs: other keyword arguments of :meth:`Matcher.match`.

    Returns:
        :class:`CorrespondenceField`.

    Raises:
        InvalidInputError: an unknown regularization, too few confident matches.
    """
    from .matching import Matcher
    if regularization not in REGULARIZATIONS:
        raise InvalidInputError(f'unknown regularization {regularization!r}; use one of '
                                f'{REGULARIZATIONS}.')
    if not smoothing >= 0:
        raise InvalidInputError(f'smoothing must be >= 0, got {smoothing}.')
    pts = np.asarray(points_mm, dtype=np.float64).reshape(-1, 3)
    info: Dict = {'n_points': int(len(pts))}
    t0 = time.perf_counter()
    res = Matcher(source_maps, dest_maps).match(pts, method=method, **dict(match_kwargs or {}))
    dst = np.asarray(res.points, np.float64)
    scores = np.asarray(res.scores, np.float64)
    info['match_s'] = time.perf_counter() - t0
    kept = scores > float(score_threshold)
    info['n_kept'] = int(kept.sum())
    need = max(int(min_matches), 4)
    if kept.sum() < need:
        src_name = source_maps.meta.get('source_path') or '<source>'
        dst_name = dest_maps.meta.get('source_path') or '<dest>'
        raise InvalidInputError(
            f'only {int(kept.sum())} of {len(pts)} grid matches from {src_name} into '
            f'{dst_name} score above {score_threshold} (need {need}): the images may not '
            'show the same anatomy or the model does not fit them; lower --score-threshold '
            'or use a finer --grid-spacing.')
    t1 = time.perf_counter()
    src_k, dst_k = pts[kept], dst[kept]
    _, _, _, mat, trans, inl, fit_info = fit_landmark_transform(src_k, dst_k,
                                                                ransac_threshold_mm)
    info.update(fit_info)
    resid = dst_k - apply_affine(mat, trans, src_k)
    dist = np.linalg.norm(resid, axis=1)
    info['affine_residual_mm'] = float(np.median(dist[inl])) if inl.any() else float('nan')
    used = np.zeros(len(pts), bool)
    spline = None
    if regularization == 'tps':
        close = dist <= float(outlier_mm)
        if close.sum() >= need:
            try:
                spline = _fit_spline(src_k[close], resid[close], smoothing)
                used[np.flatnonzero(kept)[close]] = True
            except np.linalg.LinAlgError:  # the points lie in a plane or on a line
                info['spline'] = 'skipped: the matched points do not span 3D'
        else:
            info['spline'] = f'skipped: {int(close.sum())} matches within {outlier_mm} mm'
        if spline is None:  # the affine alone
            used[np.flatnonzero(kept)[inl]] = True
    else:
        used[np.flatnonzero(kept)[inl]] = True
    info.update(n_used=int(used.sum()), fit_s=time.perf_counter() - t1,
                regularization=regularization if spline is not None else 'affine')
    return CorrespondenceField(mat, trans, spline, pts, dst, scores, kept, used, info)


def _label_check(labels: MedicalImage, template_maps: EmbeddingMaps) -> None:
    if not isinstance(labels, MedicalImage) or labels.ndim != 3:
        raise InvalidInputError('labels must be a 3D MedicalImage (a label map of the '
                                'template).')
    if not np.issubdtype(labels.array.dtype, np.integer) and labels.array.dtype != bool:
        arr = labels.array
        if not np.all(np.mod(arr, 1) == 0):
            raise InvalidInputError(
                f'{labels.path or "<labels>"}: the label map holds non-integer values '
                f'(dtype {arr.dtype}); give a label map (integer ids), not an image.')
    lo, hi = labels.world_bounds()
    tl, th = template_maps.source_grid.world_bounds()
    if np.any(hi < tl - 1) or np.any(lo > th + 1):
        raise InvalidInputError(
            f'{labels.path or "<labels>"}: the label map spans {np.round(lo, 1).tolist()} to '
            f'{np.round(hi, 1).tolist()} mm (LPS), outside the template image '
            f'({np.round(tl, 1).tolist()} to {np.round(th, 1).tolist()} mm); give the label '
            'map of the template.')


def propagate_labels(template_maps: EmbeddingMaps, labels: MedicalImage,
                     target_maps: EmbeddingMaps, target=None, *,
                     grid_spacing_mm: Union[float, Sequence[float]] = 16.0,
                     field_spacing_mm: float = 8.0, grid_mask: Optional[np.ndarray] = None,
                     **fit_kwargs):
    """Carry a template label map onto the target's grid through embedding matches.

    Grid points over the target (its body when ``target`` is an image) are matched into the
    template, a :class:`CorrespondenceField` target -> template is fitted
    (:func:`fit_correspondence_field`), and the labels are resampled through it by nearest
    neighbour onto the target grid (voxels mapped outside the label map get 0).

    Args:
        template_maps, target_maps: maps of the template and the target (same model).
        labels: the template's label map (any grid overlapping the template image).
        target: the target image (its body mask restricts the grid; the output takes its
            grid); default: the original grid of ``target_maps`` without a body mask.
        grid_spacing_mm: step of the target grid points that are matched.
        field_spacing_mm: sampling of the displacement field used for resampling.
        grid_mask: optional boolean ``(z, y, x)`` mask on the target grid restricting the
            grid points (instead of the body mask).
        **fit_kwargs: options of :func:`fit_correspondence_field` (``score_threshold``,
            ``regularization``, ``smoothing``, ...).

    Returns:
        ``(label map on the target grid (MedicalImage, dtype of labels), field)``.
    """
    from ..structures.resample import resample_to_reference
    _label_check(labels, template_maps)
    t0 = time.perf_counter()
    geometry = target if target is not None else target_maps
    pts = grid_points(geometry, grid_spacing_mm, grid_mask)
    fld = fit_correspondence_field(target_maps, template_maps, pts, **fit_kwargs)
    t1 = time.perf_counter()
    ref = reference_image(geometry)
    arr = labels.array.astype(np.uint8) if labels.array.dtype == bool else labels.array
    src = labels.with_array(arr)
    out = resample_to_reference(src, ref, 'nearest', fld.to_sitk(ref, field_spacing_mm),
                                default_value=0)
    out.modality = None
    out.path = None
    out.meta = {'kind': 'label_map', 'propagated_from': labels.path}
    fld.info.update(resample_s=time.perf_counter() - t1, total_s=time.perf_counter() - t0)
    return out, fld


def propagate_points(template_maps: EmbeddingMaps, points_mm, target_maps: EmbeddingMaps,
                     template=None, *, grid_spacing_mm: Union[float, Sequence[float]] = 16.0,
                     grid_mask: Optional[np.ndarray] = None, **fit_kwargs):
    """Carry template points (a point set, mesh vertices) into the target through a smooth
    template -> target :class:`CorrespondenceField` fitted to grid matches.

    Args:
        template_maps, target_maps: maps of the template and the target (same model).
        points_mm: ``(N, 3)`` world LPS mm in the template.
        template: the template image (its body mask restricts the grid); default: the
            whole original grid of ``template_maps``.
        grid_spacing_mm: step of the template grid points that are matched.
        grid_mask: optional boolean ``(z, y, x)`` mask on the template grid restricting the
            grid points (instead of the body mask).
        **fit_kwargs: options of :func:`fit_correspondence_field`.

    Returns:
        ``((N, 3) target world points, field)``.
    """
    pts = np.asarray(points_mm, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or not np.all(np.isfinite(pts)):
        raise InvalidInputError(f'points must be a finite (N, 3) array of world LPS mm, got '
                                f'shape {pts.shape}.')
    geometry = template if template is not None else template_maps
    fld = fit_correspondence_field(template_maps, target_maps,
                                   grid_points(geometry, grid_spacing_mm, grid_mask),
                                   **fit_kwargs)
    return fld.map_points(pts), fld


def dice_per_label(pred: np.ndarray, truth: np.ndarray, labels: Optional[Sequence[int]] = None
                   ) -> Dict[int, float]:
    """Dice overlap ``2|P & T| / (|P| + |T|)`` of every label id (default: the non-zero ids of
    ``truth`` and ``pred``); NaN where both are empty. Arrays must share one grid."""
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape:
        raise InvalidInputError(f'label maps of different shapes {pred.shape} and '
                                f'{truth.shape}; resample them onto one grid first.')
    if labels is None:
        labels = sorted((set(np.unique(truth).tolist()) | set(np.unique(pred).tolist())) - {0})
    out = {}
    for k in labels:
        p, t = pred == k, truth == k
        den = int(p.sum()) + int(t.sum())
        out[int(k)] = 2.0 * int((p & t).sum()) / den if den else float('nan')
    return out

