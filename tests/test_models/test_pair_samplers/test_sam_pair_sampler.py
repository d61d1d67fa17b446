"""SAM pixel-pair samplers: positives within 2 mm, negatives beyond 20 mm, hard-negative
ranking, no-overlap fallback and counts, all checked in world mm from the coordinate maps of
views related by a known random rotation + rescale + shift."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmanat.models.pair_samplers import SAMCoarsePairSampler, SAMFinePairSampler
from mmanat.models.pair_samplers.utils import nearest_neighbours
from mmanat.registry import TASK_UTILS
from mmanat.utils.exceptions import InvalidInputError

FINE_SHAPE = (8, 24, 24)      # fine grid of a (16, 48, 48) 2 mm view
FINE_SPACING = (4., 4., 4.)   # mm (x, y, z) before the per-view scale


def _unit(x, dim):
    return F.normalize(x, dim=dim)


def _pair(geo, seed, shift=(6., -4., 3.), shape=FINE_SHAPE, spacing=FINE_SPACING, C=16, Cc=8,
          box=None):
    rng = np.random.default_rng(seed)
    coords = geo.view_pair_coords(rng, shape, spacing, shift=shift)          # (2, 3, D, H, W)
    valid = np.ones((2, ) + shape, bool) if box is None else (np.abs(coords) <= box).all(1)
    g = torch.Generator().manual_seed(seed)
    fine = _unit(torch.randn((2, C) + shape, generator=g), 1)
    coarse = _unit(torch.randn((2, Cc) + shape, generator=g), 1)
    return fine, coarse, coords, valid


def _flat(x):  # (2, C, D, H, W) -> (2M, C)
    return x.reshape(x.shape[0], x.shape[1], -1).transpose(1, 2).reshape(-1, x.shape[1])


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_fine_sampler_geometry_after_random_rotation_rescale(seed, sam_geometry):
    torch.manual_seed(seed)
    fine, coarse, coords, valid = _pair(sam_geometry, seed, box=42.)
    assert 0.3 < valid.mean() < 0.97     # some voxels lie outside the 'original image'
    sampler = TASK_UTILS.build(dict(type='SAMFinePairSampler'))
    out = sampler.sample_pair(fine, torch.from_numpy(coords).float(), torch.from_numpy(valid),
                              coarse)
    M = int(np.prod(FINE_SHAPE))
    pts = _flat(torch.from_numpy(coords)).numpy()                       # float64 (2M, 3)
    val = valid.reshape(-1)
    q, p = out['query_index'].numpy(), out['pos_index'].numpy()
    neg, mask = out['neg_index'].numpy(), out['neg_mask'].numpy()
    assert not out['fallback'].any()
    # counts within limits, and a healthy number of queries in both directions
    n0, n1 = (q < M).sum(), (q >= M).sum()
    assert 0 < n0 <= 100 and 0 < n1 <= 100
    assert neg.shape == mask.shape == (len(q), 500)
    assert mask.all()  # thousands of eligible voxels: no padding needed
    # positives: other view, within 2 mm, and the NEAREST valid voxel of the other view
    assert ((q < M) != (p < M)).all()
    d_qp = np.linalg.norm(pts[q] - pts[p], axis=1)
    assert d_qp.max() <= 2.0 + 1e-4
    for a in (0, 1):
        sel = (q >= M) == bool(a)
        other = np.arange(M) + (1 - a) * M
        other = other[val[other]]
        d_all = np.linalg.norm(pts[q[sel]][:, None] - pts[other][None], axis=2)
        np.testing.assert_allclose(d_qp[sel], d_all.min(1), atol=1e-4)
    # everything picked is a valid voxel; queries lie in the overlap of the bounding boxes
    assert val[q].all() and val[p].all() and val[neg[mask]].all()
    lo = np.maximum(pts[:M][val[:M]].min(0), pts[M:][val[M:]].min(0))
    hi = np.minimum(pts[:M][val[:M]].max(0), pts[M:][val[M:]].max(0))
    assert ((pts[q] >= lo - 1e-4) & (pts[q] <= hi + 1e-4)).all()
    # negatives: farther than 20 mm from the query, from both views, distinct per query
    d_neg = np.linalg.norm(pts[neg] - pts[q][:, None], axis=2)
    assert d_neg.min() > 20.0 - 1e-4
    assert (neg < M).any() and (neg >= M).any()
    assert all(len(set(row)) == row.size for row in neg)
    # hard: every negative is among the top 2000 eligible by fine + coarse similarity
    sim = (_flat(fine)[q] @ _flat(fine).T + _flat(coarse)[q] @ _flat(coarse).T).numpy()
    d_q = np.linalg.norm(pts[q][:, None] - pts[None], axis=2)
    sim[(d_q <= 20.0) | ~val[None]] = -np.inf
    kth = -np.sort(-sim, axis=1)[:, 1999]
    assert (np.take_along_axis(sim, neg, 1) >= kth[:, None] - 1e-5).all()


def test_fine_sampler_random_negatives(sam_geometry):
    """num_hard_candidates=None: negatives are drawn uniformly from every valid voxel beyond
    20 mm (no ranking), so their similarity ranks spread over the whole range."""
    torch.manual_seed(0)
    fine, coarse, coords, valid = _pair(sam_geometry, 1, box=42.)
    sampler = SAMFinePairSampler(num_hard_candidates=None, num_negatives=200)
    out = sampler.sample_pair(fine, torch.from_numpy(coords).float(), torch.from_numpy(valid),
                              coarse)
    pts = _flat(torch.from_numpy(coords)).numpy()
    val = valid.reshape(-1)
    q, neg, mask = (out['query_index'].numpy(), out['neg_index'].numpy(),
                    out['neg_mask'].numpy())
    assert len(q) > 0 and neg.shape == (len(q), 200) and mask.all()
    assert val[neg].all() and all(len(set(row)) == row.size for row in neg)
    assert np.linalg.norm(pts[neg] - pts[q][:, None], axis=2).min() > 20.0 - 1e-4
    sim = (_flat(fine)[q] @ _flat(fine).T + _flat(coarse)[q] @ _flat(coarse).T).numpy()
    d_q = np.linalg.norm(pts[q][:, None] - pts[None], axis=2)
    eligible = (d_q > 20.0) & val[None]
    sim[~eligible] = -np.inf
    rank = np.argsort(np.argsort(-sim, axis=1), axis=1)   # 0 = most similar
    rel = np.take_along_axis(rank, neg, 1) / eligible.sum(1, keepdims=True)
    assert 0.4 < rel.mean() < 0.6                          # hard mining would give ~0.05
    # hard mining of the same pair stays in the top 2000 (the contrast the test relies on)
    hard = SAMFinePairSampler(num_negatives=200).sample_pair(
        fine, torch.from_numpy(coords).float(), torch.from_numpy(valid), coarse)
    hq, hn = hard['query_index'].numpy(), hard['neg_index'].numpy()
    sim_h = (_flat(fine)[hq] @ _flat(fine).T + _flat(coarse)[hq] @ _flat(coarse).T).numpy()
    d_h = np.linalg.norm(pts[hq][:, None] - pts[None], axis=2)
    sim_h[(d_h <= 20.0) | ~val[None]] = -np.inf
    rank_h = np.argsort(np.argsort(-sim_h, axis=1), axis=1)
    assert np.take_along_axis(rank_h, hn, 1).max() < 2000
    # more negatives requested than eligible voxels: the rest is padding (mask False)
    few = SAMFinePairSampler(num_hard_candidates=None, num_negatives=9000).sample_pair(
        fine, torch.from_numpy(coords).float(), torch.from_numpy(valid), coarse)
    n_ok = few['neg_mask'].sum(1).numpy()
    d_few = np.linalg.norm(pts[few['query_index'].numpy()][:, None] - pts[None], axis=2)
    np.testing.assert_array_equal(n_ok, ((d_few > 20.0) & val[None]).sum(1))
    with pytest.raises(InvalidInputError):
        SAMFinePairSampler(num_hard_candidates=0)


def test_fine_sampler_no_overlap_fallback(sam_geometry):
    torch.manual_seed(0)
    fine, coarse, coords, valid = _pair(sam_geometry, 5, shift=(400., 0., 0.))
    sampler = SAMFinePairSampler(num_negatives=300)
    out = sampler.sample_pair(fine, torch.from_numpy(coords), torch.from_numpy(valid), coarse)
    M = int(np.prod(FINE_SHAPE))
    q, p = out['query_index'].numpy(), out['pos_index'].numpy()
    neg, mask = out['neg_index'].numpy(), out['neg_mask'].numpy()
    assert out['fallback'].all()
    assert (q == p).all()                                   # each query is its own positive
    assert (q < M).sum() == 100 and (q >= M).sum() == 100
    assert neg.shape == (200, 300) and mask.all()
    assert ((neg < M) == (q < M)[:, None]).all()            # same-view negatives only
    pts = _flat(torch.from_numpy(coords)).numpy()
    assert np.linalg.norm(pts[neg] - pts[q][:, None], axis=2).min() > 20.0 - 1e-4
    # exactly the top-300 same-view negatives by fine + coarse similarity
    sim = (_flat(fine)[q] @ _flat(fine).T + _flat(coarse)[q] @ _flat(coarse).T).numpy()
    d_q = np.linalg.norm(pts[q][:, None] - pts[None], axis=2)
    same = (np.arange(2 * M)[None] >= M) == (q >= M)[:, None]
    sim[(d_q <= 20.0) | ~same] = -np.inf
    top = np.argsort(-sim, axis=1)[:, :300]
    assert all(set(a) == set(b) for a, b in zip(top, neg))


def test_fine_sampler_batch_offsets_limits_and_empty_views(sam_geometry):
    torch.manual_seed(0)
    pairs = [_pair(sam_geometry, s) for s in (3, 4)]
    fine = torch.stack([p[0] for p in pairs])
    coarse = torch.stack([p[1] for p in pairs])
    coords = torch.from_numpy(np.stack([p[2] for p in pairs])).float()
    valid = torch.from_numpy(np.stack([p[3] for p in pairs]))
    valid[1, 1] = False   # second pair: view 1 entirely outside the image -> fallback
    sampler = SAMFinePairSampler(num_preselect=300, max_queries=20, num_hard_candidates=100,
                                 num_negatives=40)
    out = sampler(fine, coords, valid, coarse)
    M = int(np.prod(FINE_SHAPE))
    pair, q = out['pair_index'], out['query_index']
    assert set(pair.tolist()) == {0, 1} and out['neg_index'].shape[1] == 40
    assert (pair == 0).sum() <= 40 and not out['fallback'][pair == 0].any()
    # pair 1: only its valid view 0 gives (self-positive) queries, 20 of them
    assert out['fallback'][pair == 1].all() and (pair == 1).sum() == 20
    assert ((q[pair == 1] >= 2 * M) & (q[pair == 1] < 3 * M)).all()
    for k in ('query_index', 'pos_index', 'neg_index'):
        idx = out[k] if out[k].dim() == 1 else out[k][out['neg_mask']]
        p = pair if out[k].dim() == 1 else pair[:, None].expand_as(out[k])[out['neg_mask']]
        assert (idx // (2 * M) == p).all()
    sampler_nf = SAMFinePairSampler(num_preselect=300, max_queries=20, num_hard_candidates=100,
                                    num_negatives=40, no_overlap_fallback=False)
    assert set(sampler_nf(fine, coords, valid, coarse)['pair_index'].tolist()) == {0}
    with pytest.raises(InvalidInputError):
        sampler(fine[:, :1], coords, valid, coarse)
    with pytest.raises(InvalidInputError):
        SAMFinePairSampler(num_negatives=600, num_hard_candidates=500)


def test_nearest_neighbour_methods_agree():
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(3000, 3, generator=g) * 200 - 100
    qry = torch.rand(500, 3, generator=g) * 200 - 100
    d1, i1 = nearest_neighbours(qry, ref, 'kdtree')
    d2, i2 = nearest_neighbours(qry, ref, 'cdist', chunk=64)
    brute = torch.cdist(qry.double(), ref.double()).min(1)
    assert torch.equal(i1, i2) and torch.equal(i1, brute.indices)
    torch.testing.assert_close(d1, brute.values.float(), atol=1e-4, rtol=0)
    torch.testing.assert_close(d2, brute.values.float(), atol=1e-4, rtol=0)
    with pytest.raises(InvalidInputError):
        nearest_neighbours(qry, ref[:0])


def test_coarse_sampler_geometry_and_global_negatives(sam_geometry):
    torch.manual_seed(0)
    shape, spacing = (4, 6, 6), (32., 32., 8.)      # coarse grid of a (16, 96, 96) view
    B, C = 3, 8
    rng = np.random.default_rng(7)
    coords = np.stack([sam_geometry.view_pair_coords(rng, shape, spacing, shift=(10., 5., 2.),
                                        max_deg=15.) for _ in range(B)])
    valid = np.ones((B, 2) + shape, bool)
    valid[0, 0, :, 0] = False
    g = torch.Generator().manual_seed(1)
    coarse = _unit(torch.randn((B, 2, C) + shape, generator=g), 2)
    sampler = TASK_UTILS.build(dict(type='SAMCoarsePairSampler', max_queries=30,
                                    num_hard_candidates=50, num_negatives=40,
                                    num_global_negatives=100))
    out = sampler(coarse, torch.from_numpy(coords).float(), torch.from_numpy(valid))
    m = int(np.prod(shape))
    pts = _flat(torch.from_numpy(coords).flatten(0, 1)).numpy()
    val = valid.reshape(-1)
    q, p, pair = out['query_index'].numpy(), out['pos_index'].numpy(), out['pair_index'].numpy()
    neg, mask = out['neg_index'].numpy(), out['neg_mask'].numpy()
    assert neg.shape == (len(q), 140) and set(pair) == {0, 1, 2}
    for b in range(B):
        assert (pair == b).sum() <= 60
    assert (q // (2 * m) == pair).all() and (p // (2 * m) == pair).all()
    assert ((q // m) % 2 != (p // m) % 2).all()                 # positive in the other view
    assert np.linalg.norm(pts[q] - pts[p], axis=1).max() <= 25.0 + 1e-4
    assert val[q].all() and val[p].all() and val[neg[mask]].all()
    local, glob = neg[:, :40], neg[:, 40:]
    assert (local // (2 * m) == pair[:, None]).all()
    assert np.linalg.norm(pts[local] - pts[q][:, None], axis=2)[mask[:, :40]].min() > 5 - 1e-4
    assert mask[:, 40:].all() and (glob // (2 * m) != pair[:, None]).all()
    # in-pair negatives are among the 50 most similar eligible voxels of the pair
    E = _flat(coarse.flatten(0, 1))
    sim = (E[q] @ E.T).numpy()
    d_q = np.linalg.norm(pts[q][:, None] - pts[None], axis=2)
    sim[(d_q <= 5.0) | ~val[None] | (np.arange(len(pts))[None] // (2 * m) != pair[:, None])] \
        = -np.inf
    kth = -np.sort(-sim, axis=1)[:, 49]
    assert (np.take_along_axis(sim, local, 1) >= kth[:, None] - 1e-5).all()
    # a single pair has no other volume: global negatives are all padding
    out1 = sampler(coarse[:1], torch.from_numpy(coords[:1]).float(), None)
    assert len(out1['query_index']) and not out1['neg_mask'][:, 40:].any()


def test_coarse_sampler_no_overlap_gives_no_queries_unless_fallback(sam_geometry):
    shape, spacing = (4, 6, 6), (32., 32., 8.)
    rng = np.random.default_rng(3)
    coords = torch.from_numpy(
        sam_geometry.view_pair_coords(rng, shape, spacing, shift=(900., 0, 0)))[None]
    coarse = _unit(torch.randn((1, 2, 8) + shape), 2)
    assert len(SAMCoarsePairSampler()(coarse, coords)['query_index']) == 0
    out = SAMCoarsePairSampler(no_overlap_fallback=True, num_global_negatives=0,
                               num_negatives=20)(coarse, coords)
    assert out['fallback'].all() and torch.equal(out['query_index'], out['pos_index'])
    assert out['neg_index'].shape == (200, 20)          # 100 queries per view
    assert ((out['neg_index'] // 144) == (out['query_index'] // 144)[:, None]).all()
