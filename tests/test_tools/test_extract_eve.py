"""mmanat-extract-eve (tools/extract_eve.py) end to end: a tiny random-init Adam, two small
PNG radiographs; tools/analysis/eve_properties.py on three tiny subjects."""
import importlib.util
import os.path as osp

import numpy as np
import pytest
import torch

from mmanat.cli import extract_eve
from tests.helpers.adam_tiny import tiny_cfg, write_pngs

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _load_tool(rel):
    spec = importlib.util.spec_from_file_location('tool_' + osp.basename(rel)[:-3],
                                                  osp.join(ROOT, rel))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    from mmengine.config import Config
    tmp = tmp_path_factory.mktemp('eve')
    imgs = write_pngs(tmp / 'imgs', n=2, size=48)
    cfg = str(tmp / 'adam_tiny.py')
    Config(tiny_cfg(imgs, tmp / 'work')).dump(cfg)
    pngs = [osp.join(imgs, f'img_{i:03d}.png') for i in range(2)]
    return extract_eve, cfg, pngs, tmp


def test_whole_images_write_a_valid_npz(setup):
    tool, cfg, pngs, tmp = setup
    out = tmp / 'sub' / 'emb.npz'
    assert tool.main(['--config', cfg, '--random-init', *pngs, '--out', str(out),
                      '--no-progress']) == 0
    with np.load(out) as z:
        assert list(z['names']) == ['img_000', 'img_001']
        assert [osp.basename(p) for p in z['image_paths']] == ['img_000.png', 'img_001.png']
        e = z['embeddings']
        assert e.dtype == np.float32 and e.shape == (2, 32)  # tiny ResNet-18: 32 channels
        np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
        assert int(z['size']) == 32  # out_size of TwoViewXrayAugment in the config
        assert 'random-init' in str(z['model'])


def test_patches_from_world_mm_and_pixel_points_agree(setup):
    tool, cfg, pngs, tmp = setup
    # PNGs have spacing 1 mm and origin 0, so world x,y (mm) = pixel column,row
    (tmp / 'mm.csv').write_text('name,x,y\napex,10,12\nbase,30.5,40\n')
    (tmp / 'px.csv').write_text('name,column,row\napex,10,12\nbase,30.5,40\n')
    res = {}
    for kind in ('mm', 'px'):
        torch.manual_seed(0)  # same random weights for both runs
        out = tmp / f'p_{kind}.npz'
        assert tool.main(['--config', cfg, '--random-init', *pngs, '--points',
                          str(tmp / f'{kind}.csv'), '--patch-size', '16', '--out', str(out),
                          '--no-progress']) == 0
        res[kind] = dict(np.load(out))
    z = res['mm']
    assert list(z['names']) == ['img_000:apex', 'img_000:base', 'img_001:apex', 'img_001:base']
    assert z['embeddings'].shape == (4, 32) and int(z['patch_size']) == 16
    np.testing.assert_allclose(z['centres_px'], [[10, 12], [30.5, 40]] * 2)
    np.testing.assert_allclose(np.linalg.norm(z['embeddings'], axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(res['px']['embeddings'], z['embeddings'], atol=1e-6)
    assert not np.allclose(z['embeddings'][0], z['embeddings'][1])


def test_bad_inputs_give_clear_errors_and_no_file(setup, capsys):
    tool, cfg, pngs, tmp = setup
    out = tmp / 'bad.npz'
    assert tool.main(['--config', cfg, '--random-init', str(tmp / 'nope.png'), '--out',
                      str(out)]) == 2
    assert 'nope.png' in capsys.readouterr().err
    (tmp / 'far.csv').write_text('name,x,y\nfar,10,100\n')
    assert tool.main(['--config', cfg, '--random-init', pngs[0], '--points',
                      str(tmp / 'far.csv'), '--out', str(out), '--no-progress']) == 2
    err = capsys.readouterr().err
    assert "'far'" in err and 'outside' in err
    assert not out.exists()


def test_eve_properties_runs_on_three_tiny_subjects(setup, capsys):
    _, cfg, _, tmp = setup
    tool = _load_tool('tools/analysis/eve_properties.py')
    png, js = tmp / 'pca.png', tmp / 'props.json'
    assert tool.main(['--config', cfg, '--random-init', '--num-subjects', '3', '--img-size',
                      '64', '--patch-size', '16', '--regions', '3', '--out-png', str(png),
                      '--out-json', str(js)]) == 0
    captured = capsys.readouterr()
    assert 'baseline' in captured.err and 'locality top-1' in captured.out
    import json
    r = json.loads(js.read_text())
    assert 0.0 <= r['locality_top1'] <= 1.0 and 0.0 < r['locality_chance'] < 0.2
    assert r['locality_queries'] > 0 and r['comp_regions'] == 9
    assert -1 <= r['comp_random'] <= 1 and -1 <= r['comp_quadrants'] <= 1
    assert r['comp_gap'] == pytest.approx(r['comp_quadrants'] - r['comp_random'])
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
