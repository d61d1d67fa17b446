"""ResNet3D: stage strides and output sizes of SAM (Yan et al., TMI 2022) for odd input
sizes, kernels, configurable depth/width, frozen stages, registry build."""
import math

import pytest
import torch

from mmanat.registry import MODELS
from mmanat.utils.exceptions import InvalidInputError

SAM_STRIDES = [(2, 2, 2), (2, 4, 4), (2, 8, 8), (4, 16, 16)]


@pytest.mark.parametrize('size', [(33, 97, 95), (32, 96, 96), (5, 17, 3)])
def test_stage_output_sizes_follow_ceil_of_sam_strides(size):
    net = MODELS.build(dict(type='ResNet3D', depth=18, base_channels=4))
    net.eval()
    assert net.strides == SAM_STRIDES
    with torch.no_grad():
        outs = net(torch.randn((1, 1) + size))
    assert len(outs) == 4
    for i, (o, s) in enumerate(zip(outs, SAM_STRIDES)):
        assert o.shape[1] == 4 * 2**i
        assert tuple(o.shape[2:]) == tuple(math.ceil(n / k) for n, k in zip(size, s))


def test_reference_channels_kernels_and_no_stem_pool():
    net = MODELS.build(dict(type='ResNet3D', depth=18))
    assert net.out_channels == [64, 128, 256, 512]
    assert net.stem.conv.kernel_size == (3, 7, 7) and net.stem.conv.stride == (1, 2, 2)
    assert net.stem.conv.in_channels == 1
    assert [len(getattr(net, f'layer{i}')) for i in range(1, 5)] == [2, 2, 2, 2]
    for i, kz in zip(range(1, 5), (1, 1, 3, 3)):
        for block in getattr(net, f'layer{i}'):
            assert block.conv1.conv.kernel_size == (kz, 3, 3)
            assert block.conv2.conv.kernel_size == (kz, 3, 3)
            assert isinstance(block.conv1.norm, torch.nn.BatchNorm3d)
    strides = [getattr(net, f'layer{i}')[0].conv1.conv.stride for i in range(1, 5)]
    assert strides == [(1, 1, 1), (1, 2, 2), (1, 2, 2), (2, 2, 2)]
    assert net.z_pool.kernel_size == (2, 1, 1)
    assert not any(isinstance(m, torch.nn.MaxPool3d) and m is not net.z_pool
                   for m in net.modules())
    n_params = sum(p.numel() for p in net.parameters())
    assert 30e6 < n_params < 36e6        # a 3D ResNet-18 (2D: 11.7 M)


def test_depth_width_out_indices_and_errors():
    net = MODELS.build(dict(type='ResNet3D', depth=34, base_channels=2, out_indices=(1, 3)))
    assert [len(getattr(net, f'layer{i}')) for i in range(1, 5)] == [3, 4, 6, 3]
    outs = net(torch.randn(2, 1, 8, 32, 32))
    assert [tuple(o.shape) for o in outs] == [(2, 4, 4, 8, 8), (2, 16, 2, 2, 2)]
    with pytest.raises(InvalidInputError):
        MODELS.build(dict(type='ResNet3D', depth=50))
    with pytest.raises(InvalidInputError):
        MODELS.build(dict(type='ResNet3D', out_indices=(4, )))
    with pytest.raises(InvalidInputError):
        net(torch.randn(1, 8, 32, 32))


def test_frozen_stages_norm_eval_and_zero_init_residual():
    net = MODELS.build(dict(type='ResNet3D', depth=10, base_channels=4, frozen_stages=1,
                            norm_eval=True))
    net.init_weights()
    net.train()
    assert not any(p.requires_grad for p in net.stem.parameters())
    assert not any(p.requires_grad for p in net.layer1.parameters())
    assert all(p.requires_grad for p in net.layer2.parameters())
    assert not any(m.training for m in net.modules() if isinstance(m, torch.nn.BatchNorm3d))
    assert all(float(b.conv2.norm.weight.detach().abs().sum()) == 0 for b in net.layer3)
    # gradients flow to trainable stages only
    sum(o.sum() for o in net(torch.randn(1, 1, 8, 32, 32))).backward()
    assert net.stem.conv.weight.grad is None and net.layer4[0].conv1.conv.weight.grad is not None
