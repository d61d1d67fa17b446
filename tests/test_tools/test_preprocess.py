"""mmanat-preprocess (tools/preprocess.py): cache building, resume, bad files, and reading the
cache back."""
import csv
import os
import os.path as osp

import numpy as np
import pytest
import SimpleITK as sitk

from mmanat.cli import preprocess
from mmanat.datasets.transforms.loading import LoadVolume
from mmanat.datasets.volume_cache import is_complete_cache, load_cached_volume
from mmanat.datasets.volume_list_dataset import VolumeListDataset


@pytest.fixture(scope='module')
def tool():
    return preprocess


def write_ct(path, blob_index, shape=(14, 30, 34), spacing=(1.5, 1.25, 3.0),
             origin=(-25.0, 40.0, -60.0), flip_x=False):
    """CT-like volume: air, an elliptic body (40 HU), a bright blob (800 HU) at
    ``blob_index`` (z, y, x); optionally stored with a flipped x axis (RAS-like)."""
    z, y, x = np.meshgrid(*[np.arange(n) for n in shape], indexing='ij')
    body = ((x - shape[2] / 2) ** 2 / (0.35 * shape[2]) ** 2
            + (y - shape[1] / 2) ** 2 / (0.3 * shape[1]) ** 2) < 1
    arr = np.where(body, 40, -1000).astype(np.int16)
    bz, by, bx = blob_index
    arr[bz - 1:bz + 2, by - 2:by + 2, bx - 2:bx + 2] = 800
    direction = np.eye(3)
    if flip_x:
        direction[0, 0] = -1.0
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    img.SetDirection(direction.reshape(-1).tolist())
    sitk.WriteImage(img, str(path))
    return img


def blob_centre_world(image_arr, to_world, thr=400):
    idx = np.argwhere(np.asarray(image_arr) > thr).mean(0)  # (z, y, x)
    return to_world(idx)


@pytest.fixture
def inputs(tmp_path):
    src = tmp_path / 'in'
    src.mkdir()
    write_ct(src / 'p1.nii.gz', (7, 15, 17))
    write_ct(src / 'p2.nrrd', (5, 12, 20), flip_x=True)
    (src / 'broken.nii.gz').write_bytes(b'\x1f\x8b this is not a nifti file')
    return src


def test_preprocess_resume_and_failures(tool, inputs, tmp_path, capsys):
    out = tmp_path / 'cache'
    code = tool.main([str(inputs), '--out', str(out), '--spacing', '2.0'])
    captured = capsys.readouterr()
    assert code == 1
    assert 'broken.nii.gz' in captured.err  # the bad file is named ...
    assert '2 processed' in captured.out  # ... and the others are done
    with open(out / 'index.csv') as f:
        rows = list(csv.DictReader(f))
    assert [r['subject_id'] for r in rows] == ['p1', 'p2']
    for r in rows:
        npy = str(out / r['image'])
        assert is_complete_cache(npy) and r['modality'] == 'CT'
        img = load_cached_volume(npy)
        assert isinstance(img.array, np.ndarray) and img.array.dtype == np.int16
        np.testing.assert_allclose(img.spacing, 2.0)
        np.testing.assert_allclose(img.direction, np.eye(3), atol=1e-9)  # reoriented to LPS
        # body crop: the cache is smaller than the resampled field of view
        assert img.meta['body_bbox'] is not None
        # the anatomy keeps its world position through reorient + resample + crop
        src = sitk.ReadImage(r['source'])
        src_arr = sitk.GetArrayFromImage(src)
        want = blob_centre_world(src_arr, lambda i: np.array(
            src.TransformContinuousIndexToPhysicalPoint([float(v) for v in i[::-1]])))
        got = blob_centre_world(img.array, img.array_index_to_world)
        assert np.linalg.norm(want - got) < 1.5, (want, got)
    mtimes = {p: os.path.getmtime(p) for p in out.rglob('*.npy')}

    # second run: nothing redone, same failure reported again
    code = tool.main([str(inputs), '--out', str(out), '--spacing', '2.0'])
    captured = capsys.readouterr()
    assert code == 1 and '0 processed, 2 already cached' in captured.out
    assert mtimes == {p: os.path.getmtime(p) for p in out.rglob('*.npy')}
    # no temporary files left behind
    assert not [p for p in out.rglob('*') if p.name.startswith('.tmp')]

    # remove the bad file: clean exit; a different spacing redoes the entries
    (inputs / 'broken.nii.gz').unlink()
    assert tool.main([str(inputs), '--out', str(out), '--spacing', '2.0']) == 0
    assert tool.main([str(inputs), '--out', str(out), '--spacing', '3.0']) == 0
    assert '2 processed' in capsys.readouterr().out
    np.testing.assert_allclose(load_cached_volume(str(out / 'volumes' / 'p1.npy')).spacing, 3.0)


def test_csv_input_labels_and_dataset(tool, tmp_path, capsys):
    src = tmp_path / 'in'
    src.mkdir()
    write_ct(src / 'a.mha', (7, 15, 17))
    lab = sitk.GetArrayFromImage(sitk.ReadImage(str(src / 'a.mha'))) > 400
    lab_img = sitk.GetImageFromArray(lab.astype(np.uint8))
    lab_img.CopyInformation(sitk.ReadImage(str(src / 'a.mha')))
    sitk.WriteImage(lab_img, str(src / 'a_label.nrrd'))
    (src / 'list.csv').write_text('image,label,modality\na.mha,a_label.nrrd,CT\n'
                                  'missing.nii.gz,,CT\n')
    out = tmp_path / 'cache'
    assert tool.main([str(src / 'list.csv'), '--out', str(out)]) == 1
    assert 'missing.nii.gz' in capsys.readouterr().err
    image, label = load_cached_volume(str(out / 'volumes' / 'a.npy'), with_label=True)
    assert label is not None and label.shape == image.shape
    assert set(np.unique(label.array)) == {0, 1}
    # the blob label sits on the bright voxels of the cached image
    assert np.asarray(image.array)[np.asarray(label.array) > 0].mean() > 300

    # the index is a VolumeListDataset list; LoadVolume memory-maps the cache
    ds = VolumeListDataset(ann_file='index.csv', data_root=str(out))
    info = ds.get_data_info(0)
    assert info['img_path'].endswith(osp.join('volumes', 'a.npy'))
    assert info['label_path'].endswith('a_label.npy') and info['modality'] == 'CT'
    res = LoadVolume(with_label=True)(dict(info))
    assert isinstance(res['image'].array.base, np.memmap) or isinstance(
        res['image'].array, np.memmap)
    assert res['label'].shape == res['image'].shape and res['modality'] == 'CT'
    # a cache folder given as data_root alone is recognised by its index.csv
    ds3 = VolumeListDataset(data_root=str(out))
    assert ds3.get_data_info(0)['img_path'] == info['img_path']
    # and cache_dir maps the original list onto the cache
    (src / 'list.csv').write_text('image,label\na.mha,a_label.nrrd\n')
    ds2 = VolumeListDataset(ann_file=str(src / 'list.csv'), cache_dir=str(out))
    assert ds2.get_data_info(0)['img_path'] == info['img_path']


def test_bad_input_path(tool, tmp_path, capsys):
    assert tool.main([str(tmp_path / 'nothing'), '--out', str(tmp_path / 'o')]) == 2
    assert 'neither a folder nor a list' in capsys.readouterr().err
