"""A short CPU training run of SAM on synthetic subjects through the real two-view pipeline."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope

from mmanat.registry import DATASETS, MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
CFG = osp.join(ROOT, 'tests', 'data', 'configs', 'sam_micro_cpu.py')


@pytest.mark.slow
def test_loss_falls_on_synthetic_subjects():
    torch.manual_seed(0)
    np.random.seed(0)  # the two-view crop draws from numpy's global generator
    cfg = Config.fromfile(CFG)
    with DefaultScope.overwrite_default_scope('mmanat'):
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
        model = MODELS.build(cfg.model)
    # two subjects through the full pipeline (generation, two-view crops, normalisation)
    batch = pseudo_collate([dataset[0], dataset[1]])
    optim = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    losses = []
    for _ in range(8):
        data = model.data_preprocessor(batch, True)
        parts = model(**data, mode='loss')
        loss = sum(parts.values())
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(float(loss))
    first, last = losses[0], min(losses[-3:])
    assert all(map(lambda v: v == v, losses)), losses  # finite
    assert last < first - 0.5, losses
