"""Point files: CSV (extra columns kept), Slicer .mrk.json and .fcsv, LPS/RAS."""
import json
import os

import numpy as np
import pytest

from mmanat.fileio import read_points, write_points
from mmanat.structures import PointSet
from mmanat.utils.exceptions import InvalidInputError

XYZ = np.array([[12.5, -30.25, 101.0], [-0.1, 0.2, -0.3], [1e-3, 123.456789012345, -77.0]])


def _points():
    return PointSet(XYZ.copy(), names=['carina', 'T4, left', 'apex "R"'],
                    extra={'score': [0.5, 0.25, 1.0], 'note': ['a', '', 'x y']})


@pytest.mark.parametrize('space', ['LPS', 'RAS'])
def test_csv_round_trip_exact_with_extra_columns(tmp_path, space):
    path = write_points(_points(), tmp_path / 'p.csv', space=space)
    back = read_points(path, space=space)
    np.testing.assert_array_equal(back.xyz, XYZ)
    assert back.names == ['carina', 'T4, left', 'apex "R"']
    assert back.extra['score'] == [0.5, 0.25, 1.0]
    assert back.extra['note'] == ['a', '', 'x y']
    assert os.listdir(tmp_path) == ['p.csv']


def test_csv_space_conversion_on_disk(tmp_path):
    write_points(_points(), tmp_path / 'ras.csv', space='RAS')
    lines = (tmp_path / 'ras.csv').read_text().splitlines()
    assert lines[0] == '# space = RAS'  # the file records its convention
    assert lines[1] == 'name,x,y,z,score,note'
    assert lines[2].startswith('carina,-12.5,30.25,101.0,')
    # the declaration wins over the reader's default: the LPS points come back unchanged
    np.testing.assert_array_equal(read_points(tmp_path / 'ras.csv').xyz, XYZ)
    np.testing.assert_array_equal(read_points(tmp_path / 'ras.csv', space='RAS').xyz, XYZ)
    # an LPS file stays plain CSV (no declaration line)
    write_points(_points(), tmp_path / 'lps.csv')
    assert (tmp_path / 'lps.csv').read_text().startswith('name,x,y,z')
    # a hand-written RAS file without the line is read in the space the caller names
    body = '\n'.join(lines[1:]) + '\n'
    (tmp_path / 'plain.csv').write_text(body)
    np.testing.assert_array_equal(read_points(tmp_path / 'plain.csv', space='RAS').xyz, XYZ)
    np.testing.assert_array_equal(read_points(tmp_path / 'plain.csv').xyz, XYZ * [-1, -1, 1])


def test_read_points_dimension_and_count_requirements(tmp_path):
    (tmp_path / 'p2.csv').write_text('name,x,y\na,1,2\n')
    assert read_points(tmp_path / 'p2.csv').xyz.shape == (1, 2)
    with pytest.raises(InvalidInputError, match='2D points .* 3D points are required; add a z'):
        read_points(tmp_path / 'p2.csv', ndim=3)
    (tmp_path / 'h.csv').write_text('name,x,y,z\n')
    assert len(read_points(tmp_path / 'h.csv')) == 0
    with pytest.raises(InvalidInputError, match='holds 0 point.*at least 1'):
        read_points(tmp_path / 'h.csv', min_points=1)


def test_csv_hand_written_with_comments_and_no_name(tmp_path):
    path = tmp_path / 'h.csv'
    path.write_text('# landmarks in RAS\nX,Y,Z,radius\n1,2,3,4.5\n-1,-2,-3,5\n')
    pts = read_points(path, space='RAS')
    np.testing.assert_array_equal(pts.xyz, [[-1, -2, 3], [1, 2, -3]])
    assert pts.names == ['p0', 'p1'] and pts.extra['radius'] == [4.5, 5.0]


def test_csv_2d_points(tmp_path):
    pts = PointSet(np.array([[1.5, 2.5], [3.0, 4.0]]), names=['a', 'b'])
    back = read_points(write_points(pts, tmp_path / 'xy.csv'))
    np.testing.assert_array_equal(back.xyz, pts.xyz)
    with pytest.raises(InvalidInputError, match='2D points'):
        read_points(tmp_path / 'xy.csv', space='RAS')
    with pytest.raises(InvalidInputError, match='2D points'):
        write_points(pts, tmp_path / 'xy.mrk.json')


@pytest.mark.parametrize('space', ['LPS', 'RAS'])
def test_mrk_json_round_trip(tmp_path, space):
    pts = PointSet(XYZ.copy(), names=['a', 'b', 'c'], extra={'description': ['d1', '', 'd3']})
    path = write_points(pts, tmp_path / 'p.mrk.json', space=space)
    doc = json.loads(open(path).read())
    markup = doc['markups'][0]
    assert markup['coordinateSystem'] == space and markup['type'] == 'Fiducial'
    sign = np.array([-1, -1, 1]) if space == 'RAS' else np.ones(3)
    np.testing.assert_array_equal(markup['controlPoints'][0]['position'], XYZ[0] * sign)
    # reading honours the declared system, whatever space= says
    for read_space in ('LPS', 'RAS'):
        back = read_points(path, space=read_space)
        np.testing.assert_allclose(back.xyz, XYZ, atol=0)
        assert back.names == ['a', 'b', 'c']
        assert back.extra['description'] == ['d1', '', 'd3']


def test_mrk_json_as_slicer_writes_it(tmp_path):
    """A Slicer-5 style RAS file with an unplaced landmark and two markups nodes."""
    doc = {
        '@schema': 'https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/'
                   'Markups/Resources/Schema/markups-schema-v1.0.3.json#',
        'markups': [
            {'type': 'Fiducial', 'coordinateSystem': 'RAS', 'coordinateUnits': 'mm',
             'controlPoints': [
                 {'id': '1', 'label': 'F-1', 'description': '', 'position': [10.0, 20.0, 30.0],
                  'positionStatus': 'defined'},
                 {'id': '2', 'label': 'F-2', 'description': '', 'position': [0.0, 0.0, 0.0],
                  'positionStatus': 'missing'}]},
            {'type': 'Fiducial', 'coordinateSystem': 'LPS',
             'controlPoints': [{'id': '1', 'label': 'G-1', 'position': [1.0, 2.0, 3.0]}]}]}
    path = tmp_path / 's.mrk.json'
    path.write_text(json.dumps(doc))
    pts = read_points(path)
    assert pts.names == ['F-1', 'G-1']
    np.testing.assert_array_equal(pts.xyz, [[-10.0, -20.0, 30.0], [1.0, 2.0, 3.0]])


@pytest.mark.parametrize('space', ['LPS', 'RAS'])
def test_fcsv_round_trip(tmp_path, space):
    pts = PointSet(XYZ.copy(), names=['a,1', 'b', 'c'])
    path = write_points(pts, tmp_path / 'p.fcsv', space=space)
    text = open(path).read()
    assert f'# CoordinateSystem = {space}' in text
    back = read_points(path)
    np.testing.assert_array_equal(back.xyz, XYZ)
    assert back.names == ['a,1', 'b', 'c']


@pytest.mark.parametrize('declared, sign', [('0', [-1, -1, 1]), ('RAS', [-1, -1, 1]),
                                            ('1', [1, 1, 1]), ('LPS', [1, 1, 1]),
                                            (None, [-1, -1, 1])])
def test_fcsv_declared_system_honoured(tmp_path, declared, sign):
    head = '# Markups fiducial file version = 4.6\n'
    if declared is not None:
        head += f'# CoordinateSystem = {declared}\n'
    head += '# columns = id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID\n'
    body = ('vtkMRMLMarkupsFiducialNode_0,5,-6,7,0,0,0,1,1,1,0,T1,top of T1,'
            'vtkMRMLScalarVolumeNode1\n')
    path = tmp_path / 'f.fcsv'
    path.write_text(head + body)
    pts = read_points(path, space='LPS')
    np.testing.assert_array_equal(pts.xyz, [np.array([5.0, -6.0, 7.0]) * sign])
    assert pts.names == ['T1'] and pts.extra['description'] == ['top of T1']


def test_points_bad_files(tmp_path):
    with pytest.raises(InvalidInputError, match='not found'):
        read_points(tmp_path / 'missing.csv')
    with pytest.raises(InvalidInputError, match="'.txt'"):
        read_points(tmp_path / 'a.txt')
    (tmp_path / 'noz.csv').write_text('name,a,b\nq,1,2\n')
    with pytest.raises(InvalidInputError, match="no 'x' column"):
        read_points(tmp_path / 'noz.csv')
    (tmp_path / 'bad.csv').write_text('name,x,y,z\nq,1,two,3\n')
    with pytest.raises(InvalidInputError, match="'two' is not a number"):
        read_points(tmp_path / 'bad.csv')
    (tmp_path / 'short.csv').write_text('name,x,y,z\nq,1,2\n')
    with pytest.raises(InvalidInputError, match='row 2 has 3 fields'):
        read_points(tmp_path / 'short.csv')
    (tmp_path / 'bad.mrk.json').write_text('{"markups": [')
    with pytest.raises(InvalidInputError, match='not valid JSON'):
        read_points(tmp_path / 'bad.mrk.json')
    (tmp_path / 'ijk.fcsv').write_text('# CoordinateSystem = 2\nid,1,2,3\n')
    with pytest.raises(InvalidInputError, match="coordinate system '2'"):
        read_points(tmp_path / 'ijk.fcsv')
    with pytest.raises(InvalidInputError, match='coordinate space'):
        write_points(_points(), tmp_path / 'p.csv', space='RSA')
