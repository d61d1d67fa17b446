"""Shared test fixtures: a small oblique volume, real sample data, DICOM series writers.

Real samples live in ``data/samples`` (``make test`` fetches them first with
tools/fetch_sample_data.py); the environment variable ``MMANAT_SAMPLE_DATA`` points the tests
at another folder with the same layout. Tests that need a sample file skip only when it is
absent.
"""
import os
import zlib
import os.path as osp
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

SAMPLE_FILES = {
    'lung1': 'ct/lung1.nrrd',
    'lung2': 'ct/lung2.nrrd',
    'lung1_label': 'ct/lung1_label.nrrd',
    'lung2_label': 'ct/lung2_label.nrrd',
    'brain1': 'mr/brain1.nrrd',
    'brain2': 'mr/brain2.nrrd',
    'xray': 'xray/RG1_UNCR.dcm',
}


def rotation_matrix(axis, angle_deg):
    """Right-handed rotation about ``axis`` by ``angle_deg`` (Rodrigues)."""
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    a = np.deg2rad(angle_deg)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * (k @ k)


OBLIQUE_DIRECTION = rotation_matrix((1.0, 2.0, 3.0), 25.0)
OBLIQUE_SPACING = (0.8, 1.1, 2.5)  # x, y, z mm
OBLIQUE_ORIGIN = (-31.5, 17.25, -102.0)  # LPS mm


@pytest.fixture
def oblique_volume():
    """A 12 x 14 x 16 (x, y, z) CT-like int16 volume, anisotropic spacing, oblique direction,
    non-zero origin; a smooth intensity ramp plus a bright 2x2x2 block."""
    from mmanat.structures import MedicalImage
    z, y, x = np.meshgrid(np.arange(16), np.arange(14), np.arange(12), indexing='ij')
    arr = (-1000 + 20 * x + 15 * y + 30 * z).astype(np.int16)
    arr[7:9, 6:8, 5:7] = 1500
    return MedicalImage(arr, spacing=OBLIQUE_SPACING, origin=OBLIQUE_ORIGIN,
                        direction=OBLIQUE_DIRECTION, modality='CT')


@pytest.fixture(scope='session')
def sample_data_dir():
    """Folder of the real sample data (``data/samples`` or ``$MMANAT_SAMPLE_DATA``)."""
    env = os.environ.get('MMANAT_SAMPLE_DATA')
    return Path(env) if env else REPO_ROOT / 'data' / 'samples'


@pytest.fixture(scope='session')
def sample_file(sample_data_dir):
    """``sample_file('lung1')`` (key of SAMPLE_FILES or relative path) -> its path; skips the
    test when the file is absent."""

    def get(name):
        rel = SAMPLE_FILES.get(name, name)
        path = sample_data_dir / rel
        if not path.is_file():
            pytest.skip(f'sample file {path} absent (run `make data` or '
                        'tools/fetch_sample_data.py)')
        return str(path)

    return get


@pytest.fixture(scope='session')
def real_ct_paths(sample_file):
    """Paths of the two real chest CTs and their tumour masks."""
    return {k: sample_file(k) for k in ('lung1', 'lung2', 'lung1_label', 'lung2_label')}


@pytest.fixture(scope='session')
def real_mr_paths(sample_file):
    """Paths of the two real brain MRs."""
    return {k: sample_file(k) for k in ('brain1', 'brain2')}


@pytest.fixture(scope='session')
def xray_path(sample_file):
    """Path of the real chest radiograph (DICOM CR, MONOCHROME1)."""
    return sample_file('xray')


def write_dicom_series(folder, array, spacing=(0.7, 0.7, 2.0), origin=(0.0, 0.0, 0.0),
                       direction=None, modality='CT', series_uid=None, prefix='slice',
                       photometric='MONOCHROME2'):
    """Write a (z, y, x) int16 array as a DICOM series, one file per slice, with geometry
    tags (ImagePositionPatient, ImageOrientationPatient, PixelSpacing), using SimpleITK."""
    import SimpleITK as sitk
    os.makedirs(folder, exist_ok=True)
    direction = np.eye(3) if direction is None else np.asarray(direction, dtype=np.float64)
    series_uid = series_uid or ('1.2.826.0.1.3680043.2.1125.1.'
                                + str(zlib.crc32(str(folder).encode())))
    study_uid = '1.2.826.0.1.3680043.2.1125.2.77'
    spacing = np.asarray(spacing, dtype=np.float64)
    origin = np.asarray(origin, dtype=np.float64)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    orient = '\\'.join(f'{v:.10f}' for v in np.concatenate([direction[:, 0], direction[:, 1]]))
    for k in range(array.shape[0]):
        sl = sitk.GetImageFromArray(np.ascontiguousarray(array[k:k + 1]).astype(np.int16))
        pos = origin + direction @ (spacing * np.array([0, 0, k]))
        tags = {
            '0008|0060': modality, '0020|000d': study_uid, '0020|000e': series_uid,
            '0008|0018': f'{series_uid}.{k + 1}', '0020|0013': str(k + 1),
            '0020|0032': '\\'.join(f'{v:.10f}' for v in pos), '0020|0037': orient,
            '0028|0030': f'{spacing[1]:.10f}\\{spacing[0]:.10f}',
            '0018|0050': f'{spacing[2]:.10f}', '0010|0020': 'TEST', '0028|0004': photometric,
        }
        for key, value in tags.items():
            sl.SetMetaData(key, value)
        sl.SetSpacing([float(v) for v in spacing])
        sl.SetOrigin([float(v) for v in pos])
        sl.SetDirection([float(v) for v in direction.reshape(-1)])
        name = osp.join(str(folder), f'{prefix}{k:03d}.dcm')
        writer.SetFileName(name)
        writer.Execute(sl)
        if photometric != 'MONOCHROME2':
            # GDCM always writes MONOCHROME2 for grey data: patch the (same-length) value
            with open(name, 'rb') as f:
                data = f.read()
            assert data.count(b'MONOCHROME2') == 1
            with open(name, 'wb') as f:
                f.write(data.replace(b'MONOCHROME2', photometric.encode()))
    return str(folder)


@pytest.fixture
def dicom_series_writer():
    """The :func:`write_dicom_series` helper."""
    return write_dicom_series
