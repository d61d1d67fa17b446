"""AdamV2: the three losses wired to the right views, the EMA teacher (momentum schedule,
no gradient), the centre update, Eve features from the teacher."""
import pytest
import torch

from mmanat.models.algorithms import AdamV2
from mmanat.models.algorithms.adam_v2 import pooled
from mmanat.utils.exceptions import InvalidInputError


def tiny_model(**kw):
    from mmengine.registry import init_default_scope
    init_default_scope('mmanat')
    model = AdamV2(
        backbone=dict(type='mmdet.ResNet', depth=18, in_channels=1, base_channels=4,
                      out_indices=(3, ), norm_eval=False),
        head=dict(type='DINOHead', in_channels=32, hid_channels=16, bottleneck_channels=8,
                  out_channels=12),
        compose_head=dict(type='ComposeHead', in_channels=32, hid_channels=16),
        decompose_head=dict(type='DecomposeHead', in_channels=32, hid_channels=16),
        loss_loc=dict(type='LocalizabilityLoss', out_channels=12), momentum_iters=10, **kw)
    model.init_weights()
    return model


def inputs(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(global_views=torch.randn(n, 6, 1, 32, 32, generator=g),
                local_views=torch.randn(n, 2, 1, 16, 16, generator=g))


def test_losses_use_the_published_pairings():
    torch.manual_seed(0)
    model = tiny_model()
    model.eval()  # no EMA step, no centre update: the terms can be recomputed
    x = inputs()
    out = model(x, mode='loss')
    assert set(out) == {'loss_loc', 'loss_comp', 'loss_dec', 'momentum'}
    g, loc = x['global_views'], x['local_views']
    with torch.no_grad():
        s = pooled(model.student_backbone(g.flatten(0, 1))).view(3, 6, -1)
        s_loc = pooled(model.student_backbone(loc.flatten(0, 1))).view(3, 2, -1)
        t = pooled(model.backbone(g.flatten(0, 1))).view(3, 6, -1)
        t_logits = model.teacher_head(t[:, 0])
        views = torch.cat([s[:, 1:2], s_loc], 1)  # global view + local crops, not the anchor
        s_logits = model.student_head(views.flatten(0, 1)).view(3, 3, -1).transpose(0, 1)
        loc_ref = model.loss_loc(s_logits, t_logits)
        comp_ref = model.loss_comp(model.compose_head(s[:, 2:6]), t[:, 0])
        dec_ref = model.loss_dec(model.decompose_head(s[:, 0]), t[:, 2:6])
    torch.testing.assert_close(out['loss_loc'], loc_ref)
    torch.testing.assert_close(out['loss_comp'], comp_ref)
    torch.testing.assert_close(out['loss_dec'], dec_ref)


def test_training_step_updates_teacher_by_ema_and_centre():
    torch.manual_seed(0)
    model = tiny_model()
    model.train()
    # make the student differ from the teacher so the EMA is visible
    with torch.no_grad():
        for p in model.student_head.parameters():
            p.add_(0.1)
    t0 = [p.detach().clone() for p in model.teacher_head.parameters()]
    s0 = [p.detach().clone() for p in model.student_head.parameters()]
    out = model(inputs(), mode='loss')
    m = cosine = out['momentum'].item()
    assert cosine == pytest.approx(0.996)
    for a, b, c in zip(model.teacher_head.parameters(), t0, s0):
        torch.testing.assert_close(a, m * b + (1 - m) * c)
    assert int(model.ema_step) == 1 and model.momentum > 0.996
    assert model.loss_loc.center.abs().sum() > 0
    total = out['loss_loc'] + out['loss_comp'] + out['loss_dec']
    total.backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(p.grad is None for p in model.teacher_head.parameters())
    assert model.student_backbone.conv1.weight.grad is not None
    assert model.compose_head.mlp[0].weight.grad is not None
    assert model.decompose_head.mlp[0].weight.grad is not None


def test_eve_features_come_from_the_teacher():
    model = tiny_model()
    model.eval()
    with torch.no_grad():
        model.student_backbone.conv1.weight.add_(1.0)
        x = torch.randn(2, 1, 32, 32)
        f = model(x)
        assert f.shape == (2, 32)
        torch.testing.assert_close(f, pooled(model.backbone(x)))
        assert not torch.allclose(f, model.extract_feat(x, student=True))
        torch.testing.assert_close(model(inputs(2), mode='tensor'),
                                   model.extract_feat(inputs(2)['global_views'][:, 0]))
    with pytest.raises(InvalidInputError):
        model(torch.zeros(2, 6, 1, 32, 32), mode='loss')
