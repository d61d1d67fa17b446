"""Vectorised building blocks of the SAM pixel-pair samplers (not registered).

Conventions: points are world millimetres (x, y, z) in rows ``(P, 3)``; indices refer to a
flattened voxel list; every function works on the device of its inputs (CPU or GPU) and
bounds its memory by processing queries in chunks.
"""
from typing import Optional, Tuple

import numpy as np
import torch

from mmanat.utils.exceptions import InvalidInputError

NN_METHODS = ('auto', 'kdtree', 'cdist')


def pairwise_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Exact Euclidean distances (A, B) between rows of ``a`` (A, 3) and ``b`` (B, 3).

    Uses the direct difference formula (not the |a|^2 - 2ab + |b|^2 matrix trick, which
    loses about 1e-3 mm at world coordinates of hundreds of mm in float32).
    """
    return torch.cdist(a[None], b[None], compute_mode='donot_use_mm_for_euclid_dist')[0]


def nearest_neighbours(query: torch.Tensor, ref: torch.Tensor, method: str = 'auto',
                       chunk: int = 512) -> Tuple[torch.Tensor, torch.Tensor]:
    """For every row of ``query`` (P, 3), the distance to and index of its nearest row of
    ``ref`` (R, 3), R >= 1.

    Args:
        method: 'kdtree' (scipy cKDTree on the CPU in float64, fast for large R),
            'cdist' (exact torch distances in chunks of ``chunk`` queries, on the input
            device), or 'auto' (kdtree for CPU tensors, cdist otherwise).

    Returns ``(dist (P,), index (P,))`` on the device of ``query``.
    """
    if method not in NN_METHODS:
        raise InvalidInputError(f'nearest_neighbours: method={method!r}; use one of {NN_METHODS}')
    if ref.shape[0] == 0:
        raise InvalidInputError('nearest_neighbours: the reference point set is empty')
    device = query.device
    if query.shape[0] == 0:
        return (torch.zeros(0, device=device), torch.zeros(0, dtype=torch.long, device=device))
    if method == 'auto':
        method = 'kdtree' if device.type == 'cpu' else 'cdist'
    if method == 'kdtree':
        from scipy.spatial import cKDTree
        tree = cKDTree(ref.detach().double().cpu().numpy())
        dist, idx = tree.query(query.detach().double().cpu().numpy(), k=1)
        return (torch.as_tensor(dist, dtype=torch.float32, device=device),
                torch.as_tensor(idx.astype(np.int64), device=device))
    dists, idxs = [], []
    for s in range(0, query.shape[0], chunk):
        d, i = pairwise_distances(query[s:s + chunk], ref).min(dim=1)
        dists.append(d)
        idxs.append(i)
    return torch.cat(dists).float(), torch.cat(idxs)


def random_subset(values_ok: torch.Tensor, k: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per row, pick ``k`` column positions uniformly at random among the True entries of
    ``values_ok`` (R, K) (all of them when a row has fewer than ``k``).

    Returns ``(columns (R, k), ok (R, k))``; ``ok`` is False where a row ran out of True
    entries (those columns point at arbitrary False entries). Requires k <= K.
    """
    r = torch.rand(values_ok.shape, device=values_ok.device)
    r = r.masked_fill(~values_ok, -1.0)
    cols = r.topk(k, dim=1).indices
    return cols, values_ok.gather(1, cols)


def mine_negatives(query_index: torch.Tensor, points: torch.Tensor, candidates: torch.Tensor,
                   embeddings: torch.Tensor, extra_embeddings: Optional[torch.Tensor],
                   ignore_distance: float, num_top: Optional[int], num_keep: int,
                   group: Optional[torch.Tensor] = None, chunk: int = 128
                   ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Hard negatives for each query: among the candidate voxels farther than
    ``ignore_distance`` mm from the query, rank by similarity (``embeddings`` dot product,
    plus the ``extra_embeddings`` one when given), keep the top ``num_top``, then
    ``num_keep`` of those at random. ``num_top=None`` skips the ranking: ``num_keep``
    uniformly random negatives among all the eligible voxels.

    Args:
        query_index: (Q,) indices into the R voxels.
        points: (R, 3) mm coordinates of the voxels.
        candidates: (R,) bool, voxels allowed as negatives (e.g. valid ones).
        embeddings: (R, C) unit embeddings; extra_embeddings: (R, C') or None.
        group: optional (R,) integer label; a query then only takes negatives of its own
            group (used by the no-overlap fallback: same view only).
        chunk: queries per block; memory is O(chunk * R).

    Returns ``(neg_index (Q, num_keep), neg_mask (Q, num_keep))``; rows with fewer than
    ``num_keep`` eligible voxels are padded with mask False.
    """
    device = points.device
    Q, R = query_index.shape[0], points.shape[0]
    out_idx = torch.zeros((Q, num_keep), dtype=torch.long, device=device)
    out_ok = torch.zeros((Q, num_keep), dtype=torch.bool, device=device)
    # columns that are never negatives (e.g. invalid voxels), masked by index per block
    excluded = (~candidates.bool()).nonzero().squeeze(1)
    for s in range(0, Q, chunk):
        qi = query_index[s:s + chunk]
        if num_top is None:
            eligible = pairwise_distances(points[qi], points) > ignore_distance
            eligible &= candidates[None]
            if group is not None:
                eligible &= group[None] == group[qi][:, None]
            n = min(num_keep, R)
            cols, ok = random_subset(eligible, n)
            out_idx[s:s + chunk, :n] = cols
            out_ok[s:s + chunk, :n] = ok
            continue
        k_top = min(num_top, R)
        sim = embeddings[qi] @ embeddings.t()
        if extra_embeddings is not None:
            sim += extra_embeddings[qi] @ extra_embeddings.t()
        # -inf where not eligible: within ignore_distance, not a candidate, other group
        # (in place, without building the (chunk, R) eligibility mask and its negation)
        sim.masked_fill_(pairwise_distances(points[qi], points) <= ignore_distance,
                         float('-inf'))
        if excluded.numel():
            sim.index_fill_(1, excluded, float('-inf'))
        if group is not None:
            sim.masked_fill_(group[None] != group[qi][:, None], float('-inf'))
        top_val, top_idx = sim.topk(k_top, dim=1)
        top_ok = torch.isfinite(top_val)
        n = min(num_keep, k_top)
        if n < k_top:
            cols, ok = random_subset(top_ok, n)
            top_idx, top_ok = top_idx.gather(1, cols), ok
        out_idx[s:s + chunk, :n] = top_idx[:, :n]
        out_ok[s:s + chunk, :n] = top_ok[:, :n]
    return out_idx, out_ok


def flatten_views(x: torch.Tensor) -> torch.Tensor:
    """(V, C, D, H, W) -> (V * D * H * W, C): one row per voxel, views in order (a view
    without a copy for ``channels_last_3d`` maps, one copy otherwise)."""
    C = x.shape[1]
    return x.permute(0, 2, 3, 4, 1).reshape(-1, C)


def flatten_views_cat(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``flatten_views(torch.cat([a, b], dim=1))`` in float32, written in one pass: rows
    ``[a | b]`` of every voxel, (V * D * H * W, Ca + Cb)."""
    V, Ca = a.shape[:2]
    Cb = b.shape[1]
    out = torch.empty((V, ) + tuple(a.shape[2:]) + (Ca + Cb, ), dtype=torch.float32,
                      device=a.device)
    out[..., :Ca] = a.permute(0, 2, 3, 4, 1)
    out[..., Ca:] = b.permute(0, 2, 3, 4, 1)
    return out.view(-1, Ca + Cb)


def centred_points(coords: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """(V, 3, D, H, W) mm coordinate maps -> (V * D * H * W, 3) float32 rows, minus the mean
    of the valid voxels (distances unchanged, float32 precision kept near 1e-5 mm)."""
    pts = flatten_views(coords.double())
    v = valid.reshape(-1)
    centre = pts[v].mean(0) if bool(v.any()) else pts.mean(0)
    return (pts - centre).float()


def check_pair_maps(name: str, x: torch.Tensor, B: int, V: int, spatial, channels=None):
    """Raise :class:`InvalidInputError` unless ``x`` is (B, V, channels or any, *spatial)."""
    if x.dim() != 6 or tuple(x.shape[:2]) != (B, V) or tuple(x.shape[3:]) != tuple(spatial) \
            or (channels is not None and x.shape[2] != channels):
        raise InvalidInputError(
            f'{name} must be (B={B}, {V}, {channels or "C"}, '
            f'{", ".join(map(str, spatial))}), got {tuple(x.shape)}')
