"""The argmax search of matching: every query point against a prepared target, in chunks.

Methods (SAM, Yan et al., IEEE TMI 2022, arXiv:2012.02383; scores defined in
:mod:`mmanat.apis.dense_scores`):

* ``'reference'``: the argmax of ``sim`` over every target fine voxel.
* ``'coarse_to_fine'``: a two-level search. Level 1 scores blocks of ``pool`` fine voxels
  (default 2x2x2, i.e. 8 mm) with the coarse similarity at the block centre plus the fine (and
  semantic) similarity to the block's mean fine embedding; level 2 takes the argmax of the
  exact ``sim`` over the fine voxels of the ``topk`` best blocks plus ``margin`` voxels around
  them.

All points of a call are processed in chunks of matrix products on the target's device:
there is no Python loop over points. Only target voxels whose centre lies inside the
original target image are candidates.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..structures.embedding_map import EmbeddingMaps
from .dense_scores import PreparedTarget, separable_resample
from .refinement import refine_subvoxel


def sample_embeddings(maps: EmbeddingMaps, points_mm: np.ndarray, level: str,
                      device=None) -> torch.Tensor:
    """Embeddings of ``level`` at world points by trilinear interpolation (``grid_sample``,
    border clamping), re-normalised to unit length.

    Args:
        maps: the embedding maps.
        points_mm: ``(N, 3)`` world LPS mm.
        level: ``'fine'``, ``'coarse'`` or ``'semantic'``.
        device: where to compute; default: the maps' device.

    Returns:
        ``(N, C)`` float32.
    """
    grid_geo = maps.grid(level)
    t = maps.maps[level]
    device = t.device if device is None else torch.device(device)
    idx = grid_geo.world_to_array_index(np.asarray(points_mm, np.float64))  # (N, 3) z, y, x
    size = np.asarray(t.shape[1:], dtype=np.float64)
    norm = np.where(size > 1, 2.0 * idx / np.maximum(size - 1, 1) - 1.0, 0.0)
    g = torch.as_tensor(norm[:, ::-1].copy(), dtype=torch.float32, device=device)  # x, y, z
    out = F.grid_sample(t[None].to(device=device, dtype=torch.float32),
                        g.view(1, 1, 1, -1, 3), mode='bilinear', padding_mode='border',
                        align_corners=True)  # (1, C, 1, 1, N)
    return F.normalize(out.view(t.shape[0], -1).t(), dim=1, eps=1e-12)


def query_embeddings(template: EmbeddingMaps, pts: np.ndarray, levels, device):
    """The query embeddings of ``pts`` (``(N, 3)`` world LPS mm) per level of ``levels``,
    sampled from ``template`` (:func:`sample_embeddings`) on ``device``."""
    return {lv: sample_embeddings(template, pts, lv, device) for lv in levels}


def _chunk_size(per_point_floats: float, device, max_chunk_mb: Optional[float]) -> int:
    if max_chunk_mb is None:
        max_chunk_mb = 1024 if torch.device(device).type == 'cuda' else 256
    return max(1, int(max_chunk_mb * 2**20 // (4 * max(per_point_floats, 1))))


def _iter_chunks(N: int, size: int, progress: bool, desc: str):
    starts = range(0, N, size)
    if progress and len(starts) > 1:
        from tqdm import tqdm
        starts = tqdm(starts, desc=desc, unit='chunk', leave=False)
    for s in starts:
        yield s, min(N, s + size)


def block_scores(tgt: PreparedTarget, blk: dict, q, sc: torch.Tensor) -> torch.Tensor:
    """Level 1 of ``coarse_to_fine``: the score (times L) of every candidate block.

    Args:
        tgt: the prepared target.
        blk: its candidate grid (:meth:`PreparedTarget.blocks`).
        q: the queries' embeddings per level, ``(n, C)`` each.
        sc: ``(n, Mc)`` coarse similarities of the queries to the target's coarse voxels.

    Returns:
        ``(n, G)``: coarse similarity at each block centre plus the fine (and semantic)
        similarity to the block's mean embeddings; -inf for blocks without a valid voxel.
    """
    n = sc.shape[0]
    s1 = separable_resample(sc.view(-1, *tgt.cshape), blk['mats'], tgt.cshape,
                            blk['shape']).view(n, -1)
    s1.mul_(blk['inv_norm'])
    s1.addmm_(q['fine'], blk['pooled']['fine'].t())
    if tgt.srows is not None:
        s1.addmm_(q['semantic'], blk['pooled']['semantic'].t())
    s1 += blk['bias']
    return s1


def search_matches(template: EmbeddingMaps, pts: np.ndarray, tgt: PreparedTarget,
                   method: str, refine: bool, topk: int, margin: Sequence[int],
                   pool: Sequence[int], max_chunk_mb: Optional[float], progress: bool
                   ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Find the best target fine voxel of each template point, in chunks of points.

    Args:
        template: the template's maps (queries are sampled from them).
        pts: ``(N, 3)`` world LPS mm query points (already checked).
        tgt: the target laid out for scoring.
        method: ``'reference'`` or ``'coarse_to_fine'`` (see :mod:`mmanat.apis.matching`).
        refine: add the sub-voxel offset (:func:`~mmanat.apis.refinement.refine_subvoxel`).
        topk: candidate blocks searched per point (``coarse_to_fine``).
        margin: (z, y, x) fine voxels searched beyond each candidate block.
        pool: (z, y, x) candidate block size in fine voxels.
        max_chunk_mb: memory for one chunk of points (``None``: 256 MB on CPU, 1 GB on GPU).
        progress: progress bar over chunks.

    Returns:
        ``(cont, flat, scores)``: ``(N, 3)`` float64 continuous (z, y, x) fine index of the
        matches, ``(N,)`` int64 flat fine index of the argmax voxels, ``(N,)`` float32
        similarities (<= 1).
    """
    device = tgt.device
    N = len(pts)
    q_all = query_embeddings(template, pts, tgt.levels, device)
    out_idx = torch.empty(N, dtype=torch.int64, device=device)
    out_score = torch.empty(N, dtype=torch.float32, device=device)
    out_cont = torch.empty(N, 3, dtype=torch.float64, device=device)
    C = tgt.frows.shape[1]
    Yf, Xf = tgt.fshape[1], tgt.fshape[2]
    if method == 'reference':
        per_point = 2 * tgt.M + tgt.Mc
        desc = 'matching (reference)'
    else:
        blk = tgt.blocks(pool)
        G = int(np.prod(blk['shape']))
        m = [int(v) for v in margin]
        win = [p + 2 * mm for p, mm in zip(blk['pool'], m)]
        k = min(int(topk), G)
        W = k * int(np.prod(win))
        per_point = 3 * G + tgt.Mc + W * (C * (2 if tgt.srows is not None else 1) + 40)
        desc = 'matching (coarse-to-fine)'
    size = _chunk_size(per_point, device, max_chunk_mb)
    with torch.no_grad():
        for a, b in _iter_chunks(N, size, progress, desc):
            q = {kk: v[a:b] for kk, v in q_all.items()}
            sc = q['coarse'] @ tgt.crows.t()  # (n, Mc)
            if method == 'reference':
                total = tgt.full_scores(q, sc)
                best, idx = total.max(1)
                if tgt.has_invalid:  # rare: the best voxel lies outside the original image
                    bad = ~tgt.valid[idx]
                    if bad.any():
                        total = total[bad] + tgt.bias
                        best[bad], idx[bad] = total.max(1)
                del total
            else:
                gz, gy, gx = blk['shape']
                s1 = block_scores(tgt, blk, q, sc)
                top = s1.topk(k, dim=1).indices  # (n, k) candidate blocks
                axes = []
                for ax, c in enumerate((top // (gy * gx), (top // gx) % gy, top % gx)):
                    off = torch.arange(win[ax], device=device) - m[ax]
                    axes.append((c[..., None] * blk['pool'][ax] + off)
                                .clamp(0, tgt.fshape[ax] - 1))  # (n, k, w_ax)
                idxw = ((axes[0][..., :, None, None] * Yf + axes[1][..., None, :, None]) * Xf
                        + axes[2][..., None, None, :]).reshape(b - a, -1)
                s = tgt.score_at(q, sc, idxw)
                best, j = s.max(1)
                idx = idxw.gather(1, j[:, None])[:, 0]
            if refine:
                coords, delta = refine_subvoxel(tgt, q, sc, idx, best)
                out_cont[a:b] = coords + delta
            else:
                out_cont[a:b] = torch.stack([idx // (Yf * Xf), (idx // Xf) % Yf, idx % Xf],
                                            1).to(torch.float64)
            out_idx[a:b] = idx
            out_score[a:b] = best / tgt.L
    return (out_cont.cpu().numpy(), out_idx.cpu().numpy(), out_score.cpu().numpy())
