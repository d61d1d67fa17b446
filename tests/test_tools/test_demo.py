"""The demos (mmanat-demo*, tools/demo*.py; all in mmanat.cli.demo): output, timings, PNG,
bad input."""
import os.path as osp

import numpy as np
import pytest

from mmanat.cli.demo import main, main_ct_mr, main_semantic_stable_points
from mmanat.fileio import write_image
from mmanat.structures import MedicalImage
from tests.helpers.position_encoder_standin import moved, quadratic_volume

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _files(tmp_path):
    tpl = quadratic_volume(shape=(16, 48, 48), origin=(-40.0, -50.0, -10.0))
    label = MedicalImage(np.zeros(tpl.shape, np.uint8), spacing=tpl.spacing,
                         origin=tpl.origin, modality='OT')
    label.array[6:9, 20:25, 30:33] = 1
    cfg = tmp_path / 'standin.py'
    cfg.write_text("model = dict(type='PositionEncoderStandIn', channels=32)\n")
    return dict(template=write_image(tpl, str(tmp_path / 'tpl.nrrd')),
                target=write_image(moved(tpl, (4.0, 2.0, -2.0)), str(tmp_path / 'tgt.nrrd')),
                label=write_image(label, str(tmp_path / 'tpl_label.nrrd')), config=str(cfg),
                centre=label.array_index_to_world(np.argwhere(label.array).mean(0)))


def test_demo_prints_match_and_timings_and_saves_png(tmp_path, capsys):
    f = _files(tmp_path)
    out = str(tmp_path / 'demo.png')
    code = main(['--random-init', '--config', f['config'], '--template', f['template'],
                 '--target', f['target'], '--template-label', f['label'], '--out', out,
                 '--device', 'cpu'])
    assert code == 0
    text = capsys.readouterr().out
    for key in ('query', 'match', 'score', 'timing', 'load', 'preprocess', 'embed', 'figure'):
        assert key in text
    assert 'random weights' in text and osp.isfile(out)
    # the stand-in is exact: the printed match is the label centre moved by (4, 2, -2) mm
    line = next(ln for ln in text.splitlines() if ln.startswith('match'))
    xyz = np.array([float(v) for v in line.split('(')[1].split(')')[0].split(',')])
    assert np.linalg.norm(xyz - (f['centre'] + [4.0, 2.0, -2.0])) < 1.0


def test_demo_stable_points_and_ras_point(tmp_path, capsys):
    f = _files(tmp_path)
    q = f['centre'] * [-1, -1, 1]  # RAS
    code = main_semantic_stable_points(
        ['--random-init', '--config', f['config'], '--template', f['template'], '--target',
         f['target'], '--point', *map(str, q), '--space', 'RAS', '--out',
         str(tmp_path / 'sp.png')])
    assert code == 0
    text = capsys.readouterr().out
    assert 'stable_points' in text and 'mm RAS' in text and 'no semantic head' in text


def test_demo_without_checkpoint_explains(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('MMANAT_CHECKPOINT_DIR', str(tmp_path))  # no sam_default.pth here
    assert main([]) == 2
    err = capsys.readouterr().err
    assert '--checkpoint' in err and 'checkpoints/sam_default.pth' in err


def test_demo_ct_mr_default_is_mr_to_ct_of_one_synthetic_subject(tmp_path, capsys):
    """No images given: a landmark of a synthetic subject's (moved) MR is searched in the CT
    of the same subject, and the error to the known position is printed."""
    micro = osp.join(ROOT, 'tests', 'data', 'configs', 'sam_micro_cpu.py')
    code = main_ct_mr(['--random-init', '--config', micro, '--out', str(tmp_path / 'm.png')])
    assert code == 0 and osp.isfile(tmp_path / 'm.png')
    text = capsys.readouterr().out
    assert 'synthetic_mr_subject0_moved' in text and 'synthetic_ct_subject0' in text
    assert 'truth' in text and 'error' in text


@pytest.mark.slow
def test_demo_ct_mr_via_registration_with_the_shipped_model(tmp_path, capsys):
    """--via-registration maps the query through the embedding-driven registration: with the
    shipped UAE-M it lands within 10 mm of the known T12 position (measured 2.0 mm), where the
    direct match of that single point is tens of mm off (45.9 mm)."""
    import re
    code = main_ct_mr(['--via-registration', '--out', str(tmp_path / 'm.png')])
    assert code == 0
    text = capsys.readouterr().out
    direct = float(re.search(r'^truth .* error ([0-9.]+) mm', text, re.M).group(1))
    reg = float(re.search(r'^register .* error ([0-9.]+) mm', text, re.M).group(1))
    assert reg < 10.0 and reg < direct, text
