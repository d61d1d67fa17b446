"""Consensus matching: many matches agree where one argmax may not.

A single argmax can jump to a similar-looking structure elsewhere (the other lung apex, the
next rib). Consensus matching (``match(..., method='consensus')``) instead

1. **global consensus**: samples ``n_points`` template points in the template's body (the
   body mask of :func:`mmanat.structures.body.body_mask` on the template's original grid, when
   the template image or a mask is given; the whole template image otherwise), matches them
   all once, and fits a rigid transform by RANSAC
   (:func:`~mmanat.registration.fit_rigid_ransac`, inliers within ``ransac_threshold_mm``;
   ``global_model='similarity'`` adds one isotropic scale, for subjects of different size),
   then a Huber-robust affine on its inliers (:func:`~mmanat.registration.fit_affine_robust`);
   every query is mapped through this global affine ``G``;
2. **local consensus**: for each query ``q0``, the sample matches within
   ``local_radius_mm`` of it (template side) whose residual to ``G`` is at most
   ``outlier_mm`` give a Huber-robust local fit of the residual motion,
   ``dst - G(src) ~ B [src - q0; 1]`` (an affine with ``min_affine`` or more matches, a
   translation with fewer); the answer is ``G(q0)`` plus its constant term. With fewer than
   ``min_local`` matches the global answer stands;
3. optionally (``refine_search_mm > 0``) the exact argmax of the similarity in a window of
   that half-size around the consensus answer, with sub-voxel refinement.

Points are world LPS mm ``(x, y, z)``; masks and map indices are numpy order ``(z, y, x)``.
Deterministic for a given ``seed`` (sampling and RANSAC). On the maps of a 2D image every
point lies in the plane z = 0 and the fits (RANSAC rigid, robust affine, local fits) are made
in 2D; the ``affine`` of ``info`` is then ``(2, 3)``.
"""
from __future__ import annotations

import time
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch

from ..registration.point_fits import (apply_affine, fit_affine_robust, fit_rigid_ransac,
                                       thinnest_extent)
from ..structures.embedding_map import EmbeddingMaps, GridGeometry
from ..structures.planar import as_planar_volume, is_planar
from ..utils.exceptions import InvalidInputError
from .dense_scores import PreparedTarget
from .refinement import refine_subvoxel
from .search import sample_embeddings, search_matches

__all__ = ['CONSENSUS_DEFAULTS', 'CONSENSUS_DEFAULTS_2D', 'consensus_search', 'sample_template_points',
           'local_consensus', 'similarity_at']

#: parameters of consensus matching (``match(..., consensus_cfg=dict(...))`` overrides them),
#: chosen on the deformed-real-CT and cross-subject CT->CT benchmarks with the shipped SAM
#: (docs/en/user_guides/inference_and_matching.md)
CONSENSUS_DEFAULTS = dict(
    n_points=4000,            # template body points matched for the consensus
    seed=0,                   # sampling and RANSAC seed
    ransac_threshold_mm=15.0,  # RANSAC rigid inlier distance (mm)
    global_model='rigid',     # model of the RANSAC step: 'rigid' or 'similarity' (+ scale)
    local_radius_mm=40.0,     # template-side radius of the local consensus (0: global only)
    min_local=8,              # fewer local matches: the global answer
    min_affine=50,            # fewer local matches: a local translation instead of an affine
    outlier_mm=15.0,          # matches farther than this from the global fit are not used
    refine_search_mm=0.0,     # half-size of the final local search window (0: none)
    search='coarse_to_fine',  # search of the sample matches ('reference' or 'coarse_to_fine')
    template_image=None,      # MedicalImage of the template: samples drawn in its body mask
    mask=None,                # or a bool (z, y, x) mask on the template's grid ((y, x) in 2D)
)


#: defaults that differ for radiographs (2D maps), chosen on synthetic X-ray subjects and
#: deformations of the real sample radiograph with seeds apart from the benchmark's (seed 100:
#: 2 templates x 6 targets, 4 deformations) with the 2D SAM: a wider local neighbourhood
#: (80 mm: 9.6 instead of 10.3 mm across subjects, 4.9 instead of 5.3 mm on the deformations)
CONSENSUS_DEFAULTS_2D = dict(local_radius_mm=80.0)


def _check_cfg(cfg: Optional[dict], planar: bool = False) -> dict:
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - set(CONSENSUS_DEFAULTS))
    if unknown:
        raise InvalidInputError(f'unknown consensus_cfg keys {unknown}; known: '
                                f'{sorted(CONSENSUS_DEFAULTS)}.')
    out = {**CONSENSUS_DEFAULTS, **(CONSENSUS_DEFAULTS_2D if planar else {}), **cfg}
    for key in ('n_points', 'ransac_threshold_mm', 'local_radius_mm', 'min_local',
                'min_affine', 'outlier_mm', 'refine_search_mm'):
        v = out[key]
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
                or not np.isfinite(v):
            raise InvalidInputError(f'consensus_cfg {key} must be a finite number, got {v!r}.')
    checks = [('n_points', out['n_points'] >= 8, 'an int >= 8'),
              ('ransac_threshold_mm', out['ransac_threshold_mm'] > 0, '> 0 (mm)'),
              ('local_radius_mm', out['local_radius_mm'] >= 0, '>= 0 (mm)'),
              ('min_local', out['min_local'] >= 1, 'an int >= 1'),
              ('min_affine', out['min_affine'] >= 4, 'an int >= 4'),
              ('outlier_mm', out['outlier_mm'] > 0, '> 0 (mm)'),
              ('refine_search_mm', out['refine_search_mm'] >= 0, '>= 0 (mm)')]
    for key, ok, what in checks:
        if not ok:
            raise InvalidInputError(f'consensus_cfg {key} must be {what}, got {out[key]!r}.')
    if out['global_model'] not in ('rigid', 'similarity'):
        raise InvalidInputError(f"consensus_cfg global_model must be 'rigid' or 'similarity', "
                                f"got {out['global_model']!r}.")
    if out['search'] not in ('reference', 'coarse_to_fine'):
        raise InvalidInputError(f"consensus_cfg search must be 'reference' or "
                                f"'coarse_to_fine', got {out['search']!r}.")
    return out


def sample_template_points(grid: GridGeometry, n: int, seed: int = 0, template_image=None,
                           mask: Optional[np.ndarray] = None) -> np.ndarray:
    """``n`` random world points (LPS mm) in the body of the template.

    Args:
        grid: the template's original grid (``EmbeddingMaps.source_grid``).
        n: number of points (fewer when the region has fewer voxels).
        seed: random seed.
        template_image: the template :class:`~mmanat.structures.MedicalImage` on ``grid``:
            points are drawn in its :func:`~mmanat.structures.body.body_mask`.
        mask: or a bool ``(z, y, x)`` mask on ``grid``; neither: the whole image.

    Returns:
        ``(n, 3)`` world LPS mm, one per distinct voxel, jittered uniformly within it.
    """
    if template_image is not None:
        from ..structures.body import body_mask
        from ..structures.image import MedicalImage
        if isinstance(template_image, MedicalImage) and is_planar(template_image):
            template_image = as_planar_volume(template_image)
        if not isinstance(template_image, MedicalImage) or template_image.ndim != 3:
            raise InvalidInputError('consensus_cfg template_image must be the 3D template '
                                    f'MedicalImage, got {type(template_image).__name__}.')
        if not GridGeometry.from_image(template_image).allclose(grid, tol=1e-3):
            raise InvalidInputError(
                f'consensus_cfg template_image {template_image.path or "<image>"} is not on the '
                f'grid of the template maps ({grid}); pass the image the maps were made from.')
        mask = body_mask(template_image)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.ndim == 2 and grid.shape[0] == 1:  # the mask of a 2D image
            mask = mask[None]
        if mask.shape != tuple(grid.shape):
            raise InvalidInputError(f'consensus_cfg mask shape {mask.shape} differs from the '
                                    f'template grid {tuple(grid.shape)} (z, y, x).')
        flat = np.flatnonzero(mask.astype(bool).reshape(-1))
        if len(flat) < 8:  # an empty or tiny body: the whole image rather than nothing
            flat = None
    else:
        flat = None
    total = int(np.prod(grid.shape))
    rng = np.random.default_rng(int(seed))
    count = total if flat is None else len(flat)
    pick = np.sort(rng.choice(count, size=min(int(n), count), replace=False))
    vox = pick if flat is None else flat[pick]
    zyx = np.stack(np.unravel_index(vox, grid.shape), 1).astype(np.float64)
    zyx += rng.uniform(-0.5, 0.5, zyx.shape)
    zyx = np.clip(zyx, 0, np.asarray(grid.shape) - 1)
    return grid.index_to_world(zyx[:, ::-1])


def local_consensus(queries: np.ndarray, src: np.ndarray, resid: np.ndarray, radius_mm: float,
                    min_local: int, min_affine: int, max_correction_mm: float,
                    huber_k: float = 1.345, iters: int = 10, min_scale_mm: float = 1.0,
                    chunk: int = 256) -> Tuple[np.ndarray, np.ndarray]:
    """Robust local fit of the residual motion around each query (batched, Huber IRLS).

    Args:
        queries: ``(N, 3)`` template points (world mm); ``(N, 2)`` in 2D (``src``,
            ``resid`` and the corrections then have 2 coordinates too).
        src: ``(S, 3)`` template ends of the consensus matches (world mm).
        resid: ``(S, 3)`` their residual motion, ``dst - G(src)`` (mm).
        radius_mm: matches with ``|src - q0| <= radius_mm`` are used.
        min_local: fewer matches: no correction (0).
        min_affine: fewer matches: a translation; otherwise an affine in ``src - q0``.
        max_correction_mm: the correction's length is clipped to this.
        huber_k, iters, min_scale_mm: Huber constant (robust scales), IRLS iterations, floor
            of the robust scale (1.4826 x median residual norm, mm).
        chunk: queries per batch.

    Returns:
        ``(correction (N, 3) mm, num_local (N,) int64)``.
    """
    N, dim = queries.shape
    corr = np.zeros((N, dim))
    nloc = np.zeros(N, np.int64)
    if N == 0 or len(src) == 0 or radius_mm <= 0:
        return corr, nloc
    S = torch.as_tensor(src, dtype=torch.float64)
    R = torch.as_tensor(resid, dtype=torch.float64)
    for a in range(0, N, chunk):
        q = torch.as_tensor(queries[a:a + chunk], dtype=torch.float64)
        n = len(q)
        d = torch.cdist(q, S)  # (n, S)
        inside = d <= radius_mm
        cnt = inside.sum(1)
        P = int(cnt.max())
        if P == 0:
            continue
        dd, nb = torch.where(inside, d, torch.inf).topk(P, dim=1, largest=False)
        w0 = torch.isfinite(dd).to(torch.float64)  # (n, P)
        X = torch.cat([S[nb] - q[:, None], torch.ones(n, P, 1, dtype=torch.float64)], -1)
        use_aff = (cnt >= min_affine).to(torch.float64)
        X[..., :dim] *= use_aff[:, None, None]  # translation only: the linear columns vanish
        Y = R[nb]  # (n, P, 3)
        w = w0.clone()
        eye = torch.eye(dim + 1, dtype=torch.float64)
        for _ in range(int(iters) + 1):
            Xw = X * w[..., None]
            G = Xw.transpose(1, 2) @ X  # (n, 4, 4)
            lam = 1e-6 * G.diagonal(dim1=-2, dim2=-1)[:, :dim].mean(-1) + 1e-6
            B = torch.linalg.solve(G + lam[:, None, None] * eye, Xw.transpose(1, 2) @ Y)
            res = torch.linalg.norm(Y - X @ B, dim=-1)  # (n, P)
            med = torch.nanmedian(torch.where(w0 > 0, res, torch.nan), dim=1).values
            c = huber_k * (1.4826 * torch.nan_to_num(med, nan=0.0)).clamp_min(min_scale_mm)
            w = w0 * torch.where(res <= c[:, None], 1.0, c[:, None] / res.clamp_min(1e-12))
        b = B[:, dim, :]  # the fitted motion at the query (src - q0 = 0)
        ok = (cnt >= min_local) & torch.isfinite(b).all(1)
        b = torch.where(ok[:, None], b, torch.zeros_like(b))
        norm = torch.linalg.norm(b, dim=1, keepdim=True)
        b = b * (max_correction_mm / norm.clamp_min(max_correction_mm))
        corr[a:a + n] = b.numpy()
        nloc[a:a + n] = cnt.numpy()
    return corr, nloc


def similarity_at(template: EmbeddingMaps, pts: np.ndarray, target: EmbeddingMaps,
                  found: np.ndarray, levels: Sequence[str], device) -> np.ndarray:
    """Similarity (<= 1) of template points and target points: the mean over ``levels`` of
    the cosine of the trilinearly interpolated, re-normalised embeddings.

    Args:
        template, target: the maps; ``pts``, ``found``: ``(N, 3)`` world mm in each.
        levels: the matched levels; device: where to compute.

    Returns:
        ``(N,)`` float64.
    """
    if len(pts) == 0:
        return np.zeros(0)
    s = sum((sample_embeddings(template, pts, lv, device)
             * sample_embeddings(target, found, lv, device)).sum(1) for lv in levels)
    return (s / len(levels)).double().cpu().numpy()


def _window_search(template: EmbeddingMaps, pts: np.ndarray, tgt: PreparedTarget,
                   centre: np.ndarray, half_mm: float) -> np.ndarray:
    """Exact argmax (sub-voxel refined) in a box of half-size ``half_mm`` around ``centre``
    (world mm) of each point; returns ``(N, 3)`` world mm."""
    from .search import query_embeddings
    fg = tgt.maps.grid('fine')
    c = np.rint(fg.world_to_array_index(centre)).astype(np.int64)  # (N, 3) z, y, x
    h = np.ceil(half_mm / fg.spacing[::-1]).astype(np.int64)  # z, y, x voxels
    if is_planar(tgt.maps):
        h[0] = 0
    offs = [np.arange(-v, v + 1) for v in h]
    grid = np.stack(np.meshgrid(*offs, indexing='ij'), -1).reshape(-1, 3)
    idx = np.clip(c[:, None] + grid[None], 0, np.asarray(tgt.fshape) - 1)  # (N, K, 3)
    Yf, Xf = tgt.fshape[1:]
    flat = torch.as_tensor((idx[..., 0] * Yf + idx[..., 1]) * Xf + idx[..., 2],
                           device=tgt.device)
    out = np.zeros((len(pts), 3))
    with torch.no_grad():
        for a in range(0, len(pts), 256):
            q = query_embeddings(template, pts[a:a + 256], tgt.levels, tgt.device)
            sc = q['coarse'] @ tgt.crows.t()
            s = tgt.score_at(q, sc, flat[a:a + 256])
            best, j = s.max(1)
            vox = flat[a:a + 256].gather(1, j[:, None])[:, 0]
            coords, delta = refine_subvoxel(tgt, q, sc, vox, best)
            out[a:a + 256] = fg.array_index_to_world((coords + delta).cpu().numpy())
    return out


def consensus_search(template: EmbeddingMaps, target: EmbeddingMaps, pts: np.ndarray,
                     fwd: PreparedTarget, refine: bool, topk: int, margin: Sequence[int],
                     pool: Sequence[int], max_chunk_mb, progress, cfg: Optional[dict] = None
                     ) -> Tuple[np.ndarray, np.ndarray, Dict[str, np.ndarray], Dict]:
    """Consensus matches of template points in the target (see the module docstring).

    Args:
        template, target: the two images' maps; ``pts``: ``(N, 3)`` query points, world LPS
            mm (already checked); ``fwd``: the target laid out for scoring.
        refine, topk, margin, pool, max_chunk_mb, progress: the search of the sample matches
            (:func:`~mmanat.apis.search.search_matches`).
        cfg: overrides of :data:`CONSENSUS_DEFAULTS` (on 2D maps, of those updated by
            :data:`CONSENSUS_DEFAULTS_2D`).

    Returns:
        ``(points, scores, extra, info)``: ``(N, 3)`` world LPS mm (clipped to the target
        image); ``(N,)`` similarity at each answer; per-point ``extra`` (``num_local``: local
        matches used, 0 where the global answer stands below ``min_local``;
        ``global_points``: the global-affine answers); ``info`` about the global fit
        (``affine`` ``(3, 4)`` ``[A | t]`` template -> target mm, sample counts, seconds).

    Raises:
        InvalidInputError: bad ``cfg``; RANSAC finding no consistent rigid transform.
    """
    c = _check_cfg(cfg, planar=is_planar(template))
    t0 = time.perf_counter()
    samples = sample_template_points(template.source_grid, int(c['n_points']), int(c['seed']),
                                     c['template_image'], c['mask'])
    cont, _, s = search_matches(template, samples, fwd, c['search'], refine, topk, margin,
                                pool, max_chunk_mb, progress)
    dst = target.grid('fine').array_index_to_world(cont)
    t1 = time.perf_counter()
    d = 2 if is_planar(template) else 3  # 2D image: every point lies in z = 0, fit in 2D
    s_d, dst_d, pts_d = samples[:, :d], dst[:, :d], pts[:, :d]
    r, t, inl = fit_rigid_ransac(s_d, dst_d, float(c['ransac_threshold_mm']),
                                 seed=int(c['seed']),
                                 with_scale=c['global_model'] == 'similarity')
    a, b, how = r, t, 'rigid kept (inliers nearly planar)'
    if inl.sum() >= d + 1 and thinnest_extent(s_d[inl]) >= 10.0:
        a, b, _ = fit_affine_robust(s_d[inl], dst_d[inl], init=(r, t))
        how = 'fitted'
    glob = apply_affine(a, b, pts_d)
    resid = dst_d - apply_affine(a, b, s_d)
    good = np.linalg.norm(resid, axis=1) <= float(c['outlier_mm'])
    corr, nloc = local_consensus(pts_d, s_d[good], resid[good], float(c['local_radius_mm']),
                                 int(c['min_local']), int(c['min_affine']),
                                 float(c['outlier_mm']))
    ans = glob + corr
    if d == 2:  # back to the plane z = 0 of the maps
        glob, ans = (np.concatenate([v, np.zeros((len(v), 1))], 1) for v in (glob, ans))
    if c['refine_search_mm'] > 0:
        ans = _window_search(template, pts, fwd, ans, float(c['refine_search_mm']))
    src = target.source_grid
    ans = src.index_to_world(np.clip(src.world_to_index(ans), 0, src.size - 1))
    scores = similarity_at(template, pts, target, ans, fwd.levels, fwd.device)
    nloc = np.where(nloc >= int(c['min_local']), nloc, 0)
    info = dict(affine=np.concatenate([a, b[:, None]], 1), affine_fit=how,
                n_samples=int(len(samples)), n_ransac_inliers=int(inl.sum()),
                n_consensus=int(good.sum()), sample_score_median=float(np.median(s)),
                match_s=t1 - t0, fit_s=time.perf_counter() - t1)
    return ans, scores, dict(num_local=nloc.astype(np.int64), global_points=glob), info
