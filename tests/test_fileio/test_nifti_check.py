"""mmanat.fileio.nifti_check: sizing a NIfTI header and rejecting truncated files."""
import gzip

import numpy as np
import pytest

from mmanat.fileio import write_image
from mmanat.fileio.nifti_check import check_nifti_complete, nifti_layout
from mmanat.structures import MedicalImage
from mmanat.utils.exceptions import InvalidInputError


@pytest.fixture
def nii_gz(tmp_path):
    arr = np.arange(5 * 6 * 7, dtype=np.int16).reshape(5, 6, 7)  # (z, y, x)
    return write_image(MedicalImage(arr, spacing=(1.0, 2.0, 3.0), modality='CT'),
                       tmp_path / 'v.nii.gz')


def test_layout_of_a_written_file(nii_gz):
    hdr = gzip.open(nii_gz, 'rb').read(544)
    offset, nbytes = nifti_layout(hdr)
    assert offset >= 352 and nbytes == 5 * 6 * 7 * 2  # int16 voxels
    data = gzip.decompress(open(nii_gz, 'rb').read())
    assert len(data) == offset + nbytes
    check_nifti_complete(nii_gz)  # intact: no error


def test_layout_unknown_header():
    assert nifti_layout(b'\0' * 400) is None
    assert nifti_layout(b'short') is None


def test_truncated_files_raise(nii_gz, tmp_path):
    data = gzip.decompress(open(nii_gz, 'rb').read())
    short = tmp_path / 'short.nii'
    short.write_bytes(data[:-10])
    with pytest.raises(InvalidInputError, match='truncated') as exc:
        check_nifti_complete(str(short))
    assert 'short.nii' in str(exc.value) and f'{len(data) - 10} bytes' in str(exc.value)
    cut = tmp_path / 'cut.nii.gz'
    cut.write_bytes(open(nii_gz, 'rb').read()[:-20])
    with pytest.raises(InvalidInputError, match='truncated|corrupt'):
        check_nifti_complete(str(cut))
    garbage = tmp_path / 'garbage.nii.gz'
    garbage.write_bytes(b'not gzip at all' * 10)
    with pytest.raises(InvalidInputError, match='cannot be decompressed'):
        check_nifti_complete(str(garbage))


@pytest.mark.parametrize('version,endian', [(1, '>'), (2, '<'), (2, '>')])
def test_layout_of_nifti2_and_big_endian_headers(tmp_path, version, endian):
    import nibabel as nib
    klass = nib.Nifti1Image if version == 1 else nib.Nifti2Image
    data = np.arange(3 * 4 * 5, dtype=endian + 'f4').reshape(3, 4, 5)
    path = tmp_path / f'v{version}.nii'
    nib.save(klass(data, np.eye(4)), str(path))
    raw = path.read_bytes()
    offset, nbytes = nifti_layout(raw[:544])
    assert nbytes == 3 * 4 * 5 * 4 and offset + nbytes == len(raw)
    check_nifti_complete(str(path))
    (tmp_path / 'cut.nii').write_bytes(raw[:-4])
    with pytest.raises(InvalidInputError, match='truncated'):
        check_nifti_complete(str(tmp_path / 'cut.nii'))
