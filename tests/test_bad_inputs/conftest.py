"""Small bad (and good) inputs shared by the bad-input catalogue: a tiny CT volume, broken
copies of it, point files, checkpoints of the wrong kind, and a runner that calls a console
command in-process and collects what a user would see."""
import gzip
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SAM_CKPT = ROOT / 'checkpoints' / 'sam_default.pth'
ADAM_CKPT = ROOT / 'checkpoints' / 'adam_default.pth'
SAM_TINY_CFG = ROOT / 'configs' / 'sam' / 'sam_tiny-fpn3d_1xb2-cpu-300it_synthetic-ct.py'
ADAM_CFG = ROOT / 'configs' / 'adam' / 'adam_r18half-mlp_1xb32-cpu-350it_synthetic-cxr-64px.py'

# offsets of NIfTI-1 header fields (nifti1.h: struct nifti_1_header)
PIXDIM, QFORM_CODE, SFORM_CODE, SROW_X = 76, 252, 254, 280


def ct_volume(shape=(24, 40, 40), spacing=3.0):
    """A small CT-like volume: an air background around a soft-tissue body with a bone."""
    from mmanat.structures import MedicalImage
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing='ij')
    arr = np.full(shape, -1000.0, np.float32)
    arr[(x / 0.8) ** 2 + (y / 0.6) ** 2 < 1] = 40.0
    arr[(x - 0.2) ** 2 + (y + 0.1) ** 2 < 0.02] = 700.0
    arr += 30.0 * np.sin(5 * z + 3 * x) * (arr > -500)
    return MedicalImage(arr.astype(np.int16), spacing=(spacing,) * 3,
                        origin=(-60.0, -60.0, -36.0), modality='CT')


def patch_nifti(src: Path, dst: Path, **fields) -> Path:
    """Copy an uncompressed NIfTI-1 file with raw header fields overwritten (no repair):
    ``pixdim=(dx, dy, dz)``, ``qform_code=``, ``sform_code=``, ``srow_x=(4 floats)``."""
    raw = bytearray(src.read_bytes())
    if 'pixdim' in fields:
        struct.pack_into('<3f', raw, PIXDIM + 4, *fields['pixdim'])
    if 'qform_code' in fields:
        struct.pack_into('<h', raw, QFORM_CODE, fields['qform_code'])
    if 'sform_code' in fields:
        struct.pack_into('<h', raw, SFORM_CODE, fields['sform_code'])
    if 'srow_x' in fields:
        struct.pack_into('<4f', raw, SROW_X, *fields['srow_x'])
    dst.write_bytes(bytes(raw))
    return dst


@pytest.fixture(scope='session')
def bad(tmp_path_factory):
    """Paths of good and bad inputs (built once per session)."""
    import SimpleITK as sitk
    import torch

    from mmanat.fileio import write_image
    from mmanat.structures import MedicalImage
    d = tmp_path_factory.mktemp('bad_inputs')
    p = {}
    ct = ct_volume()
    p['ct'] = write_image(ct, str(d / 'ct.nrrd'))
    p['ct2'] = write_image(ct.with_array(np.roll(ct.array, 2, axis=2)), str(d / 'ct2.nrrd'))
    nii = Path(write_image(ct, str(d / 'ct.nii'), compress=False))
    p['nii_zero_pixdim'] = str(patch_nifti(nii, d / 'zero_pixdim.nii', pixdim=(0, 3, 3)))
    p['nii_nan_pixdim'] = str(patch_nifti(nii, d / 'nan_pixdim.nii',
                                          pixdim=(float('nan'), 3, 3)))
    p['nii_nan_sform'] = str(patch_nifti(nii, d / 'nan_sform.nii', sform_code=1, qform_code=0,
                                         srow_x=(float('nan'), 0, 0, 0)))
    p['nii_singular_sform'] = str(patch_nifti(nii, d / 'singular_sform.nii', sform_code=1,
                                              qform_code=0, srow_x=(0, 0, 0, 0)))
    gz = Path(write_image(ct, str(d / 'full.nii.gz')))
    with gzip.open(gz, 'rb') as f:
        data = f.read()
    (d / 'truncated.nii.gz').write_bytes(gzip.compress(data[:len(data) // 2]))
    p['nii_truncated'] = str(d / 'truncated.nii.gz')
    mha = ('ObjectType = Image\nNDims = 3\nDimSize = 2 2 2\nElementSpacing = 0 1 1\n'
           'Offset = 0 0 0\nElementType = MET_SHORT\nElementDataFile = LOCAL\n')
    (d / 'zero_spacing.mha').write_bytes(mha.encode() + np.zeros(8, np.int16).tobytes())
    p['mha_zero_spacing'] = str(d / 'zero_spacing.mha')
    img4 = sitk.GetImageFromArray(np.zeros((2, 4, 5, 6), np.int16), isVector=False)
    sitk.WriteImage(img4, str(d / 'four_d.nii.gz'))
    p['nii_4d'] = str(d / 'four_d.nii.gz')
    (d / 'scan.xyz').write_bytes(b'not an image')
    p['unknown_ext'] = str(d / 'scan.xyz')
    (d / 'empty.nrrd').write_bytes(b'')
    p['empty_image'] = str(d / 'empty.nrrd')
    xr = MedicalImage(np.tile(np.linspace(0, 255, 32, dtype=np.float32), (32, 1))
                      .astype(np.uint8), spacing=(1.0, 1.0), origin=(0.0, 0.0), modality='XR')
    p['xray'] = write_image(xr, str(d / 'xray.png'))
    p['label'] = write_image(ct.with_array((ct.array > 0).astype(np.uint8), modality=None),
                             str(d / 'ct_label.nrrd'))
    # points (world LPS mm)
    centre = ct.array_index_to_world(np.array([[12.0, 20.0, 20.0]]))[0]
    (d / 'p.csv').write_text('name,x,y,z\na,{},{},{}\n'.format(*centre))
    p['points'] = str(d / 'p.csv')
    (d / 'header_only.csv').write_text('name,x,y,z\n')
    p['points_header_only'] = str(d / 'header_only.csv')
    (d / 'p2d.csv').write_text('name,x,y\na,1,2\n')
    p['points_2d'] = str(d / 'p2d.csv')
    (d / 'empty.csv').write_text('')
    p['points_empty'] = str(d / 'empty.csv')
    (d / 'nan.csv').write_text('name,x,y,z\na,1,abc,3\n')
    p['points_not_number'] = str(d / 'nan.csv')
    (d / 'far.csv').write_text('name,x,y,z\nfar,900,900,900\n')
    p['points_outside'] = str(d / 'far.csv')
    (d / 'p.txt').write_text('a,1,2,3\n')
    p['points_bad_ext'] = str(d / 'p.txt')
    # checkpoints
    p['sam_ckpt'], p['adam_ckpt'] = str(SAM_CKPT), str(ADAM_CKPT)
    (d / 'truncated.pth').write_bytes(SAM_CKPT.read_bytes()[:4000])
    p['ckpt_truncated'] = str(d / 'truncated.pth')
    (d / 'text.pth').write_text('hello')
    p['ckpt_text'] = str(d / 'text.pth')
    torch.save({'note': 'no weights'}, str(d / 'noweights.pth'))
    p['ckpt_no_weights'] = str(d / 'noweights.pth')
    from tests.helpers.reference_sam import write_released_checkpoint
    p['released_sam'] = write_released_checkpoint(str(d / 'SAM.pth'), 'sam')
    # folders
    os.makedirs(d / 'no_volumes')
    (d / 'no_volumes' / 'readme.txt').write_text('x')
    p['folder_no_volumes'] = str(d / 'no_volumes')
    (d / 'a_file').write_text('I am a file')
    p['a_file'] = str(d / 'a_file')
    shutil.copy(p['ct'], d / 'copy.nrrd')
    p['dir'] = str(d)
    return p
