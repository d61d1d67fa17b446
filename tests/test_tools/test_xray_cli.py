"""mmanat-match / mmanat-embed on 2D images (radiographs) and mmanat-demo-xray, end to end on
a random-init 2D SAM (in-process calls of ``main``): 2D world and pixel point files, 2D
outputs, caches, and one-line errors for 2D / 3D mixes."""
import csv
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmanat.cli import demo_xray, embed, match
from mmanat.fileio import write_image, write_points
from mmanat.structures import MedicalImage, PointSet
from tests.test_apis.test_xray_matching import SAM2D, build_sam2d, radiograph


def _rows(path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope='module')
def xr(tmp_path_factory):
    """A 2D SAM checkpoint (its config stored in it), a radiograph, its landmarks as world and
    pixel point files, a 3D volume and a 3D point file."""
    d = tmp_path_factory.mktemp('xray_cli')
    model = build_sam2d()
    cfg = Config(dict(model=dict(SAM2D, input_spacing=1.0)))
    ckpt = str(d / 'sam2d.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {'cfg': cfg.pretty_text}}, ckpt)
    img, landmarks = radiograph(0)
    keep = landmarks.subset(np.arange(min(6, len(landmarks))))
    paths = dict(ckpt=ckpt, image=write_image(img, str(d / 'cxr.nrrd')),
                 points=write_points(keep, str(d / 'landmarks.csv')))
    cr = img.world_to_index(keep.xyz)
    with open(d / 'landmarks_px.csv', 'w') as f:
        f.write('name,column,row\n' + ''.join(f'{n},{c!r},{r!r}\n'
                                              for n, (c, r) in zip(keep.names, cr)))
    paths['points_px'] = str(d / 'landmarks_px.csv')
    vol = MedicalImage(np.zeros((8, 40, 40), np.float32) - 1000, spacing=2.0, modality='CT')
    paths['volume'] = write_image(vol, str(d / 'vol.nrrd'))
    paths['points_3d'] = write_points(PointSet([[10.0, 10.0, 4.0]]), str(d / 'p3d.csv'))
    return dict(paths=paths, image=img, landmarks=keep, pixels=cr)


def _match(xr, out, *extra, points='points', target='image'):
    p = xr['paths']
    return match.main(['--checkpoint', p['ckpt'], '--template', p['image'], '--points',
                       p[points], '--target', p[target], '--out', str(out), '--method',
                       'reference', '--device', 'cpu', '--no-progress', *extra])


def test_match_2d_world_points_writes_2d_outputs(xr, tmp_path, capsys):
    out = tmp_path / 'found.csv'
    assert _match(xr, out) == 0
    rows = _rows(out)
    assert list(rows[0]) == ['name', 'x', 'y', 'score', 'column', 'row', 'quality']
    assert [r['name'] for r in rows] == xr['landmarks'].names
    found = np.array([[float(r['x']), float(r['y'])] for r in rows])
    err = np.linalg.norm(found - xr['landmarks'].xyz, axis=1)
    assert np.median(err) < 2.0, err  # self-match: the fine grid is 4 mm
    px = np.array([[int(r['column']), int(r['row'])] for r in rows])
    assert np.all(np.abs(px - xr['pixels']) <= 1.5)
    text = capsys.readouterr().out
    assert 'pixel (column' in text and 'wrote' in text


def test_match_pixel_points_round_trip(xr, tmp_path):
    out = tmp_path / 'found_px.csv'
    assert _match(xr, out, points='points_px') == 0  # the header turns pixels on
    rows = _rows(out)
    assert list(rows[0]) == ['name', 'column', 'row', 'score', 'x', 'y', 'quality']
    cr = np.array([[float(r['column']), float(r['row'])] for r in rows])
    assert np.median(np.linalg.norm(cr - xr['pixels'], axis=1)) < 0.5, cr - xr['pixels']
    # the pixel output reads back as pixel points, and as world points by its x, y columns
    from mmanat.fileio import read_points
    from mmanat.fileio.points_io import read_pixel_points
    back = read_pixel_points(str(out))
    np.testing.assert_allclose(back.xyz, cr)
    world = read_points(str(out))
    np.testing.assert_allclose(xr['image'].index_to_world(cr), world.xyz, atol=1e-6)
    # --pixel forces pixel in / out: a world file is then refused for its missing columns
    assert _match(xr, tmp_path / 'x.csv', '--pixel') == 2


def test_embed_2d_then_match_caches(xr, tmp_path):
    p = xr['paths']
    emb = tmp_path / 'emb'
    assert embed.main([p['image'], '--checkpoint', p['ckpt'], '--out-dir', str(emb),
                       '--device', 'cpu', '--dtype', 'float32']) == 0
    cache = emb / 'cxr.emb.pt'
    assert cache.is_file()
    out = tmp_path / 'from_cache.csv'
    assert match.main(['--template', str(cache), '--points', p['points'], '--target',
                       str(cache), '--out', str(out), '--method', 'reference',
                       '--no-progress']) == 0
    direct = tmp_path / 'direct.csv'
    assert _match(xr, direct) == 0
    a = np.array([[float(r['x']), float(r['y'])] for r in _rows(out)])
    b = np.array([[float(r['x']), float(r['y'])] for r in _rows(direct)])
    np.testing.assert_allclose(a, b, atol=1e-3)


@pytest.mark.parametrize('case, fragments', [
    ('points_3d', ['p3d.csv', '3D points', 'cxr.nrrd', '2D image', 'give']),
    ('target_3d', ['vol.nrrd', '3D volume', 'cxr.nrrd', '2D image']),
    ('template_3d', ['sam2d.pth', 'needs a 3D', 'vol.nrrd']),
    ('pixel_3d', ['landmarks_px.csv', 'pixel points', '3D volume']),
    ('mrk_out', ['found.mrk.json', '.csv']),
])
def test_2d_3d_mixes_are_one_error_line(xr, tmp_path, capsys, case, fragments):
    p = xr['paths']
    out = tmp_path / ('found.mrk.json' if case == 'mrk_out' else 'found.csv')
    argv = dict(points_3d=dict(points='points_3d'), target_3d=dict(target='volume'),
                template_3d=None, pixel_3d=None, mrk_out={})[case]
    if case in ('template_3d', 'pixel_3d'):
        code = match.main(['--checkpoint', p['ckpt'], '--template', p['volume'], '--points',
                           p['points_3d' if case == 'template_3d' else 'points_px'],
                           '--target', p['volume'], '--out', str(out), '--device', 'cpu',
                           '--no-progress'])
    else:
        code = _match(xr, out, **argv)
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error: ')
    for frag in fragments:
        assert frag in err[0], (frag, err[0])
    assert not out.exists()


def test_demo_xray_random_init_writes_figure(tmp_path, capsys):
    cfg = tmp_path / 'sam2d_test.py'
    cfg.write_text(Config(dict(model=dict(SAM2D, input_spacing=2.0))).pretty_text)
    out = tmp_path / 'demo'
    assert demo_xray.main(['--random-init', '--config', str(cfg), '--out-dir', str(out),
                           '--device', 'cpu', '--method', 'reference']) == 0
    text = capsys.readouterr().out
    assert 'mean error' in text and 'random weights' in text
    for name in ('demo_xray.png', 'matches.csv', 'template_landmarks.csv', 'template.nrrd',
                 'target.nrrd'):
        assert osp.isfile(out / name), name
    rows = _rows(out / 'matches.csv')
    assert {'x', 'y', 'score', 'column', 'row', 'error_mm'} <= set(rows[0])
    from PIL import Image
    with Image.open(out / 'demo_xray.png') as im:
        assert im.size[0] > 1000 and im.size[1] > 600
