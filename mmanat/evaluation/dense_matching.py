"""How much of a target a search must score to find the exhaustive answer (dense matching).

The exhaustive (``'reference'``) search of :mod:`mmanat.apis.search` scores every target fine
voxel for every query point. A faster search can only return the same voxel if the voxel is
among those it scores. :func:`answer_ranks` measures, for real query points and the real
target, how many voxels each cheap ordering of the target must take before it reaches the
exhaustive answer:

* by the coarse term alone (the global similarity of SAM, Yan et al., IEEE TMI 2022,
  arXiv:2012.02383, upsampled to the fine grid);
* by the fine (and semantic) term alone (an oracle: computing it is the exhaustive search);
* by the level-1 block score of ``coarse_to_fine`` (:func:`mmanat.apis.search.block_scores`),
  i.e. the ``topk`` a coarse-to-fine search would need, times its window size.

:func:`score_rate` measures how many (query, voxel) scores per second the dense matrix
products of the exhaustive search reach on this machine: the best case for scoring a
candidate set (gathered candidates are slower). Together they give a lower bound on the time
of any search that scores a candidate set large enough to agree with the exhaustive search on
a given share of points. ``tools/analysis/dense_matching_budget.py`` prints both.
"""
from __future__ import annotations

import time
from typing import Dict, Optional, Sequence

import numpy as np
import torch


def answer_ranks(template_maps, target_maps, points_mm, pool: Sequence[int] = (2, 2, 2),
                 margin: Sequence[int] = (1, 1, 1), chunk: int = 250, device=None
                 ) -> Dict[str, np.ndarray]:
    """Per query point: the exhaustive answer and its rank under cheaper orderings.

    Ranks count target voxels (or blocks) that score at least as high as the answer (ties
    count against the answer), among valid target voxels only.

    Args:
        template_maps: the template's :class:`~mmanat.structures.EmbeddingMaps`.
        target_maps: the target's maps (same model).
        points_mm: ``(N, 3)`` world LPS mm query points inside the template.
        pool: (z, y, x) block size of the ``coarse_to_fine`` ordering, in fine voxels.
        margin: (z, y, x) fine voxels its windows add around each block.
        chunk: points per chunk (each chunk holds ``chunk`` x target-voxel float32 scores).
        device: where to compute (default: the target maps' device).

    Returns:
        dict of ``(N,)`` arrays: ``flat`` (the exhaustive answer's flat fine index, as
        ``match(..., method='reference', refine=False)``), ``gap`` (best minus second-best
        similarity), ``rank_coarse`` and ``rank_fine`` (voxels at least as high by that term
        alone), ``topk`` (the smallest ``topk`` with which ``coarse_to_fine`` with this
        ``pool`` and ``margin`` scores the answer), ``window`` (int, voxels per window), and
        ``valid`` (int, candidate voxels of the target).
    """
    from ..apis.matching import Matcher, check_query_points
    from ..apis.search import block_scores, query_embeddings

    pts = check_query_points(points_mm, template_maps)
    if device is None:
        device = target_maps.fine.device
    tgt = Matcher(template_maps, target_maps, device).prepared
    blk = tgt.blocks(tuple(int(p) for p in pool))
    pool_t = blk['pool']
    m = [int(v) for v in margin]
    gshape = blk['shape']
    Yf, Xf = tgt.fshape[1], tgt.fshape[2]
    q_all = query_embeddings(template_maps, pts, tgt.levels, device)
    out = {k: [] for k in ('flat', 'gap', 'rank_coarse', 'rank_fine', 'topk')}
    with torch.no_grad():
        for a in range(0, len(pts), max(1, int(chunk))):
            q = {k: v[a:a + chunk] for k, v in q_all.items()}
            sc = q['coarse'] @ tgt.crows.t()
            n = sc.shape[0]
            coarse = tgt._upsample(sc.view(n, *tgt.cshape)).view(n, -1) * tgt.inv_norm
            fine = q['fine'] @ tgt.frows.t()
            if tgt.srows is not None:
                fine.addmm_(q['semantic'], tgt.srows.t())
            total = coarse + fine + tgt.bias
            top2 = total.topk(min(2, tgt.M), dim=1)
            idx = top2.indices[:, 0]
            gap = (top2.values[:, 0] - top2.values[:, -1]) / tgt.L
            out['flat'].append(idx)
            out['gap'].append(gap)
            for name, term in (('rank_coarse', coarse), ('rank_fine', fine)):
                at = term.gather(1, idx[:, None])
                out[name].append(((term >= at) & tgt.valid).sum(1))
            # the blocks whose window (block +- margin, per axis) holds the answer
            s1 = block_scores(tgt, blk, q, sc)
            ans = torch.stack([idx // (Yf * Xf), (idx // Xf) % Yf, idx % Xf], 1)
            # block c covers [c * p - m, c * p + p - 1 + m] (search_matches' windows)
            lo = [torch.div(ans[:, ax] - m[ax], pool_t[ax], rounding_mode='floor')
                  .clamp_min(0) for ax in range(3)]
            hi = [torch.div(ans[:, ax] + m[ax], pool_t[ax], rounding_mode='floor')
                  .clamp_max(gshape[ax] - 1) for ax in range(3)]
            best = torch.full((n,), float('-inf'), device=device)
            span = [max(1, (2 * mm + p - 1) // p + 1) for mm, p in zip(m, pool_t)]
            for dz in range(span[0]):
                for dy in range(span[1]):
                    for dx in range(span[2]):
                        bz, by, bx = lo[0] + dz, lo[1] + dy, lo[2] + dx
                        ok = (bz <= hi[0]) & (by <= hi[1]) & (bx <= hi[2])
                        b = ((bz.clamp_max(gshape[0] - 1) * gshape[1]
                              + by.clamp_max(gshape[1] - 1)) * gshape[2]
                             + bx.clamp_max(gshape[2] - 1))
                        v = s1.gather(1, b[:, None])[:, 0]
                        best = torch.where(ok & (v > best), v, best)
            out['topk'].append(1 + (s1 > best[:, None]).sum(1))
    res = {k: torch.cat(v).cpu().numpy() for k, v in out.items()}
    res['window'] = int(np.prod([p + 2 * mm for p, mm in zip(pool_t, m)]))
    res['valid'] = int(tgt.valid.sum())
    return res


def score_rate(target_maps, template_maps=None, points: int = 2000, repeats: int = 3,
               device=None, seed: int = 0) -> float:
    """(query, voxel) scores per second of the exhaustive search's dense matrix products
    (fine and coarse terms over every target voxel, :meth:`PreparedTarget.full_scores`), best
    of ``repeats`` timings of ``points`` random unit queries.

    Args:
        target_maps: the target's maps.
        template_maps: unused except for the level check (default: the target's maps).
        points: queries per timing.
        repeats: timings; the fastest counts.
        device: where to compute (default: the target maps' device).
        seed: seed of the random queries.
    """
    from ..apis.matching import Matcher

    if device is None:
        device = target_maps.fine.device
    tgt = Matcher(template_maps or target_maps, target_maps, device).prepared
    g = torch.Generator().manual_seed(seed)
    C = tgt.frows.shape[1]
    q = {lv: torch.nn.functional.normalize(torch.randn(points, C, generator=g), dim=1)
         .to(device) for lv in tgt.levels}
    best: Optional[float] = None
    with torch.no_grad():
        for _ in range(max(1, int(repeats))):
            if torch.device(device).type == 'cuda':
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for a in range(0, points, 250):
                qq = {k: v[a:a + 250] for k, v in q.items()}
                tgt.full_scores(qq, qq['coarse'] @ tgt.crows.t()).max(1)
            if torch.device(device).type == 'cuda':
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            best = dt if best is None else min(best, dt)
    return points * tgt.M / best


def containment_table(ranks: Dict[str, np.ndarray],
                      shares: Sequence[float] = (0.5, 0.9, 0.95, 0.99)) -> Dict[str, list]:
    """Candidate voxels per point needed to contain the exhaustive answer for each share of
    the points, per ordering (``coarse``, ``coarse_to_fine`` = topk x window, ``fine``).

    Args:
        ranks: the output of :func:`answer_ranks`.
        shares: the shares of points (0-1).

    Returns:
        ``{ordering: [voxels at each share]}`` (the ``ceil``-quantile of the per-point counts).
    """
    per_point = dict(coarse=ranks['rank_coarse'],
                     coarse_to_fine=ranks['topk'] * ranks['window'],
                     fine=ranks['rank_fine'])
    return {k: [int(np.quantile(v, s, method='higher')) for s in shares]
            for k, v in per_point.items()}
