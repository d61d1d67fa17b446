"""UAE-S algorithm: three unit-length maps of the right shapes, the semantic loss falls over a
few SGD steps on a fixed batch, the branch draw follows the probability and is the same on
every (simulated) rank, each branch trains only its heads, configs build."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub

from mmanat.registry import MODELS
from mmanat.utils.exceptions import InvalidInputError

ROOT = osp.join(osp.dirname(__file__), '..', '..', '..')


def tiny_cfg(embed=8, base=4, **kw):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'models', 'sam_tiny.py')).model
    cfg.type = 'UAES'
    cfg.data_preprocessor.type = 'UAESDataPreprocessor'
    cfg.backbone.update(depth=10, base_channels=base)
    cfg.neck.in_channels = (base, 2 * base, 4 * base)
    cfg.neck.out_channels = embed
    cfg.semantic_head = dict(cfg.neck)
    cfg.loss_semantic = dict(type='SupConMeanLoss', temperature=0.1)
    cfg.coarse_head.update(in_channels=8 * base, channels=embed)
    cfg.fine_sampler.update(num_preselect=200, max_queries=20, num_hard_candidates=100,
                            num_negatives=40)
    cfg.coarse_sampler.update(max_queries=20, num_hard_candidates=30, num_negatives=15,
                              num_global_negatives=30)
    cfg.update(kw)
    return cfg


def build_tiny(**kw):
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg(**kw))
    model.init_weights()
    return model


def inter_batch(B=1, shape=(8, 32, 32), seed=0):
    """Inter-subject pairs: 3 'organs' (boxes at subject-dependent places) with their own
    intensities plus noise; labels on the image grid."""
    g = torch.Generator().manual_seed(seed)
    D, H, W = shape
    labels = torch.zeros(B, 2, D, H, W, dtype=torch.long)
    for b in range(B):
        for v in range(2):
            for c in range(1, 4):
                y0 = int(torch.randint(0, H - 10, (1, ), generator=g))
                x0 = int(torch.randint(0, W - 10, (1, ), generator=g))
                labels[b, v, 1:D - 1, y0:y0 + 9, x0:x0 + 9] = c
    level = torch.tensor([0., 40., -30., 80.])
    img = level[labels] + 5 * torch.randn(labels.shape, generator=g)
    coords = torch.zeros(B, 2, 3, D, H, W)
    return img[:, :, None], dict(labels=labels, coords=coords,
                                 valid=torch.ones(B, 2, D, H, W, dtype=torch.bool))


def test_extract_feat_three_maps_and_predict():
    model = build_tiny().eval()
    size = (9, 33, 17)
    with torch.no_grad():
        out = model(torch.randn((2, 1) + size), mode='tensor')
        preds = model.predict(torch.randn((1, 1) + size), [dict(input_shape=(7, 30, 17))])
    half = tuple(math.ceil(n / 2) for n in size)
    assert set(out) == {'fine', 'coarse', 'semantic'}
    assert out['fine'].shape == out['semantic'].shape == (2, 8) + half
    assert out['coarse'].shape == (2, 8) + tuple(math.ceil(n / s)
                                                 for n, s in zip(size, (4, 16, 16)))
    for v in out.values():
        torch.testing.assert_close(v.norm(dim=1), torch.ones_like(v[:, 0]))
    assert not torch.allclose(out['fine'], out['semantic'])      # separate weights
    assert preds[0]['semantic'].shape == (8, 4, 15, 9) and preds[0]['semantic_stride'] == (2, 2, 2)
    with torch.no_grad():
        only = model.extract_feat(torch.randn((1, 1) + size), heads=('semantic', ))
    assert set(only) == {'semantic'}


def test_semantic_branch_loss_falls_with_sgd():
    model = build_tiny(semantic_prob=1.0, branch_seed=0).train()
    inputs, ds = inter_batch()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(6):
        out = model({'intra': None, 'inter': inputs}, {'intra': None, 'inter': ds}, mode='loss')
        assert set(out) == {'loss_semantic', 'semantic_ratio'} and out['semantic_ratio'] == 1
        opt.zero_grad()
        out['loss_semantic'].backward()
        opt.step()
        losses.append(out['loss_semantic'].item())
    assert losses[-1] < losses[0] - 0.05, losses


def test_each_branch_trains_only_its_heads(sam_batch):
    intra_in, intra_ds = sam_batch(B=1, shape=(8, 32, 32), seed=0)
    inter_in, inter_ds = inter_batch()
    batch = ({'intra': intra_in, 'inter': inter_in}, {'intra': intra_ds, 'inter': inter_ds})
    for prob, expect, idle in ((1.0, {'loss_semantic'}, ('neck.', 'coarse_head.',
                                                          'backbone.layer4.')),  # stage 4
                               (0.0, {'loss_fine', 'loss_coarse'}, ('semantic_head.', ))):
        model = build_tiny(semantic_prob=prob, branch_seed=1).train()
        out = model(*batch, mode='loss')
        assert set(out) - {'semantic_ratio'} == expect
        sum(v for k, v in out.items() if k.startswith('loss')).backward()
        for name, p in model.named_parameters():
            assert (p.grad is None) == name.startswith(idle), name


def test_branch_draw_follows_probability_and_is_rank_independent(sam_batch):
    a = build_tiny(semantic_prob=0.4, branch_seed=123)
    b = build_tiny(semantic_prob=0.4, branch_seed=123)      # "rank 1": same seed, same iters
    draws_a = [a.select_branch(i) for i in range(2000)]
    draws_b = [b.select_branch(i) for i in range(2000)]
    assert draws_a == draws_b
    frac = draws_a.count('semantic') / 2000
    assert abs(frac - 0.4) < 0.04
    c = build_tiny(semantic_prob=0.4, branch_seed=124)
    assert [c.select_branch(i) for i in range(2000)] != draws_a
    # inside a runner the iteration comes from the message hub (the same on every rank)
    hub = MessageHub.get_instance('uae_s_test_hub')
    inter_in, inter_ds = inter_batch()
    intra_in, intra_ds = sam_batch(B=1, shape=(8, 32, 32), seed=0)
    batch = ({'intra': intra_in, 'inter': inter_in}, {'intra': intra_ds, 'inter': inter_ds})
    try:
        for it in (3, 4, 5, 6):
            hub.update_info('iter', it)
            with torch.no_grad():
                out = a(*batch, mode='loss')
            assert ('loss_semantic' in out) == (a.select_branch(it) == 'semantic')
            assert ('loss_fine' in out) != ('loss_semantic' in out)
        assert {a.select_branch(it) for it in (3, 4, 5, 6)} == {'semantic', 'intra'}
        # a batch without intra pairs falls back to the semantic branch
        hub.update_info('iter', next(i for i in range(50) if a.select_branch(i) == 'intra'))
        with torch.no_grad():
            out = a({'intra': None, 'inter': inter_in}, {'intra': None, 'inter': inter_ds},
                    mode='loss')
        assert 'loss_semantic' in out
        # running fraction of semantic iterations: 4 draws above + this fallback
        n_sem = sum(a.select_branch(it) == 'semantic' for it in (3, 4, 5, 6)) + 1
        assert out['semantic_ratio'].item() == pytest.approx(n_sem / 5)
    finally:
        hub.update_info('iter', None)


def test_configs_build_and_bad_input():
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'sam', 'uae_s.py'))
    assert cfg.model.type == 'UAES' and cfg.model.semantic_prob == 0.4
    assert cfg.train_dataloader.batch_size == 5
    assert cfg.train_dataloader.batch_sampler.num_inter == 1
    assert cfg.train_cfg.max_iters == 20000
    assert cfg.model_wrapper_cfg.find_unused_parameters is True
    model = MODELS.build(cfg.model)
    assert model.semantic_head.out_channels == 128 and model.loss_semantic.temperature == 0.1
    assert model.semantic_head is not model.neck
    cpu = Config.fromfile(osp.join(ROOT, 'configs', 'sam',
                                   'uae-s_tiny-fpn3d_1xb3-cpu-300it_synthetic-ct.py'))
    assert MODELS.build(cpu.model).semantic_stride == (2, 2, 2)
    with pytest.raises(InvalidInputError, match='semantic_prob'):
        build_tiny(semantic_prob=1.5)
    with pytest.raises(InvalidInputError, match='label maps'):
        m = build_tiny(semantic_prob=1.0, branch_seed=0)
        inputs, ds = inter_batch()
        ds.pop('labels')
        m({'intra': None, 'inter': inputs}, {'intra': None, 'inter': ds}, mode='loss')
