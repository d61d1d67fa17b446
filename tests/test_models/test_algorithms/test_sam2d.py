"""The 2D SAM (radiographs as one-slice volumes): the config fragments build with the contract
attributes, map shapes and strides with D = 1, a finite loss whose gradients reach every
used parameter, a few SGD steps reduce it, the train / predict steps through the data
preprocessor, and the channels-last layout gives the same maps."""
import math
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper

from mmanat.registry import MODELS
from mmanat.utils.exceptions import InvalidInputError

CONFIGS = osp.join(osp.dirname(__file__), '..', '..', '..', 'configs', '_base_', 'models')


def tiny2d_cfg(embed=8, base=8, **kw):
    cfg = Config.fromfile(osp.join(CONFIGS, 'sam2d_tiny.py')).model
    cfg.backbone.module.update(base_channels=base, stem_channels=base)
    cfg.neck.module.update(in_channels=[base, 2 * base, 4 * base], out_channels=embed)
    cfg.coarse_head.update(in_channels=8 * base, channels=embed)
    cfg.fine_sampler.update(num_preselect=300, max_queries=30, num_hard_candidates=200,
                            num_negatives=60)
    cfg.coarse_sampler.update(max_queries=30, num_hard_candidates=40, num_negatives=20,
                              num_global_negatives=50)
    cfg.update(kw)
    return cfg


def build(**kw):
    torch.manual_seed(0)
    model = MODELS.build(tiny2d_cfg(**kw))
    model.init_weights()
    return model


def field2d(x, y):
    """A smooth analytic 'radiograph' of world mm."""
    rng = np.random.default_rng(7)
    val = 0.3 * np.sin(x / 11.0) * np.cos(y / 17.0)
    for _ in range(10):
        c = rng.uniform(-150, 150, size=2)
        r = rng.uniform(15, 40)
        val += rng.uniform(-1.5, 1.5) * np.exp(-((x - c[0])**2 + (y - c[1])**2) / (2 * r * r))
    return val


def planar_batch(B=2, hw=(64, 64), spacing=2.0, seed=0, shift=None):
    """Views (B, 2, 1, 1, H, W) of ``field2d`` and dict(coords (B, 2, 3, 1, H, W) with z = 0,
    valid (B, 2, 1, H, W): inside a 220 mm square)."""
    rng = np.random.default_rng(seed)
    H, W = hw
    y, x = np.meshgrid(np.arange(H) - (H - 1) / 2, np.arange(W) - (W - 1) / 2, indexing='ij')
    coords = np.zeros((B, 2, 3, 1, H, W))
    for b in range(B):
        for v in range(2):
            s = spacing * rng.uniform(0.8, 1.2)
            a = np.deg2rad(rng.uniform(-10, 10))
            c = rng.uniform(-20, 20, size=2) + (0 if shift is None or v == 0 else shift)
            coords[b, v, 0, 0] = c[0] + s * (np.cos(a) * x - np.sin(a) * y)
            coords[b, v, 1, 0] = c[1] + s * (np.sin(a) * x + np.cos(a) * y)
    valid = (np.abs(coords[:, :, :2]) <= 110).all(axis=2)
    imgs = np.where(valid, field2d(coords[:, :, 0], coords[:, :, 1]), 0.0)[:, :, None]
    return (torch.from_numpy(imgs).float(),
            dict(coords=torch.from_numpy(coords).float(), valid=torch.from_numpy(valid)))


def test_config_fragments_build_with_the_inference_contract():
    ref = MODELS.build(Config.fromfile(osp.join(CONFIGS, 'sam2d_r18_fpn.py')).model)
    assert ref.input_spacing == 1.0
    assert ref.fine_stride == (1, 4, 4) and ref.coarse_stride == (1, 32, 32)
    assert ref.neck.module.out_channels == 128 and ref.coarse_head.out_channels == 128
    assert ref.data_preprocessor.pad_size_divisor == (1, 32, 32)
    tiny = MODELS.build(Config.fromfile(osp.join(CONFIGS, 'sam2d_tiny.py')).model)
    assert tiny.input_spacing == 2.0 and tiny.coarse_stride == (1, 16, 16)
    assert tiny.channels_last and not ref.channels_last
    # the 3D configs keep the 3D default (None)
    assert MODELS.build(Config.fromfile(osp.join(CONFIGS, 'sam_tiny.py')).model
                        ).input_spacing is None
    with pytest.raises(InvalidInputError, match='input_spacing'):
        build(input_spacing=0.0)


@pytest.mark.parametrize('channels_last', [False, True])
def test_extract_feat_shapes_for_odd_sizes(channels_last):
    model = build(channels_last=channels_last).eval()
    size = (1, 75, 50)
    with torch.no_grad():
        out = model(torch.randn((2, 1) + size), mode='tensor')
    assert out['fine'].shape == (2, 8) + tuple(math.ceil(n / s)
                                               for n, s in zip(size, (1, 4, 4)))
    assert out['coarse'].shape == (2, 8) + tuple(math.ceil(n / s)
                                                 for n, s in zip(size, (1, 16, 16)))
    for v in out.values():
        assert v.is_contiguous()
        torch.testing.assert_close(v.norm(dim=1), torch.ones_like(v[:, 0]))
    with pytest.raises(InvalidInputError):
        model(torch.randn(1, 1, 4, 32, 32), mode='tensor')  # a volume, not a radiograph


def test_channels_last_gives_the_same_maps():
    x = torch.randn(1, 1, 1, 64, 48)
    plain = build(channels_last=False).eval()
    fast = build(channels_last=True).eval()
    fast.load_state_dict(plain.state_dict())
    assert fast.backbone.module.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        a, b = plain(x, mode='tensor'), fast(x, mode='tensor')
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


def test_loss_is_finite_and_reaches_every_used_parameter():
    model = build().train()
    inputs, ds = planar_batch(B=2, seed=0)
    losses = model(inputs, ds, mode='loss')
    assert set(losses) == {'loss_fine', 'loss_coarse'}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    missing = {n for n, p in model.named_parameters() if p.grad is None}
    # only the output convs of the FPN's two coarser (unused) levels
    assert missing == {f'neck.module.fpn_convs.{i}.conv.{w}' for i in (1, 2)
                       for w in ('weight', 'bias')}, missing
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_sgd_steps_on_a_fixed_batch_reduce_the_loss():
    model = build().train()
    inputs, ds = planar_batch(B=2, seed=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    def evaluate():
        torch.manual_seed(123)
        with torch.no_grad():
            return sum(model(inputs, ds, mode='loss').values()).item()

    before = evaluate()
    for _ in range(5):
        loss = sum(model(inputs, ds, mode='loss').values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = evaluate()
    assert after < before - 0.3, (before, after)


def test_train_step_and_predict_through_the_data_preprocessor():
    model = build()
    inputs, ds = planar_batch(B=2, hw=(45, 61), seed=2)  # padded to (1, 48, 64)
    batch = dict(inputs=list(inputs),
                 data_samples=[dict(coords=ds['coords'][i], valid=ds['valid'][i], meta={})
                               for i in range(2)])
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    log_vars = model.train_step(batch, wrapper)
    assert math.isfinite(float(log_vars['loss'].detach()))
    model.eval()
    preds = model.test_step(dict(inputs=[torch.randn(1, 1, 50, 37)], data_samples=None))
    assert tuple(preds[0]['fine'].shape[1:]) == (1, 13, 10)
    assert tuple(preds[0]['coarse'].shape[1:]) == (1, 4, 3)
    assert preds[0]['fine_stride'] == (1, 4, 4) and preds[0]['coarse_stride'] == (1, 16, 16)


def test_no_overlap_pairs_use_the_fallback():
    model = build().train()
    inputs, ds = planar_batch(B=1, seed=3, shift=(800.0, 0.0))
    ds['valid'][:] = True
    losses = model(inputs, ds, mode='loss')
    assert torch.isfinite(losses['loss_fine']) and losses['loss_fine'] > 0
    assert losses['loss_coarse'].item() == 0.0  # tiny: no coarse fallback
