"""tools/test.py end to end: the shipped SAM-tiny checkpoint evaluated through mmengine's test
loop (LandmarkTestLoop + LandmarkMetric) on a tiny synthetic landmark-pair set (CPU)."""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CKPT = osp.join(ROOT, 'checkpoints', 'sam_default.pth')
PAIRS_BASE = osp.join(ROOT, 'configs', '_base_', 'datasets', 'synthetic_landmark_pairs.py')


def _env():
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    env.setdefault('OMP_NUM_THREADS', '2')
    return env


def _sam_config():
    """The config of the shipped SAM checkpoint, as the model zoo index names it."""
    with open(osp.join(ROOT, 'checkpoints', 'model_zoo.json')) as f:
        return osp.join(ROOT, json.load(f)['sam_default.pth']['config'])


def _tiny_config(tmp_path, **dataset):
    """A config: the SAM-tiny model + the synthetic landmark-pair test set, made tiny."""
    from mmengine.config import Config
    sam = _sam_config()
    bases = [sam] + ([] if Config.fromfile(sam).get('test_cfg') else [PAIRS_BASE])
    ds = dict(num_pairs=1, seed=3, spacing=3.0, z_range=(300.0, 500.0))
    ds.update(dataset)
    path = tmp_path / 'sam_tiny_test.py'
    path.write_text(f'_base_ = {bases!r}\n'
                    f'test_dataloader = dict(dataset={ds!r})\n'
                    'default_hooks = dict(logger=dict(interval=1))\n')
    return str(path)


def _test(args, timeout=300):
    proc = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'test.py')] + args,
                          capture_output=True, encoding='utf-8', errors='replace', env=_env(),
                          timeout=timeout, cwd=ROOT)
    return proc


@pytest.mark.slow
def test_test_tool_reports_landmark_metrics(tmp_path):
    cfg = _tiny_config(tmp_path)
    out = tmp_path / 'results.json'
    proc = _test([cfg, CKPT, '--work-dir', str(tmp_path / 'work'), '--out', str(out)])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads(out.read_text())
    m = res['metrics']
    for key in ('landmark/mre', 'landmark/median', 'landmark/p90', 'landmark/within_5mm',
                'landmark/within_10mm', 'landmark/n', 'landmark/n_failed'):
        assert key in m, sorted(m)
    assert m['landmark/n'] >= 8 and m['landmark/n_failed'] == 0
    assert m['landmark/mre'] is not None and 0 < m['landmark/mre'] < 100
    # the per-pair predictions written beside the metrics give the same mean radial error
    (pair, ) = res['pairs']
    assert pair['pair_name'] == 'CT->CT/0' and len(pair['names']) == m['landmark/n']
    pred, gt = np.array(pair['pred_points']), np.array(pair['gt_points'])
    assert pred.shape == gt.shape == (m['landmark/n'], 3)
    np.testing.assert_allclose(np.linalg.norm(pred - gt, axis=1).mean(), m['landmark/mre'],
                               rtol=1e-6)
    np.testing.assert_allclose(pair['errors_mm'], np.linalg.norm(pred - gt, axis=1))
    assert proc.stdout.count(f"metrics: landmark/n={m['landmark/n']}") == 1
    assert 'landmark/mre=' in proc.stdout


@pytest.mark.slow
def test_test_tool_rejects_checkpoint_of_another_model(tmp_path):
    """A checkpoint that does not fit the config is a one-line error, not a silent random
    model (mmengine's own loading only warns)."""
    import torch
    bad = tmp_path / 'bad.pth'
    torch.save({'state_dict': {'not_a_layer.weight': torch.zeros(3)}}, str(bad))
    proc = _test([_tiny_config(tmp_path), str(bad), '--work-dir', str(tmp_path / 'work')],
                 timeout=120)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    err = proc.stderr.strip().splitlines()[-1]
    assert err.startswith('error: ') and 'does not fit the config' in err, err
    assert 'Traceback' not in proc.stderr


def test_test_tool_needs_test_entries(tmp_path):
    cfg = tmp_path / 'no_test.py'
    cfg.write_text(f'_base_ = [{_sam_config()!r}]\ntest_cfg = None\n')
    proc = _test([str(cfg), CKPT], timeout=120)
    assert proc.returncode == 2
    assert 'synthetic_landmark_pairs.py' in proc.stderr and 'test_cfg' in proc.stderr
