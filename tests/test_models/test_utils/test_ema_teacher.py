"""EMA teacher: the cosine momentum schedule (0.996 -> 1) and the parameter update."""
import math

import pytest
import torch
from torch import nn

from mmanat.models.utils import copy_student_to_teacher, cosine_momentum, ema_update
from mmanat.utils.exceptions import InvalidInputError


def test_cosine_momentum_schedule():
    assert cosine_momentum(0, 100) == pytest.approx(0.996)
    assert cosine_momentum(100, 100) == pytest.approx(1.0)
    assert cosine_momentum(250, 100) == pytest.approx(1.0)  # stays at the end value
    assert cosine_momentum(50, 100) == pytest.approx(0.998)
    want = 1 - 0.004 * (math.cos(math.pi * 0.25) + 1) / 2
    assert cosine_momentum(25, 100) == pytest.approx(want)
    with pytest.raises(InvalidInputError):
        cosine_momentum(0, 0)


def test_ema_update_parameters_not_buffers():
    torch.manual_seed(0)
    s, t = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)), \
        nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    s[1].running_mean.fill_(5.0)
    t0 = [p.detach().clone() for p in t.parameters()]
    ema_update([t], [s], 0.9)
    for a, b, c in zip(t.parameters(), t0, s.parameters()):
        torch.testing.assert_close(a, 0.9 * b + 0.1 * c)
    assert torch.all(t[1].running_mean == 0)  # the teacher keeps its own statistics
    copy_student_to_teacher([t], [s])
    for a, c in zip(t.state_dict().values(), s.state_dict().values()):
        assert torch.equal(a, c)
    with pytest.raises(InvalidInputError):
        ema_update([nn.Linear(3, 2)], [nn.Linear(3, 3)], 0.5)
