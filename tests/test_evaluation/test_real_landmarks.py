"""Rule-based chest landmarks of the real sample CTs (mmanat.evaluation.landmarks) and the
``real_landmarks`` benchmark cases built on them."""
import os
import os.path as osp

import numpy as np
import pytest

from mmanat.evaluation.cases import real_landmark_cases
from mmanat.evaluation.landmarks import (LANDMARK_NAMES, LANDMARK_RULES, detect_chest_landmarks,
                                         ensure_sample_landmarks, sample_landmarks,
                                         sample_landmarks_path)
from mmanat.fileio import read_points, read_volume
from mmanat.structures import MedicalImage
from mmanat.utils.exceptions import InvalidInputError

# world LPS mm of the verified run (figures in docs/en/user_guides/real_landmarks.md)
EXPECTED = {
    'lung1': {
        'carina': (1.845, -121.268, -665.0),
        'lung_apex_right': (-28.921, -122.881, -572.5),
        'lung_apex_left': (35.758, -119.948, -567.5),
        'jugular_notch': (0.951, -178.673, -612.5),
        'clavicle_head_right': (-18.567, -174.577, -607.5),
        'clavicle_head_left': (18.785, -172.364, -607.5),
    },
    'lung2': {
        'carina': (-9.104, -150.243, -162.5),
        'lung_apex_right': (-45.454, -146.321, -75.0),
        'lung_apex_left': (23.619, -130.020, -80.0),
        'jugular_notch': (-11.883, -203.964, -105.0),
        'clavicle_head_right': (-39.683, -196.675, -100.0),
        'clavicle_head_left': (18.060, -193.542, -100.0),
    },
}


@pytest.fixture(scope='module')
def detected(sample_file):
    out = {}
    for scan in ('lung1', 'lung2'):
        image = read_volume(sample_file(scan), modality='CT')
        out[scan] = detect_chest_landmarks(image, return_masks=True)
    return out


@pytest.mark.parametrize('scan', ['lung1', 'lung2'])
def test_detected_positions_match_the_verified_run(detected, scan):
    points, _ = detected[scan]
    assert points.names == list(LANDMARK_NAMES) == list(EXPECTED[scan])
    for name, xyz in zip(points.names, points.xyz):
        err = np.linalg.norm(xyz - np.array(EXPECTED[scan][name]))
        assert err < 1.0, f'{scan} {name}: {xyz.round(2)} is {err:.2f} mm from the pinned value'


def test_landmarks_are_anatomically_ordered(detected):
    """Relations that hold in every chest, independent of the pinned numbers."""
    for scan, (points, masks) in detected.items():
        p = dict(zip(points.names, points.xyz))
        # right (x < 0 side in LPS) of the left one; apices above the notch above the carina
        assert p['lung_apex_right'][0] < p['carina'][0] < p['lung_apex_left'][0]
        assert p['clavicle_head_right'][0] < p['jugular_notch'][0] < p['clavicle_head_left'][0]
        assert min(p['lung_apex_right'][2], p['lung_apex_left'][2]) > p['jugular_notch'][2]
        assert p['jugular_notch'][2] > p['carina'][2] + 20
        # the notch lies in front of (smaller y than) the carina, the apices behind the notch
        assert p['jugular_notch'][1] < p['carina'][1] - 20
        assert masks['airway'].any() and masks['lungs'].sum() > 100 * masks['airway'].sum()
        assert masks['sternum'].any()


def test_sample_files_generated_once_and_read_back(tmp_path, sample_file, detected):
    (tmp_path / 'ct').mkdir()
    for scan in ('lung1', 'lung2'):
        os.symlink(sample_file(scan), tmp_path / 'ct' / f'{scan}.nrrd')
    paths = ensure_sample_landmarks(str(tmp_path), log=None)
    assert sorted(paths) == ['lung1', 'lung2']
    for scan, path in paths.items():
        assert path == sample_landmarks_path(str(tmp_path), scan)
        pts = read_points(path)
        ref = detected[scan][0]
        assert pts.names == ref.names
        np.testing.assert_allclose(pts.xyz, ref.xyz, atol=1e-6)
        with open(path) as f:
            assert f.readline().strip() == 'name,x,y,z'
    # present files are kept (not regenerated) and read as they are
    with open(paths['lung1'], 'a') as f:
        f.write('extra_point,0,0,0\n')
    ensure_sample_landmarks(str(tmp_path), log=None)
    assert sample_landmarks('lung1', str(tmp_path)).names[-1] == 'extra_point'
    # force=True regenerates it from the scan
    ensure_sample_landmarks(str(tmp_path), force=True, log=None)
    assert sample_landmarks('lung1', str(tmp_path)).names == list(LANDMARK_NAMES)


def test_real_landmark_cases_both_directions(tmp_path, sample_file, detected):
    (tmp_path / 'ct').mkdir()
    for scan in ('lung1', 'lung2'):
        os.symlink(sample_file(scan), tmp_path / 'ct' / f'{scan}.nrrd')
    cases = real_landmark_cases(str(tmp_path))
    assert [c.name for c in cases] == ['lung1->lung2', 'lung2->lung1']
    a, b = cases
    np.testing.assert_allclose(a.template_points, detected['lung1'][0].xyz, atol=1e-6)
    np.testing.assert_allclose(a.target_points, detected['lung2'][0].xyz, atol=1e-6)
    np.testing.assert_allclose(b.template_points, a.target_points)
    np.testing.assert_allclose(b.target_points, a.template_points)
    assert a.names == list(LANDMARK_NAMES)
    assert osp.isfile(tmp_path / 'ct' / 'lung2_landmarks.csv')  # generated on demand


def test_clear_errors(tmp_path):
    with pytest.raises(InvalidInputError, match='fetch_sample_data'):
        sample_landmarks('lung1', str(tmp_path))
    with pytest.raises(InvalidInputError, match='unknown sample scan'):
        sample_landmarks('brain1', str(tmp_path))
    water = MedicalImage(np.zeros((12, 64, 64), np.int16), spacing=(5.0, 5.0, 5.0),
                         modality='CT')
    with pytest.raises(InvalidInputError, match='no trachea'):
        detect_chest_landmarks(water)
    tilted = MedicalImage(np.zeros((12, 64, 64), np.int16), direction=np.diag([1, -1, 1]))
    with pytest.raises(InvalidInputError, match='identity direction'):
        detect_chest_landmarks(tilted)
    assert set(LANDMARK_RULES) == set(LANDMARK_NAMES)
