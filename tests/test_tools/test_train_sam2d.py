"""tools/train.py and tools/dist_train.sh on the CPU 2D SAM config (synthetic chest
radiographs), a few iterations: the 2D training path end to end."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG = osp.join(ROOT, 'configs', 'sam', 'sam2d_tiny-fpn_1xb4-cpu-300it_synthetic-cxr.py')
SAMPLES_CFG = osp.join(ROOT, 'configs', 'sam',
                       'sam2d_tiny-fpn_1xb4-cpu-1000it_synthetic-cxr-samples.py')
XRAY = osp.join(ROOT, 'data', 'samples', 'xray', 'RG1_UNCR.dcm')


def _env():
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    env.setdefault('OMP_NUM_THREADS', '1')
    return env


def _small(tmp_path, iters, dataset='train_dataloader.dataset'):
    """cfg-options: ``iters`` iterations, 4 subjects rendered into ``tmp_path``, no workers."""
    return ['--cfg-options', f'train_cfg.max_iters={iters}', 'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False', 'train_dataloader.batch_size=2',
            f'{dataset}.num_samples=4', f'{dataset}.cache_dir={tmp_path / "xray_cache"}',
            'default_hooks.logger.interval=1', f'default_hooks.checkpoint.interval={iters}']


def _losses(work_dir):
    runs = sorted(d for d in os.listdir(work_dir) if osp.isdir(osp.join(work_dir, d)))
    with open(osp.join(work_dir, runs[-1], 'vis_data', 'scalars.json')) as f:
        return [json.loads(line) for line in f if '"loss"' in line]


def _checkpoint(path):
    from mmanat.utils import allow_mmengine_checkpoint_globals
    allow_mmengine_checkpoint_globals()
    return torch.load(path, map_location='cpu')


@pytest.mark.slow
def test_train_cpu_2d_config_three_iterations(tmp_path):
    work = str(tmp_path / 'work')
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'train.py'), CFG, '--work-dir', work]
        + _small(tmp_path, 3), capture_output=True, encoding='utf-8', errors='replace',
        env=_env(), timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    recs = _losses(work)
    assert [r['iter'] for r in recs] == [1, 2, 3]
    assert all(0 < r['loss_fine'] < 20 and 0 <= r['loss_coarse'] < 20 for r in recs), recs
    ckpt = _checkpoint(osp.join(work, 'iter_3.pth'))
    assert ckpt['meta']['iter'] == 3
    # the 2D network: 2D conv weights, the contract attribute in the saved config
    assert ckpt['state_dict']['backbone.module.conv1.weight'].dim() == 4
    assert 'input_spacing=2.0' in ckpt['meta']['cfg']


@pytest.mark.slow
@pytest.mark.skipif(not osp.isfile(XRAY), reason='data/samples absent: run '
                    'tools/fetch_sample_data.py')
def test_train_cpu_2d_config_with_the_real_radiograph(tmp_path):
    work = str(tmp_path / 'work')
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'train.py'), SAMPLES_CFG, '--work-dir', work]
        + _small(tmp_path, 2, 'train_dataloader.dataset.datasets.0'),
        capture_output=True, encoding='utf-8', errors='replace', env=_env(), timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert [r['iter'] for r in _losses(work)] == [1, 2]


@pytest.mark.skipif(sys.platform != 'linux', reason='torchrun/gloo test runs on Linux')
@pytest.mark.slow
def test_dist_train_2d_two_cpu_processes(tmp_path):
    work = str(tmp_path / 'dist')
    env = _env()
    env['PYTHON'] = sys.executable
    env['PORT'] = str(29600 + os.getpid() % 1000)
    proc = subprocess.run(
        ['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), CFG, '2', '--work-dir', work]
        + _small(tmp_path, 2), capture_output=True, encoding='utf-8', errors='replace',
        env=env, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert _checkpoint(osp.join(work, 'iter_2.pth'))['meta']['iter'] == 2
    assert 'world_size: 2' in out or 'Distributed training: True' in out
