"""The Planar wrapper: mmdet's 2D ResNet / FPN on one-slice volumes (N, C, 1, H, W) give
exactly the 2D outputs with the depth axis added back; 3D input is refused."""
import pytest
import torch

from mmanat.models.utils import Planar
from mmanat.registry import MODELS
from mmanat.utils.exceptions import InvalidInputError

RESNET = dict(type='mmdet.ResNet', depth=18, in_channels=1, base_channels=8, stem_channels=8,
              out_indices=(0, 1, 2, 3), norm_eval=False)


def test_resnet_on_one_slice_volumes_equals_the_2d_network():
    torch.manual_seed(0)
    net = MODELS.build(dict(type='Planar', module=RESNET)).eval()
    assert isinstance(net, Planar)
    x = torch.randn(2, 1, 1, 70, 45)
    with torch.no_grad():
        outs = net(x)
        ref = net.module(x[:, :, 0])
    assert [tuple(o.shape) for o in outs] == [
        (2, 8, 1, 18, 12), (2, 16, 1, 9, 6), (2, 32, 1, 5, 3), (2, 64, 1, 3, 2)]
    for o, r in zip(outs, ref):
        torch.testing.assert_close(o[:, :, 0], r, rtol=0, atol=0)


def test_fpn_takes_a_list_of_one_slice_maps():
    torch.manual_seed(0)
    fpn = MODELS.build(dict(type='Planar', module=dict(
        type='mmdet.FPN', in_channels=[8, 16, 32], out_channels=12, num_outs=3)))
    feats = [torch.randn(1, c, 1, s, s) for c, s in ((8, 16), (16, 8), (32, 4))]
    outs = fpn(feats)
    assert isinstance(outs, tuple)
    assert [tuple(o.shape) for o in outs] == [(1, 12, 1, 16, 16), (1, 12, 1, 8, 8),
                                              (1, 12, 1, 4, 4)]


@pytest.mark.parametrize('shape', [(1, 1, 4, 32, 32), (1, 1, 32, 32), (1, 32, 32)])
def test_volumes_and_plain_2d_tensors_are_refused(shape):
    net = MODELS.build(dict(type='Planar', module=RESNET))
    with pytest.raises(InvalidInputError, match='one-slice volumes'):
        net(torch.randn(*shape))
    with pytest.raises(InvalidInputError, match='one-slice volumes'):
        net([torch.randn(*shape)])
