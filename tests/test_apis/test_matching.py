"""Matching (SAM, arXiv:2012.02383; UAE stable points, arXiv:2311.15111) with the analytic
position-encoder stand-in, whose embeddings are exact functions of world position: a moved copy
must match every point at exactly +shift."""
import numpy as np
import pytest
import torch

from mmanat.apis import embed, match
from mmanat.apis.matching import Matcher
from mmanat.utils.exceptions import InvalidInputError
from tests.helpers.position_encoder_standin import PositionEncoderStandIn, moved, quadratic_volume

SHIFT = np.array([7.3, -10.6, 4.1])  # mm, deliberately not a multiple of the 4 mm fine grid


@pytest.fixture(scope='module')
def model():
    return PositionEncoderStandIn(channels=32)


@pytest.fixture(scope='module')
def template():
    return quadratic_volume()


@pytest.fixture(scope='module')
def template_maps(model, template):
    return embed(model, template)


@pytest.fixture(scope='module')
def shifted_maps(model, template):
    return embed(model, moved(template, SHIFT))


def _queries(image, n, margin_mm, seed=0):
    lo, hi = image.world_bounds()
    return np.random.default_rng(seed).uniform(lo + margin_mm, hi - margin_mm, size=(n, 3))


@pytest.mark.parametrize('method', ['reference', 'coarse_to_fine'])
def test_self_match_within_one_fine_voxel(template, template_maps, method):
    q = _queries(template, 300, 6.0)
    r = match(template_maps, q, template_maps, method=method, refine=False)
    # on the 4 mm fine grid: at most one fine voxel away along every axis
    assert np.abs(r.points - q).max() <= 4.0
    assert r.scores.min() > 0.99 and r.scores.max() <= 1.0 + 1e-5
    refined = match(template_maps, q, template_maps, method=method)
    err = np.linalg.norm(refined.points - q, axis=1)
    assert err.max() < 4.0 and err.mean() < 0.5
    # the match is a fine voxel centre of the target, converted exactly to the original grid
    np.testing.assert_allclose(r.index, template.world_to_index(r.points), atol=1e-9)
    assert np.array_equal(r.index_rounded, np.rint(r.index).astype(int))


@pytest.mark.parametrize('method', ['reference', 'coarse_to_fine'])
def test_known_shift_is_recovered(template, template_maps, shifted_maps, method):
    q = _queries(template, 300, 16.0, seed=1)
    coarse = match(template_maps, q, shifted_maps, method=method, refine=False)
    fine = match(template_maps, q, shifted_maps, method=method, refine=True)
    err0 = np.linalg.norm(coarse.points - (q + SHIFT), axis=1)
    err1 = np.linalg.norm(fine.points - (q + SHIFT), axis=1)
    assert np.abs(coarse.points - (q + SHIFT)).max() <= 4.0 and err1.max() < 4.0
    # sub-voxel refinement helps: mean error about 0.2 mm instead of about 2 mm
    assert err1.mean() < 0.5 and err1.mean() < 0.3 * err0.mean()
    # the median displacement is the shift
    np.testing.assert_allclose(np.median(fine.points - q, axis=0), SHIFT, atol=0.3)


def test_coarse_to_fine_agrees_with_reference(template, template_maps, shifted_maps):
    q = _queries(template, 200, 16.0, seed=2)
    a = match(template_maps, q, shifted_maps, method='reference', refine=False)
    b = match(template_maps, q, shifted_maps, method='coarse_to_fine', refine=False)
    np.testing.assert_array_equal(a.points, b.points)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)


def test_reference_similarity_matches_the_definition(template, template_maps, shifted_maps):
    """The returned score is (fine . F(v) + coarse . C_up(v)/|C_up(v)|) / 2 at the match,
    with C_up the coarse map trilinearly upsampled to the fine grid (computed here directly
    with grid_sample, independently of the implementation's separable upsampling)."""
    from mmanat.apis.search import sample_embeddings
    q = _queries(template, 20, 16.0, seed=3)
    r = match(template_maps, q, shifted_maps, method='reference', refine=False)
    f = sample_embeddings(template_maps, q, 'fine')
    c = sample_embeddings(template_maps, q, 'coarse')
    F_at = sample_embeddings(shifted_maps, r.points, 'fine')  # exact voxel centres
    C_at = sample_embeddings(shifted_maps, r.points, 'coarse')  # trilinear + renormalised
    expect = ((f * F_at).sum(1) + (c * C_at).sum(1)) / 2
    np.testing.assert_allclose(r.scores, expect.numpy(), atol=1e-5)
    # and no other voxel scores higher (brute force over the whole fine grid)
    grid = shifted_maps.grid('fine')
    zz, yy, xx = np.meshgrid(*[np.arange(n) for n in grid.shape], indexing='ij')
    world = grid.array_index_to_world(np.stack([zz, yy, xx], -1).reshape(-1, 3))
    world = world[shifted_maps.source_grid.contains_world(world)]
    Fw = sample_embeddings(shifted_maps, world, 'fine')
    Cw = sample_embeddings(shifted_maps, world, 'coarse')
    brute = ((f @ Fw.t()) + (c @ Cw.t())) / 2
    np.testing.assert_allclose(r.scores, brute.max(1).values.numpy(), atol=1e-5)


def test_chunking_does_not_change_results(template, template_maps, shifted_maps):
    q = _queries(template, 257, 16.0, seed=4)
    for method in ('reference', 'coarse_to_fine'):
        big = match(template_maps, q, shifted_maps, method=method)
        small = match(template_maps, q, shifted_maps, method=method, max_chunk_mb=2)
        np.testing.assert_array_equal(big.extra['grid_points'], small.extra['grid_points'])
        # refined points: the same up to float rounding of differently shaped products
        np.testing.assert_allclose(big.points, small.points, atol=1e-3)
        np.testing.assert_allclose(big.scores, small.scores, atol=1e-6)


def test_many_points_in_one_call(template, template_maps, shifted_maps):
    q = _queries(template, 10000, 16.0, seed=5)
    r = match(template_maps, q, shifted_maps, method='coarse_to_fine')
    assert r.points.shape == (10000, 3) and r.scores.shape == (10000,)
    assert np.median(np.linalg.norm(r.points - (q + SHIFT), axis=1)) < 0.5


def test_points_outside_template_are_listed(template_maps):
    lo, hi = template_maps.source_grid.world_bounds()
    inside = (lo + hi) / 2
    pts = np.stack([inside, hi + 50.0, inside, lo - 3.0])
    with pytest.raises(InvalidInputError) as err:
        match(template_maps, pts, template_maps)
    msg = str(err.value)
    assert '2 query point(s) outside' in msg and 'p1 at' in msg and 'p3 at' in msg
    assert 'p0 at' not in msg and 'RAS' in msg


def test_maps_of_different_models_are_refused(template_maps, template):
    other = embed(PositionEncoderStandIn(channels=32, seed=7), template)
    with pytest.raises(InvalidInputError, match='different models'):
        match(template_maps, template_maps.source_grid.world_bounds()[0][None] + 10, other)


def test_bad_method_is_refused(template_maps):
    with pytest.raises(InvalidInputError, match='unknown matching method'):
        match(template_maps, np.zeros((1, 3)), template_maps, method='fast')


def test_reoriented_target_with_other_geometry():
    """A target stored in another orientation (RAS-like flipped axes), spacing and origin:
    the same world field, so every point matches itself in world mm."""
    model = PositionEncoderStandIn(channels=32)
    tpl = quadratic_volume(shape=(24, 48, 48), origin=(-40.0, -50.0, -20.0))
    flip = np.diag([-1.0, -1.0, 1.0])
    # sizes multiple of the network stride: the stand-in cannot decode positions next to
    # padding (air), so the test avoids it (padding is tested in test_inference.py)
    tgt0 = quadratic_volume(shape=(20, 48, 32), spacing=2.0, origin=(30.0, 40.0, -16.0))
    tgt = tgt0.with_array(tgt0.array, direction=flip)
    # re-evaluate the field on the flipped grid (world positions changed)
    zz, yy, xx = np.meshgrid(*[np.arange(n) for n in tgt.shape], indexing='ij')
    world = tgt.array_index_to_world(np.stack([zz, yy, xx], -1))
    from tests.helpers.position_encoder_standin import FIELD
    arr = FIELD['base'] + ((world - np.array(FIELD['vertex'])) ** 2 *
                           np.array(FIELD['a'])).sum(-1)
    tgt = tgt.with_array(arr.astype(np.float32))
    a, b = embed(model, tpl), embed(model, tgt)
    lo = np.maximum(tpl.world_bounds()[0], tgt.world_bounds()[0]) + 8
    hi = np.minimum(tpl.world_bounds()[1], tgt.world_bounds()[1]) - 8
    q = np.random.default_rng(6).uniform(lo, hi, size=(100, 3))
    r = match(a, q, b, method='reference')
    assert np.linalg.norm(r.points - q, axis=1).mean() < 0.5
    # indices refer to the ORIGINAL (flipped) target grid
    np.testing.assert_allclose(r.index, tgt.world_to_index(r.points), atol=1e-9)


def test_semantic_level_is_used_when_both_maps_have_it(template):
    model = PositionEncoderStandIn(channels=32, semantic=True)
    a = embed(model, template)
    b = embed(model, moved(template, SHIFT))
    assert a.levels == ('fine', 'coarse', 'semantic')
    m = Matcher(a, b)
    assert m.levels == ('fine', 'coarse', 'semantic') and m.prepared.L == 3
    q = _queries(template, 50, 16.0, seed=8)
    for method in ('reference', 'coarse_to_fine'):
        r = m.match(q, method=method)
        assert np.linalg.norm(r.points - (q + SHIFT), axis=1).mean() < 0.5
        assert r.scores.min() > 0.98


def test_stable_points_recover_the_shift(template, template_maps, shifted_maps):
    q = _queries(template, 12, 20.0, seed=9)
    r = match(template_maps, q, shifted_maps, stable_points=True)
    assert r.method == 'reference+stable_points'
    assert np.all(r.extra['num_kept'] > 60)
    assert np.linalg.norm(r.points - (q + SHIFT), axis=1).max() < 0.5
    assert r.scores.min() > 0.99
    src = shifted_maps.source_grid
    assert np.all((r.index >= -1e-9) & (r.index <= src.size - 1 + 1e-9))


def test_stable_points_without_kept_pairs_fall_back_to_plain_match(template, template_maps,
                                                                   shifted_maps):
    q = _queries(template, 5, 20.0, seed=10)
    r = match(template_maps, q, shifted_maps, stable_points=True,
              stable_cfg=dict(score_thr=1.5))  # nothing can pass
    plain = match(template_maps, q, shifted_maps, method='reference')
    assert np.all(r.extra['num_kept'] == 0)
    np.testing.assert_allclose(r.points, plain.points, atol=1e-9)


def test_robust_affine_fit_ignores_outliers():
    """The Huber IRLS fit recovers an affine map despite 20 % gross outliers."""
    from mmanat.apis.stable_points import robust_affine_votes
    rng = np.random.default_rng(11)
    N, P = 3, 125
    q0 = rng.uniform(-50, 50, (N, 3))
    q = q0[:, None] + rng.uniform(-8, 8, (N, P, 3))
    A = np.eye(3) + rng.normal(0, 0.05, (3, 3))
    t = np.array([5.0, -3.0, 2.0])
    k = q0[:, None] + (q - q0[:, None]) @ A.T + t
    out = rng.random((N, P)) < 0.2
    k[out] += rng.uniform(-60, 60, (int(out.sum()), 3))
    keep = np.ones((N, P), bool)
    ans, score, nk = robust_affine_votes(q0, q, k, np.full((N, P), 0.9), keep, 8, 1.345, 10)
    # the answer is the mean vote; inliers vote exactly q0 + t, outliers add their noise/P
    inlier_vote = q0 + t
    assert np.all(nk == P)
    assert np.abs(ans - inlier_vote).max() < 6.0
    assert np.allclose(score, 0.9)


def _quadratic_scores(vertices, H, peak=0.9):
    """Similarities s(d) = peak + (d - v)^T H (d - v) / 2 at the 27 neighbourhood offsets."""
    from mmanat.apis.refinement import NEIGHBOUR_OFFSETS
    d = NEIGHBOUR_OFFSETS.astype(float)[None] - np.asarray(vertices, float)[:, None]
    return torch.from_numpy(peak + 0.5 * np.einsum('nki,ij,nkj->nk', d, H, d))


def test_subvoxel_offsets_find_the_vertex_of_an_oblique_quadratic_peak():
    """The 3x3x3 quadratic fit of the real refinement recovers the vertex of an exactly
    quadratic, oblique (non-diagonal Hessian) peak; vertices beyond half a voxel are clipped."""
    from mmanat.apis.refinement import quadratic_peak_offsets
    vertices = np.array([[0.3, -0.2, 0.4], [-0.45, 0.1, 0.0], [0.0, 0.0, 0.0],
                         [0.8, -0.1, 0.2]])
    H = -np.array([[2.0, 0.5, 0.2], [0.5, 1.5, 0.1], [0.2, 0.1, 1.0]])
    s = _quadratic_scores(vertices, H)
    valid = torch.ones(s.shape, dtype=torch.bool)
    off = quadratic_peak_offsets(s, valid, s[:, 13]).numpy()
    np.testing.assert_allclose(off[:3], vertices[:3], atol=1e-9)
    # 0.8 voxel away: the answer stays within half a voxel of the argmax, on the right side
    assert np.abs(off[3]).max() <= 0.5 + 1e-12 and off[3, 0] == pytest.approx(0.5)


def test_subvoxel_offsets_fall_back_to_axis_parabolas_at_missing_neighbours():
    """Without the full neighbourhood the offset per axis comes from the parabola through the
    two face neighbours (exact for an axis-aligned peak), and is 0 on an axis missing one."""
    from mmanat.apis.refinement import quadratic_peak_offsets
    vertex = np.array([[0.25, -0.35, 0.15]])
    H = -np.diag([1.0, 2.0, 0.5])
    s = _quadratic_scores(vertex, H)
    valid = torch.ones(s.shape, dtype=torch.bool)
    valid[0, 0] = False  # a corner neighbour (image border): no full fit
    off = quadratic_peak_offsets(s, valid, s[:, 13]).numpy()
    np.testing.assert_allclose(off[0], vertex[0], atol=1e-9)
    valid[0, 14] = False  # the +x face neighbour as well: no parabola along x
    off = quadratic_peak_offsets(s, valid, s[:, 13]).numpy()
    np.testing.assert_allclose(off[0], [0.25, -0.35, 0.0], atol=1e-9)


def test_refinement_moves_matches_between_voxel_centres():
    """Analytic maps whose target anatomy is shifted by a fraction of a fine voxel: the
    unrefined argmax is off by up to half a voxel per axis, the refined match (the real
    match(refine=True) path) lands on the true position between the voxel centres."""
    from mmanat.structures.embedding_map import GridGeometry
    from tests.helpers.analytic_maps import analytic_maps, fourier_freqs
    freqs = fourier_freqs(seed=5)
    grid = GridGeometry((24, 48, 48), spacing=2.0, origin=(-47.0, -31.0, -20.0))
    shift = np.array([1.3, -1.7, 0.9])  # mm (x, y, z); the fine grid is 4 mm
    tpl = analytic_maps(grid, lambda w: w, freqs)
    tgt = analytic_maps(grid, lambda w: w - shift, freqs)
    # queries: interior template fine voxel centres, so that every true match lies between
    # target voxel centres by the same fraction
    fg = tpl.grid('fine')
    idx = np.stack(np.meshgrid(*[np.arange(3, n - 3, 2) for n in fg.shape], indexing='ij'), -1)
    q = fg.array_index_to_world(idx.reshape(-1, 3))
    truth = q + shift
    for method in ('reference', 'coarse_to_fine'):
        plain = match(tpl, q, tgt, method=method, refine=False)
        refined = match(tpl, q, tgt, method=method, refine=True)
        err0 = np.linalg.norm(plain.points - truth, axis=1)
        err1 = np.linalg.norm(refined.points - truth, axis=1)
        # the argmax is the nearest voxel centre: the whole shift away
        np.testing.assert_allclose(err0, np.linalg.norm(shift), atol=1e-6)
        # refinement starts from that argmax and moves less than half a voxel per axis
        np.testing.assert_allclose(refined.extra['grid_points'], plain.points, atol=1e-9)
        assert np.abs(refined.points - plain.points).max() <= 2.0 + 1e-9
        assert err1.max() < 0.1 * err0.min(), (method, err1.max())  # measured: 0.06 mm


def test_empty_query_returns_empty_result(template_maps):
    r = match(template_maps, np.zeros((0, 3)), template_maps)
    assert r.points.shape == (0, 3) and len(r) == 0


def test_result_to_pointset(template, template_maps):
    q = _queries(template, 3, 10.0, seed=12)
    ps = match(template_maps, q, template_maps).to_pointset(names=['a', 'b', 'c'])
    assert ps.names == ['a', 'b', 'c']
    assert set(ps.extra) >= {'score', 'i', 'j', 'k'}
    assert all(isinstance(v, int) for v in ps.extra['i'])


def test_device_argument_runs_on_cpu(template, template_maps):
    q = _queries(template, 4, 10.0, seed=13)
    r = match(template_maps, q, template_maps, device=torch.device('cpu'))
    assert np.linalg.norm(r.points - q, axis=1).max() < 2.0
