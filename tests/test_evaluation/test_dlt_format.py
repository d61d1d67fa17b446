import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest

from mmanat.evaluation.dlt_format import (LesionPair, attach_predictions, evaluate_dlt,
                                          mm_to_voxel, read_dlt_json, read_predictions,
                                          voxel_to_mm, write_dlt_json, write_predictions)
from mmanat.utils.exceptions import InvalidInputError

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# two records in the layout of the DLT project's data/test.json (values made up)
SAMPLE = {
    '0001': {
        'source': 'a_01.nii.gz', 'target': 'a_02.nii.gz',
        'source box': [250.0, 200.0, 3.0, 30.0, 28.0, 6.0],
        'target box': [255.0, 190.0, 20.0, 30.0, 30.0, 10.0],
        'source center': [265.0, 214.0, 6.0], 'target center': [270.0, 205.0, 25.0],
        'source spacing': [0.7, 0.7, 5.0], 'target spacing': [0.8, 0.8, 1.0],
        'source recist diameter': [24.0, 21.0], 'target recist diameter': [20.0, 18.0],
        'target recist slice': 'a_02/253.png',
        'predict target center': [275.0, 205.0, 25.0],
    },
    '0002': {
        'source': 'b_01.nii.gz', 'target': 'b_02.nii.gz',
        'source box': [10.0, 10.0, 1.0, 10.0, 10.0, 2.0],
        'target box': [12.0, 12.0, 2.0, 20.0, 10.0, 4.0],
        'source center': [15.0, 15.0, 2.0], 'target center': [20.0, 17.0, 4.0],
        'source spacing': [1.0, 1.0, 2.0], 'target spacing': [1.0, 1.0, 2.0],
        'predict target center': [20.0, 17.0, 9.0],
    },
}


@pytest.fixture
def sample_json(tmp_path):
    path = tmp_path / 'test.json'
    path.write_text(json.dumps(SAMPLE))
    return str(path)


def test_read_round_trip(sample_json, tmp_path):
    recs = read_dlt_json(sample_json)
    assert [r.key for r in recs] == ['0001', '0002']
    r = recs[0]
    np.testing.assert_allclose(r.target_center, [270, 205, 25])
    assert r.extra == {'target recist slice': 'a_02/253.png'}
    out = write_dlt_json(recs, tmp_path / 'copy.json')
    again = json.loads(open(out).read())
    assert again == SAMPLE
    assert read_dlt_json(out)[1].source == 'b_01.nii.gz'


def test_radius_definitions(sample_json):
    r1, r2 = read_dlt_json(sample_json)
    assert r1.radius_mm() == pytest.approx(20.0 / 2 * 0.8)      # RECIST long diameter
    assert r2.radius_mm() == pytest.approx(max(20.0, 10.0) / 2)  # from the box
    np.testing.assert_allclose(r1.center_mm('target'), [216.0, 164.0, 25.0])


def test_evaluate_hand_computed(sample_json):
    recs = read_dlt_json(sample_json)
    m = evaluate_dlt(recs)
    # pair 1: dx = 5 vox * 0.8 = 4 mm, radius 8 mm -> hit for both CPMs
    # pair 2: dz = 5 vox * 2 = 10 mm, radius 10 mm -> ratio 1 is not < 1; 10 <= 10 is a hit
    assert m['med'] == pytest.approx(7.0)
    assert m['cpm_radius'] == pytest.approx(0.5)
    assert m['cpm_10mm'] == pytest.approx(1.0)
    assert m['med_x'] == pytest.approx(2.0) and m['med_z'] == pytest.approx(5.0)
    # box: pair 1 x 275 in [255, 285], pair 2 z 9 outside [2, 6]
    assert m['box_acc'] == pytest.approx(0.5)


def test_predictions_csv_json(sample_json, tmp_path):
    recs = read_dlt_json(sample_json)
    for r in recs:
        r.pred_center = None
    p = write_predictions({'0001': [270.0, 205.0, 25.0]}, tmp_path / 'pred.csv')
    attach_predictions(recs, read_predictions(p))
    m = evaluate_dlt(recs)
    assert m['n_missing'] == 1 and m['med'] == pytest.approx(0.0)
    assert m['cpm_radius'] == pytest.approx(0.5)
    pj = write_predictions({'0002': [1.0, 2.0, 3.0]}, tmp_path / 'pred.json', kind='mm')
    assert read_predictions(pj)['0002']['mm'].tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(InvalidInputError, match='image-dir'):
        attach_predictions(recs, read_predictions(pj))


def test_voxel_mm_through_geometry(oblique_volume):
    vox = np.array([[1.0, 2.0, 3.0], [4.5, 0.0, 7.0]])
    mm = voxel_to_mm(vox, image=oblique_volume)
    np.testing.assert_allclose(mm, oblique_volume.index_to_world(vox))
    np.testing.assert_allclose(mm_to_voxel(mm, image=oblique_volume), vox, atol=1e-9)
    np.testing.assert_allclose(voxel_to_mm(vox, spacing=[2, 2, 4]), vox * [2, 2, 4])


def test_bad_input(tmp_path):
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps({'0001': {'source': 'a', 'target': 'b'}}))
    with pytest.raises(InvalidInputError, match='lacks'):
        read_dlt_json(bad)
    with pytest.raises(InvalidInputError, match='not found'):
        read_dlt_json(tmp_path / 'missing.json')
    with pytest.raises(InvalidInputError, match='expected 3'):
        LesionPair('x', 'a', 'b', [1, 2], [1, 2, 3], [1, 1, 1], [1, 1, 1])


def test_eval_cli(sample_json, tmp_path):
    out = tmp_path / 'metrics.json'
    proc = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'eval_lesion_tracking.py'),
                           '--ann', sample_json, '--out', str(out)],
                          capture_output=True, encoding='utf-8', errors='replace', cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert 'CPM@Radius' in proc.stdout
    res = json.loads(out.read_text())
    assert res['metrics']['med'] == pytest.approx(7.0)
