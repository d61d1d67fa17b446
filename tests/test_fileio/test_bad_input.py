"""Every bad input of issue 3 raises InvalidInputError naming the file, the value and the fix;
a failing write leaves nothing behind."""
import gzip
import os

import numpy as np
import pytest
import SimpleITK as sitk

from mmanat.fileio import read_image, read_volume, read_xray, write_image
from mmanat.structures import MedicalImage, PointSet, check_points_inside
from mmanat.utils.exceptions import InvalidInputError, MMAnatError


def _raises(func, *args, **kwargs):
    with pytest.raises(InvalidInputError) as exc:
        func(*args, **kwargs)
    assert isinstance(exc.value, MMAnatError) and isinstance(exc.value, ValueError)
    return str(exc.value)


def _mha(path, spacing='1 1 1', matrix='1 0 0 0 1 0 0 0 1'):
    header = ('ObjectType = Image\nNDims = 3\nDimSize = 2 2 2\n'
              f'ElementSpacing = {spacing}\nTransformMatrix = {matrix}\nOffset = 0 0 0\n'
              'ElementType = MET_SHORT\nElementDataFile = LOCAL\n')
    path.write_bytes(header.encode() + np.zeros(8, np.int16).tobytes())
    return path


def _nrrd(path, directions):
    header = ('NRRD0004\ntype: short\ndimension: 3\nspace: left-posterior-superior\n'
              f'sizes: 2 2 2\nspace directions: {directions}\nendian: little\n'
              'encoding: raw\nspace origin: (0,0,0)\n\n')
    path.write_bytes(header.encode() + np.zeros(8, np.int16).tobytes())
    return path


def test_missing_file(tmp_path):
    missing = tmp_path / 'nope' / 'ct.nii.gz'
    for func in (read_image, read_volume, read_xray):
        msg = _raises(func, missing)
        assert str(missing) in msg and 'not found' in msg and 'check the path' in msg


@pytest.mark.parametrize('name', ['scan.xyz', 'scan', 'scan.nii.bz2'])
def test_unknown_extension(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b'\0' * 64)
    msg = _raises(read_image, path)
    assert str(path) in msg and 'unknown image extension' in msg
    assert '.nii.gz' in msg and 'DICOM series folder' in msg  # says what is supported


@pytest.mark.parametrize('keep', [0.5, 0.9])
def test_truncated_nii_gz(tmp_path, oblique_volume, keep):
    good = write_image(oblique_volume, tmp_path / 'good.nii.gz')
    data = open(good, 'rb').read()
    bad = tmp_path / 'bad.nii.gz'
    bad.write_bytes(data[:int(len(data) * keep)])
    msg = _raises(read_volume, bad)
    assert str(bad) in msg and 'truncated' in msg and 're-download' in msg


def test_truncated_header_and_uncompressed_nii(tmp_path, oblique_volume):
    data = gzip.decompress(open(write_image(oblique_volume, tmp_path / 'a.nii.gz'), 'rb').read())
    short = tmp_path / 'short.nii'
    short.write_bytes(data[:len(data) - 100])
    msg = _raises(read_volume, short)
    assert 'short.nii' in msg and ('truncated' in msg or 'corrupt' in msg)
    tiny = tmp_path / 'tiny.nii.gz'
    tiny.write_bytes(gzip.compress(data)[:60])
    msg = _raises(read_volume, tiny)
    assert 'tiny.nii.gz' in msg and ('truncated' in msg or 'corrupt' in msg)


def test_intact_nii_gz_with_padding_reads(tmp_path, oblique_volume):
    """The completeness check must not reject a valid file."""
    back = read_volume(write_image(oblique_volume, tmp_path / 'ok.nii.gz'))
    np.testing.assert_array_equal(back.array, oblique_volume.array)


def test_empty_dicom_folder(tmp_path):
    empty = tmp_path / 'empty'
    empty.mkdir()
    msg = _raises(read_volume, empty)
    assert str(empty) in msg and 'no DICOM series' in msg
    junk = tmp_path / 'junk'
    junk.mkdir()
    (junk / 'notes.txt').write_text('not dicom')
    (junk / 'x.dcm').write_bytes(b'garbage' * 20)
    assert 'no DICOM series' in _raises(read_volume, junk)


def test_corrupt_single_dicom(tmp_path):
    path = tmp_path / 'x.dcm'
    path.write_bytes(b'garbage' * 20)
    msg = _raises(read_xray, path)
    assert str(path) in msg and 'corrupt' in msg


def test_mixed_dicom_folder(tmp_path, dicom_series_writer):
    folder = tmp_path / 'mixed'
    arr = np.zeros((3, 8, 8), np.int16)
    dicom_series_writer(folder, arr, series_uid='1.2.3.4.100', prefix='a')
    dicom_series_writer(folder, arr[:2] + 5, series_uid='1.2.3.4.200', prefix='b')
    msg = _raises(read_volume, folder)
    assert str(folder) in msg and 'mixes 2 DICOM series' in msg
    assert '1.2.3.4.100 (3 files)' in msg and '1.2.3.4.200 (2 files)' in msg
    assert 'series_uid=' in msg
    chosen = read_volume(folder, series_uid='1.2.3.4.200')
    assert chosen.shape == (2, 8, 8) and chosen.array.max() == 5
    assert 'no DICOM series with SeriesInstanceUID' in _raises(read_volume, folder,
                                                               series_uid='9.9')


def test_4d_image_where_3d_required(tmp_path):
    path = tmp_path / 'dyn.nii.gz'
    sitk.WriteImage(sitk.Image([3, 4, 5, 2], sitk.sitkInt16), str(path))
    msg = _raises(read_volume, path)
    assert str(path) in msg and '4D' in msg and '[3, 4, 5, 2]' in msg and 'time point' in msg
    # a trailing axis of length 1 is harmless
    sitk.WriteImage(sitk.Image([3, 4, 5, 1], sitk.sitkInt16), str(tmp_path / 'one.nii.gz'))
    assert read_volume(tmp_path / 'one.nii.gz').shape == (5, 4, 3)


def test_vector_image_where_3d_required(tmp_path):
    path = tmp_path / 'rgb.mha'
    sitk.WriteImage(sitk.Image([3, 4, 5], sitk.sitkVectorFloat32, 3), str(path))
    msg = _raises(read_volume, path)
    assert str(path) in msg and '3 components' in msg and 'scalar 3D volume' in msg


def test_2d_image_where_3d_required(tmp_path):
    path = tmp_path / 'flat.nrrd'
    sitk.WriteImage(sitk.Image([6, 7], sitk.sitkInt16), str(path))
    msg = _raises(read_volume, path)
    assert str(path) in msg and 'is 2D' in msg and '3D volume is required' in msg


@pytest.mark.parametrize('maker', ['mha', 'nrrd'])
def test_zero_spacing_in_file(tmp_path, maker):
    path = _mha(tmp_path / 'z.mha', spacing='0 1 1') if maker == 'mha' else \
        _nrrd(tmp_path / 'z.nrrd', '(0,0,0) (0,1,0) (0,0,1)')
    msg = _raises(read_volume, path)
    assert str(path) in msg and 'spacing' in msg and '[0, 1, 1]' in msg and 'fix the' in msg


def test_nan_spacing_in_file(tmp_path):
    msg = _raises(read_volume, _mha(tmp_path / 'n.mha', spacing='nan 1 1'))
    assert 'n.mha' in msg and 'spacing' in msg
    msg = _raises(read_volume, _nrrd(tmp_path / 'n.nrrd', '(nan,0,0) (0,1,0) (0,0,1)'))
    assert 'n.nrrd' in msg and 'space directions' in msg and 'nan' in msg


@pytest.mark.parametrize('spacing, shown', [((0.0, 1.0, 1.0), '0.0'), ((1.0, -0.5, 1.0), '-0.5'),
                                            ((1.0, 1.0, float('nan')), 'nan')])
def test_bad_spacing_in_memory_and_on_write(tmp_path, spacing, shown):
    msg = _raises(MedicalImage, np.zeros((2, 2, 2)), spacing=spacing, path='x.nrrd')
    assert 'x.nrrd' in msg and shown in msg and 'finite and > 0' in msg


@pytest.mark.parametrize('maker', ['mha', 'nrrd'])
def test_singular_direction(tmp_path, maker):
    path = _mha(tmp_path / 's.mha', matrix='1 0 0 1 0 0 0 0 1') if maker == 'mha' else \
        _nrrd(tmp_path / 's.nrrd', '(1,0,0) (1,0,0) (0,0,1)')
    msg = _raises(read_volume, path)
    assert str(path) in msg and 'direction' in msg and 'determinant is 0' in msg
    assert 'orthonormal' in msg
    msg = _raises(MedicalImage, np.zeros((2, 2, 2)), direction=np.ones((3, 3)))
    assert 'singular' in msg


def test_point_outside_image(oblique_volume):
    pts = PointSet(oblique_volume.index_to_world([[2, 2, 2], [2, 2, 40]]), names=['in', 'out'])
    msg = _raises(check_points_inside, oblique_volume, pts)
    assert 'out at' in msg and 'outside the image' in msg and 'LPS' in msg


def test_image_smaller_than_minimum(tmp_path, oblique_volume):
    path = write_image(oblique_volume, tmp_path / 'small.nrrd')
    assert read_volume(path, min_size=12).size.tolist() == [12, 14, 16]
    msg = _raises(read_volume, path, min_size=(32, 14, 8))
    assert path in msg and '[12, 14, 16]' in msg and 'x: 12 < 32' in msg
    assert 'smaller than the required minimum' in msg
    assert 'z: 16 < 20' in _raises(read_volume, path, min_size=20)
    assert 'expected 1 or 3' in _raises(read_volume, path, min_size=(1, 2))


@pytest.mark.parametrize('ext', ['.nii.gz', '.nrrd', '.mhd'])
def test_failed_write_leaves_nothing(tmp_path, oblique_volume, monkeypatch, ext):
    target = tmp_path / f'out{ext}'

    def crash(self, image):  # write half a file, then fail like a full disk
        with open(self.GetFileName(), 'wb') as f:
            f.write(b'partial')
        raise RuntimeError('ITK ERROR: ImageFileWriter(0x1): No space left on device')

    monkeypatch.setattr(sitk.ImageFileWriter, 'Execute', crash)
    msg = _raises(write_image, oblique_volume, target)
    assert str(target) in msg and 'No space left on device' in msg
    assert os.listdir(tmp_path) == []


def test_failed_write_keeps_existing_file(tmp_path, oblique_volume, monkeypatch):
    target = tmp_path / 'out.nrrd'
    write_image(oblique_volume, target)
    before = target.read_bytes()

    def crash(self, image):
        raise KeyboardInterrupt  # even an interrupt must not leave a corrupt file

    monkeypatch.setattr(sitk.ImageFileWriter, 'Execute', crash)
    with pytest.raises(KeyboardInterrupt):
        write_image(oblique_volume.with_array(oblique_volume.array * 0), target)
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ['out.nrrd']


def test_write_unknown_extension_and_wrong_type(tmp_path, oblique_volume):
    msg = _raises(write_image, oblique_volume, tmp_path / 'a.vtk')
    assert "'.vtk'" in msg and '.nii.gz' in msg
    assert 'MedicalImage' in _raises(write_image, np.zeros((2, 2, 2)), tmp_path / 'a.nrrd')
    assert os.listdir(tmp_path) == []


def test_scaled_nifti_is_not_mistaken_for_truncated(tmp_path):
    """int16 on disk with a scale slope: ITK returns float32, the file is still complete."""
    import nibabel as nib
    img = nib.Nifti1Image(np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6), np.eye(4))
    img.header.set_slope_inter(2.0, -10.0)
    for name in ('s.nii', 's.nii.gz'):
        nib.save(img, str(tmp_path / name))
        back = read_volume(tmp_path / name)
        # nibabel (i, j, k) = ITK (x, y, z): array[z, y, x] = data[x, y, z]
        np.testing.assert_allclose(back.array[3, 2, 1], 2.0 * (1 * 30 + 2 * 6 + 3) - 10.0)


def test_check_geometry_is_the_one_check_of_every_reader():
    from mmanat.fileio.geometry import check_geometry, nifti_header_problem
    check_geometry('ok.nrrd', [1, 1, 2], [0, 0, 0], np.eye(3))
    for spacing, origin, direction, what in [
            ([1, 0, 2], [0, 0, 0], np.eye(3), 'spacing'),
            ([1, np.nan, 2], [0, 0, 0], np.eye(3), 'spacing'),
            ([1, 1, 1], [0, np.inf, 0], np.eye(3), 'origin'),
            ([1, 1, 1], [0, 0, 0], np.zeros((3, 3)), 'direction'),
            ([1, 1, 1], [0, 0, 0], np.full((3, 3), np.nan), 'direction')]:
        msg = _raises(check_geometry, 'bad.nrrd', spacing, origin, direction)
        assert msg.startswith('bad.nrrd: ') and what in msg and 'fix the header' in msg
    assert nifti_header_problem(b'\0' * 10) is None  # not a NIfTI header: not judged here


def test_nifti_pixdim_zero_or_nan_is_refused_not_read_as_1mm(tmp_path, oblique_volume):
    import struct
    src = write_image(oblique_volume, str(tmp_path / 'v.nii'), compress=False)
    raw = bytearray(open(src, 'rb').read())
    for name, value in (('zero', 0.0), ('nan', float('nan'))):
        bad = bytearray(raw)
        struct.pack_into('<f', bad, 80, value)  # pixdim[1] (nifti1.h: pixdim at byte 76)
        path = tmp_path / f'{name}.nii.gz'
        path.write_bytes(gzip.compress(bytes(bad)))
        msg = _raises(read_image, path)
        assert f'{name}.nii.gz: invalid NIfTI geometry' in msg and 'pixdim[1:4]' in msg
    assert read_volume(src).spacing[0] == pytest.approx(oblique_volume.spacing[0])
