"""Options of SAMCoarsePairSampler that reproduce the released coarse sampling
(alibaba-damo-academy/self-supervised-anatomical-embedding-v2, sam/models/frameworks/sam.py,
Sam.coarse_loss): the z-distance filter of the positives, all queries, shared global
negatives and the both-view fallback - each checked against a brute-force reading in mm."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmanat.models.pair_samplers import SAMCoarsePairSampler
from mmanat.registry import TASK_UTILS
from mmanat.utils.exceptions import InvalidInputError

SHAPE = (4, 6, 6)                  # coarse (d, h, w) of a 32 x 96 x 96 view
M = int(np.prod(SHAPE))
RELEASED = dict(z_distance=(8.0, 6.0), max_queries=None, global_sampling='shared',
                no_overlap_fallback=True, fallback_negatives='both_views')


def _grid(spacing_xyz, origin_xyz, shape=SHAPE):
    """(3, d, h, w) world (x, y, z) mm of an axis-aligned grid."""
    d, h, w = shape
    z, y, x = np.meshgrid(np.arange(d), np.arange(h), np.arange(w), indexing='ij')
    return np.stack([origin_xyz[0] + x * spacing_xyz[0], origin_xyz[1] + y * spacing_xyz[1],
                     origin_xyz[2] + z * spacing_xyz[2]]).astype(np.float64)


def _emb(B, C=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn((B, 2, C) + SHAPE, generator=g), dim=2)


def _flat_pts(coords):  # (B, 2, 3, d, h, w) -> (B * 2 * m, 3)
    c = np.asarray(coords)
    return np.moveaxis(c.reshape(c.shape[0] * 2, 3, -1), 1, 2).reshape(-1, 3)


def _shifted_pair(shift):
    view0 = _grid((20., 20., 16.), (0., 0., 0.))
    view1 = _grid((20., 20., 16.), shift)
    return torch.from_numpy(np.stack([view0, view1])[None])


def test_z_filter_is_directional():
    """View 1 = view 0 shifted by (3, -2, 7) mm on a 20 x 20 x 16 mm grid: every voxel's
    nearest other-view voxel is its counterpart, 7.9 mm away with |dz| = 7 mm in both
    directions. The released thresholds (< 8 mm for view 0 -> 1, < 6 mm for 1 -> 0) keep all
    view-0 queries and no view-1 query."""
    coords = _shifted_pair((3., -2., 7.))
    coarse = _emb(1)
    expect_shift = np.array([3., -2., 7.])
    pts = _flat_pts(coords)
    counts = {}
    for z in (None, (8.0, 6.0), (6.0, 8.0), 7.5, 7.0):
        torch.manual_seed(0)
        out = SAMCoarsePairSampler(z_distance=z, max_queries=None)(coarse, coords.float())
        q, p = out['query_index'].numpy(), out['pos_index'].numpy()
        counts[z] = (int((q < M).sum()), int((q >= M).sum()))
        sign = np.where(q < M, 1.0, -1.0)[:, None]
        np.testing.assert_allclose(pts[p] - pts[q], sign * expect_shift, atol=1e-4)
    assert counts[None] == (M, M)              # no filter: every voxel of both views
    assert counts[(8.0, 6.0)] == (M, 0)        # released: view 0 -> 1 only
    assert counts[(6.0, 8.0)] == (0, M)
    assert counts[7.5] == (M, M)
    assert counts[7.0] == (0, 0)               # strict '<' as in the reference (exact here)


@pytest.mark.parametrize('seed', [0, 1])
def test_released_query_set_matches_brute_force(seed, sam_geometry):
    """Randomly rotated and rescaled views, some voxels outside the image: with
    z_distance=(8, 6) and max_queries=None the queries are exactly the valid voxels whose
    nearest valid other-view voxel lies within 25 mm and within 8 (view 0) / 6 (view 1) mm
    in z, and the filter removes some of the unfiltered queries."""
    rng = np.random.default_rng(seed)
    coords = sam_geometry.view_pair_coords(rng, SHAPE, (32., 32., 16.), shift=(5., 3., 10.),
                                           max_deg=15.)
    valid = np.ones((2, ) + SHAPE, bool)
    valid[0, :, 0] = False
    coords_t = torch.from_numpy(coords[None]).float()
    valid_t = torch.from_numpy(valid[None])
    coarse = _emb(1, seed=seed)
    torch.manual_seed(seed)
    out = TASK_UTILS.build(dict(type='SAMCoarsePairSampler', **RELEASED))(
        coarse, coords_t, valid_t)
    pts = _flat_pts(coords[None])
    val = valid.reshape(-1)
    expect, unfiltered = set(), set()
    for a, thr in ((0, 8.0), (1, 6.0)):
        own = np.arange(M) + a * M
        other = (np.arange(M) + (1 - a) * M)[val[(1 - a) * M:(2 - a) * M]]
        for i in own[val[own]]:
            d = np.linalg.norm(pts[other] - pts[i], axis=1)
            j = other[np.argmin(d)]
            if d.min() <= 25.0:
                unfiltered.add((i, j))
                if abs(pts[i, 2] - pts[j, 2]) < thr:
                    expect.add((i, j))
    got = set(zip(out['query_index'].tolist(), out['pos_index'].tolist()))
    assert got == expect
    for a in (0, 1):   # the filter removes queries in both directions, keeps others
        n_kept = sum((i >= M) == a for i, _ in expect)
        assert 0 < n_kept < sum((i >= M) == a for i, _ in unfiltered)
    # view-0 queries with 6 <= |dz| < 8 mm: kept only thanks to the 8 mm of view 0 -> 1
    assert any(i < M and 6.0 <= abs(pts[i, 2] - pts[j, 2]) for i, j in expect)
    assert not out['fallback'].any()


def test_shared_global_negatives(sam_geometry):
    """'shared': one draw per pair and view, without replacement, from the valid voxels of
    the other pairs; 'per_query' (default): an independent draw per query."""
    B = 3
    rng = np.random.default_rng(4)
    coords = torch.from_numpy(np.stack([
        sam_geometry.view_pair_coords(rng, SHAPE, (32., 32., 8.), shift=(6., 2., 1.))
        for _ in range(B)])).float()
    valid = torch.ones((B, 2) + SHAPE, dtype=torch.bool)
    valid[2, 1, :2] = False
    coarse = _emb(B, seed=3)
    torch.manual_seed(0)
    out = SAMCoarsePairSampler(max_queries=None, num_negatives=20, num_hard_candidates=40,
                               num_global_negatives=150, global_sampling='shared')(
        coarse, coords, valid)
    q, pair = out['query_index'], out['pair_index']
    glob, gmask = out['neg_index'][:, 20:], out['neg_mask'][:, 20:]
    assert gmask.all()
    val = valid.reshape(-1)
    for b in range(B):
        for view in (0, 1):
            rows = (pair == b) & ((q // M) % 2 == view)
            assert rows.sum() > 1
            g = glob[rows]
            assert (g == g[0]).all()                        # shared by the view's queries
            assert len(set(g[0].tolist())) == 150           # without replacement
            assert (g[0] // (2 * M) != b).all() and val[g[0]].all()
        v0 = glob[(pair == b) & (q // M % 2 == 0)][0]
        v1 = glob[(pair == b) & (q // M % 2 == 1)][0]
        assert not torch.equal(v0, v1)                      # one draw per direction
    # more requested than the other pairs hold: the rest is padding
    torch.manual_seed(0)
    big = SAMCoarsePairSampler(max_queries=10, num_negatives=20, num_hard_candidates=40,
                               num_global_negatives=2000, global_sampling='shared')(
        coarse, coords, valid)
    n_other = [int(val.view(B, -1)[[c for c in range(B) if c != b]].sum()) for b in range(B)]
    np.testing.assert_array_equal(big['neg_mask'][:, 20:].sum(1).numpy(),
                                  [n_other[b] for b in big['pair_index'].tolist()])
    # per query (default): rows differ
    torch.manual_seed(0)
    pq = SAMCoarsePairSampler(max_queries=None, num_negatives=20, num_hard_candidates=40,
                              num_global_negatives=150)(coarse, coords, valid)
    g = pq['neg_index'][:, 20:]
    assert not (g == g[0]).all()


def test_fallback_with_negatives_from_both_views():
    """No overlap: every voxel (max_queries=None) is its own positive; 'both_views' takes
    its most similar voxels of both views (beyond 5 mm: all but itself on this grid) as
    negatives, 'same_view' only those of its own view."""
    coords = _shifted_pair((900., 0., 0.)).float()
    coarse = _emb(1, seed=5)
    torch.manual_seed(0)
    out = SAMCoarsePairSampler(no_overlap_fallback=True, fallback_negatives='both_views',
                               max_queries=None, num_negatives=30,
                               num_global_negatives=0)(coarse, coords)
    q, neg = out['query_index'].numpy(), out['neg_index'].numpy()
    assert out['fallback'].all() and len(q) == 2 * M
    assert (q == out['pos_index'].numpy()).all()
    E = coarse.reshape(2, 8, -1).transpose(1, 2).reshape(-1, 8)
    sim = (E[q] @ E.T).numpy()
    sim[np.arange(len(q)), q] = -np.inf                      # itself is the positive
    top = np.argsort(-sim, axis=1)[:, :30]
    assert all(set(a) == set(b) for a, b in zip(top, neg))
    assert ((neg < M) != (q < M)[:, None]).any()             # other-view negatives occur
    same = SAMCoarsePairSampler(no_overlap_fallback=True, max_queries=None, num_negatives=30,
                                num_global_negatives=0)(coarse, coords)
    assert ((same['neg_index'] < M) == (same['query_index'] < M)[:, None]).all()


def test_option_errors():
    for bad in (dict(z_distance=0.0), dict(z_distance=(8.0, )), dict(z_distance=(8., -1.)),
                dict(global_sampling='batch'), dict(fallback_negatives='other'),
                dict(max_queries=0)):
        with pytest.raises(InvalidInputError):
            SAMCoarsePairSampler(**bad)
