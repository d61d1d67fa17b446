"""Reading and writing images: every format keeps the array and the geometry."""
import os

import numpy as np
import pytest
import SimpleITK as sitk

from mmanat.fileio import (guess_modality, read_image, read_volume, read_xray, write_image)
from mmanat.structures import MedicalImage
from mmanat.utils.exceptions import InvalidInputError


@pytest.mark.parametrize('ext', ['.nii', '.nii.gz', '.nrrd', '.mha', '.mhd'])
def test_volume_round_trip_keeps_geometry(tmp_path, oblique_volume, ext):
    path = tmp_path / f'vol{ext}'
    written = write_image(oblique_volume, path)
    assert os.path.isfile(written)
    back = read_volume(path)
    np.testing.assert_array_equal(back.array, oblique_volume.array)
    assert back.array.dtype == np.int16
    np.testing.assert_allclose(back.spacing, oblique_volume.spacing, atol=1e-6)
    np.testing.assert_allclose(back.origin, oblique_volume.origin, atol=1e-5)
    np.testing.assert_allclose(back.direction, oblique_volume.direction, atol=1e-6)
    # the same voxel sits at the same world position
    np.testing.assert_allclose(back.index_to_world([5, 6, 7]),
                               oblique_volume.index_to_world([5, 6, 7]), atol=1e-5)
    assert back.path == str(path)
    assert back.modality == 'CT'
    leftovers = [p for p in os.listdir(tmp_path) if p.startswith('.tmp')]
    assert leftovers == []


def test_mhd_writes_header_and_data_file(tmp_path, oblique_volume):
    write_image(oblique_volume, tmp_path / 'v.mhd')
    names = sorted(os.listdir(tmp_path))
    assert names[0] == 'v.mhd' and names[1].startswith('v.') and names[1] != 'v.mhd'
    assert len(names) == 2


@pytest.mark.parametrize('dtype', [np.uint8, np.int16, np.int32, bool])
@pytest.mark.parametrize('ext', ['.nii.gz', '.nrrd'])
def test_label_map_round_trip(tmp_path, oblique_volume, dtype, ext):
    lab = np.zeros(oblique_volume.shape, dtype=dtype)
    lab[2:5, 3:9, 1:4] = 1
    if dtype is not bool:
        lab[6:8, 1:2, 5:11] = 7
    image = oblique_volume.with_array(lab, modality=None)
    back = read_volume(write_image(image, tmp_path / f'lab{ext}'))
    np.testing.assert_array_equal(back.array, lab.astype(back.array.dtype))
    assert back.array.dtype == (np.uint8 if dtype is bool else dtype)
    assert back.modality == 'OT'  # few small integers: a label map
    np.testing.assert_allclose(back.direction, oblique_volume.direction, atol=1e-6)


def test_int64_labels_written_as_int32(tmp_path, oblique_volume):
    image = oblique_volume.with_array(np.ones(oblique_volume.shape, np.int64) * 3)
    back = read_volume(write_image(image, tmp_path / 'l.nrrd'))
    assert back.array.dtype == np.int32 and back.array.max() == 3


def test_modality_stored_in_nrrd_header(tmp_path, oblique_volume):
    image = oblique_volume.with_array(oblique_volume.array + 2000, modality='MR')
    back = read_volume(write_image(image, tmp_path / 'mr.nrrd'))
    assert back.modality == 'MR' and back.meta['modality_source'] == 'header'
    back = read_volume(tmp_path / 'mr.nrrd', modality='ct')
    assert back.modality == 'CT' and back.meta['modality_source'] == 'argument'


def test_float_volume_round_trip(tmp_path, oblique_volume):
    image = oblique_volume.with_array(oblique_volume.array.astype(np.float32) / 7)
    back = read_volume(write_image(image, tmp_path / 'f.mha'))
    np.testing.assert_array_equal(back.array, image.array)


def test_dicom_series_folder(tmp_path, oblique_volume, dicom_series_writer):
    folder = dicom_series_writer(tmp_path / 'ct', oblique_volume.array,
                                 spacing=oblique_volume.spacing, origin=oblique_volume.origin,
                                 direction=oblique_volume.direction, modality='CT')
    image = read_volume(folder)
    np.testing.assert_array_equal(image.array, oblique_volume.array)
    np.testing.assert_allclose(image.spacing, oblique_volume.spacing, atol=1e-6)
    np.testing.assert_allclose(image.origin, oblique_volume.origin, atol=1e-6)
    np.testing.assert_allclose(image.direction, oblique_volume.direction, atol=1e-6)
    assert image.modality == 'CT' and image.meta['modality_source'] == 'dicom'
    assert image.meta['num_files'] == 16


def test_dicom_modality_tag_wins_over_intensity(tmp_path, dicom_series_writer):
    arr = np.full((3, 8, 8), -1000, np.int16)  # looks like CT, tagged MR
    folder = dicom_series_writer(tmp_path / 'mr', arr, modality='MR')
    assert read_volume(folder).modality == 'MR'


def test_single_dicom_slice_is_2d(tmp_path, dicom_series_writer):
    arr = np.arange(2 * 6 * 5, dtype=np.int16).reshape(2, 6, 5)
    dicom_series_writer(tmp_path / 's', arr, spacing=(0.6, 0.8, 3.0), modality='CT')
    image = read_image(tmp_path / 's' / 'slice001.dcm')
    assert image.ndim == 2 and image.shape == (6, 5)
    np.testing.assert_array_equal(image.array, arr[1])
    np.testing.assert_allclose(image.spacing, [0.6, 0.8])
    assert image.meta['spacing_known'] is True
    vol = read_image(tmp_path / 's' / 'slice001.dcm', ndim=3)
    assert vol.shape == (1, 6, 5)


def test_read_xray_inverts_monochrome1(tmp_path, dicom_series_writer):
    arr = np.array([[[100, 200], [300, 4000]]], dtype=np.int16)
    dicom_series_writer(tmp_path / 'x', arr, spacing=(0.15, 0.2, 1.0), modality='CR',
                        photometric='MONOCHROME1')
    image = read_xray(tmp_path / 'x' / 'slice000.dcm')
    assert image.modality == 'XR' and image.ndim == 2
    # signed 16-bit MONOCHROME1 -> MONOCHROME2: -value - 1; order reversed, nothing doubled
    np.testing.assert_array_equal(image.array, -arr[0].astype(np.int32) - 1)
    assert image.meta['inverted'] is True and image.meta['photometric'] == 'MONOCHROME2'
    assert image.meta['photometric_stored'] == 'MONOCHROME1'
    np.testing.assert_allclose(image.spacing, [0.15, 0.2])
    plain = read_image(tmp_path / 'x' / 'slice000.dcm')
    assert plain.modality == 'XR' and plain.meta['modality_source'] == 'dicom'
    np.testing.assert_array_equal(plain.array, image.array)


def test_read_xray_monochrome2_untouched(tmp_path, dicom_series_writer):
    arr = np.array([[[1, 2], [3, 4]]], dtype=np.int16)
    dicom_series_writer(tmp_path / 'x', arr, modality='DX')
    image = read_xray(tmp_path / 'x' / 'slice000.dcm')
    np.testing.assert_array_equal(image.array, arr[0])
    assert image.meta['inverted'] is False


@pytest.mark.parametrize('ext', ['.png', '.jpg'])
def test_png_jpeg_round_trip_and_colour_to_grey(tmp_path, ext):
    grey = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (12, 1))
    image = MedicalImage(grey)
    back = read_xray(write_image(image, tmp_path / f'g{ext}'))
    assert back.shape == (12, 25) and back.modality == 'XR'
    assert back.meta['spacing_known'] is False
    tol = 0 if ext == '.png' else 8
    assert np.abs(back.array.astype(int) - grey).max() <= tol
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0] = 200
    sitk.WriteImage(sitk.GetImageFromArray(rgb, isVector=True), str(tmp_path / f'c{ext}'))
    col = read_xray(tmp_path / f'c{ext}')
    assert col.ndim == 2
    assert abs(int(col.array[2, 2]) - round(0.299 * 200)) <= (0 if ext == '.png' else 3)


def test_png_16bit(tmp_path):
    arr = (np.arange(30, dtype=np.uint16).reshape(5, 6) * 2000)
    back = read_xray(write_image(MedicalImage(arr), tmp_path / 'a.png'))
    np.testing.assert_array_equal(back.array, arr)
    assert back.array.dtype == np.uint16


def test_guess_modality_rules():
    assert guess_modality(np.zeros((2, 2)), 'CT') == 'CT'
    assert guess_modality(np.zeros((2, 2)), 'CR') == 'XR'
    assert guess_modality(np.zeros((2, 2)), 'US') == 'OT'
    assert guess_modality(np.zeros((4, 4))) == 'XR'
    assert guess_modality(np.array([[[-1024, 40], [300, 900]]], np.int16)) == 'CT'
    assert guess_modality(np.arange(1000, dtype=np.int16).reshape(10, 10, 10)) == 'MR'
    assert guess_modality(np.array([[[0.0, 1.5], [-3.0, 800.0]]])) == 'MR'
    assert guess_modality(np.array([[[-200.0, 0.0]]])) == 'OT'
    assert guess_modality(np.array([[[0, 1], [2, 3]]], np.uint8)) == 'OT'  # label map


def test_unknown_modality_argument(tmp_path, oblique_volume):
    write_image(oblique_volume, tmp_path / 'v.nrrd')
    with pytest.raises(InvalidInputError, match='PET'):
        read_volume(tmp_path / 'v.nrrd', modality='PET')


def test_write_png_rejects_float_and_3d(tmp_path, oblique_volume):
    with pytest.raises(InvalidInputError, match='uint8'):
        write_image(MedicalImage(np.zeros((3, 3), np.float32)), tmp_path / 'a.png')
    with pytest.raises(InvalidInputError, match='3D'):
        write_image(oblique_volume, tmp_path / 'a.jpg')
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------ real samples
def test_real_ct_geometry(real_ct_paths):
    expected = {'lung1': ((512, 512, 48), (0.5703125, 0.5703125, 5.0), (-146.0, -325.0, -777.5)),
                'lung2': ((512, 512, 61), (0.6269531, 0.6269531, 5.0), (-170.5, -324.5, -360.0))}
    for key, (size, spacing, origin) in expected.items():
        image = read_volume(real_ct_paths[key], min_size=(64, 64, 16))
        assert image.size.tolist() == list(size)
        assert image.shape == size[::-1]
        np.testing.assert_allclose(image.spacing, spacing, atol=1e-6)
        np.testing.assert_allclose(image.origin, origin, atol=1e-4)
        np.testing.assert_allclose(image.direction, np.eye(3))
        assert image.modality == 'CT' and image.meta['modality_source'] == 'intensity'
        assert image.array.min() <= -1000
        label = read_volume(real_ct_paths[key + '_label'])
        assert label.same_geometry(image) and label.modality == 'OT'
        assert set(np.unique(label.array)) == {0, 1}


def test_real_mr_geometry(real_mr_paths):
    image = read_volume(real_mr_paths['brain1'])
    assert image.modality == 'MR'
    assert image.size.tolist() == [256, 256, 25]
    np.testing.assert_allclose(image.direction, np.diag([1.0, -1.0, 1.0]))
    np.testing.assert_allclose(image.spacing, [0.78125, 0.78125, 6.5], atol=1e-6)


def test_real_xray(xray_path):
    image = read_xray(xray_path)
    assert image.shape == (1955, 1841) and image.modality == 'XR'
    assert image.array.dtype == np.uint16
    assert image.meta['photometric_stored'] == 'MONOCHROME1' and image.meta['inverted']
    assert image.meta['dicom_modality'] == 'CR'
    assert image.meta['spacing_known'] is False  # the header's Pixel Spacing is 0\0
    # dark air: the mediastinum/spine strip is brighter than the lung fields beside it
    h, w = image.shape
    rows = slice(int(0.3 * h), int(0.6 * h))
    centre = image.array[rows, int(0.47 * w):int(0.53 * w)].mean()
    lungs = np.mean([image.array[rows, int(0.2 * w):int(0.33 * w)].mean(),
                     image.array[rows, int(0.67 * w):int(0.8 * w)].mean()])
    assert centre > lungs * 1.05
