"""Adam v2 losses against hand computations on tiny tensors: localizability (DINO
cross-entropy with centring and temperatures), its centre update, composability and
decomposability (normalised MSE)."""
import math

import pytest
import torch

from mmanat.models.losses import ComposabilityLoss, DecomposabilityLoss, LocalizabilityLoss
from mmanat.utils.exceptions import InvalidInputError


def softmax(v):
    e = [math.exp(x - max(v)) for x in v]
    return [x / sum(e) for x in e]


def test_localizability_matches_hand_computation():
    loss = LocalizabilityLoss(out_channels=3, student_temp=0.1, teacher_temp=0.04)
    loss.center.copy_(torch.tensor([[0.1, -0.2, 0.05]]))
    t = torch.tensor([[0.3, 0.1, -0.2], [0.0, 0.5, 0.2]])
    s = torch.tensor([[[0.2, 0.1, 0.0], [1.0, -1.0, 0.5]],
                      [[-0.3, 0.4, 0.1], [0.2, 0.2, 0.2]]])  # (V=2, N=2, K=3)
    c = [0.1, -0.2, 0.05]
    total = 0.0
    for v in range(2):
        for i in range(2):
            pt = softmax([(t[i, k].item() - c[k]) / 0.04 for k in range(3)])
            ps = softmax([s[v, i, k].item() / 0.1 for k in range(3)])
            total += -sum(a * math.log(b) for a, b in zip(pt, ps))
    assert loss(s, t).item() == pytest.approx(total / 4, rel=1e-5)
    assert loss([s[0], s[1]], t).item() == pytest.approx(total / 4, rel=1e-5)  # list input


def test_localizability_gradient_reaches_student_only():
    loss = LocalizabilityLoss(out_channels=4)
    s = torch.randn(3, 2, 4, requires_grad=True)
    t = torch.randn(2, 4, requires_grad=True)
    loss(s, t).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None


def test_center_update_is_ema_of_batch_mean():
    loss = LocalizabilityLoss(out_channels=2, center_momentum=0.9)
    loss.center.copy_(torch.tensor([[1.0, -1.0]]))
    loss.update_center(torch.tensor([[2.0, 0.0], [4.0, 2.0]]))  # batch mean (3, 1)
    torch.testing.assert_close(loss.center, torch.tensor([[0.9 + 0.3, -0.9 + 0.1]]))
    loss.update_center(torch.tensor([[0.0, 0.0]]))
    torch.testing.assert_close(loss.center, torch.tensor([[1.08, -0.72]]))


def test_localizability_rejects_bad_shapes():
    with pytest.raises(InvalidInputError):
        LocalizabilityLoss(out_channels=3)(torch.zeros(2, 4, 3), torch.zeros(5, 3))
    with pytest.raises(InvalidInputError):
        LocalizabilityLoss(out_channels=3, teacher_temp=0.0)


def test_composability_is_normalised_mse():
    p = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    t = torch.tensor([[0.0, 2.0], [-5.0, 0.0]])
    # unit vectors: (0.6, 0.8) vs (0, 1): 0.36 + 0.04 = 0.4; (1, 0) vs (-1, 0): 4
    assert ComposabilityLoss()(p, t).item() == pytest.approx((0.4 + 4.0) / 2)
    assert ComposabilityLoss(loss_weight=2.0)(p, t).item() == pytest.approx(4.4)


def test_decomposability_splits_into_parts():
    parts = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, -2.0]]])  # (1, 4, 2)
    dec = torch.tensor([[2.0, 0.0, 0.0, 3.0, -1.0, -1.0, 0.0, 5.0]])  # (1, 8)
    # parts 0, 1: identical directions (0); part 2: opposite (4); part 3: opposite (4)
    assert DecomposabilityLoss()(dec, parts).item() == pytest.approx(8.0 / 4)
    assert DecomposabilityLoss()(dec.view(1, 4, 2), parts).item() == pytest.approx(2.0)
    with pytest.raises(InvalidInputError):
        DecomposabilityLoss()(torch.zeros(1, 6), parts)
