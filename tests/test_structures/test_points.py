"""World points: LPS <-> RAS, conversion to voxel indices of any grid, inside checks."""
import numpy as np
import pytest

from mmanat.structures import (MedicalImage, PointSet, check_points_inside, convert_space,
                               reorient, resample_to_spacing)
from mmanat.utils.exceptions import InvalidInputError


def test_lps_ras_flip_x_and_y_only():
    lps = np.array([[10.0, -20.0, 30.0], [-1.5, 2.5, -3.5]])
    ras = convert_space(lps, 'LPS', 'RAS')
    np.testing.assert_array_equal(ras, [[-10.0, 20.0, 30.0], [1.5, -2.5, -3.5]])
    np.testing.assert_array_equal(convert_space(ras, 'ras', 'lps'), lps)
    np.testing.assert_array_equal(convert_space(lps, 'LPS', 'LPS'), lps)


def test_pointset_from_ras_stores_lps():
    pts = PointSet.from_space([[1.0, 2.0, 3.0]], 'RAS', names=['a'])
    np.testing.assert_array_equal(pts.xyz, [[-1.0, -2.0, 3.0]])
    np.testing.assert_array_equal(pts.in_space('RAS'), [[1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(pts['a'], [-1.0, -2.0, 3.0])


def test_unknown_space_rejected():
    with pytest.raises(InvalidInputError, match="'XYZ'"):
        convert_space([0, 0, 0], 'XYZ', 'LPS')


def test_same_world_point_maps_to_consistent_indices_on_every_grid(oblique_volume):
    """One world point -> ITK index of the original, reoriented and 2 mm grids; each index
    maps back to the same world point (1e-6 mm)."""
    rng = np.random.default_rng(3)
    world = oblique_volume.index_to_world(rng.uniform(0, 11, size=(50, 3)))
    grids = [oblique_volume, reorient(oblique_volume), resample_to_spacing(oblique_volume, 2.0),
             resample_to_spacing(reorient(oblique_volume), (1.0, 1.7, 0.9))]
    for grid in grids:
        idx = grid.world_to_index(world)
        np.testing.assert_allclose(grid.index_to_world(idx), world, atol=1e-6)
        sitk_img = grid.to_sitk()
        ref = np.array([sitk_img.TransformPhysicalPointToContinuousIndex(p.tolist())
                        for p in world[:5]])
        np.testing.assert_allclose(idx[:5], ref, atol=1e-9)


def test_check_points_inside_returns_indices(oblique_volume):
    idx = np.array([[0.0, 0.0, 0.0], [11.0, 13.0, 15.0], [5.5, 6.25, 7.75]])
    pts = PointSet(oblique_volume.index_to_world(idx), names=['a', 'b', 'c'])
    np.testing.assert_allclose(check_points_inside(oblique_volume, pts), idx, atol=1e-9)
    # the half-voxel margin accepts points on the outer voxel faces
    edge = oblique_volume.index_to_world([[-0.49, 13.49, 0.0]])
    check_points_inside(oblique_volume, edge)


def test_check_points_inside_names_the_outlier(oblique_volume):
    inside = oblique_volume.index_to_world([3, 3, 3])
    outside = oblique_volume.index_to_world([3, 30, 3])
    pts = PointSet(np.stack([inside, outside]), names=['liver_dome', 'far_away'])
    with pytest.raises(InvalidInputError) as exc:
        check_points_inside(oblique_volume, pts)
    msg = str(exc.value)
    assert 'far_away' in msg and 'liver_dome' not in msg
    assert '1 point(s) outside' in msg and 'RAS' in msg
    with pytest.raises(InvalidInputError, match='shape'):
        check_points_inside(oblique_volume, np.zeros((2, 2)))


def test_check_points_inside_2d():
    img = MedicalImage(np.zeros((20, 10)), spacing=(0.5, 0.5), origin=(100.0, 50.0))
    np.testing.assert_allclose(check_points_inside(img, [[102.0, 55.0]]), [[4.0, 10.0]])
    with pytest.raises(InvalidInputError, match='outside'):
        check_points_inside(img, [[99.0, 55.0]])


def test_pointset_validation():
    with pytest.raises(InvalidInputError, match='non-finite'):
        PointSet([[0.0, np.nan, 1.0]])
    with pytest.raises(InvalidInputError, match='names'):
        PointSet(np.zeros((2, 3)), names=['only-one'])
    sub = PointSet(np.eye(3), names=['a', 'b', 'c'], extra={'s': [1, 2, 3]}).subset([2, 0])
    assert sub.names == ['c', 'a'] and sub.extra['s'] == [3, 1]
