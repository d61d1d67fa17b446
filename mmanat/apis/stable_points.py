"""Stable points: structural inference around each query point (UAE, Bai et al., 2023,
arXiv:2311.15111).

A single argmax can jump to a similar-looking structure elsewhere. Stable points match the
whole (2r + 1)^3 neighbourhood of each query (a 125-voxel neighbourhood for r = 2) forth and
back between template and target a few times, keep the pairs that are similar, near the query
and distinct, fit a Huber-robust affine map to them and answer with the mean vote of the pairs
mapped back to the query. Vectorised over queries and neighbourhoods; points are world LPS mm.
On the maps of a 2D image the neighbourhood is the (2r + 1)^2 pixels around the query in its
plane and the affine is fitted in 2D.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np
import torch

from ..structures.embedding_map import EmbeddingMaps
from ..structures.planar import is_planar
from .dense_scores import PreparedTarget
from .search import search_matches


def stable_points_search(template: EmbeddingMaps, target: EmbeddingMaps, pts: np.ndarray,
                         fwd: PreparedTarget, back: PreparedTarget, method: str, topk: int,
                         margin: Sequence[int], pool: Sequence[int], max_chunk_mb, progress,
                         radius: int = 2, iterations: int = 4, score_thr: float = 0.8,
                         max_distance: float = 200.0, min_pairs_affine: int = 8,
                         huber_scale: float = 1.345, irls_iters: int = 10
                         ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stable-points matches of template points in the target.

    Args:
        template, target: the two images' maps.
        pts: ``(N, 3)`` query points, world LPS mm (already checked).
        fwd: the target laid out for scoring; ``back``: the template laid out likewise (for
            the back-matching steps).
        method, topk, margin, pool, max_chunk_mb, progress: the search of each step
            (:func:`~mmanat.apis.search.search_matches`).
        radius: neighbourhood half-size in template fine voxels.
        iterations: alternating forward / back matching steps.
        score_thr: pairs of lower similarity are dropped.
        max_distance: pairs whose template end moved farther (mm) from the query are dropped.
        min_pairs_affine, huber_scale, irls_iters: the robust affine fit
            (:func:`robust_affine_votes`).

    Returns:
        ``(points, scores, num_kept)``: ``(N, 3)`` world mm (clipped to the target image),
        ``(N,)`` scores, ``(N,)`` pairs used (0: a plain refined match of the query).
    """
    N = len(pts)
    fg = template.grid('fine')
    r = int(radius)
    planar = is_planar(template)
    k_range = np.arange(1) if planar else np.arange(-r, r + 1)  # 2D: in-plane only
    off = np.stack(np.meshgrid(np.arange(-r, r + 1), np.arange(-r, r + 1), k_range,
                               indexing='ij'), -1)
    off = off.reshape(-1, 3).astype(np.float64)  # (P, 3) ITK order i, j, k
    P = len(off)
    step = (fg.direction * fg.spacing[None, :]) @ off.T  # (3, P) world mm
    nbr = pts[:, None, :] + step.T[None]  # (N, P, 3)
    inside = template.source_grid.contains_world(nbr.reshape(-1, 3), margin=0.5)
    inside = inside.reshape(N, P)
    q = nbr.reshape(-1, 3).copy()
    q[~inside.reshape(-1)] = np.repeat(pts, P, 0)[~inside.reshape(-1)]
    k = q
    score = None
    k_flat = None
    for it in range(int(iterations)):
        if it % 2 == 0:  # forward: template -> target
            cont, k_flat, score = search_matches(template, q, fwd, method, False, topk,
                                                 margin, pool, max_chunk_mb, progress)
            k = target.grid('fine').array_index_to_world(cont)
        else:  # back: target -> template
            cont, _, score = search_matches(target, k, back, method, False, topk,
                                            margin, pool, max_chunk_mb, progress)
            q = template.grid('fine').array_index_to_world(cont)
    # pairs (q, k): k from the last forward step, q from the back step after it (or its
    # input when the iterations end on a forward step); the score is that last step's
    qn, kn = q.reshape(N, P, 3), k.reshape(N, P, 3)
    sn = score.reshape(N, P)
    keep = inside & (np.linalg.norm(qn - pts[:, None], axis=-1) <= max_distance) & \
        (sn > score_thr)
    # drop duplicate k (the same target fine voxel) within each query
    kf = k_flat.reshape(N, P)
    order = np.argsort(np.where(keep, kf, -1), axis=1, kind='stable')
    sorted_k = np.take_along_axis(np.where(keep, kf, -1), order, 1)
    dup_sorted = np.zeros_like(keep)
    dup_sorted[:, 1:] = (sorted_k[:, 1:] == sorted_k[:, :-1]) & (sorted_k[:, 1:] >= 0)
    dup = np.zeros_like(keep)
    np.put_along_axis(dup, order, dup_sorted, 1)
    keep &= ~dup
    if planar:  # every point lies in the plane z = 0: fit the in-plane affine
        ans, sc, nk = robust_affine_votes(pts[:, :2], qn[..., :2], kn[..., :2], sn, keep,
                                          min_pairs_affine, huber_scale, irls_iters)
        ans = np.concatenate([ans, np.zeros((N, 1))], 1)
    else:
        ans, sc, nk = robust_affine_votes(pts, qn, kn, sn, keep, min_pairs_affine,
                                          huber_scale, irls_iters)
    # queries without any kept pair: plain match of the query itself
    none = nk == 0
    if none.any():
        cont, _, s0 = search_matches(template, pts[none], fwd, method, True, topk, margin,
                                     pool, max_chunk_mb, progress)
        ans[none] = target.grid('fine').array_index_to_world(cont)
        sc[none] = s0
    # clip to the target image
    src = target.source_grid
    idx = np.clip(src.world_to_index(ans), 0, src.size - 1)
    ans = src.index_to_world(idx)
    return ans, sc, nk


def robust_affine_votes(q0, q, k, s, keep, min_pairs, huber_scale, iters):
    """Robust affine fit ``k ~ A [q - q0; 1]`` per query (Huber IRLS per output coordinate,
    batched over queries) and the mean vote ``k - A3x3 (q - q0)``.

    Queries with fewer than ``min_pairs`` kept pairs use a translation only (the mean of
    ``k - (q - q0)``).

    Args:
        q0: ``(N, 3)`` query points, world mm (``(N, 2)`` in 2D; ``q``, ``k`` and the
            answers then have 2 coordinates too).
        q: ``(N, P, 3)`` template ends of the pairs around each query, world mm.
        k: ``(N, P, 3)`` their target ends, world mm.
        s: ``(N, P)`` similarity of each pair.
        keep: ``(N, P)`` bool, the pairs used.
        min_pairs: fewest kept pairs for an affine fit.
        huber_scale: Huber threshold in robust standard deviations (1.4826 MAD).
        iters: IRLS iterations.

    Returns:
        ``(answers, scores, num_kept)``: ``(N, 3)`` world mm, ``(N,)`` mean similarity of
        the kept pairs, ``(N,)`` int64 number of kept pairs.
    """
    N, P, d = q.shape  # d = 3 (2 for 2D points); the comments name the 3D sizes
    Xq = torch.as_tensor(q - q0[:, None], dtype=torch.float64)
    Y = torch.as_tensor(k, dtype=torch.float64)
    w0 = torch.as_tensor(keep, dtype=torch.float64)
    nk = w0.sum(1)
    X = torch.cat([Xq, torch.ones(N, P, 1, dtype=torch.float64)], -1)  # (N, P, 4)
    A = torch.zeros(N, d, d + 1, dtype=torch.float64)
    A[:, :, :d] = torch.eye(d, dtype=torch.float64)
    # translation-only start: b = mean(k - (q - q0))
    A[:, :, d] = ((Y - Xq) * w0[..., None]).sum(1) / nk.clamp_min(1)[:, None]
    fit = nk >= min_pairs
    if fit.any():
        # fit the motion beyond the identity, D = k - (q - q0) ~ B [q - q0; 1], A = I + B, with
        # a small ridge on B so that degenerate (e.g. planar) neighbourhoods fall back to I
        Xf, Df, wf = X[fit], (Y - Xq)[fit], w0[fit]
        W = wf[:, :, None].expand(-1, -1, d).clone()  # (n, P, 3) weights per output coord
        eye4 = torch.eye(d + 1, dtype=torch.float64)
        Bf = None
        for _ in range(int(iters)):
            XtW = Xf.transpose(1, 2)[:, None] * W.permute(0, 2, 1)[:, :, None, :]  # n,3,4,P
            G = XtW @ Xf[:, None]  # (n, 3, 4, 4)
            lam = 1e-4 * G.diagonal(dim1=-2, dim2=-1)[..., :d].mean(-1) + 1e-9  # (n, 3)
            G = G + lam[..., None, None] * eye4
            rhs = (XtW @ Df.permute(0, 2, 1)[..., None])[..., 0]  # (n, 3, 4)
            Bf = torch.linalg.solve(G, rhs[..., None])[..., 0]  # (n, 3, 4)
            res = (Df - Xf @ Bf.transpose(1, 2)).abs()  # (n, P, 3)
            rmask = torch.where(wf[..., None] > 0, res, torch.nan)
            sigma = 1.4826 * torch.nanmedian(rmask.permute(0, 2, 1).reshape(-1, P),
                                             dim=1).values.view(-1, d)
            delta = huber_scale * torch.nan_to_num(sigma, nan=1.0).clamp_min(1.0)
            W = wf[..., None] * torch.where(res <= delta[:, None], 1.0,
                                            delta[:, None] / res.clamp_min(1e-12))
        ok = torch.isfinite(Bf).all(dim=(1, 2))
        idx = torch.nonzero(fit)[:, 0][ok]
        A[idx, :, :d] += Bf[ok][:, :, :d]
        A[idx, :, d] = Bf[ok][:, :, d]
    votes = Y - Xq @ A[:, :, :d].transpose(1, 2)  # (N, P, 3)
    ans = (votes * w0[..., None]).sum(1) / nk.clamp_min(1)[:, None]
    sc = (torch.as_tensor(s, dtype=torch.float64) * w0).sum(1) / nk.clamp_min(1)
    return ans.numpy(), sc.numpy(), nk.numpy().astype(np.int64)
