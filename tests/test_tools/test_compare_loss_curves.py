"""tools/benchmarks/compare_loss_curves.py: two copies of a config on the same batches and
sampler seeds (a variant identical to the config gives identical curves)."""
import importlib.util
import os.path as osp

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
RECIPE = osp.join(ROOT, 'configs', 'sam',
                  'sam_tiny-fpn3d_1xb2-cpu-1000it_synthetic-ct-samples.py')


def _tool():
    spec = importlib.util.spec_from_file_location(
        'compare_loss_curves',
        osp.join(ROOT, 'tools', 'benchmarks', 'compare_loss_curves.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _tiny_config(tmp_path):
    path = tmp_path / 'tiny.py'
    path.write_text(
        f"_base_ = ['{RECIPE}']\n"
        "train_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(\n"
        "    _delete_=True, type='SyntheticSubjectDataset', num_subjects=3, spacing=8.0,\n"
        f"    cache_dir='{tmp_path / 'cache'}',\n"
        "    pipeline=[dict(type='RandomTwoViewCrop', patch_size=(8, 32, 32), spacing=8.0),\n"
        "              dict(type='NormalizeViewIntensity'), dict(type='PackSAMInputs')]))\n"
        "model = dict(backbone=dict(depth=10, base_channels=4),\n"
        "             neck=dict(in_channels=(4, 8, 16), out_channels=8),\n"
        "             coarse_head=dict(in_channels=32, channels=8), cpu_bf16=False)\n")
    return str(path)


def test_identical_variant_gives_identical_curves(tmp_path):
    pytest.importorskip('scipy')
    import torch
    tool = _tool()
    cfg = _tiny_config(tmp_path)   # float32 (bf16 on these 2x2x2 stage-4 maps is unsafe)
    threads = torch.get_num_threads()
    try:
        same = tool.run(tool.parse_args([cfg, '--iters', '3', '--variant',
                                         'model.cpu_bf16=False']))
        other = tool.run(tool.parse_args([cfg, '--iters', '3', '--variant',
                                          'model.channels_last=False']))
    finally:
        torch.set_num_threads(threads)
    assert len(same['config']) == 3 and len(same['config'][0]) == 2   # fine, coarse
    assert same['config'] == same['variant']
    assert other['config'] == same['config']          # a run repeats exactly
    for a, b in zip(other['config'], other['variant']):   # same function, other layout
        assert a == pytest.approx(b, abs=1e-2)
