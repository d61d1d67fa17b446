"""Fine-level pixel-pair sampler of SAM (Yan et al., TMI 2022; fine loss)."""
from typing import Dict, Optional

import torch

from mmanat.registry import TASK_UTILS
from mmanat.utils.exceptions import InvalidInputError
from .utils import (centred_points, check_pair_maps, flatten_views, flatten_views_cat,
                    mine_negatives, nearest_neighbours)


def _empty_result(device, num_negatives: int) -> Dict[str, torch.Tensor]:
    z = torch.zeros(0, dtype=torch.long, device=device)
    return dict(query_index=z, pos_index=z.clone(),
                neg_index=torch.zeros((0, num_negatives), dtype=torch.long, device=device),
                neg_mask=torch.zeros((0, num_negatives), dtype=torch.bool, device=device),
                pair_index=z.clone(), fallback=torch.zeros(0, dtype=torch.bool, device=device))


@TASK_UTILS.register_module()
class SAMFinePairSampler:
    """Samples (query, positive, negatives) voxel triplets on the fine grid of two views.

    Per pair of views (all distances in mm from the coordinate maps; steps 1-4 and 6; the loss
    is step 5):

    1. Overlap = intersection of the two views' bounding boxes (valid voxels). Up to
       ``num_preselect`` random valid fine voxels of each view inside it are pre-selected;
       with a ``query_mask`` (see :meth:`__call__`) only voxels inside the mask.
    2. A pre-selected voxel is a query when some valid fine voxel of the other view lies
       within ``positive_distance``; its positive is the nearest one. Up to ``max_queries``
       queries per direction (view 0 -> 1 and 1 -> 0).
    3. Negatives of a query: valid fine voxels of both views farther than
       ``ignore_distance`` from the query.
    4. Hard negatives: rank by fine similarity (+ coarse similarity when coarse maps are
       given), keep the top ``num_hard_candidates``, then ``num_negatives`` at random.
       ``num_hard_candidates=None``: no ranking, ``num_negatives`` random negatives (the
       UAE-M inter-modality CPU configs use it: with hard negatives the fine level of a
       small model collapses to one embedding, see docs/en/advanced_guides/pair_sampling.md).
    6. No overlap (or no query found, or one view without valid voxels): up to
       ``max_queries`` random valid voxels per view are their own positives, with their top
       ``num_negatives`` same-view negatives (beyond ``ignore_distance``).

    Query mask (UAE-M stage 2): the released inter-modality fine loss pre-selects up to 2000
    queries among the MR fine voxels inside the MR body mask only (the mask resized to the
    fine grid by nearest neighbour), takes as positive the nearest CT voxel within 2 mm, and
    uses those CT partners as the queries of the reverse direction; negatives and keys come
    from all voxels and the coarse loss has no mask (reference
    alibaba-damo-academy/self-supervised-anatomical-embedding-v2,
    sam/models/frameworks/sam_v2_uniform_cross_volume_mask_dual_head_MRI_CT.py,
    ``single_inter_fine_loss``). Here the optional per-voxel ``query_mask`` restricts only
    step 1, in each view (the MR body mask sampled on both views, so both directions start
    in MR foreground): positives (any valid voxel of the other view), negatives, the
    no-overlap fallback (step 6) and the coarse sampler are unchanged. Without a mask the
    sampler draws exactly what it drew before (same random numbers).

    Vectorised: nearest neighbours by KD-tree/chunked exact distances, mining per chunk of
    queries (memory O(query_chunk * 2 * D * H * W)); the only Python loops are over pairs,
    the two directions and query chunks.

    Registered in ``TASK_UTILS`` (a non-module helper; it has no parameters).
    """

    def __init__(self,
                 num_preselect: int = 2000,
                 max_queries: int = 100,
                 positive_distance: float = 2.0,
                 ignore_distance: float = 20.0,
                 num_hard_candidates: Optional[int] = 2000,
                 num_negatives: int = 500,
                 use_coarse: bool = True,
                 no_overlap_fallback: bool = True,
                 query_chunk: int = 128,
                 nn_method: str = 'auto'):
        if min(num_preselect, max_queries, num_negatives) <= 0 or (
                num_hard_candidates is not None and num_hard_candidates <= 0):
            raise InvalidInputError('SAMFinePairSampler: counts must be positive')
        if num_hard_candidates is not None and num_negatives > num_hard_candidates:
            raise InvalidInputError(
                f'SAMFinePairSampler: num_negatives={num_negatives} exceeds '
                f'num_hard_candidates={num_hard_candidates}')
        if not 0 <= positive_distance < ignore_distance:
            raise InvalidInputError(
                f'SAMFinePairSampler: need 0 <= positive_distance ({positive_distance}) < '
                f'ignore_distance ({ignore_distance})')
        self.num_preselect = int(num_preselect)
        self.max_queries = int(max_queries)
        self.positive_distance = float(positive_distance)
        self.ignore_distance = float(ignore_distance)
        self.num_hard_candidates = None if num_hard_candidates is None else int(
            num_hard_candidates)
        self.num_negatives = int(num_negatives)
        self.use_coarse = bool(use_coarse)
        self.no_overlap_fallback = bool(no_overlap_fallback)
        self.query_chunk = int(query_chunk)
        self.nn_method = nn_method

    @torch.no_grad()
    def __call__(self, fine: torch.Tensor, coords: torch.Tensor,
                 valid: Optional[torch.Tensor] = None,
                 coarse: Optional[torch.Tensor] = None,
                 query_mask: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Sample every pair of a batch.

        Args:
            fine: (B, 2, C, D, H, W) unit fine embeddings of view 0 and view 1.
            coords: (B, 2, 3, D, H, W) world mm coordinates of the fine voxels.
            valid: (B, 2, D, H, W) bool, voxels inside the original image (None: all).
            coarse: (B, 2, C', D, H, W) unit coarse embeddings upsampled to the fine grid,
                used for ranking hard negatives when ``use_coarse`` (None: fine only).
            query_mask: (B, 2, D, H, W) bool, the fine voxels that may be pre-selected as
                queries (in addition to valid and inside the overlap); None: all.

        Returns a dict of tensors indexing the flattened voxels of the batch, i.e. rows of
        ``fine.reshape(B * 2, C, -1).transpose(1, 2).reshape(-1, C)`` (index =
        (b * 2 + view) * D*H*W + voxel): ``query_index`` (Q,), ``pos_index`` (Q,),
        ``neg_index`` (Q, num_negatives), ``neg_mask`` (Q, num_negatives) bool (False =
        padding), ``pair_index`` (Q,), ``fallback`` (Q,) bool (no-overlap queries).
        """
        if fine.dim() != 6 or fine.shape[1] != 2:
            raise InvalidInputError(
                f'SAMFinePairSampler: fine must be (B, 2, C, D, H, W), got {tuple(fine.shape)}')
        B, spatial = fine.shape[0], tuple(fine.shape[3:])
        check_pair_maps('SAMFinePairSampler: coords', coords, B, 2, spatial, 3)
        if coarse is not None:
            check_pair_maps('SAMFinePairSampler: coarse', coarse, B, 2, spatial)
        if valid is not None and tuple(valid.shape) != (B, 2) + spatial:
            raise InvalidInputError(
                f'SAMFinePairSampler: valid must be {(B, 2) + spatial}, got '
                f'{tuple(valid.shape)}')
        if query_mask is not None and tuple(query_mask.shape) != (B, 2) + spatial:
            raise InvalidInputError(
                f'SAMFinePairSampler: query_mask must be {(B, 2) + spatial} (the fine grid '
                f'of both views), got {tuple(query_mask.shape)}')
        M2 = 2 * fine[0, 0, 0].numel()
        results = []
        for b in range(B):
            r = self.sample_pair(fine[b], coords[b], None if valid is None else valid[b],
                                 None if (coarse is None or not self.use_coarse) else coarse[b],
                                 None if query_mask is None else query_mask[b])
            offset = b * M2
            r['query_index'] = r['query_index'] + offset
            r['pos_index'] = r['pos_index'] + offset
            r['neg_index'] = r['neg_index'] + offset
            r['pair_index'] = torch.full_like(r['query_index'], b)
            results.append(r)
        if not results:
            return _empty_result(fine.device, self.num_negatives)
        return {k: torch.cat([r[k] for r in results]) for k in results[0]}

    @torch.no_grad()
    def sample_pair(self, fine: torch.Tensor, coords: torch.Tensor,
                    valid: Optional[torch.Tensor] = None,
                    coarse: Optional[torch.Tensor] = None,
                    query_mask: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Sample one pair: ``fine`` (2, C, D, H, W), ``coords`` (2, 3, D, H, W) mm,
        ``valid`` (2, D, H, W) or None, ``coarse`` (2, C', D, H, W) or None, ``query_mask``
        (2, D, H, W) bool or None (where queries may be pre-selected, see the class doc).

        Returns the dict of :meth:`__call__` (without ``pair_index``) with indices into the
        2 * D * H * W voxels of the pair (view 0 first).
        """
        device = fine.device
        M = fine[0, 0].numel()
        if valid is None:
            valid = torch.ones((2, ) + tuple(fine.shape[2:]), dtype=torch.bool, device=device)
        val = valid.reshape(2, M).bool()
        if query_mask is not None and tuple(query_mask.shape) != (2, ) + tuple(fine.shape[2:]):
            raise InvalidInputError(
                f'SAMFinePairSampler: query_mask must be {(2, ) + tuple(fine.shape[2:])}, got '
                f'{tuple(query_mask.shape)}')
        qmask = None if query_mask is None else query_mask.reshape(2, M).bool().to(device)
        has_valid = [bool(val[0].any()), bool(val[1].any())]
        if not any(has_valid) or (not all(has_valid) and not self.no_overlap_fallback):
            out = _empty_result(device, self.num_negatives)
            out.pop('pair_index')
            return out
        pts_all = centred_points(coords, valid)  # (2M, 3)
        pts = pts_all.view(2, M, 3)
        # [fine | coarse] rows: one dot product gives fine + coarse similarity
        emb = (flatten_views(fine.float()) if coarse is None else
               flatten_views_cat(fine, coarse))

        queries, keys = [], []
        overlap = all(has_valid)
        if overlap:
            lo = torch.maximum(pts[0][val[0]].amin(0), pts[1][val[1]].amin(0))
            hi = torch.minimum(pts[0][val[0]].amax(0), pts[1][val[1]].amax(0))
            overlap = bool((lo <= hi).all())
        if overlap:
            for a in (0, 1):
                b = 1 - a
                inside = val[a] & ((pts[a] >= lo) & (pts[a] <= hi)).all(dim=1)
                if qmask is not None:  # UAE-M: queries from the MR foreground only
                    inside &= qmask[a]
                cand = inside.nonzero().squeeze(1)
                cand = cand[torch.randperm(cand.numel(), device=device)[:self.num_preselect]]
                ref = val[b].nonzero().squeeze(1)
                dist, nn = nearest_neighbours(pts[a][cand], pts[b][ref], self.nn_method)
                ok = dist <= self.positive_distance
                queries.append(cand[ok][:self.max_queries] + a * M)
                keys.append(ref[nn[ok]][:self.max_queries] + b * M)
        query_index = torch.cat(queries) if queries else val.new_zeros(0, dtype=torch.long)
        pos_index = torch.cat(keys) if keys else query_index.clone()
        group = None
        fallback = query_index.numel() == 0 and self.no_overlap_fallback
        num_top = self.num_hard_candidates
        if fallback:
            # step 6: each query is its own positive, top-N same-view negatives
            queries = []
            for a in (0, 1):
                cand = val[a].nonzero().squeeze(1)
                cand = cand[torch.randperm(cand.numel(), device=device)[:self.max_queries]]
                queries.append(cand + a * M)
            query_index = torch.cat(queries)
            pos_index = query_index.clone()
            group = torch.arange(2, device=device).repeat_interleave(M)
            num_top = self.num_negatives
        neg_index, neg_mask = mine_negatives(
            query_index, pts_all, val.reshape(-1), emb, None, self.ignore_distance,
            num_top, self.num_negatives, group=group, chunk=self.query_chunk)
        return dict(query_index=query_index, pos_index=pos_index, neg_index=neg_index,
                    neg_mask=neg_mask,
                    fallback=torch.full_like(query_index, fallback, dtype=torch.bool))
