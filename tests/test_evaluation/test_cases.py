import numpy as np
import pytest
from scipy import ndimage

from mmanat.evaluation.cases import (deform_case, lesion_box_voxels, random_deformation,
                                     random_target_grid, sample_body_points, warp_image)
from mmanat.evaluation.cases.deformation import _rotation
from mmanat.structures import MedicalImage

OBLIQUE_DIRECTION = _rotation((1.0, 2.0, 3.0), np.deg2rad(25.0))


def _volume(direction=None):
    arr = np.zeros((30, 32, 34), np.float32)
    return MedicalImage(arr, spacing=(2.0, 2.5, 3.0), origin=(10.0, -20.0, 5.0),
                        direction=direction, modality='MR')


@pytest.mark.parametrize('direction', [None, OBLIQUE_DIRECTION])
def test_marked_voxel_lands_at_ground_truth(direction):
    img = _volume(direction)
    rng = np.random.default_rng(3)
    deformation = random_deformation(img, rng, max_rotation_deg=10, max_translation_mm=8,
                                     max_displacement_mm=8, smoothness_mm=25,
                                     field_spacing_mm=6)
    assert np.abs(deformation.field).max() > 1.0  # really deformable
    grid = random_target_grid(img, rng, (0.05, 0.05, 0.05), 0.1)
    marked = np.zeros(img.shape, np.float32)
    zyx = (15, 16, 14)
    marked[zyx] = 1000.0
    src = img.with_array(ndimage.gaussian_filter(marked, 1.2))
    p = img.array_index_to_world(np.array(zyx, float))
    q = deformation.template_to_target(p[None])[0]
    # exact inverse: SimpleITK's transform (used for resampling) maps q back onto p
    back = np.array(deformation.sitk_transform().TransformPoint(tuple(q)))
    np.testing.assert_allclose(back, p, atol=1e-4)
    # and the numpy forward model agrees with SimpleITK elsewhere too
    qs = grid.index_to_world(rng.uniform(0, grid.size - 1, size=(20, 3)))
    sitk_fw = np.array([deformation.sitk_transform().TransformPoint(tuple(v)) for v in qs])
    np.testing.assert_allclose(deformation.target_to_template(qs), sitk_fw, atol=1e-6)
    # the bright spot appears in the warped image where the ground truth says
    warped = warp_image(src, deformation, grid)
    w = warped.array * (warped.array > 0.3 * warped.array.max())
    found = warped.array_index_to_world(np.array(ndimage.center_of_mass(w)))
    assert np.linalg.norm(found - q) < 0.6, (found, q)
    # a wrong direction (forward instead of inverse) would be far off
    assert np.linalg.norm(found - deformation.target_to_template(p[None])[0]) > 3.0


def test_deform_case_points_and_fov():
    arr = np.full((24, 40, 40), -1000.0, np.float32)
    zz, yy, xx = np.meshgrid(*[np.arange(s) for s in arr.shape], indexing='ij')
    body = ((yy - 20) / 15.0) ** 2 + ((xx - 20) / 17.0) ** 2 < 1
    arr[body] = 40.0 + 5 * np.sin(zz[body])
    img = MedicalImage(arr, spacing=(2.0, 2.0, 4.0), origin=(-40, -40, 0), modality='CT')
    pts = sample_body_points(img, 10, np.random.default_rng(0), erode_mm=4)
    assert np.all(img.array[tuple(np.rint(img.world_to_array_index(pts)).astype(int).T)] > 0)
    case, deformation = deform_case(img, np.random.default_rng(1), n_points=20,
                                    edge_margin_mm=4.0)
    assert 0 < len(case.template_points) <= 20
    assert np.all(case.target.contains_world(case.target_points))
    assert case.target.size.prod() < img.size.prod()  # field of view was cut
    np.testing.assert_allclose(deformation.target_to_template(case.target_points),
                               case.template_points, atol=1e-3)


def test_lesion_box_of_ball():
    img = MedicalImage(np.zeros((20, 20, 20)), spacing=(1.0, 1.0, 2.0), origin=(0, 0, 0))
    box, centre, diam = lesion_box_voxels(img, [10.0, 8.0, 20.0], 4.0)
    np.testing.assert_allclose(centre, [10, 8, 10])
    np.testing.assert_allclose(box, [6, 4, 8, 8, 8, 4])
    np.testing.assert_allclose(diam, [8, 8])
