"""The reference-scale UAE-M stage-2 config uses the released data steps
(alibaba-damo-academy/self-supervised-anatomical-embedding-v2,
configs/samv2/samv2_ct_mri_inter.py); the tiny CPU configs keep the plain crop."""
import os.path as osp

import numpy as np
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmanat.registry import DATASETS

CFG = osp.join(osp.dirname(__file__), '..', '..', 'configs', 'sam')


def _load(name):
    return Config.fromfile(osp.join(CFG, name))


def test_reference_inter_config_uses_the_released_steps():
    ds = _load('uae-m-inter_r18-fpn3d_1xb1-20k_synthetic-ct-mr.py').train_dataloader.dataset
    crop, shift, blur, pack = ds.pipeline
    assert crop.type == 'RandomInterModalityCrop'
    assert tuple(crop.patch_size) == (104, 128, 128) and crop.jitter == 10
    assert crop.placement == 'mr_body' and tuple(crop.scale_range) == (0.8, 1.2)
    assert crop.rotation_range == 5.0 and crop.with_masks
    assert shift.type == 'RandHistogramShift' and shift.mode == 'released'
    assert shift.prob == 0.9 and tuple(shift.num_control_points) == (5, 15)
    assert shift.invert_prob == 0.3 and shift.rescale_prob == 0.3
    assert blur.type == 'TorchioViewIntensity'
    assert blur.transforms == [dict(type='RandomBlur', std=(0.0, 4.0))]
    assert pack.type == 'PackSAMInputs'
    # the tiny CPU configs keep the plain crop (no new option set)
    for name in ('uae-m-inter_tiny-fpn3d_1xb2-cpu-300it_synthetic-ct-mr-4mm.py',
                 'uae-m-inter_tiny-fpn3d_1xb2-cpu-150it_registered-ct-mr.py'):
        tiny = _load(name).train_dataloader.dataset.pipeline[0]
        assert tiny.type == 'RandomInterModalityCrop'
        assert not {'placement', 'scale_range', 'rotation_range', 'with_masks'} & set(tiny)


def test_released_pipeline_yields_a_sample_with_the_mr_query_mask():
    cfg = _load('uae-m-inter_r18-fpn3d_1xb1-20k_synthetic-ct-mr.py')
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.num_subjects = 1
    ds_cfg.spacing = 4.0
    ds_cfg.pipeline[0].patch_size = (16, 32, 32)
    ds_cfg.pipeline[0].spacing = 4.0
    ds_cfg.pipeline[0].jitter = 2
    ds_cfg.pipeline[0].mask_min_object_size = 200  # pixels of 4 mm (2000 is for 2 mm)
    with DefaultScope.overwrite_default_scope('mmanat'):
        ds = DATASETS.build(ds_cfg)
        np.random.seed(0)
        item = ds[0]
    assert tuple(item['inputs'].shape) == (2, 1, 16, 32, 32)
    meta = item['data_samples']['meta']
    query = np.asarray(meta['query_mask'])
    valid = item['data_samples']['valid'].numpy()
    assert query.shape == (2, 16, 32, 32) and query.dtype == bool
    assert not (query & ~valid).any()
    assert meta['placement'] == 'mr_body' and query[1].any()
    assert len(meta['histogram_shift']) == 2
    # per-view spacing 4 mm * U(0.8, 1.2), times (n +- 2 * 2) / n from the border jitter
    sp = meta['view_spacing']
    assert np.all((sp > 4.0 * 0.8 * 0.74) & (sp < 4.0 * 1.2 * 1.26))
