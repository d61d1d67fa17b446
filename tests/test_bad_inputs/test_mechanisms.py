"""The mechanisms behind the catalogue, one test each where a bad input is not enough:
stale temporaries, caches of another precision, label maps beside scans, single radiographs,
failed registrations, short training runs, checkpoint configs, the real console."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.test_bad_inputs.conftest import ROOT, SAM_CKPT, SAM_TINY_CFG, ct_volume


# ------------------------------------------------------------------ interrupted writes
def test_stale_temporaries_are_removed_by_the_next_write(tmp_path):
    from mmanat.fileio import atomic
    from mmanat.fileio.atomic import remove_stale_temporaries, temp_prefix
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    host = temp_prefix('x').split('h', 1)[1][:6]
    killed = tmp_path / f'.tmp-p{dead_pid}h{host}-lung1-abcd.emb.pt'  # its writer is gone
    killed.write_bytes(b'half')
    old_version = tmp_path / '.tmp-lung2-k3j4.emb.pt'  # an older mmanat, no process id
    old_version.write_bytes(b'half')
    fresh_old = tmp_path / '.tmp-lung3-zz.emb.pt'  # same, but maybe still being written
    fresh_old.write_bytes(b'half')
    past = time.time() - 2 * atomic.STALE_AGE_S
    os.utime(old_version, (past, past))
    mine = tmp_path / (temp_prefix('live') + 'q.nrrd')  # this (live) process's own
    mine.write_bytes(b'x')
    removed = remove_stale_temporaries(str(tmp_path))
    assert sorted(removed) == sorted([str(killed), str(old_version)])
    assert fresh_old.exists() and mine.exists()
    # the first atomic write of a process into a folder cleans it
    killed.write_bytes(b'half')
    atomic._CLEANED.discard(str(tmp_path))
    from mmanat.fileio import write_points
    write_points(np.zeros((1, 3)), tmp_path / 'p.csv')
    assert not killed.exists() and (tmp_path / 'p.csv').exists()


# ------------------------------------------------------------------ tools/embed.py
def test_embed_skips_label_maps_and_recomputes_a_cache_of_another_dtype(bad, tmp_path):
    import torch

    from mmanat.cli import embed
    folder = tmp_path / 'scans'
    folder.mkdir()
    for key in ('ct', 'label'):
        os.symlink(bad[key], folder / os.path.basename(bad[key]))
    out = tmp_path / 'emb'
    assert embed.main([str(folder), '--checkpoint', str(SAM_CKPT), '--out-dir', str(out),
                       '--device', 'cpu']) == 0
    assert sorted(os.listdir(out)) == ['ct.emb.pt']  # the label map was skipped, not failed

    def stored_dtype():
        obj = torch.load(out / 'ct.emb.pt', weights_only=True)
        return next(iter(obj['levels'].values()))['tensor'].dtype

    assert stored_dtype() == torch.float16
    assert embed.main([str(folder), '--checkpoint', str(SAM_CKPT), '--out-dir', str(out),
                       '--device', 'cpu', '--dtype', 'float32']) == 0
    assert stored_dtype() == torch.float32  # not the float16 cache reused
    # an explicitly named label map is an input: it fails (exit 1) with its reason
    assert embed.main([bad['label'], '--checkpoint', str(SAM_CKPT), '--out-dir',
                       str(tmp_path / 'emb2'), '--device', 'cpu']) == 1


# ------------------------------------------------------------------ DICOM radiograph
def test_dicom_folder_with_one_radiograph_is_2d(tmp_path, dicom_series_writer):
    from mmanat.fileio import read_image, read_volume
    from mmanat.utils.exceptions import InvalidInputError
    arr = np.arange(6 * 5, dtype=np.int16).reshape(1, 6, 5)
    dicom_series_writer(tmp_path / 'cr', arr, spacing=(0.2, 0.2, 1.0), modality='CR')
    image = read_image(tmp_path / 'cr')
    assert image.ndim == 2 and image.shape == (6, 5)
    with pytest.raises(InvalidInputError, match='one radiograph .* 3D volume is required'):
        read_volume(tmp_path / 'cr')


# ------------------------------------------------------------------ failed registrations
def test_registration_quality_verdict():
    from mmanat.cli.register import registration_quality
    ok = registration_quality(dict(n_kept=44, n_ransac_inliers=30))
    assert ok['quality'] == 'ok' and ok['reason'] == ''
    bad = registration_quality(dict(n_kept=44, n_ransac_inliers=5))  # the case
    assert bad['quality'] == 'failed' and '5 RANSAC rigid inliers < 10' in bad['reason']
    assert '11%' in bad['reason']
    huber = registration_quality(dict(n_kept=40, n_inliers=40), min_inliers=50)
    assert huber['quality'] == 'failed' and 'affine inliers' in huber['reason']


def test_failed_registration_exits_1_and_writes_nothing(bad, tmp_path, capsys):
    from mmanat.cli import register
    base = ['--config', str(ROOT / 'configs' / '_base_' / 'models' / 'sam_tiny.py'),
            '--random-init', '--moving', bad['ct'], '--fixed', bad['ct2'], '--no-deformable',
            '--grid-spacing', '12', '12', '12', '--score-threshold', '-1', '--quiet',
            '--device', 'cpu', '--min-inliers', '100000']
    out = tmp_path / 'reg'
    assert register.main(base + ['--out-dir', str(out)]) == 1
    err = capsys.readouterr().err
    assert 'warning: the registration failed' in err and '< 100000' in err
    assert not out.exists() or os.listdir(out) == []
    # --keep-failed: written, with the verdict in registration.json
    assert register.main(base + ['--out-dir', str(out), '--keep-failed']) == 0
    report = json.loads((out / 'registration.json').read_text())
    assert report['quality'] == 'failed' and report['inliers'] < 100000
    assert (out / 'transform.h5').exists()


# ------------------------------------------------------------------ short training runs
@pytest.mark.parametrize('config', [
    'configs/sam/uae-s_tiny-fpn3d_1xb3-cpu-300it_synthetic-ct.py',
    'configs/sam/sam_tiny-fpn3d_1xb2-cpu-300it_synthetic-ct.py',
    'configs/adam/adam_r18half-mlp_1xb32-cpu-350it_synthetic-cxr-64px.py',
    'configs/sam/uae-m-intra_tiny-fpn3d_1xb2-cpu-300it_synthetic-ct-mr-4mm.py',
])
def test_any_config_fits_a_three_iteration_run(config):
    from mmengine.config import Config

    from mmanat.cli.train import fit_to_length
    cfg = Config.fromfile(str(ROOT / config))
    full = Config.fromfile(str(ROOT / config))
    assert fit_to_length(full) == []  # the config's own length: unchanged
    cfg.merge_from_dict({'train_cfg.max_iters': 3})
    fit_to_length(cfg)
    scheds = cfg.get('param_scheduler') or []
    scheds = [scheds] if isinstance(scheds, dict) else scheds
    assert all(int(s.get('begin', 0)) < 3 for s in scheds if not s.get('by_epoch', True))
    for hook in cfg.get('custom_hooks') or []:
        if 'stages' in hook:
            assert sum(st['iters'] for st in hook['stages']) == 3


@pytest.mark.slow
def test_three_iteration_run_trains(tmp_path):
    from mmanat.cli import train
    cfg = ROOT / 'configs' / 'sam' / 'uae-s_tiny-fpn3d_1xb3-cpu-300it_synthetic-ct.py'
    assert train.main([str(cfg), '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                       'train_cfg.max_iters=3']) == 0
    assert (tmp_path / 'w' / 'iter_3.pth').exists()
    # the run's own checkpoint passes the start check (--resume with no value: the latest)
    from mmengine.config import Config
    from mmanat.cli.train import check_start_checkpoint
    run_cfg = Config.fromfile(str(cfg))
    run_cfg.merge_from_dict(dict(work_dir=str(tmp_path / 'w'), resume=True, load_from=None))
    assert check_start_checkpoint(run_cfg) == str(tmp_path / 'w' / 'iter_3.pth')


def test_fine_tuning_from_a_related_model_passes_the_start_check():
    """UAE-S starts from a SAM checkpoint (its semantic head is new): not an error."""
    from mmengine.config import Config

    from mmanat.cli.train import check_start_checkpoint
    from mmanat.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(
        str(ROOT / 'configs/sam/uae-s_tiny-fpn3d_1xb3-cpu-300it_synthetic-ct.py'))
    cfg.merge_from_dict(dict(load_from=str(SAM_CKPT), resume=False))
    assert check_start_checkpoint(cfg) == str(SAM_CKPT)


# ------------------------------------------------------------------ benchmark_inference
def test_benchmark_inference_uses_the_checkpoints_own_config(bad, capsys):
    from mmanat.cli import benchmark_inference
    assert benchmark_inference.main(['--checkpoint', str(SAM_CKPT), '--image', bad['ct'],
                                     '--device', 'cpu', '--points', '1']) == 0
    out = capsys.readouterr().out
    assert 'model sam_tiny-fpn3d_1xb2-cpu-1000it_synthetic-ct-samples' in out


# ------------------------------------------------------------------ the real console
@pytest.mark.parametrize('script, args', [
    ('tools/match.py', ['--checkpoint', 'checkpoints/adam_default.pth', '--template', '{ct}',
                        '--points', '{points}', '--target', '{ct2}', '--out', '{out}/f.csv']),
    ('tools/register.py', ['--moving', '{ct}', '--fixed', '{ct2}', '--out-dir', '{points}']),
])
def test_console_prints_one_line_and_no_traceback(bad, tmp_path, script, args):
    values = dict(bad, out=str(tmp_path))
    proc = subprocess.run([sys.executable, script] + [a.format(**values) for a in args],
                          cwd=str(ROOT), capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert [ln for ln in proc.stderr.splitlines() if 'error: ' in ln].__len__() == 1
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('script, usage', [('tools/dist_train.sh', 'CONFIG NPROC'),
                                           ('tools/dist_test.sh', 'CONFIG CHECKPOINT NPROC')])
def test_dist_scripts_without_arguments_print_usage(script, usage):
    proc = subprocess.run(['bash', script], cwd=str(ROOT), capture_output=True, text=True)
    assert proc.returncode == 2 and usage in proc.stderr and 'unbound' not in proc.stderr


def test_sam_tiny_config_fixture_exists():
    assert SAM_TINY_CFG.is_file() and SAM_CKPT.is_file()
    assert ct_volume().array.shape == (24, 40, 40)
