"""InfoNCE loss: equals a hand computation; masking; temperature; gradients; empty input."""
import math

import pytest
import torch

from mmanat.registry import MODELS
from mmanat.utils.exceptions import InvalidInputError


def test_info_nce_matches_hand_computation():
    loss = MODELS.build(dict(type='InfoNCELoss', temperature=0.5, loss_weight=2.0))
    pos = torch.tensor([0.9, 0.1])
    neg = torch.tensor([[0.2, -0.3, 0.5], [0.4, 0.0, -1.0]])
    expected = 0.
    for p, row in zip(pos.tolist(), neg.tolist()):
        num = math.exp(p / 0.5)
        den = num + sum(math.exp(n / 0.5) for n in row)
        expected += -math.log(num / den)
    expected = 2.0 * expected / 2
    assert loss(pos, neg).item() == pytest.approx(expected, rel=1e-6)


def test_info_nce_mask_drops_negatives_and_reductions():
    from mmanat.models.losses import InfoNCELoss
    pos = torch.tensor([0.3, 0.7])
    neg = torch.tensor([[0.1, 5.0, -0.2], [0.0, 0.6, 9.0]])
    mask = torch.tensor([[True, False, True], [True, True, False]])
    masked = InfoNCELoss(temperature=0.1, reduction='none')(pos, neg, mask)
    kept = InfoNCELoss(temperature=0.1, reduction='none')
    ref = torch.stack([kept(pos[:1], neg[:1, [0, 2]])[0], kept(pos[1:], neg[1:, [0, 1]])[0]])
    torch.testing.assert_close(masked, ref)
    s = InfoNCELoss(temperature=0.1, reduction='sum')(pos, neg, mask)
    torch.testing.assert_close(s, ref.sum())
    # lower temperature -> sharper: a positive above all negatives gives a smaller loss
    p, n = torch.tensor([0.9]), torch.tensor([[0.5, 0.4]])
    assert InfoNCELoss(temperature=0.1)(p, n) < InfoNCELoss(temperature=1.0)(p, n)


def test_info_nce_gradient_and_empty_and_errors():
    from mmanat.models.losses import InfoNCELoss
    pos = torch.tensor([0.2, 0.1], requires_grad=True)
    neg = torch.tensor([[0.3, 0.4], [0.0, 0.5]], requires_grad=True)
    InfoNCELoss()(pos, neg).backward()
    assert (pos.grad < 0).all() and (neg.grad > 0).all()   # pull positives, push negatives
    empty = InfoNCELoss()(torch.zeros(0, requires_grad=True), torch.zeros(0, 5))
    assert empty.item() == 0.0 and empty.requires_grad
    with pytest.raises(InvalidInputError):
        InfoNCELoss(temperature=0.)
    with pytest.raises(InvalidInputError):
        InfoNCELoss()(torch.zeros(3), torch.zeros(2, 4))
