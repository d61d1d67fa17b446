"""PrunedInfoNCELoss: plain InfoNCE when nothing is pruned, a loop reference, the positive
is never pruned."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmanat.models.losses import PrunedInfoNCELoss


def unit(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g, dtype=torch.float64), dim=-1).float()


def loop_reference(q, k, bank, T, thr):
    """Per query, per bank key, in plain Python (the reference code's way)."""
    total = 0.0
    for i in range(q.shape[0]):
        pos = float(q[i] @ k[i])
        denom = math.exp(pos / T)
        for j in range(bank.shape[0]):
            s = float(q[i] @ bank[j])
            if thr is not None and s >= thr:
                continue
            denom += math.exp(s / T)
        total += -math.log(math.exp(pos / T) / denom)
    return total / q.shape[0]


def test_equals_plain_infonce_when_nothing_passes_threshold():
    q, k, bank = unit(6, 16, seed=1), unit(6, 16, seed=2), unit(50, 16, seed=3)
    plain = PrunedInfoNCELoss(temperature=0.2, prune_threshold=None)(q, k, bank)
    high = PrunedInfoNCELoss(temperature=0.2, prune_threshold=1.01)(q, k, bank)
    off = PrunedInfoNCELoss(temperature=0.2, prune_threshold=0.0)(q, k, bank, prune=False)
    logits = torch.cat([(q * k).sum(1, keepdim=True), q @ bank.t()], 1) / 0.2
    ce = F.cross_entropy(logits, torch.zeros(6, dtype=torch.long))
    for v in (plain, high, off):
        torch.testing.assert_close(v, ce)


@pytest.mark.parametrize('thr', [0.0, 0.2, 0.5])
def test_equals_loop_reference(thr):
    # correlated data so that a good share of bank keys pass the threshold
    base = unit(1, 8, seed=4)
    q = F.normalize(base + 0.9 * unit(5, 8, seed=5), dim=1)
    k = F.normalize(q + 0.3 * unit(5, 8, seed=6), dim=1)
    bank = F.normalize(base + 1.0 * unit(40, 8, seed=7), dim=1)
    loss, stats = PrunedInfoNCELoss(temperature=0.2, prune_threshold=thr)(
        q, k, bank, return_stats=True)
    ref = loop_reference(q.double(), k.double(), bank.double(), 0.2, thr)
    assert abs(loss.item() - ref) < 1e-4
    frac = ((q @ bank.t()) >= thr).float().mean().item()
    assert 0.0 < frac < 1.0 and abs(stats['pruned_frac'].item() - frac) < 1e-6


def test_positive_never_pruned():
    q = unit(4, 8, seed=8)
    k = q.clone()  # positive cosine 1 >= threshold
    bank = torch.cat([q, q, unit(10, 8, seed=9)])  # duplicates of the queries: pruned
    loss, stats = PrunedInfoNCELoss(temperature=0.2, prune_threshold=0.8)(
        q, k, bank, return_stats=True)
    assert torch.isfinite(loss)
    ref = loop_reference(q.double(), k.double(), bank.double(), 0.2, 0.8)
    assert abs(loss.item() - ref) < 1e-4
    # every bank key pruned -> only the positive remains: loss exactly 0, still finite
    loss_all = PrunedInfoNCELoss(temperature=0.2, prune_threshold=-2.0)(q, k, bank)
    assert torch.isfinite(loss_all) and abs(loss_all.item()) < 1e-6


def test_gradient_reaches_queries_only():
    q = unit(3, 8, seed=10).requires_grad_(True)
    k, bank = unit(3, 8, seed=11), unit(20, 8, seed=12)
    PrunedInfoNCELoss(prune_threshold=0.1)(q, k, bank).backward()
    assert q.grad is not None and torch.isfinite(q.grad).all() and q.grad.abs().sum() > 0
