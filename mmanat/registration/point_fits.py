"""Point-set fits between corresponding world points (LPS mm, rows ``(x, y, z)``).

* :func:`kabsch`: weighted least-squares rigid transform, reflection-corrected;
* :func:`fit_rigid_robust`: Huber-weighted (IRLS) Kabsch, then a refit on the inliers;
* :func:`fit_rigid_ransac`: RANSAC over 3-point Kabsch samples, robust to a majority of
  wrong matches;
* :func:`fit_affine_robust`: Huber-weighted (IRLS) affine, then a refit on the inliers;
* :func:`fit_landmark_transform`: RANSAC rigid, then the robust affine on its inliers (the
  point-fit step of the embedding-driven registration of UAE-M, Bai et al., "UAE: Universal
  anatomical embedding on multi-modality medical images", arXiv:2311.15111).

Every fit returns ``dst ~ M @ src + t``; :func:`apply_affine` applies such a pair. The fits
take ``(N, 3)`` point sets, or ``(N, 2)`` ones (points in an image plane: the consensus
matching of radiographs, :mod:`mmanat.apis.consensus`), and return ``(2, 2)`` / ``(2,)``
transforms for those.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

from ..utils.exceptions import InvalidInputError

__all__ = ['apply_affine', 'kabsch', 'fit_rigid_robust', 'fit_rigid_ransac', 'fit_affine_robust',
           'fit_landmark_transform', 'thinnest_extent']


def _as_pairs(src, dst) -> Tuple[np.ndarray, np.ndarray]:
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.ndim != 2 or src.shape[1] not in (2, 3) or src.shape != dst.shape:
        raise InvalidInputError(f'point sets must both be (N, 3) (or both (N, 2)), got '
                                f'{src.shape} and {dst.shape}.')
    if not (np.all(np.isfinite(src)) and np.all(np.isfinite(dst))):
        raise InvalidInputError('point sets contain NaN or infinite coordinates.')
    return src, dst


def apply_affine(matrix: np.ndarray, translation: np.ndarray, points) -> np.ndarray:
    """Apply ``p -> matrix @ p + translation`` to points.

    Args:
        matrix: ``(3, 3)`` linear part.
        translation: ``(3,)`` translation (mm).
        points: ``(N, 3)`` world points (mm).

    Returns:
        ``(N, 3)`` float64 array, ``points @ matrix.T + translation``.
    """
    return np.asarray(points, dtype=np.float64) @ np.asarray(matrix).T + np.asarray(translation)


def kabsch(src, dst, weights=None, with_scale: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """Least-squares rigid transform ``dst ~ R @ src + t`` (weighted Kabsch / SVD), or with
    ``with_scale`` the similarity ``dst ~ s R @ src + t`` (Umeyama, IEEE TPAMI 1991, eq. 40-42:
    ``s = tr(D S) / var(src)``).

    The rotation is reflection-corrected: ``det(R) = +1`` always, even where the unconstrained
    orthogonal optimum is a reflection (coplanar or noisy points).

    Args:
        src, dst: ``(N, 3)`` corresponding points, ``N >= 3`` (non-collinear).
        weights: optional ``(N,)`` non-negative weights.
        with_scale: also fit one isotropic scale (returned inside the matrix, ``s R``).

    Returns:
        ``(R (3, 3), t (3,))`` (with ``with_scale``: ``(s R, t)``).
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
    h = (src - cs).T @ ((dst - cd) * w[:, None])  # 3x3 (2x2) cross-covariance
    u, sv, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    d = 1.0 if d == 0 else d
    signs = np.array([1.0] * (src.shape[1] - 1) + [d])
    r = vt.T @ np.diag(signs) @ u.T
    if with_scale:
        var = float(w @ np.sum((src - cs) ** 2, axis=1))
        if not var > 0:
            raise InvalidInputError('a similarity fit needs source points that are not all '
                                    'the same.')
        r = r * (float(sv @ signs) / var)
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

    Args:
        src, dst: ``(N, 3)`` corresponding points, ``N >= 3``.
        k: Huber constant (in units of the robust scale, 1.4826 x median residual).
        iters: IRLS iterations.
        inlier_factor: inlier threshold of the final refit, in robust scales.
        min_scale: lower bound of the residual scale in mm (exact data have scale 0).

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

    with_scale = False

    def __init__(self, r: np.ndarray, t: np.ndarray):
        self.r, self.t = r, t

    @classmethod
    def from_estimate(cls, src, dst):
        return cls(*kabsch(src, dst, with_scale=cls.with_scale))

    def residuals(self, src, dst) -> np.ndarray:
        return np.linalg.norm(apply_affine(self.r, self.t, src) - dst, axis=1)


class _SimilarityModel(_RigidModel):
    """Rigid plus one isotropic scale (:func:`kabsch` with ``with_scale``)."""

    with_scale = True


def fit_rigid_ransac(src, dst, threshold_mm: float = 15.0, max_trials: int = 2000,
                     seed: int = 0, with_scale: bool = False
                     ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
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
        with_scale: fit a similarity (rigid and one isotropic scale, the matrix is ``s R``):
            between subjects of different size a rigid model leaves the far matches outside
            the threshold.

    Returns:
        ``(R, t, inliers (N,) bool)``.
    """
    from skimage.measure import ransac
    src, dst = _as_pairs(src, dst)
    if len(src) < 3:
        raise InvalidInputError(f'a rigid fit needs at least 3 point pairs, got {len(src)}.')
    if not threshold_mm > 0:
        raise InvalidInputError(f'threshold_mm must be > 0, got {threshold_mm}.')
    model_cls = _SimilarityModel if with_scale else _RigidModel
    model, inl = ransac((src, dst), model_cls, min_samples=3,
                        residual_threshold=float(threshold_mm), max_trials=int(max_trials),
                        rng=int(seed))
    if model is None or inl is None or int(np.sum(inl)) < 3:
        raise InvalidInputError(
            f'RANSAC found no rigid transform that brings 3 or more of the {len(src)} matches '
            f'within {threshold_mm} mm of each other; raise the threshold or check the matches.')
    inl = np.asarray(inl, bool)
    r, t = kabsch(src[inl], dst[inl], with_scale=with_scale)
    return r, t, inl


def thinnest_extent(points: np.ndarray) -> float:
    """RMS spread of points along their thinnest principal direction.

    Args:
        points: ``(N, 3)`` points (mm).

    Returns:
        the spread in mm; 0 for fewer than 4 points or points in a plane.
    """
    if len(points) < 4:
        return 0.0
    s = np.linalg.svd(points - points.mean(0), compute_uv=False)
    return float(s[-1] / np.sqrt(len(points)))


def _weighted_affine(src, dst, w) -> Tuple[np.ndarray, np.ndarray]:
    x = np.concatenate([src, np.ones((len(src), 1))], 1)
    sw = np.sqrt(w)[:, None]
    sol, *_ = np.linalg.lstsq(x * sw, dst * sw, rcond=None)  # (4, 3) (2D: (3, 2))
    return sol[:-1].T, sol[-1]


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
    dim = src.shape[1]
    centred = src - src.mean(0)
    if np.linalg.matrix_rank(centred, tol=1e-6 * max(1.0, np.abs(centred).max())) < dim:
        raise InvalidInputError('an affine fit needs points that are not coplanar '
                                '(not collinear, for 2D points).')
    a, t = init if init is not None else _weighted_affine(src, dst, np.ones(len(src)))
    for _ in range(int(iters)):
        res = np.linalg.norm(apply_affine(a, t, src) - dst, axis=1)
        w = _huber_weights(res, k, _robust_scale(res, min_scale))
        a, t = _weighted_affine(src, dst, w)
    res = np.linalg.norm(apply_affine(a, t, src) - dst, axis=1)
    inl = res <= inlier_factor * _robust_scale(res, min_scale)
    if inl.sum() >= dim + 1 and np.linalg.matrix_rank(src[inl] - src[inl].mean(0)) == dim:
        a, t = _weighted_affine(src[inl], dst[inl], np.ones(int(inl.sum())))
    return a, t, inl


def fit_landmark_transform(src, dst, ransac_threshold_mm: Optional[float] = 15.0,
                           min_affine_extent_mm: float = 10.0):
    """The point-fit step of :func:`mmanat.apis.register_with_embeddings`: ``dst ~ A src + t``.

    A rigid fit (:func:`fit_rigid_ransac` with ``ransac_threshold_mm``, or the Huber
    :func:`fit_rigid_robust` on all pairs when it is ``None``), then a robust affine
    (:func:`fit_affine_robust`) on the pairs the rigid fit used, started from it - unless those
    points spread less than ``min_affine_extent_mm`` (RMS) across their thinnest direction:
    an affine is then undetermined across that plane, so the rigid transform is returned as
    the affine.

    Args:
        src, dst: ``(N, 3)`` corresponding points (world mm), ``N >= 3``.
        ransac_threshold_mm: inlier distance of the RANSAC rigid fit; ``None``: the Huber
            rigid fit on all pairs.
        min_affine_extent_mm: smallest RMS spread across the thinnest direction for which an
            affine is fitted.

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
    thickness = thinnest_extent(src[use])
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
