"""The ``inside`` flag of the landmark files: landmarks_inside on a tiny CT and its radiograph,
and the flag's round trip through the point files."""
import numpy as np
import pytest

from mmanat.datasets.synthetic import landmarks_inside, render_xray
from mmanat.fileio import read_points, write_points
from mmanat.structures import MedicalImage, PointSet
from mmanat.utils.exceptions import InvalidInputError


def _ct():
    """(z, y, x) = (10, 6, 8) water at 2 mm, origin (0, 0, 0): z 0..18 mm, x 0..14 mm."""
    return MedicalImage(np.zeros((10, 6, 8), np.float32), spacing=2.0, origin=(0, 0, 0),
                        modality='CT')


def test_landmark_above_the_top_row_is_flagged_outside():
    ct = _ct()
    # middle; above the top slice (z = 18 mm is the last voxel centre); left of column 0;
    # inside the radiograph but outside the CT along the beam (y)
    xyz = [[7.0, 5.0, 9.0], [7.0, 5.0, 30.0], [-5.0, 5.0, 9.0], [7.0, 40.0, 9.0]]
    in_fov = ct.contains_world(np.array(xyz), margin=-0.5)  # the generator's rule
    pts = PointSet(xyz, names=['mid', 'above', 'left', 'behind'],
                   extra={'in_fov': in_fov.tolist()})
    np.testing.assert_array_equal(landmarks_inside(ct, pts), [True, False, False, False])
    xr, p2 = render_xray(ct, pts, window=1.0, gamma=1.0)
    idx = xr.world_to_index(p2.xyz)
    assert idx[1, 1] < 0  # above the top row of the radiograph
    assert 0 <= idx[3, 0] <= xr.shape[1] - 1 and 0 <= idx[3, 1] <= xr.shape[0] - 1
    np.testing.assert_array_equal(landmarks_inside(xr, p2), [True, False, False, False])
    # without the 3D flag only the image extent counts: the point behind the CT is in view
    bare = PointSet(p2.xyz, names=p2.names)
    np.testing.assert_array_equal(landmarks_inside(xr, bare), [True, False, False, True])
    with pytest.raises(InvalidInputError, match='2D landmarks for a 3D image'):
        landmarks_inside(ct, p2)


def test_inside_column_round_trip(tmp_path):
    ct = _ct()
    pts = PointSet([[7.0, 5.0, 9.0], [7.0, 5.0, 30.0]], names=['mid', 'above'])
    xr, p2 = render_xray(ct, pts)
    flags = landmarks_inside(xr, p2).astype(int).tolist()
    assert flags == [1, 0]
    path = write_points(PointSet(p2.xyz, p2.names, extra={'inside': flags}),
                        tmp_path / 'xray_landmarks.csv')
    with open(path) as f:
        assert f.read().splitlines() == ['name,x,y,inside', 'mid,7.0,9.0,1',
                                         'above,7.0,30.0,0']
    back = read_points(path)
    assert back.names == ['mid', 'above'] and back.extra['inside'] == [1.0, 0.0]
    np.testing.assert_allclose(back.xyz, p2.xyz)
