"""RadiographClassifier: Adam weights load without renaming, linear probe freezes the
backbone, a Runner trains and evaluates mean AUC; the AUC metric against a brute force."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.structures import BaseDataElement

from mmanat.evaluation.metrics import mean_auc, roc_auc
from mmanat.registry import MODELS
from mmanat.utils.exceptions import InvalidInputError

BACKBONE = dict(type='mmdet.ResNet', depth=18, in_channels=1, base_channels=4,
                out_indices=(3, ), norm_eval=False)


def _adam():
    model = MODELS.build(dict(
        type='Adam', backbone=BACKBONE,
        neck=dict(type='MoCoMLPNeck', in_channels=32, hid_channels=16, out_channels=8),
        queue_len=10, feat_dim=8, momentum=0.9))
    model.init_weights()
    with torch.no_grad():  # make the key encoder differ from the query encoder
        for p in model.momentum_backbone.parameters():
            p.add_(1.0)
    return model


def _classifier(**kw):
    cfg = dict(type='RadiographClassifier', backbone=BACKBONE, in_channels=32, num_classes=3)
    cfg.update(kw)
    return MODELS.build(cfg)


def test_adam_checkpoint_loads_into_classifier_without_renaming(tmp_path):
    adam = _adam()
    path = osp.join(str(tmp_path), 'adam.pth')
    torch.save({'state_dict': {k: v.half() if v.is_floating_point() else v
                               for k, v in adam.state_dict().items()}, 'meta': {}}, path)
    clf = _classifier(pretrained=path)
    clf.init_weights()
    want = adam.backbone.state_dict()
    got = clf.backbone.state_dict()
    assert set(want) == set(got)
    for k in want:  # the query encoder, not the momentum encoder (fp16 storage)
        assert torch.allclose(got[k].float(), want[k].float().half().float()), k
        assert got[k].dtype == want[k].dtype


def test_wrong_architecture_is_reported(tmp_path):
    adam = _adam()
    path = osp.join(str(tmp_path), 'adam.pth')
    torch.save({'state_dict': adam.state_dict()}, path)
    clf = _classifier(backbone=dict(BACKBONE, in_channels=3), pretrained=path)
    with pytest.raises(InvalidInputError, match='another shape'):
        clf.init_weights()
    torch.save({'state_dict': {'neck.x': torch.zeros(1)}}, path)
    with pytest.raises(InvalidInputError, match='missing'):
        _classifier(pretrained=path).init_weights()


def _batch(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 1, 32, 32, generator=g)
    samples = [BaseDataElement(gt_label=torch.tensor([i % 2, 1 - i % 2, 1.0]))
               for i in range(n)]
    return x, samples


def test_linear_probe_trains_only_the_head():
    clf = _classifier(frozen_backbone=True)
    clf.init_weights()
    clf.train()
    assert not clf.backbone.training
    before = {k: v.clone() for k, v in clf.backbone.state_dict().items()}
    x, samples = _batch()
    loss = clf(x, samples, mode='loss')['loss_cls']
    loss.backward()
    assert all(p.grad is None for p in clf.backbone.parameters())
    assert clf.head.weight.grad is not None and clf.head.weight.grad.abs().sum() > 0
    after = clf.backbone.state_dict()  # BatchNorm running statistics unchanged too
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_finetune_updates_backbone_and_predict_scores():
    clf = _classifier(frozen_backbone=False)
    clf.init_weights()
    clf.train()
    x, samples = _batch()
    clf(x, samples, mode='loss')['loss_cls'].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in clf.backbone.parameters())
    clf.eval()
    out = clf(x, samples, mode='predict')
    assert len(out) == 6 and out[0].pred_score.shape == (3, )
    assert all(0 <= float(s) <= 1 for o in out for s in o.pred_score)
    with pytest.raises(InvalidInputError, match='one view'):
        clf(torch.randn(2, 2, 1, 32, 32), mode='tensor')


def test_roc_auc_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    for _ in range(5):
        s = rng.integers(0, 6, 40).astype(float)  # many ties
        y = rng.random(40) < 0.4
        pos, neg = s[y], s[~y]
        brute = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
        assert roc_auc(s, y) == pytest.approx(brute, abs=1e-12)
    assert roc_auc([0.1, 0.9], [0, 1]) == 1.0
    assert roc_auc([0.9, 0.1], [0, 1]) == 0.0
    assert np.isnan(roc_auc([0.1, 0.2], [1, 1]))
    res = mean_auc(np.array([[0.1, 0.5], [0.9, 0.5]]), np.array([[0, 1], [1, 1]]), ['a', 'b'])
    assert res['mAUC'] == 1.0 and res['classes_scored'] == 1 and np.isnan(res['AUC/b'])


def test_runner_linear_probe_reports_mauc(tmp_path):
    """A few iterations of a linear probe through mmengine's Runner on labelled PNGs."""
    from mmengine.runner import Runner

    from tests.helpers.adam_tiny import write_pngs
    img_dir = write_pngs(tmp_path / 'imgs', n=12, size=48)
    lines = [f'img_{i:03d}.png {i % 2} {1 - i % 2} {int(i % 3 == 0)}' for i in range(12)]
    (tmp_path / 'list.txt').write_text('\n'.join(lines) + '\n')
    pipe = [dict(type='TwoViewXrayAugment', out_size=32, scale=(1.0, 1.0), ratio=(1.0, 1.0),
                 rotation=0.0, jitter_prob=0.0, blur_prob=0.0, num_views=1),
            dict(type='PackTwoViewInputs')]
    ds = dict(type='RadiographDataset', data_root=str(tmp_path), ann_file='list.txt',
              data_prefix=dict(img_path=img_dir), classes=('a', 'b', 'c'), pipeline=pipe)
    cfg = dict(
        default_scope='mmanat', work_dir=str(tmp_path / 'work'),
        model=dict(type='RadiographClassifier', backbone=BACKBONE, in_channels=32,
                   num_classes=3, frozen_backbone=True),
        train_dataloader=dict(batch_size=4, num_workers=0, dataset=ds,
                              sampler=dict(type='InfiniteSampler', shuffle=True)),
        val_dataloader=dict(batch_size=4, num_workers=0, dataset=dict(ds, test_mode=True),
                            sampler=dict(type='DefaultSampler', shuffle=False)),
        val_evaluator=dict(type='MultiLabelAUC'),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=3, val_interval=3),
        val_cfg=dict(type='ValLoop'),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1000),
                           logger=dict(type='LoggerHook', interval=1)),
        env_cfg=dict(dist_cfg=dict(backend='gloo')),
        randomness=dict(seed=0))
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.val_loop.run()
    assert 0.0 <= metrics['cls/mAUC'] <= 1.0 and metrics['cls/classes_scored'] == 3
