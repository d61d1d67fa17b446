"""Coarse-level pixel-pair sampler of SAM (Yan et al., TMI 2022; coarse loss)."""
from typing import Dict, Optional

import torch

from mmanat.registry import TASK_UTILS
from mmanat.utils.exceptions import InvalidInputError
from .utils import (centred_points, check_pair_maps, flatten_views, mine_negatives,
                    nearest_neighbours)


@TASK_UTILS.register_module()
class SAMCoarsePairSampler:
    """Samples (query, positive, negatives) triplets on the coarse grid of a batch of pairs.

    Per pair (distances in mm from the coarse coordinate maps):

    - queries: valid coarse voxels of one view whose nearest valid coarse voxel of the other
      view lies within ``positive_distance`` (25 mm); that voxel is the positive. Up to
      ``max_queries`` random queries per direction.
    - in-pair negatives: valid coarse voxels of both views farther than ``ignore_distance``
      (5 mm) from the query, ranked by coarse similarity: top ``num_hard_candidates`` (250),
      then ``num_negatives`` (200) at random.
    - global negatives: ``num_global_negatives`` (1000) valid coarse voxels drawn at random
      (per query, with replacement) from the OTHER pairs of the batch (other volumes; none
      when the batch holds one pair).
    - no overlap (no query): the pair gives no coarse query unless ``no_overlap_fallback``
      (then, as for the fine level, random voxels are their own positives with same-view
      negatives).

    Registered in ``TASK_UTILS``.
    """

    def __init__(self,
                 max_queries: int = 100,
                 positive_distance: float = 25.0,
                 ignore_distance: float = 5.0,
                 num_hard_candidates: int = 250,
                 num_negatives: int = 200,
                 num_global_negatives: int = 1000,
                 no_overlap_fallback: bool = False,
                 query_chunk: int = 512,
                 nn_method: str = 'auto'):
        if min(max_queries, num_hard_candidates, num_negatives) <= 0 or \
                num_global_negatives < 0:
            raise InvalidInputError('SAMCoarsePairSampler: counts must be positive')
        if num_negatives > num_hard_candidates:
            raise InvalidInputError(
                f'SAMCoarsePairSampler: num_negatives={num_negatives} exceeds '
                f'num_hard_candidates={num_hard_candidates}')
        if positive_distance < 0 or ignore_distance < 0:
            raise InvalidInputError('SAMCoarsePairSampler: distances must be >= 0')
        self.max_queries = int(max_queries)
        self.positive_distance = float(positive_distance)
        self.ignore_distance = float(ignore_distance)
        self.num_hard_candidates = int(num_hard_candidates)
        self.num_negatives = int(num_negatives)
        self.num_global_negatives = int(num_global_negatives)
        self.no_overlap_fallback = bool(no_overlap_fallback)
        self.query_chunk = int(query_chunk)
        self.nn_method = nn_method

    @property
    def num_total_negatives(self) -> int:
        return self.num_negatives + self.num_global_negatives

    @torch.no_grad()
    def __call__(self, coarse: torch.Tensor, coords: torch.Tensor,
                 valid: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Args:
            coarse: (B, 2, C, d, h, w) unit coarse embeddings of view 0 and view 1.
            coords: (B, 2, 3, d, h, w) world mm coordinates of the coarse voxels.
            valid: (B, 2, d, h, w) bool or None (all valid).

        Returns indices into the flattened coarse voxels of the batch (index =
        (b * 2 + view) * d*h*w + voxel): ``query_index`` (Q,), ``pos_index`` (Q,),
        ``neg_index`` (Q, num_negatives + num_global_negatives) (in-pair first, then
        global), ``neg_mask`` (same shape, False = padding), ``pair_index`` (Q,),
        ``fallback`` (Q,).
        """
        if coarse.dim() != 6 or coarse.shape[1] != 2:
            raise InvalidInputError(
                'SAMCoarsePairSampler: coarse must be (B, 2, C, d, h, w), got '
                f'{tuple(coarse.shape)}')
        B, spatial = coarse.shape[0], tuple(coarse.shape[3:])
        device = coarse.device
        check_pair_maps('SAMCoarsePairSampler: coords', coords, B, 2, spatial, 3)
        if valid is None:
            valid = torch.ones((B, 2) + spatial, dtype=torch.bool, device=device)
        elif tuple(valid.shape) != (B, 2) + spatial:
            raise InvalidInputError(
                f'SAMCoarsePairSampler: valid must be {(B, 2) + spatial}, got '
                f'{tuple(valid.shape)}')
        m = coarse[0, 0, 0].numel()
        emb_all = flatten_views(coarse.flatten(0, 1).float())          # (B*2*m, C)
        val_all = valid.reshape(-1).bool()
        pair_of = torch.arange(B, device=device).repeat_interleave(2 * m)
        valid_idx = val_all.nonzero().squeeze(1)
        keys = ('query_index', 'pos_index', 'neg_index', 'neg_mask', 'pair_index', 'fallback')
        out = {k: [] for k in keys}
        for b in range(B):
            sl = slice(b * 2 * m, (b + 1) * 2 * m)
            val = val_all[sl].view(2, m)
            if not bool(val[0].any()) or not bool(val[1].any()):
                continue
            pts_all = centred_points(coords[b], valid[b])   # (2m, 3)
            pts = pts_all.view(2, m, 3)
            queries, positives = [], []
            for a in (0, 1):
                o = 1 - a
                cand = val[a].nonzero().squeeze(1)
                cand = cand[torch.randperm(cand.numel(), device=device)]
                ref = val[o].nonzero().squeeze(1)
                dist, nn = nearest_neighbours(pts[a][cand], pts[o][ref], self.nn_method)
                ok = dist <= self.positive_distance
                queries.append(cand[ok][:self.max_queries] + a * m)
                positives.append(ref[nn[ok]][:self.max_queries] + o * m)
            q = torch.cat(queries)
            p = torch.cat(positives)
            group, num_top, fallback = None, self.num_hard_candidates, False
            if q.numel() == 0:
                if not self.no_overlap_fallback:
                    continue
                fallback = True
                q = torch.cat([val[a].nonzero().squeeze(1)[
                    torch.randperm(int(val[a].sum()), device=device)[:self.max_queries]] + a * m
                    for a in (0, 1)])
                p = q.clone()
                group = torch.arange(2, device=device).repeat_interleave(m)
                num_top = self.num_negatives
            neg, neg_ok = mine_negatives(q, pts_all, val.reshape(-1), emb_all[sl], None,
                                         self.ignore_distance, num_top, self.num_negatives,
                                         group=group, chunk=self.query_chunk)
            offset = b * 2 * m
            # global negatives: valid coarse voxels of the other pairs (other volumes)
            others = valid_idx[pair_of[valid_idx] != b]
            G = self.num_global_negatives
            if G and others.numel():
                g = others[torch.randint(others.numel(), (q.numel(), G), device=device)]
                g_ok = torch.ones_like(g, dtype=torch.bool)
            else:
                g = torch.zeros((q.numel(), G), dtype=torch.long, device=device)
                g_ok = torch.zeros_like(g, dtype=torch.bool)
            out['query_index'].append(q + offset)
            out['pos_index'].append(p + offset)
            out['neg_index'].append(torch.cat([neg + offset, g], dim=1))
            out['neg_mask'].append(torch.cat([neg_ok, g_ok], dim=1))
            out['pair_index'].append(torch.full_like(q, b))
            out['fallback'].append(torch.full_like(q, fallback, dtype=torch.bool))
        if not out['query_index']:
            z = torch.zeros(0, dtype=torch.long, device=device)
            N = self.num_total_negatives
            return dict(query_index=z, pos_index=z.clone(),
                        neg_index=torch.zeros((0, N), dtype=torch.long, device=device),
                        neg_mask=torch.zeros((0, N), dtype=torch.bool, device=device),
                        pair_index=z.clone(),
                        fallback=torch.zeros(0, dtype=torch.bool, device=device))
        return {k: torch.cat(v) for k, v in out.items()}
