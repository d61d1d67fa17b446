"""FPN3D: top-down fusion at exact lower-level sizes (odd sizes), one output conv, and the
same result as mmdet's FPN run in 3D (when mmdet is installed)."""
import pytest
import torch
import torch.nn.functional as F

from mmanat.registry import MODELS


def _feats(sizes, chans=(4, 8, 16), seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn((1, c) + s, generator=g) for c, s in zip(chans, sizes)]


def test_fpn3d_odd_sizes_and_hand_computation():
    # stage outputs of a (33, 97, 95) input: ceil of (2,2,2), (2,4,4), (2,8,8)
    sizes = [(17, 49, 48), (17, 25, 24), (17, 13, 12)]
    neck = MODELS.build(dict(type='FPN3D', in_channels=(4, 8, 16), out_channels=6))
    neck.init_weights()
    feats = _feats(sizes)
    (out, ) = neck(feats)
    assert out.shape == (1, 6, 17, 49, 48)
    lat = [m(x) for m, x in zip(neck.lateral_convs, feats)]
    top = lat[1] + F.interpolate(lat[2], size=sizes[1], mode='nearest')
    fused = lat[0] + F.interpolate(top, size=sizes[0], mode='nearest')
    torch.testing.assert_close(out, F.conv3d(fused, neck.out_conv.conv.weight,
                                             neck.out_conv.conv.bias, padding=1))
    assert neck.out_conv.conv.kernel_size == (3, 3, 3)
    assert all(m.conv.kernel_size == (1, 1, 1) for m in neck.lateral_convs)
    # every parameter influences the output (nothing unused for DDP)
    out.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in neck.parameters())


def test_fpn3d_equals_mmdet_fpn_first_output():
    pytest.importorskip('mmcv._ext', reason='mmdet.models needs the compiled mmcv ops')
    pytest.importorskip('mmdet.models')
    sizes = [(9, 25, 24), (9, 13, 12), (9, 7, 6)]
    ours = MODELS.build(dict(type='FPN3D', in_channels=(4, 8, 16), out_channels=6))
    theirs = MODELS.build(dict(type='mmdet.FPN', in_channels=[4, 8, 16], out_channels=6,
                               num_outs=3, conv_cfg=dict(type='Conv3d')))
    for a, b in zip(ours.lateral_convs, theirs.lateral_convs):
        a.load_state_dict(b.state_dict())
    ours.out_conv.load_state_dict(theirs.fpn_convs[0].state_dict())
    feats = _feats(sizes)
    torch.testing.assert_close(ours(feats)[0], theirs(feats)[0])
    # mmdet builds a 3x3x3 output conv per level; FPN3D only the one SAM uses
    n_ours = sum(p.numel() for p in ours.parameters())
    n_theirs = sum(p.numel() for p in theirs.parameters())
    assert n_theirs - n_ours == 2 * (6 * 6 * 27 + 6)
