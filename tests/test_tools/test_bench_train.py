"""tools/benchmarks/bench_train.py: the baseline switch of --compare, the cache warm-up and a
tiny side-by-side run of the shipped SAM recipe."""
import importlib.util
import os.path as osp

import pytest
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
RECIPE = osp.join(ROOT, 'configs', 'sam',
                  'sam_tiny-fpn3d_1xb2-cpu-1000it_synthetic-ct-samples.py')


def _tool():
    spec = importlib.util.spec_from_file_location(
        'bench_train', osp.join(ROOT, 'tools', 'benchmarks', 'bench_train.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_recipe_enables_the_speedups_and_baseline_strips_them():
    tool = _tool()
    cfg = Config.fromfile(RECIPE)
    syn = cfg.train_dataloader.dataset.datasets[0]
    assert syn.type == 'SyntheticSubjectDataset' and syn.cache_dir
    assert cfg.model.channels_last is True and cfg.model.cpu_bf16 is True
    assert cfg.env_cfg.torch_threads == 1
    base = tool.strip_speedups(cfg)
    assert base.train_dataloader.dataset.datasets[0].cache_dir is None
    assert base.model.channels_last is False and base.model.cpu_bf16 is False
    assert base.env_cfg.torch_threads is None
    assert base.env_cfg.dist_cfg == cfg.env_cfg.dist_cfg   # the rest of env_cfg is kept
    assert cfg.train_dataloader.dataset.datasets[0].cache_dir == syn.cache_dir  # a copy


def test_compare_runs_and_warms_the_cache(tmp_path):
    pytest.importorskip('scipy')
    tool = _tool()
    cfg_path = tmp_path / 'tiny.py'
    # the recipe's synthetic part only, small subjects and a tiny network (fast)
    cfg_path.write_text(
        f"_base_ = ['{RECIPE}']\n"
        "train_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(\n"
        "    _delete_=True, type='SyntheticSubjectDataset', num_subjects=3, spacing=8.0,\n"
        f"    cache_dir='{tmp_path / 'cache'}',\n"
        "    pipeline=[dict(type='RandomTwoViewCrop', patch_size=(8, 32, 32), spacing=8.0),\n"
        "              dict(type='NormalizeViewIntensity'), dict(type='PackSAMInputs')]))\n"
        "model = dict(backbone=dict(depth=10, base_channels=4),\n"
        "             neck=dict(in_channels=(4, 8, 16), out_channels=8),\n"
        "             coarse_head=dict(in_channels=32, channels=8))\n")
    import torch
    threads = torch.get_num_threads()
    seen = {}   # torch threads during each variant's steps
    step = tool.Setup.step

    def recording_step(self, *args, **kwargs):
        out = step(self, *args, **kwargs)
        seen.setdefault(self.name, set()).add(torch.get_num_threads())
        return out

    tool.Setup.step = recording_step
    try:
        summaries = tool.run(tool.parse_args(
            [str(cfg_path), '--compare', '--rounds', '1', '--block', '1', '--warmup', '0',
             '--threads', '2']))
    finally:
        torch.set_num_threads(threads)
    # the baseline runs with the run's threads, the recipe with its env_cfg.torch_threads
    assert seen == {'baseline': {2}, 'optimised': {1}}
    assert [s['name'] for s in summaries] == ['baseline', 'optimised']
    for s in summaries:
        assert s['iters'] == 1 and s['it_s'] > 0 and s['cpu_s'] > 0
        assert set(s['phases']) == set(tool.PHASES)
    assert len(list((tmp_path / 'cache').iterdir())) >= 1   # warmed before the timing


def test_train_cli_applies_torch_threads():
    import torch
    from mmanat.cli.train import apply_torch_threads
    from mmanat.utils.exceptions import InvalidInputError
    threads = torch.get_num_threads()
    try:
        assert apply_torch_threads(Config(dict(env_cfg=dict(torch_threads=1)))) == 1
        assert torch.get_num_threads() == 1
        assert apply_torch_threads(Config(dict(env_cfg=dict(torch_threads=None)))) is None
        assert torch.get_num_threads() == 1   # None leaves it alone
        for bad in (0, -2, 1.5, 'two', True):
            with pytest.raises(InvalidInputError, match='torch_threads'):
                apply_torch_threads(Config(dict(env_cfg=dict(torch_threads=bad))))
    finally:
        torch.set_num_threads(threads)
