"""mmanat-make-synthetic (tools/make_synthetic_data.py): files per subject, index.csv,
determinism across runs."""
import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmanat.cli import make_synthetic
from mmanat.datasets.synthetic import LANDMARK_NAMES, STRUCTURE_BY_NAME
from mmanat.fileio import read_image, read_points
from mmanat.utils.exceptions import InvalidInputError

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / 'tools' / 'make_synthetic_data.py'
ARGS = ['--num', '2', '--seed', '3', '--spacing', '6', '--modalities', 'ct', 'mr', 'xray']
FILES = ('ct.nii.gz', 'mr.nii.gz', 'labels.nii.gz', 'landmarks.csv', 'lesions.csv',
         'xray.png', 'xray.nii.gz', 'xray_landmarks.csv')


@pytest.fixture(scope='module')
def two_runs(tmp_path_factory):
    """Run 1 in-process (1 worker), run 2 as a subprocess with 2 worker processes."""
    out1 = tmp_path_factory.mktemp('run1')
    out2 = tmp_path_factory.mktemp('run2')
    assert make_synthetic.main(ARGS + ['--out', str(out1), '--workers', '1']) == 0
    proc = subprocess.run([sys.executable, str(TOOL)] + ARGS + ['--out', str(out2),
                                                                '--workers', '2'],
                          cwd=str(REPO), capture_output=True, encoding='utf-8',
                          errors='replace', timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'synthetic subjects' in proc.stderr  # tqdm progress bar
    return out1, out2


def test_files_and_index(two_runs):
    out, _ = two_runs
    with open(out / 'index.csv', newline='') as f:
        rows = list(csv.DictReader(f))
    assert [r['subject_id'] for r in rows] == ['subject_0000', 'subject_0001']
    assert [int(r['seed']) for r in rows] == [3, 4]
    for row in rows:
        folder = out / row['subject_id']
        for name in FILES:
            assert (folder / name).is_file(), name
        for col in ('ct', 'mr', 'labels', 'landmarks', 'xray_png', 'xray_nii',
                    'xray_landmarks', 'lesions'):
            assert (out / row[col]).is_file(), col
        ct = read_image(folder / 'ct.nii.gz')
        mr = read_image(folder / 'mr.nii.gz')
        lab = read_image(folder / 'labels.nii.gz')
        assert ct.same_geometry(lab) and mr.same_geometry(lab)
        assert ct.array.dtype == np.int16 and lab.array.dtype == np.int16
        assert np.allclose(lab.spacing, 6.0)
        assert row['shape_zyx'] == 'x'.join(str(v) for v in lab.shape)
        # CT air and liver values are CT-like
        liver = lab.array == STRUCTURE_BY_NAME['liver'].label
        if liver.sum() > 10:
            assert 20 < np.median(ct.array[liver]) < 160
        assert np.median(ct.array[lab.array == 0]) < -900
        # landmarks: name,x,y,z in world mm, the generator's names, and the inside flag
        pts = read_points(folder / 'landmarks.csv')
        assert pts.names == list(LANDMARK_NAMES) and pts.xyz.shape[1] == 3
        with open(folder / 'landmarks.csv') as f:
            assert f.readline().strip() == 'name,x,y,z,inside'
        inside = np.asarray(pts.extra['inside'])
        assert set(inside.tolist()) <= {0.0, 1.0}
        np.testing.assert_array_equal(inside == 1, lab.contains_world(pts.xyz, margin=-0.5))
        assert int(inside.sum()) == int(row['landmarks_in_fov'])
        # 2D landmarks: (x, z) world mm of the radiograph and their pixel indices
        xr = read_image(folder / 'xray.nii.gz')
        assert xr.ndim == 2 and np.allclose(xr.spacing, 6.0)
        p2 = read_points(folder / 'xray_landmarks.csv')
        assert np.allclose(p2.xyz[:, 0], pts.xyz[:, 0]) and np.allclose(p2.xyz[:, 1],
                                                                         pts.xyz[:, 2])
        colrow = np.stack([p2.extra['column'], p2.extra['row']], 1)
        assert np.allclose(xr.world_to_index(p2.xyz), colrow, atol=1e-6)
        with open(folder / 'xray_landmarks.csv') as f:
            assert f.readline().strip() == 'name,x,y,column,row,inside'
        in_image = np.all((colrow >= 0) & (colrow <= np.array(xr.shape[::-1]) - 1), axis=1)
        np.testing.assert_array_equal(np.asarray(p2.extra['inside']) == 1,
                                      in_image & (inside == 1))
        ijk = lab.world_to_index(pts.xyz)
        assert np.allclose(colrow[:, 0], ijk[:, 0]) and np.allclose(
            colrow[:, 1], lab.shape[0] - 1 - ijk[:, 2])
        png = read_image(folder / 'xray.png')
        assert png.shape == xr.shape and png.array.dtype == np.uint8
        assert np.abs(png.array / 255.0 - xr.array).max() <= 0.5 / 255 + 1e-6
        with open(folder / 'lesions.csv') as f:
            lesion_rows = list(csv.DictReader(f))
        assert len(lesion_rows) == int(row['num_lesions'])


def _decoded(path):
    if path.name.endswith(('.nii.gz', '.png')):
        img = read_image(path)
        return (img.array.tobytes(), img.array.dtype.str, img.shape,
                tuple(np.round(img.spacing, 9)), tuple(np.round(img.origin, 9)),
                tuple(np.round(img.direction.ravel(), 9)))
    return path.read_bytes()


def test_two_runs_identical(two_runs):
    out1, out2 = two_runs
    files1 = sorted(p.relative_to(out1) for p in out1.rglob('*') if p.is_file())
    files2 = sorted(p.relative_to(out2) for p in out2.rglob('*') if p.is_file())
    assert files1 == files2 and len(files1) == 2 * len(FILES) + 1
    for rel in files1:
        assert _decoded(out1 / rel) == _decoded(out2 / rel), rel
        # the writers store no time stamps: the files are byte-identical too
        assert (out1 / rel).read_bytes() == (out2 / rel).read_bytes(), rel


def test_modalities_subset_and_bad_args(tmp_path, capsys):
    rows = make_synthetic.make_synthetic_data(make_synthetic.parse_args(
        ['--num', '1', '--out', str(tmp_path), '--spacing', '8', '--modalities', 'mr',
         '--mr-preset', 'T2']))
    folder = tmp_path / 'subject_0000'
    assert sorted(os.listdir(folder)) == ['labels.nii.gz', 'landmarks.csv', 'lesions.csv',
                                          'mr.nii.gz']
    assert rows[0]['mr_preset'] == 'T2' and rows[0]['ct'] == ''
    with pytest.raises(InvalidInputError, match='--num'):
        make_synthetic.make_synthetic_data(make_synthetic.parse_args(
            ['--num', '0', '--out', str(tmp_path)]))
    capsys.readouterr()
    # the command: one error line, exit code 2
    assert make_synthetic.main(['--num', '1', '--out', str(tmp_path), '--spacing', '1',
                                '2']) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: --spacing must be one or three') and err.count('\n') == 1
