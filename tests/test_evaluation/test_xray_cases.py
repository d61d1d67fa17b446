"""The 2D cases of the ``xray`` benchmark: known 2D deformations, deformed radiographs and
synthetic cross-subject radiograph pairs."""
import numpy as np
import pytest
from scipy import ndimage

from mmanat.evaluation.cases import (LandmarkCase, deform_case, radiograph_body_mask,
                                     random_deformation, random_target_grid, warp_image,
                                     xray_cross_subject_cases, xray_deformation_cases)
from mmanat.structures import MedicalImage
from mmanat.utils.exceptions import InvalidInputError

FLIPPED = np.array([[1.0, 0.0], [0.0, -1.0]])  # the radiograph direction of render_xray


def _chest(direction=None):
    """A 2D chest-like radiograph at 2 mm: a bright body ellipse with two darker lungs and a
    bright spine, dark air around."""
    yy, xx = np.mgrid[0:120, 0:140].astype(np.float64)
    arr = np.full(yy.shape, 0.05)
    body = ((yy - 62) / 52.0) ** 2 + ((xx - 70) / 60.0) ** 2 < 1
    arr[body] = 0.6
    for cx in (45, 95):
        arr[((yy - 55) / 30.0) ** 2 + ((xx - cx) / 17.0) ** 2 < 1] = 0.3
    arr[(np.abs(xx - 70) < 5) & body] = 0.9
    arr += 0.03 * np.sin(xx / 7.0) * np.cos(yy / 9.0)
    return MedicalImage(arr.astype(np.float32), spacing=(2.0, 2.0), origin=(-140.0, 250.0),
                        direction=direction, modality='XR')


@pytest.mark.parametrize('direction', [None, FLIPPED])
def test_2d_deformation_forward_and_back(direction):
    img = _chest(direction)
    rng = np.random.default_rng(4)
    deformation = random_deformation(img, rng, max_rotation_deg=8, max_translation_mm=10,
                                     max_displacement_mm=8, smoothness_mm=30,
                                     field_spacing_mm=8)
    assert deformation.ndim == 2 and deformation.field.shape[-1] == 2
    assert np.abs(deformation.field).max() > 1.0  # really deformable
    p = img.index_to_world(rng.uniform(10, 100, size=(25, 2)))
    q = deformation.template_to_target(p)
    assert np.linalg.norm(q - p, axis=1).max() > 1.0
    # mapped forward (template -> target) and back (target -> template): the same point
    np.testing.assert_allclose(deformation.target_to_template(q), p, atol=1e-4)
    # SimpleITK's transform (used for warping) is the same map
    tx = deformation.sitk_transform()
    np.testing.assert_allclose([tx.TransformPoint(tuple(v)) for v in q], p, atol=1e-4)
    # a marked pixel appears in the warped image where the ground truth says
    marked = np.zeros(img.shape, np.float32)
    marked[60, 70] = 1000.0
    src = img.with_array(ndimage.gaussian_filter(marked, 1.2))
    p0 = img.array_index_to_world(np.array([60.0, 70.0]))
    q0 = deformation.template_to_target(p0[None])[0]
    grid = random_target_grid(img, rng, (0.05, 0.05), 0.1)
    assert grid.ndim == 2
    warped = warp_image(src, deformation, grid)
    w = warped.array * (warped.array > 0.3 * warped.array.max())
    found = warped.array_index_to_world(np.array(ndimage.center_of_mass(w)))
    assert np.linalg.norm(found - q0) < 0.6, (found, q0)
    assert np.linalg.norm(found - deformation.target_to_template(p0[None])[0]) > 2.0


def test_3d_draws_unchanged_by_the_2d_generalisation():
    """A 3D deformation draws its random numbers in the old order: the same generator state
    after it as after the 3D-only draws (rotation angle and axis, scales, translation,
    noise)."""
    img = MedicalImage(np.zeros((6, 7, 8), np.float32), spacing=(8.0, 8.0, 8.0))
    rng = np.random.default_rng(11)
    random_deformation(img, rng, field_spacing_mm=16.0, margin_mm=32.0)
    ref = np.random.default_rng(11)
    ref.uniform(-1, 1)
    ref.normal(size=3)
    ref.uniform(-1, 1, size=3)
    ref.uniform(-1, 1, size=3)
    n = np.ceil(((img.size - 1) * img.spacing + 64.0) / 16.0).astype(int) + 1
    ref.standard_normal(tuple(n[::-1]) + (3,))
    assert rng.uniform() == ref.uniform()


def test_deform_case_2d_points_inside_body_and_target():
    img = _chest(FLIPPED)
    body = radiograph_body_mask(img)
    assert body.shape == img.shape and 0.3 < body.mean() < 0.8
    assert body[55, 45] and body[55, 95]  # the darker lungs are filled in
    case, deformation = deform_case(img, np.random.default_rng(2), n_points=15, body=body,
                                    erode_mm=6.0, edge_margin_mm=4.0)
    assert isinstance(case, LandmarkCase) and case.ndim == 2 and case.target.ndim == 2
    assert 0 < len(case.template_points) <= 15 and case.template_points.shape[1] == 2
    assert np.all(case.target.contains_world(case.target_points))
    rc = np.rint(img.world_to_array_index(case.template_points)).astype(int)
    assert body[rc[:, 0], rc[:, 1]].all()
    np.testing.assert_allclose(deformation.target_to_template(case.target_points),
                               case.template_points, atol=1e-3)
    assert case.target.size.prod() < img.size.prod()  # field of view was cut
    assert case.meta['fov_cut'] == [0.1, 0.1]


def test_xray_deformation_cases_and_errors():
    img = _chest()
    cases = xray_deformation_cases(img, n_cases=2, n_points=10, spacing=3.0, seed=5,
                                   name='toy', erode_mm=6.0)
    assert [c.name for c in cases] == ['toy/def0', 'toy/def1']
    assert np.allclose(cases[0].template.spacing, 3.0)
    assert all(c.meta['kind'] == 'xray_deformation' for c in cases)
    assert not np.allclose(cases[0].target_points[:3], cases[1].target_points[:3])
    again = xray_deformation_cases(img, n_cases=1, n_points=10, spacing=3.0, seed=5,
                                   name='toy', erode_mm=6.0)
    np.testing.assert_array_equal(again[0].target_points, cases[0].target_points)
    vol = MedicalImage(np.zeros((4, 5, 6), np.float32))
    with pytest.raises(InvalidInputError, match='2D radiograph'):
        xray_deformation_cases(vol)
    with pytest.raises(InvalidInputError, match='both must be 3D or both 2D'):
        LandmarkCase('mixed', img, vol, np.zeros((1, 2)), np.zeros((1, 2)))


def test_xray_cross_subject_cases_landmarks_inside_both():
    cases = xray_cross_subject_cases(n_templates=1, n_targets=2, spacing=6.0, seed=3)
    assert [c.name for c in cases] == ['s3->s4', 's3->s5']
    for case in cases:
        assert case.template.modality == 'XR' and case.ndim == 2
        assert len(case.names) >= 5 and case.template_points.shape == (len(case.names), 2)
        for img, pts in ((case.template, case.template_points),
                         (case.target, case.target_points)):
            idx = img.world_to_index(pts)
            assert np.all(idx >= 4.0 / 6.0 - 1e-9) and np.all(idx <= img.size - 1 - 4.0 / 6.0)
        # the same subjects: one template radiograph for every target
        assert case.template is cases[0].template
    # the two targets are different subjects
    assert cases[0].target.shape != cases[1].target.shape or not np.allclose(
        cases[0].target.array, cases[1].target.array)
    with pytest.raises(InvalidInputError, match='at least one template'):
        xray_cross_subject_cases(n_targets=0)
