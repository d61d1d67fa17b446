"""End to end: a batch of the released UAE-M stage-2 pipeline (uae_m_inter_released_pipeline,
MR-foreground query mask) trains a tiny SAM / UAE-M; SAM.loss pools the mask to the fine grid
like valid and the fine sampler draws its queries only inside it (released reference:
sam/models/frameworks/sam_v2_uniform_cross_volume_mask_dual_head_MRI_CT.py)."""
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope

from mmanat.registry import DATASETS, MODELS
from mmanat.utils.exceptions import InvalidInputError

ROOT = osp.join(osp.dirname(__file__), '..', '..', '..')


def tiny_cfg(uae_m=False):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'models', 'sam_tiny.py')).model
    base, embed = 4, 8
    cfg.backbone.update(depth=10, base_channels=base)
    cfg.neck.in_channels = (base, 2 * base, 4 * base)
    cfg.neck.out_channels = embed
    cfg.coarse_head.update(in_channels=8 * base, channels=embed)
    cfg.fine_sampler.update(num_preselect=300, max_queries=30, num_hard_candidates=200,
                            num_negatives=60)
    cfg.coarse_sampler.update(max_queries=20, num_hard_candidates=30, num_negatives=15,
                              num_global_negatives=30)
    if uae_m:  # the UAE-M network: UAES with an untrained semantic head (uae_m_r18_fpn.py)
        cfg.type = 'UAES'
        cfg.data_preprocessor.type = 'UAESDataPreprocessor'
        cfg.semantic_head = dict(cfg.neck)
        cfg.semantic_prob = 0.0
    return cfg


@pytest.fixture(scope='module')
def released_batch():
    """Two samples of the released stage-2 pipeline, small (4 mm, (16, 30, 32) voxels)."""
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'sam',
                                   'uae-m-inter_r18-fpn3d_1xb1-20k_synthetic-ct-mr.py'))
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.num_subjects = 2
    ds_cfg.spacing = 4.0
    crop = ds_cfg.pipeline[0]
    crop.update(patch_size=(16, 30, 32), spacing=4.0, jitter=2, mask_min_object_size=200)
    with DefaultScope.overwrite_default_scope('mmanat'):
        ds = DATASETS.build(ds_cfg)
        np.random.seed(0)
        return pseudo_collate([ds[0], ds[1]])


class SpySampler:
    """Records the arguments and output of the wrapped fine sampler."""

    def __init__(self, sampler):
        self.sampler, self.calls = sampler, []

    def __call__(self, *args, **kwargs):
        out = self.sampler(*args, **kwargs)
        self.calls.append((kwargs, out))
        return out


def _build(uae_m=False):
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg(uae_m))
    model.init_weights()
    model.fine_sampler = SpySampler(model.fine_sampler)
    return model


@pytest.mark.parametrize('uae_m', [False, True])
def test_released_batch_loss_with_the_mr_query_mask(released_batch, uae_m):
    model = _build(uae_m)
    data = model.data_preprocessor(released_batch, training=True)
    ds = data['data_samples']
    assert ds['query_mask'].shape == ds['valid'].shape == (2, 2, 16, 32, 32)
    assert ds['query_mask'][:, 1].any() and not (ds['query_mask'] & ~ds['valid']).any()
    torch.manual_seed(1)
    losses = model(data['inputs'], ds, mode='loss')
    assert torch.isfinite(losses['loss_fine']) and torch.isfinite(losses['loss_coarse'])
    (losses['loss_fine'] + losses['loss_coarse']).backward()
    assert next(model.neck.parameters()).grad is not None
    (kwargs, out), = model.fine_sampler.calls
    # the fine-grid mask: at least half (valid_threshold) of each 2x2x2 block inside
    expect = F.avg_pool3d(ds['query_mask'].flatten(0, 1)[:, None].float(), 2, 2)[:, 0] >= 0.5
    assert torch.equal(kwargs['query_mask'], expect.reshape(2, 2, 8, 16, 16))
    q = out['query_index'][~out['fallback']]
    assert q.numel() > 0 and expect.reshape(-1)[q].all()
    # both directions: CT-view (0) and MR-view (1) queries, all in the MR foreground
    view = (q // (8 * 16 * 16)) % 2
    assert (view == 0).any() and (view == 1).any()


def test_without_the_mask_the_sampler_gets_no_mask(released_batch):
    model = _build()
    data = model.data_preprocessor(released_batch, training=True)
    ds = dict(data['data_samples'])
    mask = ds.pop('query_mask')
    model(data['inputs'], ds, mode='loss')
    (kwargs, out), = model.fine_sampler.calls
    assert 'query_mask' not in kwargs
    pooled = F.avg_pool3d(mask.flatten(0, 1)[:, None].float(), 2, 2)[:, 0] >= 0.5
    assert not pooled.reshape(-1)[out['query_index']].all()  # queries also off the body
    with pytest.raises(InvalidInputError, match='query_mask'):
        model(data['inputs'], dict(ds, query_mask=mask[..., :8, :, :]), mode='loss')
