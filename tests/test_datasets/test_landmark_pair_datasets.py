"""The test-time pair datasets: synthetic landmark pairs, landmark pairs from files, DLT
lesion pairs."""
import json

import numpy as np
import pytest

from mmanat.datasets.landmark_pair_dataset import LandmarkPairDataset, match_named_points
from mmanat.datasets.lesion_pair_dataset import LesionPairDataset
from mmanat.datasets.synthetic_landmark_pair_dataset import SyntheticLandmarkPairDataset
from mmanat.registry import DATASETS
from mmanat.structures import MedicalImage, PointSet
from mmanat.utils.exceptions import InvalidInputError

TINY = dict(spacing=4.0, z_range=(400.0, 480.0))


def test_synthetic_pairs_are_the_cross_subject_benchmark_pairs():
    from mmanat.evaluation import cross_subject_cases
    ds = DATASETS.build(dict(type='SyntheticLandmarkPairDataset',
                             modality_pairs=[('CT', 'MR')], num_pairs=2, seed=5, **TINY))
    assert isinstance(ds, SyntheticLandmarkPairDataset) and len(ds) == 2
    item = ds[1]
    (case, ) = [c for c in cross_subject_cases([('CT', 'MR')], n_pairs=2, seed=5, **TINY)
                if c.name == 'CT->MR/1']
    assert item['pair_name'] == case.name
    assert item['template'].modality == 'CT' and item['target'].modality == 'MR'
    np.testing.assert_array_equal(item['template'].array, case.template.array)
    np.testing.assert_array_equal(item['target'].array, case.target.array)
    np.testing.assert_array_equal(item['template_points'], case.template_points)
    np.testing.assert_array_equal(item['gt_points'], case.target_points)
    assert item['names'] == case.names and len(item['names']) > 0
    assert (item['template_seed'], item['target_seed']) == (7, 8)


def test_synthetic_pairs_reject_bad_modalities():
    with pytest.raises(InvalidInputError, match='modality_pairs'):
        SyntheticLandmarkPairDataset(modality_pairs=[('CT', 'PET')])


def _volume(seed):
    arr = np.random.default_rng(seed).normal(0, 100, (8, 9, 10)).astype(np.float32)
    return MedicalImage(arr, spacing=(2.0, 2.0, 3.0), origin=(1.0, -2.0, 5.0), modality='CT')


def test_landmark_pairs_from_files(tmp_path):
    from mmanat.fileio import write_image, write_points
    write_image(_volume(0), str(tmp_path / 'a.nii.gz'))
    write_image(_volume(1), str(tmp_path / 'b.nii.gz'))
    write_points(PointSet([[1, 2, 3], [4, 5, 6], [7, 8, 9]], names=['x', 'y', 'z']),
                 str(tmp_path / 'a.csv'))
    # the target names its points in another order and lacks 'y'
    write_points(PointSet([[70, 80, 90], [10, 20, 30]], names=['z', 'x']),
                 str(tmp_path / 'b.csv'))
    ann = tmp_path / 'pairs.json'
    ann.write_text(json.dumps([dict(template='a.nii.gz', target='b.nii.gz',
                                    template_points='a.csv', target_points='b.csv',
                                    name='a->b')]))
    ds = DATASETS.build(dict(type='LandmarkPairDataset', ann_file=str(ann)))
    assert isinstance(ds, LandmarkPairDataset) and len(ds) == 1
    item = ds[0]
    assert item['pair_name'] == 'a->b' and item['names'] == ['x', 'z']
    np.testing.assert_allclose(item['template_points'], [[1, 2, 3], [7, 8, 9]])
    np.testing.assert_allclose(item['gt_points'], [[10, 20, 30], [70, 80, 90]])
    np.testing.assert_allclose(item['target'].array, _volume(1).array, atol=1e-4)


def test_landmark_pairs_errors(tmp_path):
    with pytest.raises(InvalidInputError, match='not found'):
        LandmarkPairDataset(ann_file=str(tmp_path / 'missing.json'))
    ann = tmp_path / 'pairs.json'
    ann.write_text(json.dumps([dict(template='a.nii.gz', target='b.nii.gz')]))
    with pytest.raises(InvalidInputError, match='lacks'):
        LandmarkPairDataset(ann_file=str(ann))
    with pytest.raises(InvalidInputError, match='share no point name'):
        match_named_points(PointSet([[0, 0, 0]], names=['a']), PointSet([[0, 0, 0]],
                                                                        names=['b']))


def test_lesion_pairs_from_dlt_json(tmp_path):
    from mmanat.evaluation import LesionTrackingMetric, longitudinal_lesion_cases
    cases = longitudinal_lesion_cases(n_cases=1, spacing=4.0, seed=0, out_dir=str(tmp_path))
    records = [r for c in cases for r in c.records]
    ds = DATASETS.build(dict(type='LesionPairDataset', ann_file=str(tmp_path / 'test.json')))
    assert isinstance(ds, LesionPairDataset) and len(ds) == len(records) > 0
    item = ds[0]
    rec, case = records[0], cases[0]
    assert item['pair_name'] == rec.key
    # voxel centres of the record -> world mm through the images written beside test.json
    np.testing.assert_allclose(item['template_points'][0],
                               case.template.index_to_world(rec.source_center), atol=1e-3)
    np.testing.assert_allclose(item['gt_center'][0],
                               case.target.index_to_world(rec.target_center), atol=1e-3)
    assert item['gt_radius'][0] == pytest.approx(rec.radius_mm('target'))
    assert np.all(item['gt_box_min'] <= item['gt_center']) and \
        np.all(item['gt_center'] <= item['gt_box_max'])
    # the items feed LesionTrackingMetric as the test loop does (pred under 'pred_center')
    metric = LesionTrackingMetric()
    hit = dict(item, pred_center=item['gt_center'] + 0.5)
    far = dict(item, pred_center=item['gt_center'] + 100.0)
    metric.process({}, [hit, far])
    res = metric.compute_metrics(metric.results)
    assert res['n'] == 2 and res['cpm_radius'] == 0.5
    assert res['med'] == pytest.approx((np.sqrt(3) * 0.5 + np.sqrt(3) * 100) / 2)
