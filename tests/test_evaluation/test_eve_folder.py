"""Eve properties on a folder of real radiographs with a landmark CSV
(LandmarkRadiographFolder and tools/analysis/eve_properties.py --images/--landmarks)."""
import importlib.util
import json
import os.path as osp

import cv2
import numpy as np
import pytest

from mmanat.evaluation.eve_folder import LandmarkRadiographFolder
from mmanat.utils.exceptions import InvalidInputError

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def write_folder(tmp_path, n=3):
    folder = tmp_path / 'xrays'
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = ['image,name,column,row']
    for i in range(n):
        img = (rng.random((40, 80)) * 255).astype(np.uint8)  # 40 rows, 80 columns
        cv2.imwrite(str(folder / f'cxr_{i}.png'), img)
        rows += [f'cxr_{i}.png,apex,{10 + i},5', f'cxr_{i},carina,40,20']
        if i:
            rows.append(f'cxr_{i},hilum,60,30')
    csv = tmp_path / 'landmarks.csv'
    csv.write_text('\n'.join(rows) + '\n')
    return str(folder), str(csv)


def test_images_are_squared_and_landmarks_follow(tmp_path):
    folder, csv = write_folder(tmp_path)
    ds = LandmarkRadiographFolder(folder, csv, img_size=40)
    assert len(ds) == 3 and ds.names == ['apex', 'carina', 'hilum']
    item = ds.render(ds.get_data_info(0)['seed'])
    assert item['img'].shape == (40, 40) and item['img'].max() <= 1.0
    # 80 x 40 padded to 80 x 80 (20 rows of air on top), then halved
    np.testing.assert_allclose(item['landmarks'][0], [(10 + 0.5) * 0.5 - 0.5,
                                                      (5 + 20 + 0.5) * 0.5 - 0.5])
    assert list(item['landmark_valid']) == [True, True, False]  # no hilum in image 0
    assert np.all(item['img'][:9] == 0)  # the padding is air


def test_bad_tables_are_refused(tmp_path):
    folder, _ = write_folder(tmp_path)
    bad = tmp_path / 'bad.csv'
    bad.write_text('name,x,y\na,1,2\n')
    with pytest.raises(InvalidInputError, match='image,name,column,row'):
        LandmarkRadiographFolder(folder, str(bad))
    one = tmp_path / 'one.csv'
    one.write_text('image,name,column,row\ncxr_0,a,1,2\n')
    with pytest.raises(InvalidInputError, match='fewer than 2'):
        LandmarkRadiographFolder(folder, str(one))


def test_eve_properties_tool_on_a_folder(tmp_path):
    folder, csv = write_folder(tmp_path)
    spec = importlib.util.spec_from_file_location(
        'tool_eve_properties', osp.join(ROOT, 'tools', 'analysis', 'eve_properties.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    cfg = osp.join(ROOT, 'configs', 'adam',
                   'adamv2_r18half-dino_1xb8-cpu-300it_synthetic-cxr-64px.py')
    out = tmp_path / 'res.json'
    assert tool.main(['--config', cfg, '--random-init', '--images', folder, '--landmarks', csv,
                      '--img-size', '64', '--patch-size', '16', '--regions', '2',
                      '--out-dir', str(tmp_path / 'o'), '--out-json', str(out),
                      '--device', 'cpu']) == 0
    res = json.loads(out.read_text())
    # ordered pairs: (0,1),(0,2) share 2 landmarks, (1,0),(2,0) 2, (1,2),(2,1) 3 -> 14
    assert res['locality_queries'] == 14 and res['subjects'] == 3
    assert 0.0 <= res['locality_top1'] <= 1.0 and res['comp_regions'] == 6
