"""SAMFinePairSampler query mask (UAE-M stage 2, released
sam/models/frameworks/sam_v2_uniform_cross_volume_mask_dual_head_MRI_CT.py: fine queries from
the MR foreground only): queries only inside the mask, positives / negatives unrestricted,
and the very same draws as before when no mask (or a mask that restricts nothing) is given."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmanat.models.pair_samplers import SAMFinePairSampler
from mmanat.utils.exceptions import InvalidInputError

SHAPE = (6, 16, 16)
SPACING = (4., 4., 4.)


def _pair(geo, seed, shift=(3., -2., 1.), box=None):
    rng = np.random.default_rng(seed)
    coords = torch.from_numpy(geo.view_pair_coords(rng, SHAPE, SPACING, shift=shift)).float()
    valid = (torch.ones((2, ) + SHAPE, dtype=torch.bool) if box is None else
             (coords.abs() <= box).all(1))
    g = torch.Generator().manual_seed(seed)
    fine = F.normalize(torch.randn((2, 8) + SHAPE, generator=g), dim=1)
    coarse = F.normalize(torch.randn((2, 4) + SHAPE, generator=g), dim=1)
    return fine, coarse, coords, valid


def _sampler(**kw):
    cfg = dict(num_preselect=300, max_queries=40, num_hard_candidates=200, num_negatives=60)
    cfg.update(kw)
    return SAMFinePairSampler(**cfg)


def _run(sampler, fine, coarse, coords, valid, query_mask=None, seed=0):
    torch.manual_seed(seed)
    return sampler(fine[None], coords[None], valid[None], coarse[None],
                   **({} if query_mask is None else dict(query_mask=query_mask[None])))


@pytest.mark.parametrize('seed', [0, 1])
def test_queries_only_inside_the_mask_keys_and_negatives_anywhere(seed, sam_geometry):
    fine, coarse, coords, valid = _pair(sam_geometry, seed, box=30.)
    x = coords[:, 0]                                      # world x (mm) of every fine voxel
    # a world region as the MR body mask sampled on both views; view 1's region is smaller,
    # so positives of view-0 queries near its border fall outside view 1's mask
    mask = torch.stack([x[0] < 0., x[1] < -6.])
    out = _run(_sampler(), fine, coarse, coords, valid, mask, seed)
    M = int(np.prod(SHAPE))
    q, p = out['query_index'], out['pos_index']
    assert not out['fallback'].any()
    flat_mask, flat_valid = mask.reshape(-1), valid.reshape(-1)
    assert flat_mask[q].all() and flat_valid[q].all()
    assert (q < M).sum() > 0 and (q >= M).sum() > 0      # both directions still sample
    # positives: the nearest valid voxel of the other view, within 2 mm, mask or not
    xyz = coords.reshape(2, 3, -1).transpose(1, 2).reshape(-1, 3)
    assert ((xyz[q] - xyz[p]).norm(dim=1) <= 2.0 + 1e-4).all()
    assert not flat_mask[p[q < M]].all()
    # negatives keep using every valid voxel of both views beyond 20 mm
    neg = out['neg_index'][out['neg_mask']]
    assert flat_valid[neg].all() and (~flat_mask[neg]).any()
    d = (xyz[out['neg_index']] - xyz[q][:, None]).norm(dim=2)[out['neg_mask']]
    assert d.min() > 20.0


def test_the_mask_changes_which_queries_are_drawn(sam_geometry):
    fine, coarse, coords, valid = _pair(sam_geometry, 3)
    mask = torch.stack([coords[v, 0] < -4. for v in range(2)])
    plain = _run(_sampler(), fine, coarse, coords, valid, seed=3)
    masked = _run(_sampler(), fine, coarse, coords, valid, mask, seed=3)
    flat = mask.reshape(-1)
    assert not flat[plain['query_index']].all()          # without it: queries everywhere
    assert flat[masked['query_index']].all()


@pytest.mark.parametrize('seed', [0, 2])
def test_without_a_mask_the_draws_are_unchanged(seed, sam_geometry):
    fine, coarse, coords, valid = _pair(sam_geometry, seed, box=30.)
    sampler = _sampler()
    ref = _run(sampler, fine, coarse, coords, valid, None, seed)
    # a mask that restricts nothing (all True, or equal to valid) draws exactly the same
    for mask in (torch.ones_like(valid), valid.clone()):
        out = _run(sampler, fine, coarse, coords, valid, mask, seed)
        assert out.keys() == ref.keys()
        for k in ref:
            assert torch.equal(out[k], ref[k]), k
    # the pair-level call too
    torch.manual_seed(seed)
    one = sampler.sample_pair(fine, coords, valid, coarse)
    torch.manual_seed(seed)
    two = sampler.sample_pair(fine, coords, valid, coarse, None)
    for k in one:
        assert torch.equal(one[k], two[k]), k
    assert torch.equal(one['query_index'], ref['query_index'])


def test_empty_mask_in_one_view_or_both(sam_geometry):
    fine, coarse, coords, valid = _pair(sam_geometry, 4)
    M = int(np.prod(SHAPE))
    only_view1 = torch.stack([torch.zeros(SHAPE, dtype=torch.bool),
                              torch.ones(SHAPE, dtype=torch.bool)])
    out = _run(_sampler(), fine, coarse, coords, valid, only_view1, 4)
    assert out['query_index'].numel() > 0 and (out['query_index'] >= M).all()
    assert not out['fallback'].any()
    # no masked voxel at all: no overlap query, so the (unchanged) no-overlap fallback applies
    out = _run(_sampler(), fine, coarse, coords, valid, torch.zeros_like(valid), 4)
    assert out['fallback'].all() and out['query_index'].numel() == 2 * 40
    assert torch.equal(out['query_index'], out['pos_index'])


def test_query_mask_shape_is_checked(sam_geometry):
    fine, coarse, coords, valid = _pair(sam_geometry, 5)
    with pytest.raises(InvalidInputError, match='query_mask'):
        _sampler()(fine[None], coords[None], valid[None], coarse[None],
                   query_mask=torch.ones((1, 2, 6, 16, 8), dtype=torch.bool))
    with pytest.raises(InvalidInputError, match='query_mask'):
        _sampler().sample_pair(fine, coords, valid, coarse,
                               torch.ones((1, ) + SHAPE, dtype=torch.bool))


def test_batch_offsets_with_a_mask(sam_geometry):
    pairs = [_pair(sam_geometry, s) for s in (6, 7)]
    fine, coarse, coords, valid = (torch.stack([p[i] for p in pairs]) for i in range(4))
    mask = torch.stack([torch.stack([c[v, 1] > 0. for v in range(2)]) for c in coords])
    torch.manual_seed(0)
    out = _sampler()(fine, coords, valid, coarse, query_mask=mask)
    assert set(out['pair_index'].tolist()) == {0, 1}
    assert mask.reshape(-1)[out['query_index']].all()
    M2 = 2 * int(np.prod(SHAPE))
    assert torch.equal(out['query_index'] // M2, out['pair_index'])
