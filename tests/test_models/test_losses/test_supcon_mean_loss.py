"""SupConMean loss (UAE-S, Bai et al., 2023): equal to a direct loop over labels and voxels,
background never a positive, stable for large logits, exact chunked evaluation, label
resampling, valid masks."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmanat.models.losses.supcon_mean_loss import SupConMeanLoss, resample_labels_nearest
from mmanat.registry import MODELS
from mmanat.utils.exceptions import InvalidInputError


def direct_loss(feats, labels, tau, include_background=False):
    """Per-voxel loops, exactly as the UAE paper writes the loss, in float64 with the max logit
    subtracted by hand. ``feats`` (M, C), ``labels`` (M,) of one group."""
    feats = feats.double()
    M = feats.shape[0]
    classes = sorted({int(v) for v in labels.tolist()
                      if include_background or int(v) > 0})
    per_class = []
    for c in classes:
        members = [v for v in range(M) if int(labels[v]) == c]
        p = sum(feats[v] for v in members) / len(members)
        logits = [float(p @ feats[u]) / tau for u in range(M)]
        top = max(logits)
        log_denom = top + math.log(sum(math.exp(x - top) for x in logits))
        per_class.append(-sum(logits[v] - log_denom for v in members) / len(members))
    return sum(per_class) / len(per_class)


def flat_group(feats, labels):
    """(V, C, d, h, w), (V, d, h, w) -> (M, C), (M,)."""
    C = feats.shape[1]
    return feats.permute(0, 2, 3, 4, 1).reshape(-1, C), labels.reshape(-1)


def tiny_group(seed=0, C=4, shape=(2, 3, 3), n_labels=3):
    g = torch.Generator().manual_seed(seed)
    feats = F.normalize(torch.randn((2, C) + shape, generator=g), dim=1)
    labels = torch.randint(0, n_labels + 1, (2, ) + shape, generator=g)
    return feats, labels


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_equals_direct_loop_computation(seed):
    feats, labels = tiny_group(seed)
    loss = SupConMeanLoss(temperature=0.1)(feats, labels)
    ref = direct_loss(*flat_group(feats, labels), tau=0.1)
    assert loss.item() == pytest.approx(ref, rel=1e-5, abs=1e-5)


def test_gradient_equals_direct_autograd():
    feats, labels = tiny_group(3)
    a = feats.clone().double().requires_grad_(True)
    SupConMeanLoss(temperature=0.1)(a.float(), labels).backward()
    b = feats.clone().double().requires_grad_(True)
    # the literal formula with torch ops (log-softmax over all voxels), per label
    f, lab = flat_group(b, labels)
    terms = []
    for c in lab.unique():
        if c <= 0:
            continue
        m = lab == c
        p = f[m].mean(0)
        terms.append(-torch.log_softmax(f @ p / 0.1, dim=0)[m].mean())
    torch.stack(terms).mean().backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-5)


def test_background_is_never_a_positive():
    feats, labels = tiny_group(4)
    f, lab = flat_group(feats, labels)
    assert (lab == 0).any()
    loss = SupConMeanLoss(temperature=0.1)(feats, labels).item()
    with_bg = direct_loss(f, lab, 0.1, include_background=True)
    assert loss == pytest.approx(direct_loss(f, lab, 0.1), rel=1e-5)
    assert abs(loss - with_bg) > 1e-3          # the test would see a background prototype
    # only background: no term at all (zero, still differentiable)
    x = feats.clone().requires_grad_(True)
    zero = SupConMeanLoss()(x, torch.zeros_like(labels))
    zero.backward()
    assert zero.item() == 0.0 and torch.count_nonzero(x.grad) == 0
    # background voxels still act as negatives: moving them changes the loss
    moved = feats.clone()
    bg = (labels == 0)
    moved.permute(0, 2, 3, 4, 1)[bg] = F.normalize(torch.ones(feats.shape[1]), dim=0)
    assert SupConMeanLoss(temperature=0.1)(moved, labels).item() != pytest.approx(loss)


def test_large_logits_are_stable():
    feats, labels = tiny_group(5, C=6, shape=(3, 4, 4))
    tau = 1e-3                                   # logits up to 1000: exp() overflows naively
    assert torch.isinf(torch.exp(torch.tensor(1000.0)))
    x = feats.clone().requires_grad_(True)
    loss = SupConMeanLoss(temperature=tau)(x, labels)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    assert loss.item() == pytest.approx(direct_loss(*flat_group(feats, labels), tau=tau),
                                        rel=1e-4)


def test_chunked_evaluation_is_exact_in_value_and_gradient():
    feats, labels = tiny_group(6, C=8, shape=(4, 6, 6), n_labels=5)
    grads, values = [], []
    for max_logits in (None, 7):                 # 7 logits -> chunks of one voxel
        x = feats.clone().requires_grad_(True)
        loss = SupConMeanLoss(temperature=0.1, max_logits=max_logits)(x, labels)
        loss.backward()
        values.append(loss.item())
        grads.append(x.grad)
    assert values[0] == pytest.approx(values[1], rel=1e-5)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-6)


def test_voxel_subsampling_estimates_the_denominator():
    feats, labels = tiny_group(7, C=8, shape=(6, 10, 10), n_labels=4)
    exact = SupConMeanLoss(temperature=0.1)(feats, labels).item()
    torch.manual_seed(0)
    approx = SupConMeanLoss(temperature=0.1, max_voxels=600)(feats, labels).item()
    assert approx != exact and approx == pytest.approx(exact, rel=0.05)


def test_groups_labels_on_image_grid_and_valid_mask():
    g = torch.Generator().manual_seed(8)
    feats = F.normalize(torch.randn(2, 2, 4, 2, 3, 3, generator=g), dim=2)  # 2 pairs
    small = torch.randint(0, 3, (2, 2, 2, 3, 3), generator=g)
    big = small.repeat_interleave(2, -1).repeat_interleave(2, -2).repeat_interleave(2, -3)
    big = big[..., :5]                          # odd size on the image grid: ceil(5/2) = 3
    assert torch.equal(resample_labels_nearest(big, (2, 3, 3)), small)
    # an explicit stride where ceil(D / d) would guess wrong: D = 9, stride 4 -> d = 3
    nine = torch.arange(9).view(9, 1, 1).expand(9, 2, 2)
    assert resample_labels_nearest(nine, (3, 2, 2), stride=(4, 1, 1))[:, 0, 0].tolist() == \
        [0, 4, 8]
    loss = SupConMeanLoss(temperature=0.1, loss_weight=2.0)(feats, big)
    per_pair = [direct_loss(*flat_group(feats[i], small[i]), tau=0.1) for i in range(2)]
    assert loss.item() == pytest.approx(2.0 * sum(per_pair) / 2, rel=1e-5)
    # invalid voxels are left out everywhere
    valid = torch.ones_like(small, dtype=torch.bool)
    valid[0, 1, 1] = False
    loss_v = SupConMeanLoss(temperature=0.1)(feats[0], small[0], valid[0])
    f, lab = flat_group(feats[0], small[0])
    keep = valid[0].reshape(-1)
    assert loss_v.item() == pytest.approx(direct_loss(f[keep], lab[keep], 0.1), rel=1e-5)


def test_registry_and_bad_input():
    loss = MODELS.build(dict(type='SupConMeanLoss', temperature=0.1))
    assert isinstance(loss, SupConMeanLoss) and loss.temperature == 0.1
    with pytest.raises(InvalidInputError, match='temperature'):
        SupConMeanLoss(temperature=0)
    with pytest.raises(InvalidInputError, match='expected feats'):
        loss(torch.zeros(2, 4, 2, 2), torch.zeros(2, 2, 2, dtype=torch.long))
