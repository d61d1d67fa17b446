"""Dense propagation (mmanat.apis.propagation): with the analytic position encoder, a moved
copy of a volume matches every point at exactly the shift, so labels and points must come out
moved by it."""
import numpy as np
import pytest

from mmanat.apis import embed
from mmanat.apis.propagation import (CorrespondenceField, dice_per_label,
                                     fit_correspondence_field, grid_points, propagate_labels,
                                     propagate_points, reference_image)
from mmanat.structures import MedicalImage
from mmanat.utils.exceptions import InvalidInputError
from tests.helpers.position_encoder_standin import PositionEncoderStandIn, moved, quadratic_volume

SHIFT = np.array([6.0, -4.0, 4.0])  # x, y, z mm


@pytest.fixture(scope='module')
def pair():
    model = PositionEncoderStandIn(channels=32)
    tpl = quadratic_volume(shape=(24, 40, 40), origin=(-40.0, -45.0, -20.0))
    tgt = moved(tpl, SHIFT)
    return tpl, tgt, embed(model, tpl), embed(model, tgt)


def interior(shape, border=3):
    """The stand-in's positions are exact only away from the image border."""
    m = np.zeros(shape, bool)
    m[border:-border, border:-border, border:-border] = True
    return m


def box_labels(image: MedicalImage) -> MedicalImage:
    arr = np.zeros(image.shape, np.int16)
    arr[6:14, 10:22, 12:24] = 1
    arr[14:18, 20:30, 16:30] = 3
    return image.with_array(arr, modality=None)


def test_dice_per_label():
    a = np.zeros((4, 4, 4), np.int16)
    b = a.copy()
    a[:2] = 1
    b[:1] = 1
    b[3] = 2
    d = dice_per_label(a, b)
    assert set(d) == {1, 2}
    assert d[1] == pytest.approx(2 * 16 / (32 + 16))
    assert d[2] == 0.0
    assert np.isnan(dice_per_label(a, b, [5])[5])
    with pytest.raises(InvalidInputError, match='different shapes'):
        dice_per_label(a, b[:2])


def test_field_recovers_shift(pair):
    tpl, tgt, tm, gm = pair
    pts = grid_points(tpl, 8.0, mask=interior(tpl.shape))
    fld = fit_correspondence_field(tm, gm, pts, score_threshold=0.5)
    assert fld.info['n_kept'] >= 12 and fld.info['regularization'] == 'tps'
    # interior points (the border of the moved copy lies outside the target)
    probe = tpl.array_index_to_world(np.array([[8.0, 14.0, 14.0], [12.5, 20.0, 25.0],
                                               [15.0, 26.0, 18.0]]))
    np.testing.assert_allclose(fld.map_points(probe), probe + SHIFT, atol=1.0)
    aff = fit_correspondence_field(tm, gm, pts, regularization='affine')
    assert aff.spline is None
    np.testing.assert_allclose(aff.map_points(probe), probe + SHIFT, atol=1.0)


def test_propagate_labels_moves_them(pair):
    tpl, tgt, tm, gm = pair
    labels = box_labels(tpl)
    out, fld = propagate_labels(tm, labels, gm, tgt, grid_spacing_mm=8.0,
                                score_threshold=0.5, grid_mask=interior(tgt.shape))
    assert out.same_geometry(tgt) and out.array.dtype == labels.array.dtype
    # the target is the same voxels moved by SHIFT: the labels are the same array
    d = dice_per_label(out.array, labels.array)
    assert d[1] > 0.9 and d[3] > 0.9, d
    assert fld.info['total_s'] > 0
    # without the target image: the grid of the target maps, same answer
    out2, _ = propagate_labels(tm, labels, gm, None, grid_spacing_mm=8.0,
                               regularization='affine', grid_mask=interior(tgt.shape))
    assert dice_per_label(out2.array, labels.array)[1] > 0.9


def test_propagate_points_moves_them(pair):
    tpl, tgt, tm, gm = pair
    pts = tpl.array_index_to_world(np.array([[12, 20, 20], [8, 15, 30], [16, 25, 12.5]]))
    found, fld = propagate_points(tm, pts, gm, grid_spacing_mm=8.0,
                                  grid_mask=interior(tpl.shape))
    np.testing.assert_allclose(found, pts + SHIFT, atol=1.0)
    with pytest.raises(InvalidInputError, match=r'\(N, 3\)'):
        propagate_points(tm, pts[:, :2], gm)


def test_bad_inputs(pair):
    tpl, tgt, tm, gm = pair
    pts = grid_points(tm, 12.0)
    with pytest.raises(InvalidInputError, match='regularization'):
        fit_correspondence_field(tm, gm, pts, regularization='bspline')
    with pytest.raises(InvalidInputError, match='score above'):
        fit_correspondence_field(tm, gm, pts, score_threshold=1.5)
    far = box_labels(tpl).with_array(box_labels(tpl).array, origin=(900.0, 900.0, 900.0))
    with pytest.raises(InvalidInputError, match='outside the template'):
        propagate_labels(tm, far, gm)
    floats = tpl.with_array(tpl.array + 0.25)
    with pytest.raises(InvalidInputError, match='non-integer'):
        propagate_labels(tm, floats, gm)
    with pytest.raises(InvalidInputError, match='grid spacing'):
        grid_points(tm, -1.0)


def test_field_to_sitk_matches_map_points(pair):
    import SimpleITK as sitk
    tpl = pair[0]
    rng = np.random.default_rng(0)
    src = rng.uniform(-30, 30, (40, 3))
    from scipy.interpolate import RBFInterpolator
    spline = RBFInterpolator(src, np.sin(src / 20.0) * 3, kernel='thin_plate_spline',
                             smoothing=1.0, degree=1)
    fld = CorrespondenceField(np.eye(3) * 1.02, np.array([1.0, 2.0, -3.0]), spline)
    tr = fld.to_sitk(reference_image(pair[2]), field_spacing_mm=4.0)
    assert isinstance(tr, sitk.DisplacementFieldTransform)
    probe = tpl.index_to_world(np.array([[5.0, 7.0, 3.0], [20.0, 30.0, 12.0]]))
    got = np.array([tr.TransformPoint(tuple(p)) for p in probe])
    np.testing.assert_allclose(got, fld.map_points(probe), atol=0.3)
