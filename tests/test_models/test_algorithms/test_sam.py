"""SAM algorithm: build from the config fragments, output shapes/strides for odd sizes,
finite loss with gradients on every parameter, a few SGD steps on a fixed batch reduce the
loss, the mmengine train/test steps through the data preprocessor, no-overlap batches."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper

from mmanat.registry import MODELS
from mmanat.utils.exceptions import InvalidInputError

CONFIGS = osp.join(osp.dirname(__file__), '..', '..', '..', 'configs', '_base_', 'models')


def tiny_cfg(embed=8, base=4):
    cfg = Config.fromfile(osp.join(CONFIGS, 'sam_tiny.py')).model
    cfg.backbone.update(depth=10, base_channels=base)     # smaller still, for speed
    cfg.neck.in_channels = (base, 2 * base, 4 * base)
    cfg.neck.out_channels = embed
    cfg.coarse_head.update(in_channels=8 * base, channels=embed)
    cfg.fine_sampler.update(num_preselect=300, max_queries=30, num_hard_candidates=200,
                            num_negatives=60)
    cfg.coarse_sampler.update(max_queries=30, num_hard_candidates=40, num_negatives=20,
                              num_global_negatives=50)
    return cfg


def build_tiny(**kw):
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg(**kw))
    model.init_weights()
    return model


def test_config_fragments_build_and_reference_sizes():
    cfg = Config.fromfile(osp.join(CONFIGS, 'sam_r18_fpn.py'))
    assert list(cfg.keys()) == ['model']
    model = MODELS.build(cfg.model)
    assert model.backbone.out_channels == [64, 128, 256, 512]
    assert model.neck.out_channels == 128 and model.coarse_head.out_channels == 128
    assert model.fine_sampler.num_negatives == 500 and model.coarse_sampler.num_negatives == 200
    assert model.loss_fine.temperature == 0.5
    assert list(Config.fromfile(osp.join(CONFIGS, 'sam_tiny.py')).keys()) == ['model']


def test_extract_feat_shapes_for_odd_sizes_and_unit_norm():
    model = build_tiny().eval()
    size = (17, 49, 33)
    with torch.no_grad():
        out = model(torch.randn((2, 1) + size), mode='tensor')
    assert out['fine'].shape == (2, 8) + tuple(math.ceil(n / 2) for n in size)
    assert out['coarse'].shape == (2, 8) + tuple(math.ceil(n / s)
                                                 for n, s in zip(size, (4, 16, 16)))
    for v in out.values():
        torch.testing.assert_close(v.norm(dim=1), torch.ones_like(v[:, 0]))


def test_loss_is_finite_and_reaches_every_parameter(sam_batch):
    model = build_tiny().train()
    inputs, ds = sam_batch(B=2, shape=(8, 48, 48), seed=0)
    losses = model(inputs, ds, mode='loss')
    assert set(losses) == {'loss_fine', 'loss_coarse'}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing   # DDP-safe: no unused parameters
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_sgd_steps_on_a_fixed_batch_reduce_the_loss(sam_batch):
    model = build_tiny().train()
    inputs, ds = sam_batch(B=2, shape=(8, 32, 32), seed=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    def evaluate():
        torch.manual_seed(123)   # the same sampler draws each time
        with torch.no_grad():
            return sum(model(inputs, ds, mode='loss').values()).item()

    before = evaluate()
    for _ in range(4):
        loss = sum(model(inputs, ds, mode='loss').values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = evaluate()
    assert after < before - 0.3, (before, after)


def test_train_step_and_predict_through_the_data_preprocessor(sam_batch):
    model = build_tiny()
    inputs, ds = sam_batch(B=2, shape=(7, 45, 40), seed=2)   # padded to (8, 48, 48)
    batch = dict(inputs=list(inputs),
                 data_samples=[dict(coords=ds['coords'][i], valid=ds['valid'][i], meta={})
                               for i in range(2)])
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    log_vars = model.train_step(batch, wrapper)
    assert {'loss', 'loss_fine', 'loss_coarse'} <= set(log_vars)
    assert math.isfinite(float(log_vars['loss'].detach()))
    model.eval()
    vols = [torch.randn(1, 9, 40, 33), torch.randn(1, 13, 33, 40)]
    preds = model.test_step(dict(inputs=vols, data_samples=None))
    assert [tuple(p['fine'].shape[1:]) for p in preds] == [(5, 20, 17), (7, 17, 20)]
    assert [tuple(p['coarse'].shape[1:]) for p in preds] == [(3, 3, 3), (4, 3, 3)]
    assert preds[0]['fine_stride'] == (2, 2, 2) and preds[0]['coarse_stride'] == (4, 16, 16)
    # a volume alone is not padded: predict gives exactly the tensor-mode maps
    alone = model.test_step(dict(inputs=vols[:1], data_samples=None))[0]
    with torch.no_grad():
        ref = model(vols[0][None], mode='tensor')
    torch.testing.assert_close(alone['fine'], ref['fine'][0])
    torch.testing.assert_close(alone['coarse'], ref['coarse'][0])


def test_no_overlap_pairs_use_the_fallback(sam_batch):
    model = build_tiny().train()
    inputs, ds = sam_batch(B=1, shape=(8, 48, 48), seed=3, shift=(600., 0., 0.))
    ds['valid'][:] = True
    losses = model(inputs, ds, mode='loss')
    assert torch.isfinite(losses['loss_fine']) and losses['loss_fine'] > 0
    assert losses['loss_coarse'].item() == 0.0      # no coarse positives, no fallback
    sum(losses.values()).backward()
    with pytest.raises(InvalidInputError):
        model(inputs[:, 0], ds, mode='loss')
    with pytest.raises(InvalidInputError):
        model(inputs, ds, mode='bogus')


def test_loss_under_autocast(sam_batch):
    model = build_tiny().train()
    inputs, ds = sam_batch(B=2, shape=(8, 32, 32), seed=4)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = model(inputs, ds, mode='loss')
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
