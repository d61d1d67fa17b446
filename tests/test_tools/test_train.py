"""tools/train.py (mmanat-train) and tools/dist_train.sh end to end on the micro SAM config
(CPU)."""
import json
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG = osp.join(ROOT, 'tests', 'data', 'configs', 'sam_micro_cpu.py')


def _env():
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    env.setdefault('OMP_NUM_THREADS', '1')
    return env


def _train(args, timeout=600):
    proc = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'train.py'), CFG] + args,
                          capture_output=True, encoding='utf-8', errors='replace', env=_env(),
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _iter_of(path):
    from mmanat.utils import allow_mmengine_checkpoint_globals
    allow_mmengine_checkpoint_globals()
    ckpt = torch.load(path, map_location='cpu')  # weights_only (torch >= 2.6 default)
    return ckpt['meta']['iter']


def _losses(work_dir):
    runs = sorted(d for d in os.listdir(work_dir) if osp.isdir(osp.join(work_dir, d)))
    out = []
    with open(osp.join(work_dir, runs[-1], 'vis_data', 'scalars.json')) as f:
        for line in f:
            rec = json.loads(line)
            if 'loss' in rec:
                out.append((rec['iter'], rec['loss']))
    return out


@pytest.mark.slow
def test_train_then_resume_continues_at_saved_iteration(tmp_path):
    work = str(tmp_path / 'work')
    _train(['--work-dir', work, '--cfg-options', 'train_cfg.max_iters=2'])
    assert _iter_of(osp.join(work, 'iter_2.pth')) == 2
    log = _train(['--work-dir', work, '--resume', '--cfg-options', 'train_cfg.max_iters=3'])
    # mmengine found the latest checkpoint and restored its iteration counter
    assert f'Auto resumed from the latest checkpoint {osp.join(work, "iter_2.pth")}' in log
    assert re.search(r'resumed epoch: \d+, iter: 2$', log, re.M), log[-3000:]
    assert _iter_of(osp.join(work, 'iter_3.pth')) == 3
    # the resumed run logged iteration 3 only: it did not start again from 1
    iters = [it for it, _ in _losses(work)]
    assert iters == [3], iters


@pytest.mark.slow
def test_resume_from_explicit_checkpoint_and_missing_one(tmp_path):
    work = str(tmp_path / 'work')
    _train(['--work-dir', work, '--cfg-options', 'train_cfg.max_iters=2'])
    ckpt = osp.join(work, 'iter_2.pth')
    log = _train(['--work-dir', work, '--resume', ckpt, '--cfg-options',
                  'train_cfg.max_iters=3'])
    assert re.search(r'resumed epoch: \d+, iter: 2$', log, re.M), log[-3000:]
    assert _iter_of(osp.join(work, 'iter_3.pth')) == 3
    proc = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'train.py'), CFG,
                           '--resume', str(tmp_path / 'nope.pth')],
                          capture_output=True, encoding='utf-8', errors='replace', env=_env(),
                          timeout=120)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert f'error: --resume: checkpoint not found: {tmp_path / "nope.pth"}' in proc.stderr


@pytest.mark.skipif(sys.platform != 'linux', reason='torchrun/gloo test runs on Linux')
@pytest.mark.slow
def test_dist_train_two_cpu_processes_writes_checkpoint(tmp_path):
    work = str(tmp_path / 'dist')
    env = _env()
    env['PYTHON'] = sys.executable
    env['PORT'] = str(29500 + os.getpid() % 1000)
    proc = subprocess.run(
        ['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), CFG, '2', '--work-dir', work,
         '--cfg-options', 'train_cfg.max_iters=2'],
        capture_output=True, encoding='utf-8', errors='replace', env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert _iter_of(osp.join(work, 'iter_2.pth')) == 2
    assert 'world_size: 2' in (proc.stdout + proc.stderr) or 'Distributed training: True' in (
        proc.stdout + proc.stderr)
