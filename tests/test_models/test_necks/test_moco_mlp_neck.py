"""MoCoMLPNeck: global average pool + Linear-ReLU-Linear (MoCo v2), optional BatchNorm."""
import pytest
import torch
from torch import nn

from mmanat.models.necks import MoCoMLPNeck
from mmanat.registry import MODELS


def test_pools_the_last_backbone_output():
    neck = MODELS.build(dict(type='MoCoMLPNeck', in_channels=8, hid_channels=16,
                             out_channels=4))
    neck.init_weights()
    last = torch.randn(3, 8, 5, 7)
    out = neck((torch.randn(3, 2, 10, 14), last))
    assert out.shape == (3, 4)
    torch.testing.assert_close(out, neck.mlp(last.mean(dim=(2, 3))))


def test_vectors_pass_without_pooling_and_layers_follow_the_options():
    plain = MoCoMLPNeck(in_channels=8, hid_channels=16, out_channels=4, with_avg_pool=False)
    assert [type(m) for m in plain.mlp] == [nn.Linear, nn.ReLU, nn.Linear]
    assert plain(torch.randn(2, 8)).shape == (2, 4)
    bn = MoCoMLPNeck(in_channels=8, hid_channels=16, out_channels=4, with_bn=True)
    assert [type(m) for m in bn.mlp] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]


def test_init_weights_draws_linear_weights_with_std_001():
    torch.manual_seed(0)
    neck = MoCoMLPNeck(in_channels=512, hid_channels=512, out_channels=128)
    neck.init_weights()
    assert abs(neck.mlp[0].weight.std().item() - 0.01) < 1e-3


def test_wrong_channel_count_fails():
    neck = MoCoMLPNeck(in_channels=8, hid_channels=16, out_channels=4)
    with pytest.raises(RuntimeError):
        neck(torch.randn(2, 9, 4, 4))
