"""Reorientation and resampling keep world coordinates: marked voxels, linear fields, extent."""
import numpy as np
import pytest
import SimpleITK as sitk

from mmanat.structures import (MedicalImage, reorient, resample_to_reference,
                               resample_to_spacing)
from mmanat.utils.exceptions import InvalidInputError


def _marked(shape=(9, 10, 11), mark=(3, 7, 2), **geometry):
    arr = np.zeros(shape, dtype=np.uint8)
    arr[mark] = 1
    return MedicalImage(arr, **geometry)


def _mark_world(image):
    """World centroid of the non-zero voxels."""
    zyx = np.argwhere(image.array > 0)
    return image.array_index_to_world(zyx).mean(0)


def _linear_field(image, coef=(0.5, -1.25, 2.0), offset=3.0):
    """Image whose value at each voxel is an affine function of its world position."""
    zyx = np.indices(image.shape).reshape(image.ndim, -1).T
    world = image.array_index_to_world(zyx)
    values = world @ np.asarray(coef) + offset
    return image.with_array(values.reshape(image.shape).astype(np.float64))


FLIPPED = dict(spacing=(0.9, 1.3, 2.5), origin=(40.0, -12.5, 88.0),
               direction=np.diag([-1.0, 1.0, -1.0]))
PERMUTED = dict(spacing=(0.9, 1.3, 2.5), origin=(-4.0, 12.5, 8.0),
                direction=np.array([[0, 0, 1], [1, 0, 0], [0, -1, 0]], dtype=float))


@pytest.mark.parametrize('geometry', [FLIPPED, PERMUTED])
@pytest.mark.parametrize('code', ['LPS', 'RAS', 'SAL'])
def test_reorient_keeps_marked_voxel_world(geometry, code):
    image = _marked(**geometry)
    before = _mark_world(image)
    out = reorient(image, code)
    np.testing.assert_allclose(_mark_world(out), before, atol=1e-6)
    assert out.array.sum() == 1
    # the axes now point along the requested letters
    signs = {'L': (0, 1), 'R': (0, -1), 'P': (1, 1), 'A': (1, -1), 'S': (2, 1), 'I': (2, -1)}
    expected = np.zeros((3, 3))
    for col, letter in enumerate(code):
        row, sign = signs[letter]
        expected[row, col] = sign
    np.testing.assert_allclose(out.direction, expected, atol=1e-12)


def test_reorient_lps_gives_identity_and_keeps_every_voxel(oblique_volume):
    image = MedicalImage(oblique_volume.array, **FLIPPED, modality='CT')
    out = reorient(image)
    np.testing.assert_allclose(out.direction, np.eye(3), atol=1e-12)
    assert out.modality == 'CT'
    # every voxel: same value at the same world position
    zyx = np.indices(out.shape).reshape(3, -1).T
    world = out.array_index_to_world(zyx)
    src = np.rint(image.world_to_array_index(world)).astype(int)
    np.testing.assert_array_equal(image.array[tuple(src.T)], out.array.reshape(-1))


def test_reorient_oblique_keeps_marked_voxel(oblique_volume):
    image = _marked(shape=(16, 14, 12), mark=(7, 6, 5), spacing=oblique_volume.spacing,
                    origin=oblique_volume.origin, direction=oblique_volume.direction)
    out = reorient(image)
    np.testing.assert_allclose(_mark_world(out), _mark_world(image), atol=1e-6)
    # the result is the permutation/flip closest to LPS: a dominant positive diagonal
    assert np.all(np.diag(out.direction) > 0.5)


@pytest.mark.parametrize('code', ['LP', 'LLS', 'XYZ', 'LPSR'])
def test_reorient_rejects_bad_codes(oblique_volume, code):
    with pytest.raises(InvalidInputError, match='orientation'):
        reorient(oblique_volume, code)


def test_reorient_rejects_2d():
    with pytest.raises(InvalidInputError, match='3D'):
        reorient(MedicalImage(np.zeros((4, 5))))


def test_resample_finer_nearest_keeps_marked_voxel_exactly(oblique_volume):
    image = _marked(shape=(16, 14, 12), mark=(7, 6, 5), spacing=oblique_volume.spacing,
                    origin=oblique_volume.origin, direction=oblique_volume.direction)
    out = resample_to_spacing(image, np.asarray(image.spacing) / 2, interpolation='nearest')
    assert out.array.dtype == np.uint8
    assert out.array.sum() == 8  # the marked voxel becomes a 2x2x2 block
    np.testing.assert_allclose(_mark_world(out), _mark_world(image), atol=1e-6)


def test_reorient_then_resample_keeps_marked_voxel(oblique_volume):
    image = _marked(shape=(9, 10, 11), mark=(3, 7, 2), **PERMUTED)
    lps = reorient(image)
    np.testing.assert_allclose(lps.spacing, [2.5, 0.9, 1.3])  # axes permuted with the grid
    out = resample_to_spacing(lps, lps.spacing / 2, interpolation='nearest')
    assert out.array.sum() == 8
    np.testing.assert_allclose(_mark_world(out), _mark_world(image), atol=1e-6)


@pytest.mark.parametrize('spacing', [2.0, (1.7, 0.6, 3.1)])
def test_resample_linear_reproduces_linear_field(oblique_volume, spacing):
    """Linear interpolation is exact on an affine field, so any geometry error shows."""
    field = _linear_field(oblique_volume)
    out = resample_to_spacing(field, spacing, default_value=np.nan)
    zyx = np.indices(out.shape).reshape(3, -1).T
    world = out.array_index_to_world(zyx)
    expected = world @ np.array([0.5, -1.25, 2.0]) + 3.0
    inside = field.contains_world(world, margin=0.0)
    assert inside.sum() > 20
    np.testing.assert_allclose(out.array.reshape(-1)[inside], expected[inside], atol=1e-6)
    assert np.isnan(out.array.reshape(-1)[~field.contains_world(world, margin=1.0)]).all()


def test_resample_keeps_extent_and_centre(oblique_volume):
    out = resample_to_spacing(oblique_volume, 2.0)
    old_extent = oblique_volume.size * oblique_volume.spacing
    new_extent = out.size * out.spacing
    assert np.all(np.abs(new_extent - old_extent) <= 2.0 / 2 + 1e-9)
    centre_old = oblique_volume.index_to_world((oblique_volume.size - 1) / 2)
    centre_new = out.index_to_world((out.size - 1) / 2)
    np.testing.assert_allclose(centre_new, centre_old, atol=1e-9)
    np.testing.assert_allclose(out.direction, oblique_volume.direction)
    assert out.size.tolist() == [5, 8, 20]  # round(12*.8/2), round(14*1.1/2), round(16*2.5/2)
    assert out.array.dtype == np.float32  # linear on int16
    assert out.modality == 'CT'


def test_resample_nearest_keeps_labels_and_default_value():
    lab = np.zeros((10, 10, 10), np.int16)
    lab[2:8, 2:8, 2:8] = 5
    lab[4:6, 4:6, 4:6] = 9
    image = MedicalImage(lab, spacing=(1.0, 1.0, 1.0))
    out = resample_to_spacing(image, 0.7, interpolation='nearest')
    assert out.array.dtype == np.int16
    assert set(np.unique(out.array)) == {0, 5, 9}
    shifted = MedicalImage(np.ones((4, 4, 4), np.float32))
    ref = MedicalImage(np.zeros((4, 4, 4)), origin=(2.0, 0.0, 0.0))
    moved = resample_to_reference(shifted, ref, default_value=-7.0)
    np.testing.assert_array_equal(moved.array[:, :, 2:], -7.0)
    np.testing.assert_array_equal(moved.array[:, :, :2], 1.0)


@pytest.mark.parametrize('bad', [0.0, -1.0, np.nan, (1.0, 2.0)])
def test_resample_rejects_bad_spacing(oblique_volume, bad):
    with pytest.raises(InvalidInputError, match='spacing'):
        resample_to_spacing(oblique_volume, bad)


def test_resample_rejects_unknown_interpolation(oblique_volume):
    with pytest.raises(InvalidInputError, match='interpolation'):
        resample_to_spacing(oblique_volume, 2.0, interpolation='cubic-ish')


def test_resample_to_reference_grid_and_values(oblique_volume):
    field = _linear_field(oblique_volume)
    ref = MedicalImage(np.zeros((6, 7, 8), np.uint8), spacing=(1.5, 1.5, 2.0),
                       origin=oblique_volume.index_to_world([5, 6, 7]) - 4.0)
    out = resample_to_reference(field, ref, default_value=np.nan)
    assert out.same_geometry(ref)
    world = out.array_index_to_world(np.indices(out.shape).reshape(3, -1).T)
    inside = field.contains_world(world, margin=0.0)
    expected = world @ np.array([0.5, -1.25, 2.0]) + 3.0
    assert inside.sum() > 50
    np.testing.assert_allclose(out.array.reshape(-1)[inside], expected[inside], atol=1e-6)


def test_resample_to_reference_with_transform(oblique_volume):
    """transform maps reference-grid world points to image world points (ITK convention)."""
    field = _linear_field(oblique_volume)
    shift = np.array([1.5, -2.0, 0.75])
    mat = np.eye(4)
    mat[:3, 3] = shift
    as_matrix = resample_to_reference(field, field, transform=mat, default_value=np.nan)
    tr = sitk.TranslationTransform(3, shift.tolist())
    as_sitk = resample_to_reference(field, field, transform=tr, default_value=np.nan)
    np.testing.assert_array_equal(np.isnan(as_matrix.array), np.isnan(as_sitk.array))
    ok = ~np.isnan(as_matrix.array)
    np.testing.assert_allclose(as_matrix.array[ok], as_sitk.array[ok], atol=1e-9)
    world = field.array_index_to_world(np.indices(field.shape).reshape(3, -1).T)
    expected = (world + shift) @ np.array([0.5, -1.25, 2.0]) + 3.0
    valid = field.contains_world(world + shift, margin=0.0)
    np.testing.assert_allclose(as_matrix.array.reshape(-1)[valid], expected[valid], atol=1e-6)
    with pytest.raises(InvalidInputError, match='homogeneous'):
        resample_to_reference(field, field, transform=np.eye(3))


def test_resample_2d():
    img = MedicalImage(np.arange(20 * 30, dtype=np.float32).reshape(20, 30), spacing=(0.5, 0.25))
    out = resample_to_spacing(img, 1.0)
    assert out.shape == (5, 15)
    np.testing.assert_allclose(out.index_to_world((out.size - 1) / 2),
                               img.index_to_world((img.size - 1) / 2))


def test_real_ct_resamples_to_2mm_with_same_extent(real_ct_paths):
    from mmanat.fileio import read_volume
    for key in ('lung1', 'lung2'):
        image = read_volume(real_ct_paths[key])
        out = resample_to_spacing(image, 2.0)
        np.testing.assert_allclose(out.spacing, [2.0, 2.0, 2.0])
        extent_old = image.size * image.spacing
        extent_new = out.size * out.spacing
        assert np.all(np.abs(extent_new - extent_old) <= 2.0), (key, extent_old, extent_new)
        lo_old, hi_old = image.world_bounds()
        lo_new, hi_new = out.world_bounds()
        # outer voxel faces within one 2 mm voxel
        assert np.all(np.abs((lo_new - 1.0) - (lo_old - image.spacing / 2)) <= 2.0)
        assert np.all(np.abs((hi_new + 1.0) - (hi_old + image.spacing / 2)) <= 2.0)
        label = read_volume(real_ct_paths[key + '_label'])
        lab2 = resample_to_spacing(label, 2.0, interpolation='nearest')
        assert lab2.same_geometry(out)
        vol_old = (label.array > 0).sum() * np.prod(label.spacing)
        vol_new = (lab2.array > 0).sum() * 8.0
        assert abs(vol_new - vol_old) / vol_old < 0.15
        # the tumour centroid stays put (world mm)
        np.testing.assert_allclose(_mark_world(lab2), _mark_world(label), atol=1.5)
