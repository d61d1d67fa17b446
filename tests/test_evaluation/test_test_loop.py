"""LandmarkTestLoop: the DLT lesion-pair config fragment run through mmengine's Runner."""
import json
import os.path as osp

import numpy as np
import pytest

from mmanat.evaluation.test_loop import _samples_of

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DLT_BASE = osp.join(ROOT, 'configs', '_base_', 'datasets', 'dlt_lesion_pairs.py')


def test_samples_of_keeps_items_whole():
    a = dict(template='A', target='B', names=['x', 'y'], template_points=np.zeros((2, 3)))
    b = dict(template='C', target='D', names=['z'], template_points=np.ones((1, 3)))
    collated = {k: [a[k], b[k]] for k in a}  # mmanat_pair_collate's form
    assert [s['names'] for s in _samples_of(collated)] == [['x', 'y'], ['z']]
    assert _samples_of([a, b]) == [a, b]


@pytest.mark.slow
def test_lesion_pairs_through_the_runner(tmp_path):
    from mmengine.config import Config
    from mmengine.runner import Runner

    from mmanat.evaluation import longitudinal_lesion_cases, read_dlt_json, write_dlt_json
    from mmanat.utils import register_all_modules
    from mmanat.utils.checkpoint import (allow_mmengine_checkpoint_globals, fit_state_dict,
                                         load_checkpoint_file, state_dict_of)
    register_all_modules(init_default_scope=False)
    allow_mmengine_checkpoint_globals()
    data = tmp_path / 'dlt'
    longitudinal_lesion_cases(n_cases=1, spacing=3.0, seed=1, out_dir=str(data))
    # two lesion pairs are enough (each pair embeds both of its images)
    write_dlt_json(read_dlt_json(str(data / 'test.json'))[:2], str(data / 'test.json'))
    n_pairs = len(read_dlt_json(str(data / 'test.json')))
    with open(osp.join(ROOT, 'checkpoints', 'model_zoo.json')) as f:
        sam_cfg = osp.join(ROOT, json.load(f)['sam_default.pth']['config'])
    cfg = Config.fromfile(sam_cfg)
    dlt = Config.fromfile(DLT_BASE)
    cfg.test_dataloader = dlt.test_dataloader  # replaces any landmark-pair test set
    cfg.test_dataloader.dataset.ann_file = str(data / 'test.json')
    cfg.test_evaluator, cfg.test_cfg = dlt.test_evaluator, dlt.test_cfg
    cfg.test_cfg.embed_kwargs = dict(spacing=4.0)  # network input at 4 mm: 8x fewer voxels
    cfg.work_dir = str(tmp_path / 'work')
    runner = Runner.from_cfg(cfg)
    ckpt = osp.join(ROOT, 'checkpoints', 'sam_default.pth')
    fit_state_dict(runner.model, state_dict_of(load_checkpoint_file(ckpt), ckpt), ckpt, 'sam')
    metrics = runner.test()
    assert metrics['lesion/n'] == n_pairs > 0 and metrics['lesion/n_failed'] == 0
    assert np.isfinite(metrics['lesion/med']) and 0 <= metrics['lesion/cpm_radius'] <= 1
    assert 'lesion/box_acc' in metrics  # the synthetic records carry target boxes
    # one prediction per pair, in the target image, and the metric's MED is their mean error
    pairs = runner.test_loop.pair_results
    assert len(pairs) == n_pairs
    errors = [np.linalg.norm(p['pred_points'] - p['gt_points']) for p in pairs]
    assert metrics['lesion/med'] == pytest.approx(np.mean(errors))
