"""tools/propagate.py (mmanat.cli.propagate) and the mesh vertex I/O it uses: labels, points
and mesh vertices of a template carried into a moved copy must come out moved."""
import json
import os.path as osp

import numpy as np
import pytest
import torch

from mmanat.apis import embed, save_embeddings
from mmanat.cli import propagate as prop_cli
from mmanat.fileio import read_image, read_points, write_image
from mmanat.fileio.mesh_io import is_mesh_file, read_mesh_vertices, write_mesh_vertices
from mmanat.utils.exceptions import InvalidInputError
from tests.helpers.position_encoder_standin import PositionEncoderStandIn, moved, quadratic_volume

SHIFT = np.array([6.0, -4.0, 4.0])
OBJ = 'o box\nv 1 2 3\nv 4.5 5 6\nv -1 0 2 0.5\nvn 0 0 1\nf 1 2 3\n'
PLY = ('ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n'
       'property float z\nproperty uchar red\nelement face 1\nproperty list uchar int '
       'vertex_indices\nend_header\n1 2 3 255\n4.5 5 6 0\n-1 0 2 7\n3 0 1 2\n')
VTK = ('# vtk DataFile Version 3.0\nmesh\nASCII\nDATASET POLYDATA\nPOINTS 3 float\n'
       '1 2 3 4.5 5\n6 -1 0 2\nPOLYGONS 1 4\n3 0 1 2\n')
VERTS = np.array([[1, 2, 3], [4.5, 5, 6], [-1, 0, 2]], dtype=np.float64)


@pytest.mark.parametrize('ext,text', [('.obj', OBJ), ('.ply', PLY), ('.vtk', VTK)])
def test_mesh_vertices_round_trip(tmp_path, ext, text):
    src = tmp_path / f'm{ext}'
    src.write_text(text)
    assert is_mesh_file(src)
    np.testing.assert_allclose(read_mesh_vertices(src), VERTS)
    np.testing.assert_allclose(read_mesh_vertices(src, space='RAS'), VERTS * [-1, -1, 1])
    out = tmp_path / f'out{ext}'
    write_mesh_vertices(src, VERTS + 10, out)
    np.testing.assert_allclose(read_mesh_vertices(out), VERTS + 10)
    body = out.read_text()
    tail = {'.obj': 'f 1 2 3', '.ply': '3 0 1 2', '.vtk': 'POLYGONS 1 4'}[ext]
    assert tail in body  # the rest of the file is kept
    if ext == '.ply':
        assert '11.000000 12.000000 13.000000 255' in body  # extra properties kept
    with pytest.raises(InvalidInputError, match='vertices'):
        write_mesh_vertices(src, VERTS[:2], out)


def test_mesh_bad_inputs(tmp_path):
    with pytest.raises(InvalidInputError, match='not found'):
        read_mesh_vertices(tmp_path / 'none.obj')
    (tmp_path / 'b.ply').write_text(PLY.replace('ascii', 'binary_little_endian'))
    with pytest.raises(InvalidInputError, match='ASCII PLY only'):
        read_mesh_vertices(tmp_path / 'b.ply')
    (tmp_path / 'e.obj').write_text('o empty\n')
    with pytest.raises(InvalidInputError, match='no vertex'):
        read_mesh_vertices(tmp_path / 'e.obj')
    with pytest.raises(InvalidInputError, match='unknown mesh extension'):
        read_mesh_vertices(tmp_path / 'm.stl')


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp('prop')
    # base 0 HU: the whole volume is "body", so the grid spans 3D
    tpl = quadratic_volume(shape=(32, 48, 48), origin=(-50.0, -55.0, -30.0), base=0.0)
    tgt = moved(tpl, SHIFT)
    write_image(tpl, str(d / 'tpl.nrrd'))
    write_image(tgt, str(d / 'tgt.nrrd'))
    lab = np.zeros(tpl.shape, np.int16)
    lab[8:20, 14:30, 16:34] = 2
    write_image(tpl.with_array(lab, modality=None), str(d / 'tpl_lab.nrrd'))
    write_image(tgt.with_array(lab, modality=None), str(d / 'tgt_lab.nrrd'))  # the truth
    pts = tpl.array_index_to_world(np.array([[16.0, 24.0, 24.0], [12.0, 20.0, 28.0]]))
    (d / 'p.csv').write_text('name,x,y,z\n' + ''.join(
        f'p{i},{x},{y},{z}\n' for i, (x, y, z) in enumerate(pts)))
    (d / 'm.obj').write_text('\n'.join(f'v {x} {y} {z}' for x, y, z in pts) + '\nf 1 2 1\n')
    cfg = d / 'cfg.py'
    cfg.write_text("custom_imports = dict(imports=['tests.helpers.position_encoder_standin'])\n"
                   "model = dict(type='PositionEncoderStandIn', channels=32)\n")
    model = PositionEncoderStandIn(channels=32)
    torch.save({'state_dict': model.state_dict()}, str(d / 'ck.pth'))
    return d, pts


def test_propagate_labels_points_mesh(files):
    d, pts = files
    code = prop_cli.main([
        '--template', str(d / 'tpl.nrrd'), '--target', str(d / 'tgt.nrrd'),
        '--labels', str(d / 'tpl_lab.nrrd'), '--out', str(d / 'out.nii.gz'),
        '--target-labels', str(d / 'tgt_lab.nrrd'), '--points', str(d / 'p.csv'),
        '--out-points', str(d / 'out.csv'), '--mesh', str(d / 'm.obj'),
        '--out-mesh', str(d / 'out.obj'), '--config', str(d / 'cfg.py'),
        '--checkpoint', str(d / 'ck.pth'), '--grid-spacing', '8', '--device', 'cpu'])
    assert code == 0
    out = read_image(str(d / 'out.nii.gz'))
    assert out.same_geometry(read_image(str(d / 'tgt.nrrd')))
    dice = json.load(open(str(d / 'out.nii.gz') + '.json'))['dice']
    assert dice['2'] > 0.85, dice
    found = read_points(str(d / 'out.csv'))
    np.testing.assert_allclose(found.xyz, pts + SHIFT, atol=2.0)
    assert found.extra['in_target'] == [1, 1]
    np.testing.assert_allclose(read_mesh_vertices(d / 'out.obj'), pts + SHIFT, atol=2.0)


def test_propagate_from_caches(files, tmp_path):
    d, pts = files
    model = PositionEncoderStandIn(channels=32)
    tpl, tgt = read_image(str(d / 'tpl.nrrd')), read_image(str(d / 'tgt.nrrd'))
    save_embeddings(embed(model, tpl), tmp_path / 'a.emb.pt')
    save_embeddings(embed(model, tgt), tmp_path / 'b.emb.pt')
    code = prop_cli.main(['--template', str(tmp_path / 'a.emb.pt'),
                          '--target', str(tmp_path / 'b.emb.pt'),
                          '--points', str(d / 'p.csv'), '--out-points',
                          str(tmp_path / 'o.csv'), '--grid-spacing', '8',
                          '--regularization', 'affine'])
    assert code == 0
    np.testing.assert_allclose(read_points(str(tmp_path / 'o.csv')).xyz, pts + SHIFT,
                               atol=2.0)


def test_propagate_bad_inputs(files, tmp_path):
    d, _ = files
    with pytest.raises(SystemExit):
        prop_cli.parse_args(['--template', 'a', '--target', 'b'])  # nothing to propagate
    with pytest.raises(SystemExit):
        prop_cli.parse_args(['--template', 'a', '--target', 'b', '--labels', 'l'])  # no --out
    code = prop_cli.main(['--template', str(d / 'tpl.nrrd'), '--target',
                          str(tmp_path / 'missing.nrrd'), '--labels', str(d / 'tpl_lab.nrrd'),
                          '--out', str(tmp_path / 'o.nii.gz')])
    assert code == 2 and not osp.exists(tmp_path / 'o.nii.gz')
