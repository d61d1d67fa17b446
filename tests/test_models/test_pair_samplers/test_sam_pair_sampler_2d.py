"""SAM pixel-pair samplers on one-slice grids (2D SAM, D = 1): positives within the distance,
negatives beyond the ignore distance, all in world mm from the coordinate maps of two
in-plane views (rotation + rescale + shift, z = 0); the coarse z filter is harmless in 2D."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmanat.registry import TASK_UTILS


def planar_coords(shape_hw, spacing, centre_xy, angle_deg):
    """(3, 1, H, W) world mm of an in-plane grid centred on ``centre_xy``, rotated by
    ``angle_deg`` about z, all at z = 0."""
    H, W = shape_hw
    y, x = np.meshgrid(np.arange(H) - (H - 1) / 2, np.arange(W) - (W - 1) / 2, indexing='ij')
    a = np.deg2rad(angle_deg)
    wx = centre_xy[0] + spacing * (np.cos(a) * x - np.sin(a) * y)
    wy = centre_xy[1] + spacing * (np.sin(a) * x + np.cos(a) * y)
    return np.stack([wx, wy, np.zeros_like(wx)])[:, None]


def pair(seed, shape_hw=(32, 32), spacing=8.0, shift=(20.0, -12.0), C=16, Cc=8):
    rng = np.random.default_rng(seed)
    coords = np.stack([
        planar_coords(shape_hw, spacing * rng.uniform(0.8, 1.2), (0.0, 0.0),
                      rng.uniform(-10, 10)),
        planar_coords(shape_hw, spacing * rng.uniform(0.8, 1.2), shift, rng.uniform(-10, 10))])
    g = torch.Generator().manual_seed(seed)
    shape = (1, ) + tuple(shape_hw)
    fine = F.normalize(torch.randn((2, C) + shape, generator=g), dim=1)
    coarse = F.normalize(torch.randn((2, Cc) + shape, generator=g), dim=1)
    return fine, coarse, torch.from_numpy(coords).float()


def flat_points(coords):  # (V, 3, 1, H, W) -> (V * H * W, 3) float64
    return coords.double().reshape(coords.shape[0], 3, -1).transpose(1, 2).reshape(-1, 3).numpy()


@pytest.mark.parametrize('seed', [0, 1])
def test_fine_sampler_on_one_slice_grids(seed):
    torch.manual_seed(seed)
    fine, coarse, coords = pair(seed)
    sampler = TASK_UTILS.build(dict(type='SAMFinePairSampler', num_preselect=500, max_queries=40,
                                    positive_distance=4.0, ignore_distance=32.0,
                                    num_hard_candidates=300, num_negatives=100))
    out = sampler(fine[None], coords[None], None, coarse[None])
    M = 32 * 32
    pts = flat_points(coords)
    q, p = out['query_index'].numpy(), out['pos_index'].numpy()
    neg, mask = out['neg_index'].numpy(), out['neg_mask'].numpy()
    assert not out['fallback'].any()
    assert len(q) >= 40  # both directions found queries in the overlap
    assert np.all((q < M) != (p < M))  # the positive lies in the other view
    d_pos = np.linalg.norm(pts[q] - pts[p], axis=1)
    assert d_pos.max() <= 4.0 + 1e-4
    d_neg = np.linalg.norm(pts[q][:, None] - pts[neg], axis=2)
    assert mask.any() and np.all(d_neg[mask] > 32.0)
    assert np.all(pts[:, 2] == 0.0)


def test_coarse_sampler_on_one_slice_grids_and_z_filter_is_harmless():
    fine, coarse, coords = pair(3, shape_hw=(8, 8), spacing=32.0, shift=(40.0, 10.0))
    cfg = dict(type='SAMCoarsePairSampler', max_queries=None, positive_distance=25.0,
               ignore_distance=5.0, num_hard_candidates=60, num_negatives=30,
               num_global_negatives=50)
    batch = (torch.cat([coarse[None], coarse[None]]), torch.cat([coords[None], coords[None]]))
    torch.manual_seed(0)
    out = TASK_UTILS.build(dict(cfg, z_distance=None))(*batch)
    torch.manual_seed(0)
    out_z = TASK_UTILS.build(dict(cfg, z_distance=(8.0, 6.0)))(*batch)
    for key in out:  # every z difference is 0 < threshold: the same draws
        assert torch.equal(out[key], out_z[key]), key
    M = 64
    pts = flat_points(torch.cat([coords, coords]))
    q, p = out['query_index'].numpy(), out['pos_index'].numpy()
    assert len(q) > 10 and not out['fallback'].any()
    assert np.all(np.linalg.norm(pts[q] - pts[p], axis=1) <= 25.0 + 1e-4)
    assert np.all((q // M) // 2 == (p // M) // 2)  # positive from the same pair
    assert np.all((q // M) != (p // M))  # ... but the other view
    neg, mask = out['neg_index'].numpy(), out['neg_mask'].numpy()
    in_pair = neg[:, :30]
    d = np.linalg.norm(pts[q][:, None] - pts[in_pair], axis=2)
    assert np.all(d[mask[:, :30]] > 5.0)
    # global negatives come from the other pair of the batch
    glob = neg[:, 30:][mask[:, 30:]]
    rows = np.repeat(q, mask[:, 30:].sum(1))
    assert np.all((glob // M) // 2 != (rows // M) // 2)
