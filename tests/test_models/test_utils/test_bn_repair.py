"""Repair of non-finite BatchNorm running statistics (fp16 overflow of running_var)."""
import pytest
import torch
from torch import nn

from mmanat.models.utils import (find_nonfinite_bn_stats, repair_bn_state_dict,
                                 reset_nonfinite_bn_stats)


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv3d(1, 4, 3), nn.BatchNorm3d(4), nn.ReLU(), nn.Conv3d(4, 2, 1),
                         nn.BatchNorm3d(2))


def test_state_dict_repair_resets_only_bad_channels():
    net = _net()
    net[1].running_var.copy_(torch.tensor([2.0, 3.0, 4.0, 5.0]))
    net[1].running_mean.copy_(torch.tensor([0.5, 0.6, 0.7, 0.8]))
    sd = {k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}
    sd['1.running_var'][1] = 1e6                  # fp16 overflow -> inf
    sd['1.running_mean'][3] = float('nan')
    assert torch.isinf(sd['1.running_var'][1])
    assert find_nonfinite_bn_stats(sd) == {'1': [1, 3]}
    bad = repair_bn_state_dict(sd)
    assert bad == {'1': [1, 3]} and find_nonfinite_bn_stats(sd) == {}
    assert sd['1.running_var'].dtype == torch.float32
    assert sd['1.running_var'].tolist() == [2.0, 1.0, 4.0, 1.0]
    assert sd['1.running_mean'][[1, 3]].tolist() == [0.0, 0.0]
    assert abs(float(sd['1.running_mean'][0]) - 0.5) < 1e-3   # good channels untouched
    # the repaired dict loads, the layer gives finite outputs, and training re-estimates it
    net.load_state_dict(sd)
    net.eval()
    assert torch.isfinite(net(torch.randn(1, 1, 5, 5, 5))).all()
    net.train()
    net(torch.randn(2, 1, 5, 5, 5) * 10)
    assert net[1].running_var[1] != 1.0


def test_model_repair_in_place():
    net = _net()
    with torch.no_grad():
        net[4].running_var[0] = float('inf')
    assert reset_nonfinite_bn_stats(net) == {'4': [0]}
    assert net[4].running_var[0] == 1.0 and net[4].running_mean[0] == 0.0
    assert reset_nonfinite_bn_stats(net) == {}


def test_preserve_repair_keeps_the_eval_output_exactly():
    """An inf running variance makes a channel output its bias; 'preserve' keeps that with
    finite tensors (weight 0, mean 0, var 1), 'reset' does not."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv3d(1, 4, 3), torch.nn.BatchNorm3d(4)).eval()
    with torch.no_grad():
        net[1].running_var.copy_(torch.tensor([1.0, float('inf'), 2.0, 3.0]))
        net[1].weight.copy_(torch.tensor([1.5, 2.0, 0.5, 1.0]))
        net[1].bias.copy_(torch.tensor([0.1, -0.7, 0.2, 0.3]))
    x = torch.randn(2, 1, 6, 7, 8) * 100
    with torch.no_grad():
        before = net(x)
    assert torch.all(before[:, 1] == -0.7)  # the switched-off channel
    for mode, same in (('preserve', True), ('reset', False)):
        sd = {k: v.clone() for k, v in net.state_dict().items()}
        assert repair_bn_state_dict(sd, mode=mode) == {'1': [1]}
        assert all(torch.isfinite(v.float()).all() for v in sd.values())
        other = torch.nn.Sequential(torch.nn.Conv3d(1, 4, 3), torch.nn.BatchNorm3d(4)).eval()
        other.load_state_dict(sd)
        with torch.no_grad():
            after = other(x)
        assert torch.equal(after, before) is same, mode
        assert torch.equal(after[:, [0, 2, 3]], before[:, [0, 2, 3]])
    with pytest.raises(ValueError, match='preserve'):
        repair_bn_state_dict({}, mode='keep')
