"""mmanat-register (tools/register.py) end to end on the analytic stand-in model and a moved
copy."""
import csv
import os.path as osp

import numpy as np
import pytest
import torch

from mmanat.cli import register
from mmanat.fileio import read_volume, write_image
from tests.helpers.position_encoder_standin import (PositionEncoderStandIn, moved,
                                                    quadratic_volume)

SHIFT = np.array([6.2, -8.5, 3.1])


@pytest.fixture(scope='module')
def tool():
    return register


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp('reg')
    fixed = quadratic_volume(shape=(24, 48, 48), origin=(-40.0, -50.0, -10.0))
    cfg = d / 'standin.py'
    cfg.write_text("model = dict(type='PositionEncoderStandIn', channels=32)\n")
    ckpt = d / 'standin.pth'
    torch.save({'state_dict': PositionEncoderStandIn(channels=32).state_dict(), 'meta': {}},
               str(ckpt))
    return dict(fixed=write_image(fixed, str(d / 'fixed.nrrd')),
                moving=write_image(moved(fixed, SHIFT), str(d / 'moving.nii.gz')),
                config=str(cfg), checkpoint=str(ckpt))


def test_register_cli_writes_outputs(setup, tool, tmp_path, capsys):
    out = tmp_path / 'out'
    code = tool.main(['--config', setup['config'], '--checkpoint', setup['checkpoint'],
                      '--moving', setup['moving'], '--fixed', setup['fixed'], '--out-dir',
                      str(out), '--no-deformable', '--grid-spacing', '16', '16', '12'])
    assert code == 0
    printed = capsys.readouterr().out
    assert 'matches kept' in printed and '[2/5]' in printed
    import SimpleITK as sitk
    tr = sitk.ReadTransform(str(out / 'transform.h5'))
    np.testing.assert_allclose(np.array(tr.TransformPoint((1.0, -2.0, 3.0))),
                               np.array([1.0, -2.0, 3.0]) + SHIFT, atol=0.5)
    warped = read_volume(str(out / 'warped_moving.nii.gz'))
    fixed = read_volume(setup['fixed'])
    assert warped.same_geometry(fixed, tol=1e-4)
    with open(out / 'landmarks.csv') as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) > 10 and {'moving_x', 'fixed_z', 'score', 'kept'} <= set(rows[0])
    assert osp.isfile(out / 'affine.tfm')
    assert 'RANSAC rigid inliers' in printed
    # --ransac-threshold 0: the Huber fits on all matches (exact matches: same transform)
    out0 = tmp_path / 'out_huber'
    assert tool.main(['--config', setup['config'], '--checkpoint', setup['checkpoint'],
                      '--moving', setup['moving'], '--fixed', setup['fixed'], '--out-dir',
                      str(out0), '--no-deformable', '--grid-spacing', '16', '16', '12',
                      '--ransac-threshold', '0', '--quiet']) == 0
    tr0 = sitk.ReadTransform(str(out0 / 'transform.h5'))
    np.testing.assert_allclose(np.array(tr0.TransformPoint((1.0, -2.0, 3.0))),
                               np.array(tr.TransformPoint((1.0, -2.0, 3.0))), atol=0.5)


def test_register_cli_clear_errors(setup, tool, tmp_path, capsys, monkeypatch):
    code = tool.main(['--checkpoint', setup['checkpoint'], '--moving', 'nope.nii.gz',
                      '--fixed', setup['fixed'], '--out-dir', str(tmp_path)])
    assert code == 2 and 'nope.nii.gz: file not found' in capsys.readouterr().err
    monkeypatch.setenv('MMANAT_CHECKPOINT_DIR', str(tmp_path))  # no shipped default here
    code = tool.main(['--moving', setup['moving'], '--fixed', setup['fixed'], '--out-dir',
                      str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and 'uae_m_default.pth' in err and '--checkpoint PATH' in err
