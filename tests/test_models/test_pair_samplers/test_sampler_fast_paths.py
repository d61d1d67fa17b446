"""The faster negative mining and view flattening of mmanat.models.pair_samplers.utils give
exactly what the previous formulation gave (kept here as the reference), on tiny tensors with
fixed seeds: same indices, same masks, hence the same pairs and losses."""
import pytest
import torch
import torch.nn.functional as F

from mmanat.models.pair_samplers.utils import (flatten_views, flatten_views_cat,
                                               mine_negatives, pairwise_distances,
                                               random_subset)


def _reference_flatten(x):  # the previous flatten_views
    V, C = x.shape[:2]
    return x.reshape(V, C, -1).transpose(1, 2).reshape(-1, C)


def _reference_mine(query_index, points, candidates, embeddings, ignore_distance, num_top,
                    num_keep, group=None, chunk=128):
    """mine_negatives as it was: a (chunk, R) eligibility mask, then masked_fill(~mask)."""
    Q, R = query_index.shape[0], points.shape[0]
    out_idx = torch.zeros((Q, num_keep), dtype=torch.long)
    out_ok = torch.zeros((Q, num_keep), dtype=torch.bool)
    for s in range(0, Q, chunk):
        qi = query_index[s:s + chunk]
        eligible = pairwise_distances(points[qi], points) > ignore_distance
        eligible &= candidates[None]
        if group is not None:
            eligible &= group[None] == group[qi][:, None]
        k_top = min(num_top, R)
        sim = embeddings[qi] @ embeddings.t()
        sim.masked_fill_(~eligible, float('-inf'))
        top_val, top_idx = sim.topk(k_top, dim=1)
        top_ok = torch.isfinite(top_val)
        n = min(num_keep, k_top)
        if n < k_top:
            cols, ok = random_subset(top_ok, n)
            top_idx, top_ok = top_idx.gather(1, cols), ok
        out_idx[s:s + chunk, :n] = top_idx[:, :n]
        out_ok[s:s + chunk, :n] = top_ok[:, :n]
    return out_idx, out_ok


@pytest.mark.parametrize('channels_last', [False, True])
def test_flatten_views_equals_the_previous_layout(channels_last):
    x = torch.randn(2, 5, 3, 4, 6)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    assert torch.equal(flatten_views(x), _reference_flatten(x))
    y = torch.randn(2, 3, 3, 4, 6)
    assert torch.equal(flatten_views_cat(x, y), _reference_flatten(torch.cat([x, y], 1)))


@pytest.mark.parametrize('seed', [0, 1, 2])
@pytest.mark.parametrize('with_group', [False, True])
def test_mine_negatives_equals_the_previous_formulation(seed, with_group):
    g = torch.Generator().manual_seed(seed)
    R = 2 * 4 * 5 * 6
    # a regular 2 mm grid (distances of exactly ignore_distance occur) plus jitter on half
    zz, yy, xx = torch.meshgrid(torch.arange(8.), torch.arange(5.), torch.arange(6.),
                                indexing='ij')
    points = torch.stack([xx, yy, zz], -1).reshape(-1, 3) * 2.0
    points[::2] += 0.3 * torch.rand(points[::2].shape, generator=g)
    emb = F.normalize(torch.randn(R, 6, generator=g), dim=1)
    candidates = torch.rand(R, generator=g) > 0.2
    query_index = torch.randperm(R, generator=g)[:23]
    group = torch.arange(2).repeat_interleave(R // 2) if with_group else None
    padded = 0
    for ignore, num_top, num_keep, chunk in ((4.0, 40, 10, 128), (4.0, 40, 40, 7),
                                             (4.0, R, 15, 5), (13.0, 150, 120, 9)):
        torch.manual_seed(seed)
        ref = _reference_mine(query_index, points, candidates, emb, ignore, num_top,
                              num_keep, group=group, chunk=chunk)
        torch.manual_seed(seed)
        new = mine_negatives(query_index, points, candidates, emb, None, ignore, num_top,
                             num_keep, group=group, chunk=chunk)
        assert torch.equal(new[0], ref[0]) and torch.equal(new[1], ref[1])
        padded += int((~new[1]).sum())
    assert padded > 0   # the case of rows that run out of eligible negatives is covered
