"""MedicalImage geometry: exact voxel <-> world conversions for oblique, offset grids."""
import numpy as np
import pytest
import SimpleITK as sitk

from mmanat.structures import MedicalImage
from mmanat.utils.exceptions import InvalidInputError


def test_world_index_world_round_trip_is_exact(oblique_volume):
    rng = np.random.default_rng(0)
    idx = rng.uniform(-2, 18, size=(500, 3))
    world = oblique_volume.index_to_world(idx)
    back = oblique_volume.world_to_index(world)
    np.testing.assert_allclose(back, idx, atol=1e-9)
    pts = rng.uniform(-200, 200, size=(500, 3))
    again = oblique_volume.index_to_world(oblique_volume.world_to_index(pts))
    assert np.abs(again - pts).max() < 1e-6  # mm


def test_index_to_world_matches_simpleitk(oblique_volume):
    """The geometry must agree with ITK's own definition for every voxel corner case."""
    img = oblique_volume.to_sitk()
    rng = np.random.default_rng(1)
    random = [tuple(v) for v in rng.uniform(0, 10, (5, 3))]
    for idx in [(0, 0, 0), (11, 13, 15), (3, 0, 7)] + random:
        ref = img.TransformContinuousIndexToPhysicalPoint([float(v) for v in idx])
        np.testing.assert_allclose(oblique_volume.index_to_world(idx), ref, atol=1e-9)
        back = img.TransformPhysicalPointToContinuousIndex(ref)
        np.testing.assert_allclose(oblique_volume.world_to_index(ref), back, atol=1e-9)


def test_origin_is_world_position_of_first_voxel(oblique_volume):
    np.testing.assert_allclose(oblique_volume.index_to_world([0, 0, 0]), oblique_volume.origin)
    np.testing.assert_allclose(oblique_volume.array_index_to_world([0, 0, 0]),
                               oblique_volume.origin)
    assert np.linalg.norm(oblique_volume.origin) > 10  # the fixture really has an offset


def test_array_order_is_zyx(oblique_volume):
    """array[z, y, x] sits at ITK index (x, y, z)."""
    z, y, x = 7, 6, 5  # inside the bright block
    assert oblique_volume.array[z, y, x] == 1500
    w = oblique_volume.index_to_world([x, y, z])
    np.testing.assert_allclose(oblique_volume.array_index_to_world([z, y, x]), w)
    np.testing.assert_allclose(oblique_volume.world_to_array_index(w), [z, y, x], atol=1e-9)
    assert oblique_volume.size.tolist() == [12, 14, 16]
    assert oblique_volume.shape == (16, 14, 12)


def test_sitk_round_trip_keeps_everything(oblique_volume):
    back = MedicalImage.from_sitk(oblique_volume.to_sitk(), modality='CT')
    assert back.same_geometry(oblique_volume, tol=1e-12)
    np.testing.assert_array_equal(back.array, oblique_volume.array)


def test_contains_world_and_bounds(oblique_volume):
    lo, hi = oblique_volume.world_bounds()
    corners = oblique_volume.index_to_world([[0, 0, 0], [11, 13, 15]])
    assert np.all(corners >= lo - 1e-9) and np.all(corners <= hi + 1e-9)
    inside = oblique_volume.index_to_world([[5, 5, 5], [11.4, 13.4, 15.4]])
    outside = oblique_volume.index_to_world([[-1, 5, 5], [5, 5, 16]])
    assert oblique_volume.contains_world(inside).all()
    assert not oblique_volume.contains_world(outside).any()


@pytest.mark.parametrize('spacing', [(0.0, 1.0, 1.0), (1.0, -2.0, 1.0), (1.0, 1.0, np.nan),
                                     (1.0, np.inf, 1.0)])
def test_invalid_spacing_rejected(spacing):
    with pytest.raises(InvalidInputError, match='spacing') as exc:
        MedicalImage(np.zeros((2, 2, 2)), spacing=spacing)
    assert 'finite and > 0' in str(exc.value)


def test_singular_direction_rejected():
    direction = np.array([[1, 1, 0], [0, 0, 0], [0, 0, 1]], dtype=float)
    with pytest.raises(InvalidInputError, match='singular'):
        MedicalImage(np.zeros((2, 2, 2)), direction=direction)


def test_4d_array_rejected():
    with pytest.raises(InvalidInputError, match='4 dimensions'):
        MedicalImage(np.zeros((2, 2, 2, 2)))


def test_vector_sitk_image_rejected():
    img = sitk.Image([3, 4, 5], sitk.sitkVectorFloat32, 3)
    with pytest.raises(InvalidInputError, match='3 components'):
        MedicalImage.from_sitk(img)


def test_with_array_keeps_geometry_and_copies_meta(oblique_volume):
    oblique_volume.meta['a'] = [1]
    other = oblique_volume.with_array(np.zeros(oblique_volume.shape, np.uint8))
    assert other.same_geometry(oblique_volume)
    other.meta['a'].append(2)
    assert oblique_volume.meta['a'] == [1]
