"""VolumeListDataset: CSV / text lists, folder scans, errors, the preprocess cache."""
import csv
import os.path as osp

import numpy as np
import pytest
import SimpleITK as sitk

from mmanat.datasets.volume_cache import save_cached_volume
from mmanat.datasets.volume_list_dataset import VolumeListDataset, scan_volume_folder
from mmanat.registry import DATASETS
from mmanat.structures.image import MedicalImage
from mmanat.utils.exceptions import InvalidInputError


def write_volume(path, shape=(12, 20, 22), value=None, spacing=(4.0, 4.0, 5.0),
                 origin=(-40.0, -30.0, 10.0)):
    z, y, x = np.meshgrid(*[np.arange(n) for n in shape], indexing='ij')
    body = ((x - shape[2] / 2) ** 2 / 60 + (y - shape[1] / 2) ** 2 / 40) < 1
    arr = np.where(body, 40, -1000).astype(np.int16) if value is None else \
        np.full(shape, value, np.int16)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    sitk.WriteImage(img, str(path))
    return str(path)


@pytest.fixture
def vol_dir(tmp_path):
    root = tmp_path / 'data'
    (root / 'sub').mkdir(parents=True)
    write_volume(root / 'a.nii.gz')
    write_volume(root / 'sub' / 'b.nrrd')
    write_volume(root / 'c.mha')
    write_volume(root / 'a_label.nii.gz', value=1)
    (root / 'notes.txt').write_text('not a volume')
    return root


def test_scan_folder_and_registry(vol_dir):
    ds = DATASETS.build(dict(type='VolumeListDataset', data_root=str(vol_dir)))
    names = sorted(osp.relpath(ds.get_data_info(i)['img_path'], vol_dir) for i in range(len(ds)))
    assert names == ['a.nii.gz', 'c.mha', osp.join('sub', 'b.nrrd')]  # label skipped
    assert len(ds) == 3
    ids = sorted(ds.get_data_info(i)['subject_id'] for i in range(3))
    assert ids == ['a', 'c', osp.join('sub', 'b')]
    # exclude=() keeps the label file too
    assert len(VolumeListDataset(data_root=str(vol_dir), exclude=())) == 4


def test_scan_finds_dicom_series_folder(tmp_path, dicom_series_writer):
    dicom_series_writer(tmp_path / 'root' / 'patient1', np.zeros((3, 8, 8), np.int16))
    write_volume(tmp_path / 'root' / 'x.nii')
    found = scan_volume_folder(str(tmp_path / 'root'))
    assert found == ['patient1', 'x.nii']


def test_csv_list_relative_to_data_root(vol_dir):
    csv_path = vol_dir / 'list.csv'
    csv_path.write_text('image,label,modality\n'
                        'a.nii.gz,a_label.nii.gz,CT\n'
                        'sub/b.nrrd,,mr\n'
                        '\n')
    ds = VolumeListDataset(ann_file='list.csv', data_root=str(vol_dir))
    d0, d1 = ds.get_data_info(0), ds.get_data_info(1)
    assert d0['img_path'] == osp.join(str(vol_dir), 'a.nii.gz')
    assert d0['label_path'] == osp.join(str(vol_dir), 'a_label.nii.gz')
    assert d0['modality'] == 'CT' and d1['modality'] == 'MR'
    assert 'label_path' not in d1
    # without data_root, paths are relative to the list's folder
    ds2 = VolumeListDataset(ann_file=str(csv_path), modality='CT')
    assert ds2.get_data_info(1)['img_path'] == osp.join(str(vol_dir), 'sub', 'b.nrrd')


def test_txt_list(vol_dir):
    (vol_dir / 'list.txt').write_text('# volumes\na.nii.gz\n\nc.mha\n')
    ds = VolumeListDataset(ann_file=str(vol_dir / 'list.txt'), modality='CT')
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    assert [d['subject_id'] for d in infos] == ['a', 'c']
    assert all(d['modality'] == 'CT' for d in infos)


def test_missing_files_named_with_line(vol_dir):
    (vol_dir / 'bad.csv').write_text('image\na.nii.gz\nnope.nii.gz\n')
    with pytest.raises(InvalidInputError) as err:
        VolumeListDataset(ann_file=str(vol_dir / 'bad.csv'))
    assert 'nope.nii.gz' in str(err.value) and 'line 3' in str(err.value)
    with pytest.raises(InvalidInputError, match='not found'):
        VolumeListDataset(ann_file=str(vol_dir / 'absent.csv'))
    (vol_dir / 'nohead.csv').write_text('file_x\na.nii.gz\n')
    with pytest.raises(InvalidInputError, match='image column'):
        VolumeListDataset(ann_file=str(vol_dir / 'nohead.csv'))
    (vol_dir / 'mod.csv').write_text('image,modality\na.nii.gz,PET\n')
    with pytest.raises(InvalidInputError, match='PET'):
        VolumeListDataset(ann_file=str(vol_dir / 'mod.csv'))


def test_empty_or_missing_folder(tmp_path):
    (tmp_path / 'empty').mkdir()
    with pytest.raises(InvalidInputError, match='no volumes'):
        VolumeListDataset(data_root=str(tmp_path / 'empty'))
    with pytest.raises(InvalidInputError, match='not a folder'):
        VolumeListDataset(data_root=str(tmp_path / 'absent'))


def test_cache_dir_redirects_to_npy(vol_dir, tmp_path):
    cache = tmp_path / 'cache'
    src = osp.join(str(vol_dir), 'a.nii.gz')
    img = MedicalImage(np.zeros((4, 5, 6), np.int16), spacing=2.0, modality='CT')
    save_cached_volume(img, str(cache / 'volumes' / 'a.npy'))
    with open(cache / 'index.csv', 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['image', 'label', 'modality', 'source', 'subject_id'])
        w.writerow(['volumes/a.npy', '', 'CT', src, 'a'])
    ds = VolumeListDataset(data_root=str(vol_dir), cache_dir=str(cache))
    info = {d['subject_id']: d for d in map(ds.get_data_info, range(len(ds)))}
    assert info['a']['img_path'] == str(cache / 'volumes' / 'a.npy')
    assert info['a']['source_path'] == src and info['a']['modality'] == 'CT'
    assert info['c']['img_path'].endswith('c.mha')  # not cached: read from the source
    with pytest.raises(InvalidInputError, match='index.csv'):
        VolumeListDataset(data_root=str(vol_dir), cache_dir=str(tmp_path / 'nocache'))


def test_full_pipeline_from_files(vol_dir):
    pipeline = [dict(type='LoadVolume'),
                dict(type='RandomTwoViewCrop', patch_size=(8, 16, 16)),
                dict(type='NormalizeViewIntensity'),
                dict(type='RandomIntensityAugment'),
                dict(type='PackSAMInputs')]
    ds = VolumeListDataset(data_root=str(vol_dir), pipeline=pipeline, modality='CT')
    np.random.seed(0)
    item = ds[0]
    assert item['inputs'].shape == (2, 1, 8, 16, 16)
    assert item['data_samples']['coords'].shape == (2, 3, 8, 16, 16)
    assert item['data_samples']['meta']['subject_id'] == 'a'
    assert item['data_samples']['meta']['modality'] == 'CT'

