"""embed(optimize=True): the inference copy (BatchNorm folded, channels_last_3d,
inference_mode) computes the maps of the model itself, is cached per model and rebuilt when
its weights change; the model is never modified."""
import copy
import os.path as osp

import numpy as np
import pytest
import torch
from mmcv.cnn import ConvModule

from mmanat.apis import embed, fast_inference, init_model
from mmanat.structures import MedicalImage

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SAM_CKPT = osp.join(ROOT, 'checkpoints', 'sam_default.pth')


@pytest.fixture(scope='module')
def model():
    if not osp.exists(SAM_CKPT):
        pytest.skip(f'{SAM_CKPT} missing (make checkpoints)')
    return init_model(None, SAM_CKPT, device='cpu')


def _ct(shape=(24, 40, 40), seed=0):
    rng = np.random.default_rng(seed)
    a = np.full(shape, -1000.0, np.float32)
    a[4:-4, 6:-6, 5:-5] = 30.0
    a[8:-8, 10:20, 10:30] = -800.0
    a += rng.normal(0, 25, shape).astype(np.float32)
    return MedicalImage(a, spacing=2.0, origin=(0.0, 0.0, 0.0), modality='CT')


def test_fuse_conv_bn_3d_equals_conv_then_bn():
    torch.manual_seed(0)
    cm = ConvModule(3, 5, (3, 3, 3), padding=1, conv_cfg=dict(type='Conv3d'),
                    norm_cfg=dict(type='BN3d'), act_cfg=dict(type='ReLU'))
    bn = cm.norm
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 1.5)
    bn.bias.data.uniform_(-1, 1)
    cm.eval()
    x = torch.randn(2, 3, 6, 7, 8)
    with torch.no_grad():
        ref = cm(x)
        fused = copy.deepcopy(cm)
        assert fast_inference.fuse_conv_bn(fused) == 1
        assert not fused.with_norm and isinstance(fused.norm, torch.nn.Identity)
        assert fused.conv.bias is not None
        torch.testing.assert_close(fused(x), ref, atol=1e-5, rtol=1e-5)
    # training-mode BatchNorm (batch statistics) is not folded
    cm.train()
    assert fast_inference.fuse_conv_bn(copy.deepcopy(cm)) == 0


def test_optimised_embedding_equals_the_model_and_leaves_it_alone(model):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # memory layout of the caller's weights (a model built with channels_last=True, like the
    # shipped SAM's config, already holds channels-last weights; embed must not change them)
    strides = {n: p.stride() for n, p in model.named_parameters()}
    img = _ct()
    plain = embed(model, img, optimize=False)
    fast = embed(model, img)
    assert fast.meta['optimized'] and not plain.meta['optimized']
    for lv in plain.levels:
        assert fast.maps[lv].shape == plain.maps[lv].shape
        assert fast.maps[lv].is_contiguous() and not fast.maps[lv].is_inference()
        torch.testing.assert_close(fast.maps[lv], plain.maps[lv], atol=1e-4, rtol=0)
    # the tiled path too
    t_plain = embed(model, img, tile_size=(16, 32, 32), optimize=False)
    t_fast = embed(model, img, tile_size=(16, 32, 32))
    assert t_fast.meta['tiles'] == t_plain.meta['tiles'] > 1
    for lv in plain.levels:
        torch.testing.assert_close(t_fast.maps[lv], t_plain.maps[lv], atol=1e-4, rtol=0)
    # the caller's model: same weights, BatchNorm still there, same memory layout
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert {n: p.stride() for n, p in model.named_parameters()} == strides
    # and a caller's model in the default (contiguous) layout stays contiguous
    plain_layout = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
    assert all(p.is_contiguous() for p in plain_layout.parameters())
    embed(plain_layout, img)
    assert all(p.is_contiguous() for p in plain_layout.parameters())
    assert all(p.requires_grad for p in model.parameters())


def test_inference_copy_is_cached_and_rebuilt_when_weights_change():
    torch.manual_seed(0)
    m = init_model(osp.join(ROOT, 'configs', '_base_', 'models', 'sam_tiny.py'), None,
                   device='cpu')
    dev = torch.device('cpu')
    a = fast_inference.inference_model(m, dev)
    assert a is not m and fast_inference.inference_model(m, dev) is a
    assert a.mmanat_fast_inference == dict(folded_bn=True, channels_last=True)
    img = _ct(seed=1)
    e1 = embed(m, img)
    with torch.no_grad():
        next(m.parameters()).mul_(-1.0)  # an optimiser step would do the same
    b = fast_inference.inference_model(m, dev)
    assert b is not a
    e2, e3 = embed(m, img), embed(m, img, optimize=False)
    assert not torch.allclose(e1.maps['fine'], e2.maps['fine'])
    torch.testing.assert_close(e2.maps['fine'], e3.maps['fine'], atol=1e-4, rtol=0)
    # a model in training mode runs as it is
    m.train()
    assert fast_inference.inference_model(m, dev) is m
    m.eval()


def test_cpu_bf16_is_opt_in_and_close(model):
    img = _ct(seed=2)
    ref = embed(model, img, optimize=False)
    for optimize in (True, False):
        bf = embed(model, img, cpu_bf16=True, optimize=optimize)
        assert bf.meta['cpu_bf16']
        assert model.cpu_bf16 is False  # the model's own switch is restored
        for lv in ref.levels:
            diff = (bf.maps[lv] - ref.maps[lv]).abs().max()
            cos = (bf.maps[lv] * ref.maps[lv]).sum(0)
            assert 0 < diff < 0.1 and cos.mean() > 0.999
