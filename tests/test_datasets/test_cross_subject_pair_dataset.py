"""CrossSubjectPairDataset: two different subjects, crops of the requested size at 2 mm with
labels that follow the anatomy (nearest), oblique inputs, a folder of image + label files, the
UAE-S preprocessor splitting mixed batches, and clear errors."""
import csv

import numpy as np
import pytest
import torch
from mmengine.dataset import BaseDataset

from mmanat.datasets.cross_subject_pair_dataset import (CrossSubjectPairDataset,
                                                        lps_aligned_direction,
                                                        random_crop_geometry)
from mmanat.registry import DATASETS, MODELS
from mmanat.structures.image import MedicalImage
from mmanat.utils.exceptions import InvalidInputError


def world_labels(xyz):
    """An analytic 'organ' map of world mm (3, ...) points: 1 left of x=0 inside a slab,
    2 a ball, else 0."""
    x, y, z = xyz
    lab = np.zeros(x.shape, np.int16)
    lab[(x < 0) & (np.abs(z) < 30)] = 1
    lab[(x - 20) ** 2 + (y - 5) ** 2 + z ** 2 < 25 ** 2] = 2
    return lab


def subject(k, direction=np.eye(3), shape=(30, 36, 40), spacing=(1.5, 1.6, 2.5)):
    z, y, x = np.meshgrid(*[np.arange(n, dtype=float) for n in shape], indexing='ij')
    origin = np.array([-30.0, -25.0, -35.0]) + k
    img = MedicalImage(np.zeros(shape, np.int16), spacing=spacing, origin=origin,
                       direction=direction, modality='CT')
    idx = np.stack([x, y, z], -1).reshape(-1, 3)
    xyz = img.index_to_world(idx).T.reshape((3, ) + shape)
    lab = world_labels(xyz)
    arr = np.where(lab > 0, 40 * lab, -1000 + 10 * k).astype(np.int16)
    return img.with_array(arr), img.with_array(lab, modality=None)


class Subjects(BaseDataset):
    METAINFO = dict(dataset_type='toy')

    def __init__(self, n=4, direction=np.eye(3)):
        self.n, self.direction = n, direction
        super().__init__(serialize_data=False)

    def load_data_list(self):
        return [dict(k=k) for k in range(self.n)]

    def prepare_data(self, idx):
        image, label = subject(idx, self.direction)
        return dict(image=image, label=label, modality='CT', subject_id=f's{idx}')


def test_pairs_of_different_subjects_with_packed_labels():
    np.random.seed(0)
    ds = CrossSubjectPairDataset(source=Subjects(4), crop_size=(12, 20, 16), spacing=2.0)
    assert len(ds) == 4 and DATASETS.get('CrossSubjectPairDataset') is CrossSubjectPairDataset
    pairs = set()
    for i in range(12):
        s = ds[i % 4]
        a, b = s['data_samples']['meta']['subject_id']
        assert a == f's{i % 4}' and a != b
        pairs.add((a, b))
        assert s['inputs'].shape == (2, 1, 12, 20, 16) and s['inputs'].dtype == torch.float32
        d = s['data_samples']
        assert d['labels'].shape == (2, 12, 20, 16) and d['labels'].dtype == torch.int64
        assert d['coords'].shape == (2, 3, 12, 20, 16) and d['valid'].dtype == torch.bool
        assert d['meta']['pair_type'] == 'inter'
        assert torch.all(d['labels'][~d['valid']] == 0)
        np.testing.assert_allclose(d['meta']['view_spacing'], 2.0)
    assert len({b for _, b in pairs}) > 2          # the partner is random


@pytest.mark.parametrize('oblique', [False, True])
def test_crop_labels_follow_world_anatomy(oblique):
    from tests.conftest import rotation_matrix
    direction = rotation_matrix((1, 2, 3), 20.0) if oblique else np.diag([1.0, -1.0, 1.0])
    np.random.seed(1)
    ds = CrossSubjectPairDataset(source=Subjects(3, direction), crop_size=(20, 24, 24),
                                 spacing=2.0)
    s = ds[0]
    d = s['data_samples']
    for v in range(2):
        ok = d['valid'][v].numpy()
        truth = world_labels(d['coords'][v].numpy().astype(np.float64))
        agree = (d['labels'][v].numpy() == truth)[ok].mean()
        assert ok.mean() > 0.3 and agree > 0.9
        # grid axes point along L, P, S even for a flipped/oblique source
        dirs = d['meta']['view_directions'][v]
        assert np.all(np.argmax(np.abs(dirs), axis=0) == [0, 1, 2])
        assert np.all(np.diag(dirs) > 0.7)


def test_random_crop_geometry_inside_or_covering():
    img, _ = subject(0)
    rng = np.random.default_rng(0)
    lo = img.index_to_world(np.array([[-0.5, -0.5, -0.5]]))[0]
    hi = img.index_to_world(np.array([[39.5, 35.5, 29.5]]))[0]
    for _ in range(20):
        g = random_crop_geometry(img, (10, 12, 200), 2.0, rng)   # x longer than the image
        first = g['origin']
        last = g['origin'] + g['direction'] @ ((g['size'] - 1) * 2.0)
        assert first[1] - 1 >= lo[1] - 1e-6 and last[1] + 1 <= hi[1] + 1e-6   # y inside
        assert first[0] - 1 <= lo[0] + 1e-6 and last[0] + 1 >= hi[0] - 1e-6   # x covers
    flip = np.diag([1.0, -1.0, -1.0])[:, [1, 0, 2]]
    np.testing.assert_allclose(lps_aligned_direction(flip), np.eye(3))


def test_folder_of_images_and_label_maps(tmp_path):
    from mmanat.fileio import write_image
    rows = []
    for k in range(2):
        image, label = subject(k)
        write_image(image, tmp_path / f'ct{k}.nii.gz')
        write_image(label, tmp_path / f'ct{k}_seg.nii.gz')
        rows.append(dict(image=f'ct{k}.nii.gz', label=f'ct{k}_seg.nii.gz', modality='CT'))
    with open(tmp_path / 'list.csv', 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=['image', 'label', 'modality'])
        w.writeheader()
        w.writerows(rows)
    ds = DATASETS.build(dict(
        type='CrossSubjectPairDataset', crop_size=(8, 16, 16),
        source=dict(type='VolumeListDataset', data_root=str(tmp_path), ann_file='list.csv'),
        view_pipeline=[dict(type='NormalizeViewIntensity'),
                       dict(type='RandomIntensityAugment')]))
    s = ds[1]
    assert s['data_samples']['meta']['subject_id'] == ('ct1', 'ct0')
    assert set(np.unique(s['data_samples']['labels'].numpy())) <= {0, 1, 2}
    assert float(s['inputs'].min()) >= -90 and float(s['inputs'].max()) <= 290  # + noise


def test_missing_labels_and_single_subject_are_reported(tmp_path):
    class NoLabel(Subjects):
        def prepare_data(self, idx):
            out = super().prepare_data(idx)
            out.pop('label')
            return out

    with pytest.raises(InvalidInputError, match='no label map'):
        CrossSubjectPairDataset(source=NoLabel(2), crop_size=(4, 8, 8))[0]
    with pytest.raises(InvalidInputError, match='at least 2'):
        CrossSubjectPairDataset(source=Subjects(1))


def test_uae_s_preprocessor_splits_mixed_batches():
    np.random.seed(2)
    inter = CrossSubjectPairDataset(source=Subjects(2), crop_size=(12, 20, 20))[0]
    intra = dict(inputs=torch.randn(2, 1, 8, 16, 16), data_samples=dict(
        coords=torch.randn(2, 3, 8, 16, 16), valid=torch.ones(2, 8, 16, 16, dtype=torch.bool),
        meta=dict(subject_id='x')))
    pre = MODELS.build(dict(type='UAESDataPreprocessor', pad_size_divisor=(4, 16, 16)))
    batch = [intra, intra, inter]
    out = pre(dict(inputs=[b['inputs'] for b in batch],
                   data_samples=[b['data_samples'] for b in batch]), True)
    assert out['inputs']['intra'].shape == (2, 2, 1, 8, 16, 16)
    assert out['inputs']['inter'].shape == (1, 2, 1, 12, 32, 32)   # padded to (4, 16, 16)
    lab = out['data_samples']['inter']['labels']
    assert lab.shape == (1, 2, 12, 32, 32) and int(lab[..., 20:].abs().sum()) == 0
    assert 'labels' not in out['data_samples']['intra']
    # a batch without inter pairs is a plain SAM batch
    plain = pre(dict(inputs=[intra['inputs']], data_samples=[intra['data_samples']]), True)
    assert torch.is_tensor(plain['inputs']) and plain['inputs'].shape[0] == 1
