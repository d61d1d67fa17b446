"""Embedding-driven registration (UAE-M): the body grid, the re-exported point fits, and
end-to-end runs with the analytic stand-in model (whose embeddings are exact functions of world
position). The point fits themselves are tested in tests/test_registration/."""
import csv
import os.path as osp

import numpy as np
import pytest

import mmanat.apis as apis
import mmanat.registration as registration
from mmanat.apis import embed, register_with_embeddings
from mmanat.apis.registration import body_grid_points, save_registration
from mmanat.utils.exceptions import InvalidInputError
from tests.helpers.position_encoder_standin import PositionEncoderStandIn, moved, quadratic_volume

SHIFT = np.array([9.3, -11.6, 5.1])  # mm, not a multiple of the 4 mm fine grid


def test_point_fits_re_exported_from_their_home():
    for name in ('kabsch', 'fit_affine_robust', 'fit_rigid_ransac'):
        assert getattr(apis, name) is getattr(registration, name)
    from mmanat.apis import registration as apis_registration
    for name in ('apply_affine', 'fit_rigid_robust', 'fit_landmark_transform'):
        assert getattr(apis_registration, name) is getattr(registration, name)


def test_body_grid_points_inside_mask():
    img = quadratic_volume(shape=(16, 32, 32))
    mask = np.zeros(img.shape, bool)
    mask[:, 8:24, 8:24] = True
    pts = body_grid_points(img, (8.0, 8.0, 8.0), mask=mask)
    idx = np.rint(img.world_to_array_index(pts)).astype(int)
    assert len(pts) > 10 and mask[tuple(idx.T)].all()
    assert len(body_grid_points(img, 8.0, mask=np.ones(img.shape, bool))) == 4 * 8 * 8


@pytest.fixture(scope='module')
def pair():
    model = PositionEncoderStandIn(channels=32)
    fixed = quadratic_volume()
    mov = moved(fixed, SHIFT)  # anatomy at p + SHIFT: the fixed -> moving map is + SHIFT
    return model, fixed, mov, embed(model, mov), embed(model, fixed)


def _landmark_errors(result, fixed):
    lo, hi = fixed.world_bounds()
    q = np.random.default_rng(7).uniform(lo + 20, hi - 20, size=(50, 3))
    before = np.linalg.norm(q - (q + SHIFT), axis=1).mean()  # identity transform
    after = np.linalg.norm(result.map_fixed_to_moving(q) - (q + SHIFT), axis=1).mean()
    return before, after


def test_register_rigidly_moved_copy(pair, tmp_path):
    model, fixed, mov, mmaps, fmaps = pair
    ones = np.ones(mov.shape, bool)
    res = register_with_embeddings(model, mov, fixed, grid_spacing_mm=(16, 16, 16),
                                   score_threshold=0.5, deformable='none', moving_mask=ones,
                                   moving_maps=mmaps, fixed_maps=fmaps)
    before, after = _landmark_errors(res, fixed)
    assert before == pytest.approx(np.linalg.norm(SHIFT))
    assert after < 1.0 and before / after > 15, (before, after)
    np.testing.assert_allclose(res.rigid[0], np.eye(3), atol=0.02)
    np.testing.assert_allclose(res.rigid[1], SHIFT, atol=1.0)
    assert res.kept.sum() >= 0.5 * len(res.kept)
    # the warped moving image lies on the fixed grid and matches the fixed image
    assert res.warped.same_geometry(fixed)
    inner = (slice(4, -4), slice(8, -8), slice(8, -8))
    diff = np.abs(res.warped.array[inner] - fixed.array[inner])
    assert np.median(diff) < 0.05 * np.ptp(fixed.array[inner])
    paths = save_registration(res, tmp_path / 'reg')
    import SimpleITK as sitk
    tr = sitk.ReadTransform(paths['transform'])
    p = (3.0, -4.0, 2.0)
    np.testing.assert_allclose(tr.TransformPoint(p), res.transform.TransformPoint(p), atol=1e-6)
    assert osp.isfile(paths['warped']) and osp.isfile(paths['affine'])
    with open(paths['landmarks']) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(res.kept) and sum(int(r['kept']) for r in rows) == res.kept.sum()


def test_register_with_bspline_keeps_alignment(pair):
    model, fixed, mov, mmaps, fmaps = pair
    res = register_with_embeddings(model, mov, fixed, grid_spacing_mm=(16, 16, 16),
                                   deformable='bspline', moving_mask=np.ones(mov.shape, bool),
                                   moving_maps=mmaps, fixed_maps=fmaps, warp=False,
                                   bspline_overrides=dict(bspline_iterations=10, threads=1))
    before, after = _landmark_errors(res, fixed)
    assert res.transform.GetName() == 'CompositeTransform'
    assert before / after > 5, (before, after)


def test_register_errors(pair):
    model, fixed, mov, mmaps, fmaps = pair
    with pytest.raises(InvalidInputError, match='score'):
        register_with_embeddings(model, mov, fixed, score_threshold=1.01, deformable='none',
                                 moving_mask=np.ones(mov.shape, bool), moving_maps=mmaps,
                                 fixed_maps=fmaps)
    with pytest.raises(InvalidInputError, match='deformable'):
        register_with_embeddings(model, mov, fixed, deformable='demons')
