"""Coarse-level pixel-pair sampler of SAM (Yan et al., TMI 2022; coarse loss)."""
from typing import Dict, Optional, Sequence, Tuple, Union

import torch

from mmanat.registry import TASK_UTILS
from mmanat.utils.exceptions import InvalidInputError
from .utils import (centred_points, check_pair_maps, flatten_views, mine_negatives,
                    nearest_neighbours)

GLOBAL_SAMPLING = ('per_query', 'shared')
FALLBACK_NEGATIVES = ('same_view', 'both_views')


def _z_thresholds(z_distance) -> Optional[Tuple[float, float]]:
    """``None``, one threshold for both directions, or (view 0 -> 1, view 1 -> 0)."""
    if z_distance is None:
        return None
    vals = (z_distance, z_distance) if isinstance(z_distance, (int, float)) else \
        tuple(z_distance)
    if len(vals) != 2 or min(float(v) for v in vals) <= 0:
        raise InvalidInputError(
            'SAMCoarsePairSampler: z_distance must be None, a positive number or two '
            f'positive numbers (view 0 -> 1, view 1 -> 0), got {z_distance!r}')
    return float(vals[0]), float(vals[1])


@TASK_UTILS.register_module()
class SAMCoarsePairSampler:
    """Samples (query, positive, negatives) triplets on the coarse grid of a batch of pairs.

    Per pair (distances in mm from the coarse coordinate maps):

    - queries: valid coarse voxels of one view whose nearest valid coarse voxel of the other
      view lies within ``positive_distance`` (25 mm); that voxel is the positive. With
      ``z_distance`` a query is also dropped when its positive lies ``z_distance`` mm or more
      away along the world z axis. Up to ``max_queries`` random queries per direction
      (``None``: all of them).
    - in-pair negatives: valid coarse voxels of both views farther than ``ignore_distance``
      (5 mm) from the query, ranked by coarse similarity: top ``num_hard_candidates`` (250),
      then ``num_negatives`` (200) at random.
    - global negatives: ``num_global_negatives`` (1000) valid coarse voxels of the OTHER pairs
      of the batch (other volumes; none when the batch holds one pair), drawn at random
      per query with replacement (``global_sampling='per_query'``) or once per pair and
      direction without replacement and shared by all its queries (``'shared'``).
    - no overlap (no query): the pair gives no coarse query unless ``no_overlap_fallback``
      (then random voxels are their own positives with negatives from the same view,
      ``fallback_negatives='same_view'``, or from both views, ``'both_views'``).

    Options beyond the counts and distances above: ``z_distance`` (None, one threshold in
    mm, or (view 0 -> 1, view 1 -> 0)), ``max_queries=None`` (all queries),
    ``global_sampling`` ('per_query' | 'shared'), ``fallback_negatives`` ('same_view' |
    'both_views'); ``query_chunk`` bounds the mining memory, ``nn_method`` is the
    nearest-neighbour search of :func:`~.utils.nearest_neighbours`.

    The released reference (alibaba-damo-academy/self-supervised-anatomical-embedding-v2,
    ``sam/models/frameworks/sam.py``, ``Sam.coarse_loss``, train_cfg of
    ``configs/sam/sam_NIHLN.py``) differs from the defaults; these options reproduce it (its
    view1 / view2 are views 0 / 1 here):

    - queries: every coarse voxel with an other-view voxel closer than
      ``coarse_positive_distance`` = 25 mm, positive = the nearest one, kept only when
      ``|z_query - z_positive|`` < 8 mm for view 1 -> view 2 (the 8 is hard-coded) and
      < ``coarse_z_thres`` = 6 mm for view 2 -> view 1; no cap on their number
      (``z_distance=(8.0, 6.0)``, ``max_queries=None``);
    - global negatives: ``coarse_global_select_number`` (1000 in sam_NIHLN.py, 300 in
      sam_deeplesion.py) voxels drawn by one ``randperm`` per direction from all the
      other pairs' coarse voxels, shared by the direction's queries
      (``global_sampling='shared'``);
    - when view 1 has no query: every voxel of both views is its own positive, with its top
      ``coarse_after_select_neg_number`` most similar voxels of both views as negatives,
      plus the global ones (``no_overlap_fallback=True``, ``fallback_negatives='both_views'``;
      here the fallback starts when neither direction has a query, and voxels closer than
      ``ignore_distance`` - on the coarse grid only the query itself - are not negatives).

    Kept on purpose: only valid voxels are used (the reference passes ``coarse_valid`` but
    never reads it; its crops lie inside the volume, so all its voxels are valid), ignored
    voxels (< 5 mm) are left out rather than given similarity 0 (the reference multiplies
    the similarities by a 0/1 mask), and the in-pair negatives are drawn from the top-k
    indices (the UAE framework of the same repository,
    ``sam/models/frameworks/sam_v2_uniform_cross_volume_mask_dual_head_mean_vector.py``,
    indexes the similarities with ``randperm`` positions instead of the top-k indices).

    Registered in ``TASK_UTILS``.
    """

    def __init__(self,
                 max_queries: Optional[int] = 100,
                 positive_distance: float = 25.0,
                 ignore_distance: float = 5.0,
                 num_hard_candidates: int = 250,
                 num_negatives: int = 200,
                 num_global_negatives: int = 1000,
                 no_overlap_fallback: bool = False,
                 query_chunk: int = 512,
                 nn_method: str = 'auto',
                 z_distance: Union[None, float, Sequence[float]] = None,
                 global_sampling: str = 'per_query',
                 fallback_negatives: str = 'same_view'):
        if (max_queries is not None and max_queries <= 0) or \
                min(num_hard_candidates, num_negatives) <= 0 or num_global_negatives < 0:
            raise InvalidInputError(
                f'SAMCoarsePairSampler: counts must be positive (max_queries may be None), '
                f'got max_queries={max_queries}, num_hard_candidates={num_hard_candidates}, '
                f'num_negatives={num_negatives}, num_global_negatives={num_global_negatives}')
        if num_negatives > num_hard_candidates:
            raise InvalidInputError(
                f'SAMCoarsePairSampler: num_negatives={num_negatives} exceeds '
                f'num_hard_candidates={num_hard_candidates}')
        if positive_distance < 0 or ignore_distance < 0:
            raise InvalidInputError('SAMCoarsePairSampler: distances must be >= 0')
        if global_sampling not in GLOBAL_SAMPLING:
            raise InvalidInputError(
                f'SAMCoarsePairSampler: global_sampling={global_sampling!r}; use one of '
                f'{GLOBAL_SAMPLING}')
        if fallback_negatives not in FALLBACK_NEGATIVES:
            raise InvalidInputError(
                f'SAMCoarsePairSampler: fallback_negatives={fallback_negatives!r}; use one of '
                f'{FALLBACK_NEGATIVES}')
        self.z_distance = _z_thresholds(z_distance)
        self.global_sampling = global_sampling
        self.fallback_negatives = fallback_negatives
        self.max_queries = None if max_queries is None else int(max_queries)
        self.positive_distance = float(positive_distance)
        self.ignore_distance = float(ignore_distance)
        self.num_hard_candidates = int(num_hard_candidates)
        self.num_negatives = int(num_negatives)
        self.num_global_negatives = int(num_global_negatives)
        self.no_overlap_fallback = bool(no_overlap_fallback)
        self.query_chunk = int(query_chunk)
        self.nn_method = nn_method

    def _global_negatives(self, others: torch.Tensor, in_view1: torch.Tensor
                          ) -> Tuple[torch.Tensor, torch.Tensor]:
        """``num_global_negatives`` indices among ``others`` (flattened coarse voxels of the
        other pairs) for each query, and their mask (False = padding: no other pair, or
        fewer voxels than requested with ``'shared'``). ``in_view1`` (Q,) tells each query's
        view (``'shared'`` draws one set per view, as the reference draws one per
        direction)."""
        G, Q, device = self.num_global_negatives, in_view1.numel(), in_view1.device
        g = torch.zeros((Q, G), dtype=torch.long, device=device)
        g_ok = torch.zeros_like(g, dtype=torch.bool)
        if not G or not others.numel():
            return g, g_ok
        if self.global_sampling == 'per_query':
            return (others[torch.randint(others.numel(), (Q, G), device=device)],
                    torch.ones_like(g, dtype=torch.bool))
        n = min(G, others.numel())
        for view in (0, 1):
            rows = in_view1 == bool(view)
            g[rows, :n] = others[torch.randperm(others.numel(), device=device)[:n]]
            g_ok[rows, :n] = True
        return g, g_ok

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
                if self.z_distance is not None:
                    # world z (coords channel 2) distance between a query and its positive
                    dz = (pts[a][cand, 2] - pts[o][ref[nn], 2]).abs()
                    ok &= dz < self.z_distance[a]
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
                if self.fallback_negatives == 'same_view':
                    group = torch.arange(2, device=device).repeat_interleave(m)
                num_top = self.num_negatives
            neg, neg_ok = mine_negatives(q, pts_all, val.reshape(-1), emb_all[sl], None,
                                         self.ignore_distance, num_top, self.num_negatives,
                                         group=group, chunk=self.query_chunk)
            offset = b * 2 * m
            # global negatives: valid coarse voxels of the other pairs (other volumes)
            others = valid_idx[pair_of[valid_idx] != b]
            g, g_ok = self._global_negatives(others, q >= m)
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
