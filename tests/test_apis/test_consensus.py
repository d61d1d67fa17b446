"""Consensus matching (``match(..., method='consensus')``) recovers a known deformation where
the direct argmax is corrupted.

The embeddings are analytic (:mod:`tests.helpers.analytic_maps`): every voxel embeds the
anatomical position of its centre with Fourier features. The target's anatomy is the
template's under a known affine (plus, in one case, a smooth non-linear displacement), and
its maps carry strong voxel-wise noise, so that single argmax matches scatter by several
millimetres and some jump far. The consensus of a few thousand matches must find the
transform and beat the direct matches by a clear margin.
"""
import numpy as np
import pytest
import torch

from tests.helpers.analytic_maps import analytic_maps, fourier_freqs
from mmanat.apis import match
from mmanat.apis.consensus import sample_template_points
from mmanat.structures.embedding_map import GridGeometry
from mmanat.utils.exceptions import InvalidInputError


def _rotation(axis, deg):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    a = np.deg2rad(deg)
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * K + (1 - np.cos(a)) * K @ K


A = _rotation((0.3, -1.0, 0.5), 8.0) @ np.diag([1.06, 0.95, 1.03])
T = np.array([9.0, -6.0, 4.0])
TPL_GRID = GridGeometry((40, 48, 48), spacing=2.0, origin=(-41.0, 17.5, -233.0),
                        direction=_rotation((1.0, 2.0, 3.0), 10.0))


def _bump(y):
    """Smooth displacement (mm) of the target's anatomy, up to ~4 mm."""
    c = TPL_GRID.index_to_world(np.array([23.5, 23.5, 19.5])) @ A.T + T
    r2 = np.sum((y - c) ** 2, axis=1, keepdims=True)
    return 4.0 * np.exp(-r2 / (2 * 25.0 ** 2)) * np.array([1.0, -0.6, 0.5]) / 1.24


def _case(smooth: bool, noise: float = 0.12):
    freqs = fourier_freqs(seed=3)
    corners = np.array([[i, j, k] for i in (0, 47) for j in (0, 47) for k in (0, 39)], float)
    world = TPL_GRID.index_to_world(corners) @ A.T + T
    lo, hi = world.min(0) - 8.0, world.max(0) + 8.0
    size = np.ceil((hi - lo) / 2.0).astype(int) + 1
    tgt_grid = GridGeometry(tuple(size[::-1]), spacing=2.0, origin=lo)
    A_inv = np.linalg.inv(A)

    def to_anatomy(y):  # target world -> template world (the anatomy)
        return (y - T) @ A_inv.T + (_bump(y) if smooth else 0.0)

    tpl = analytic_maps(TPL_GRID, lambda w: w, freqs)
    tgt = analytic_maps(tgt_grid, to_anatomy, freqs)
    g = torch.Generator().manual_seed(0)
    for lv in ('fine', 'coarse'):
        m = tgt.maps[lv] + noise * torch.randn(tgt.maps[lv].shape, generator=g)
        tgt.maps[lv] = m / m.norm(dim=0, keepdim=True)
    rng = np.random.default_rng(1)
    centre = TPL_GRID.index_to_world(np.array([23.5, 23.5, 19.5]))
    q = centre + rng.uniform(-25.0, 25.0, (30, 3)) @ TPL_GRID.direction.T
    truth = q @ A.T + T
    if smooth:  # solve to_anatomy(y) = q by fixed-point iteration
        for _ in range(50):
            truth = (q - _bump(truth)) @ A.T + T
        assert np.abs(to_anatomy(truth) - q).max() < 1e-6
    return tpl, tgt, q, truth


@pytest.fixture(scope='module')
def affine_case():
    return _case(smooth=False)


@pytest.fixture(scope='module')
def smooth_case():
    return _case(smooth=True)


def _err(res, truth):
    return np.linalg.norm(res.points - truth, axis=1)


def test_consensus_recovers_a_known_affine(affine_case):
    tpl, tgt, q, truth = affine_case
    direct = match(tpl, q, tgt, method='reference')
    cons = match(tpl, q, tgt, method='consensus', consensus_cfg=dict(n_points=1500))
    e_direct, e_cons = _err(direct, truth), _err(cons, truth)
    assert cons.method == 'consensus'
    # the noise scatters the direct argmax by several mm ...
    assert e_direct.mean() > 4.0, e_direct.mean()
    # ... the consensus is well under one fine voxel (4 mm) and far better
    assert e_cons.mean() < 1.5 and e_cons.max() < 3.0, e_cons
    assert e_cons.mean() < 0.25 * e_direct.mean()
    # the global affine [A | t] (template -> target mm) is the known one
    aff = cons.info['affine']
    assert np.abs(aff[:, :3] - A).max() < 0.06, aff
    g = np.linalg.norm(cons.extra['global_points'] - truth, axis=1)
    assert g.mean() < 1.5, g
    assert cons.info['n_samples'] == 1500
    assert cons.info['n_ransac_inliers'] > 1000
    # per-point results: local matches used, scores in (0, 1]
    assert cons.extra['num_local'].shape == (len(q),) and np.all(cons.extra['num_local'] > 20)
    assert np.all((cons.scores > 0) & (cons.scores <= 1 + 1e-6))
    assert 'num_local' in cons.to_pointset().extra


def test_local_consensus_follows_a_smooth_deformation(smooth_case):
    tpl, tgt, q, truth = smooth_case
    direct = match(tpl, q, tgt, method='reference')
    glob = match(tpl, q, tgt, method='consensus',
                 consensus_cfg=dict(n_points=1500, local_radius_mm=0.0))
    local = match(tpl, q, tgt, method='consensus',
                  consensus_cfg=dict(n_points=1500, local_radius_mm=25.0))
    e_direct, e_glob, e_local = _err(direct, truth), _err(glob, truth), _err(local, truth)
    assert np.all(glob.extra['num_local'] == 0)  # global only
    np.testing.assert_allclose(glob.points, glob.extra['global_points'], atol=1e-9)
    assert e_local.mean() < 0.3 * e_direct.mean(), (e_local.mean(), e_direct.mean())
    assert e_local.mean() < 1.5, e_local
    # the local fit follows the bump the global affine cannot
    assert e_local.mean() < 0.8 * e_glob.mean(), (e_local.mean(), e_glob.mean())


def test_consensus_is_deterministic_and_falls_back_to_global(affine_case):
    tpl, tgt, q, _ = affine_case
    cfg = dict(n_points=400, seed=7)
    a = match(tpl, q[:5], tgt, method='consensus', consensus_cfg=cfg)
    b = match(tpl, q[:5], tgt, method='consensus', consensus_cfg=cfg)
    np.testing.assert_array_equal(a.points, b.points)
    np.testing.assert_array_equal(a.scores, b.scores)
    # more local matches required than there are samples: the global answers stand
    g = match(tpl, q[:5], tgt, method='consensus',
              consensus_cfg=dict(cfg, min_local=10_000))
    assert np.all(g.extra['num_local'] == 0)
    np.testing.assert_allclose(g.points, g.extra['global_points'], atol=1e-9)
    # a local search window around the consensus answer stays near it
    w = match(tpl, q[:5], tgt, method='consensus', consensus_cfg=dict(cfg, refine_search_mm=4))
    assert np.linalg.norm(w.points - a.points, axis=1).max() <= 4.0 * np.sqrt(3) + 2.0


def test_samples_lie_in_the_mask():
    mask = np.zeros(TPL_GRID.shape, bool)
    mask[10:20, 5:30, 20:40] = True
    pts = sample_template_points(TPL_GRID, 500, seed=3, mask=mask)
    assert pts.shape == (500, 3)
    idx = np.rint(TPL_GRID.world_to_array_index(pts)).astype(int)
    assert mask[idx[:, 0], idx[:, 1], idx[:, 2]].all()
    again = sample_template_points(TPL_GRID, 500, seed=3, mask=mask)
    np.testing.assert_array_equal(pts, again)
    # more points than mask voxels: one per voxel
    small = np.zeros_like(mask)
    small[0, 0, :20] = True
    assert len(sample_template_points(TPL_GRID, 100, mask=small)) == 20


@pytest.mark.parametrize('kwargs, msg', [
    (dict(method='nearest'), 'unknown matching method'),
    (dict(method='consensus', stable_points=True), 'exclude each other'),
    (dict(method='reference', consensus_cfg=dict(n_points=100)), "for method='consensus'"),
    (dict(method='consensus', consensus_cfg=dict(radius=3)), 'unknown consensus_cfg'),
    (dict(method='consensus', consensus_cfg=dict(n_points=2)), 'n_points'),
    (dict(method='consensus', consensus_cfg=dict(ransac_threshold_mm=0)), 'ransac'),
    (dict(method='consensus', consensus_cfg=dict(local_radius_mm=-1)), 'local_radius_mm'),
    (dict(method='consensus', consensus_cfg=dict(min_local='many')), 'min_local'),
    (dict(method='consensus', consensus_cfg=dict(search='exact')), 'search'),
    (dict(method='consensus', consensus_cfg=dict(mask=np.ones((3, 3, 3), bool))),
     'mask shape'),
    (dict(method='consensus', consensus_cfg=dict(template_image=np.zeros((40, 48, 48)))),
     'template_image'),
])
def test_bad_arguments(affine_case, kwargs, msg):
    tpl, tgt, q, _ = affine_case
    with pytest.raises(InvalidInputError, match=msg):
        match(tpl, q[:2], tgt, **kwargs)


def test_benchmark_method_with_consensus():
    """The benchmark adapter runs consensus with samples in the template's body mask."""
    from mmanat.evaluation.benchmark.methods import MMAnatMethod
    from tests.helpers.position_encoder_standin import (PositionEncoderStandIn, moved,
                                                        quadratic_volume)
    tpl = quadratic_volume(shape=(16, 48, 48), origin=(-40.0, -50.0, -10.0))
    shift = np.array([6.2, -4.5, 3.1])
    q = np.array([[-10.0, -20.0, 2.0], [5.5, -3.25, 8.0], [-25.0, -30.0, 5.0]])
    method = MMAnatMethod(PositionEncoderStandIn(channels=32), 'standin+consensus',
                          match_method='consensus', consensus_cfg=dict(n_points=500))
    pred = method(tpl, q, moved(tpl, shift))
    assert np.linalg.norm(pred - (q + shift), axis=1).max() < 1.0


def test_consensus_is_the_default_method(affine_case):
    """Consensus wins the benchmarks, so it is what match() does unless told otherwise;
    stable points (a refinement of the reference search) keep the reference search."""
    tpl, tgt, q = affine_case[:3]
    assert match(tpl, q[:3], tgt, consensus_cfg=dict(n_points=800)).method == 'consensus'
    assert match(tpl, q[:3], tgt, stable_points=True).method == 'reference+stable_points'
    assert match(tpl, q[:3], tgt, method='reference').method == 'reference'
