"""Every config under configs/ parses and its model builds; the data parts of the small CPU
configs build too (datasets are lazy: nothing is rendered here)."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmanat.registry import DATASETS, MODELS

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '*', '*.py'))
                 if '_base_' not in p)


@pytest.fixture(autouse=True)
def mmanat_scope():
    init_default_scope('mmanat')


def test_there_are_configs():
    names = {osp.relpath(p, ROOT) for p in CONFIGS}
    for must in ('configs/sam/uae_m.py', 'configs/sam/uae_m_intra.py', 'configs/sam/uae_s.py',
                 'configs/adam/adam_r50_cxr.py', 'configs/adam/linear_probe_r18_synthetic_cpu.py',
                 'configs/adam/finetune_r18_synthetic_cpu.py',
                 'configs/sam/uae_m_recipe_tiny_cpu.py'):
        assert must in names, must


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, ROOT))
def test_config_parses_and_model_builds(path):
    cfg = Config.fromfile(path)
    assert 'model' in cfg and 'train_dataloader' in cfg
    model_cfg = cfg.model.copy()
    model_cfg.pop('pretrained', None)  # classifier configs point at a checkpoint
    model = MODELS.build(model_cfg)
    assert sum(p.numel() for p in model.parameters()) > 0


@pytest.mark.parametrize('name', ['sam/sam_tiny_synthetic_cpu.py', 'sam/uae_m_intra.py',
                                  'sam/uae_m.py', 'sam/uae_m_intra_tiny_synthetic_cpu.py',
                                  'sam/uae_m_tiny_synthetic_cpu.py',
                                  'adam/adam_r18_synthetic_cpu.py',
                                  'adam/moco_r18_synthetic_cpu.py',
                                  'adam/linear_probe_r18_synthetic_cpu.py',
                                  'adam/finetune_r18_synthetic_cpu.py'])
def test_synthetic_datasets_build(name):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', name))
    ds = DATASETS.build(cfg.train_dataloader.dataset)
    assert len(ds) > 0


def test_reference_numbers_of_uae_m():
    intra = Config.fromfile(osp.join(ROOT, 'configs', 'sam', 'uae_m_intra.py'))
    ds = intra.train_dataloader.dataset
    assert tuple(ds.modalities) == ('CT', 'MR') and tuple(ds.modality_probs) == (0.6, 0.4)
    shift = [t for t in ds.pipeline if t['type'] == 'RandHistogramShift'][0]
    assert shift['prob'] == 0.9 and tuple(shift['num_control_points']) == (5, 15)
    assert shift['invert_prob'] == 0.3 and shift['rescale_prob'] == 0.3
    inter = Config.fromfile(osp.join(ROOT, 'configs', 'sam', 'uae_m.py'))
    crop = inter.train_dataloader.dataset.pipeline[0]
    assert crop['type'] == 'RandomInterModalityCrop'
    assert tuple(crop['patch_size']) == (104, 128, 128) and crop['jitter'] == 10


def test_label_fraction_of_linear_probe():
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'adam', 'linear_probe_r18_synthetic_cpu.py'))
    cfg.merge_from_dict({'train_dataloader.dataset.label_fraction': 0.01})
    ds = DATASETS.build(cfg.train_dataloader.dataset)
    assert len(ds) == 4  # 1 % of 400 subjects
    assert cfg.model.frozen_backbone is True
    ft = Config.fromfile(osp.join(ROOT, 'configs', 'adam', 'finetune_r18_synthetic_cpu.py'))
    assert ft.model.frozen_backbone is False
