"""PairedVolumeDataset (registered CT/MR pairs from a CSV) and the synthetic CT -> moved-MR
cases of the UAE-M recipe."""
import os.path as osp

import numpy as np
import pytest
from mmengine.registry import init_default_scope

from mmanat.fileio import write_image
from mmanat.registry import DATASETS
from mmanat.structures import MedicalImage
from mmanat.utils.exceptions import InvalidInputError


def _pair(folder, shift_origin=False):
    rng = np.random.default_rng(0)
    ct = MedicalImage(rng.uniform(-1000, 500, (40, 48, 48)).astype(np.float32),
                      spacing=(4.0, 4.0, 4.0), origin=(-90.0, -80.0, 10.0), modality='CT')
    mr = ct.with_array(rng.uniform(0, 800, ct.shape).astype(np.float32), modality='MR')
    if shift_origin:
        mr = MedicalImage(mr.array, spacing=(4.0, 4.0, 4.0), origin=(-86.0, -80.0, 10.0),
                          modality='MR')
    write_image(ct, osp.join(folder, 'a_ct.nii.gz'))
    write_image(mr, osp.join(folder, 'a_mr.nii.gz'))
    with open(osp.join(folder, 'pairs.csv'), 'w') as fh:
        fh.write('ct,mr,subject_id\na_ct.nii.gz,a_mr.nii.gz,subj_a\n')
    return osp.join(folder, 'pairs.csv')


def test_pairs_feed_the_inter_modality_crop(tmp_path):
    init_default_scope('mmanat')
    ds = DATASETS.build(dict(
        type='PairedVolumeDataset', ann_file=_pair(str(tmp_path)),
        pipeline=[dict(type='RandomInterModalityCrop', patch_size=(16, 32, 32), spacing=2.0,
                       jitter=2),
                  dict(type='PackSAMInputs', meta_keys=('subject_id', 'modality',
                                                        'view_modalities'))]))
    assert len(ds) == 1
    out = ds[0]
    assert tuple(out['inputs'].shape[:2]) == (2, 1)
    meta = out['data_samples']['meta']
    assert meta['subject_id'] == 'subj_a' and sorted(meta['view_modalities']) == ['CT', 'MR']


def test_bad_lists_are_reported(tmp_path):
    init_default_scope('mmanat')
    with pytest.raises(InvalidInputError, match='not found'):
        DATASETS.build(dict(type='PairedVolumeDataset', ann_file=str(tmp_path / 'none.csv')))
    bad = tmp_path / 'bad.csv'
    bad.write_text('image,label\na,b\n')
    with pytest.raises(InvalidInputError, match='ct,mr'):
        DATASETS.build(dict(type='PairedVolumeDataset', ann_file=str(bad)))
    missing = tmp_path / 'missing.csv'
    missing.write_text('ct,mr\nx_ct.nii.gz,x_mr.nii.gz\n')
    with pytest.raises(InvalidInputError, match='row 2: ct file'):
        DATASETS.build(dict(type='PairedVolumeDataset', ann_file=str(missing)))
    sub = tmp_path / 'shifted'
    sub.mkdir()
    ds = DATASETS.build(dict(type='PairedVolumeDataset', ann_file=_pair(str(sub), True)))
    with pytest.raises(InvalidInputError, match='not on the grid'):
        ds[0]


def test_ct_mr_registration_case_ground_truth():
    """The moved MR at the ground-truth position shows what the MR shows at the CT point."""
    from mmanat.evaluation import ct_mr_registration_cases
    case = ct_mr_registration_cases(1, spacing=6.0, seed=3, n_body_points=20,
                                    max_displacement_mm=6.0)[0]
    assert case.template.modality == 'CT' and case.target.modality == 'MR'
    assert len(case.template_points) >= 15
    moved = np.linalg.norm(case.template_points - case.target_points, axis=1)
    assert moved.mean() > 3.0  # the MR really moved
    assert case.target.contains_world(case.target_points).all()
    # R(gt) = the CT point: the deformation maps the moved MR's points back exactly
    back = case.meta['deformation'].target_to_template(case.target_points)
    assert np.abs(back - case.template_points).max() < 1e-3


def test_body_masks_from_columns_or_computed(tmp_path):
    init_default_scope('mmanat')
    csv = _pair(str(tmp_path))
    ct = MedicalImage(np.zeros((40, 48, 48), np.float32), spacing=(4.0, 4.0, 4.0),
                      origin=(-90.0, -80.0, 10.0))
    ct_m, mr_m = np.zeros(ct.shape, np.uint8), np.zeros(ct.shape, np.uint8)
    ct_m[5:35, 4:44, 4:44] = 1
    mr_m[5:35, 10:30, 10:30] = 2  # any nonzero label is body
    write_image(ct.with_array(ct_m), osp.join(str(tmp_path), 'a_ct_mask.nii.gz'))
    write_image(ct.with_array(mr_m), osp.join(str(tmp_path), 'a_mr_mask.nii.gz'))
    with_masks = tmp_path / 'with_masks.csv'
    with_masks.write_text('ct,mr,ct_mask,mr_mask\n'
                          'a_ct.nii.gz,a_mr.nii.gz,a_ct_mask.nii.gz,a_mr_mask.nii.gz\n')
    ds = DATASETS.build(dict(type='PairedVolumeDataset', ann_file=str(with_masks)))
    item = ds[0]
    assert np.array_equal(item['body_mask'].array, ct_m)
    assert np.array_equal(item['pair_body_mask'].array, (mr_m > 0).astype(np.uint8))
    # without mask columns: no masks by default (today's items), computed on request
    assert 'body_mask' not in DATASETS.build(dict(type='PairedVolumeDataset',
                                                   ann_file=csv))[0]
    ds = DATASETS.build(dict(type='PairedVolumeDataset', ann_file=csv, body_masks='compute',
                             mask_min_object_size=10))
    item = ds[0]
    from mmanat.structures.body import body_mask
    assert np.array_equal(item['body_mask'].array > 0,
                          body_mask(item['image'], min_object_size=10))
    assert item['pair_body_mask'].array.shape == item['pair_image'].array.shape
    assert ds[0]['pair_body_mask'] is item['pair_body_mask']  # cached
    # the released crop runs on the loaded masks
    ds = DATASETS.build(dict(
        type='PairedVolumeDataset', ann_file=str(with_masks),
        pipeline=[dict(type='RandomInterModalityCrop', patch_size=(8, 16, 16), spacing=4.0,
                       jitter=1, placement='mr_body', with_masks=True)]))
    res = ds[0]
    assert res['two_view_meta']['placement'] == 'mr_body'
    assert res['view_query_mask'][1].mean() > 0.5
    with pytest.raises(InvalidInputError, match='body_masks'):
        DATASETS.build(dict(type='PairedVolumeDataset', ann_file=csv, body_masks='file'))
    bad = tmp_path / 'bad_mask.csv'
    write_image(MedicalImage(np.zeros((4, 4, 4), np.uint8)), str(tmp_path / 'small.nii.gz'))
    bad.write_text('ct,mr,mr_mask\na_ct.nii.gz,a_mr.nii.gz,small.nii.gz\n')
    with pytest.raises(InvalidInputError, match='not on the grid'):
        DATASETS.build(dict(type='PairedVolumeDataset', ann_file=str(bad)))[0]
