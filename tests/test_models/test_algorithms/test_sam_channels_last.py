"""SAM(channels_last=True) computes the same embeddings, losses and gradients."""
import torch

from mmanat.registry import MODELS

from .test_sam import tiny_cfg


def _pair(model_cfg, channels_last):
    torch.manual_seed(0)
    model = MODELS.build(dict(model_cfg, channels_last=channels_last))
    model.init_weights()
    return model


def test_channels_last_matches_contiguous():
    cfg = tiny_cfg()
    ref, fast = _pair(cfg, False), _pair(cfg, True)
    fast.load_state_dict(ref.state_dict())
    assert fast.backbone.stem.conv.weight.is_contiguous(
        memory_format=torch.channels_last_3d)
    x = torch.randn(2, 1, 8, 32, 32)
    ref.train(), fast.train()
    a, b = ref.extract_feat(x), fast.extract_feat(x)
    for k in ('fine', 'coarse'):
        assert b[k].is_contiguous() and b[k].shape == a[k].shape
        assert torch.allclose(a[k], b[k], atol=1e-5)
    # same loss and gradients for the same sampled pairs (same RNG state)
    coords = torch.stack(torch.meshgrid(*[torch.arange(n, dtype=torch.float32) * 2.0
                                          for n in (8, 32, 32)], indexing='ij'))[[2, 1, 0]]
    coords = coords[None, None].repeat(1, 2, 1, 1, 1, 1)
    coords[:, 1] += torch.tensor([2.0, 4.0, 0.0]).view(3, 1, 1, 1)
    inputs = torch.randn(1, 2, 1, 8, 32, 32)
    losses = []
    for model in (ref, fast):
        model.train()
        torch.manual_seed(1)
        loss = sum(model(inputs, dict(coords=coords), mode='loss').values())
        loss.backward()
        losses.append(float(loss))
    assert abs(losses[0] - losses[1]) < 1e-4
    g_ref = ref.neck.out_conv.conv.weight.grad
    g_fast = fast.neck.out_conv.conv.weight.grad
    assert torch.allclose(g_ref, g_fast, atol=1e-4)


def test_cpu_bf16_is_opt_in_and_close_to_float32():
    cfg = tiny_cfg()
    ref = _pair(cfg, False)
    assert ref.cpu_bf16 is False
    torch.manual_seed(0)
    fast = MODELS.build(dict(cfg, channels_last=True, cpu_bf16=True))
    fast.load_state_dict(ref.state_dict())
    x = torch.randn(2, 1, 8, 32, 32)
    ref.train(), fast.train()
    a, b = ref.extract_feat(x), fast.extract_feat(x)
    for k in ('fine', 'coarse'):
        assert b[k].dtype == torch.float32 and b[k].is_contiguous()
        # unit embeddings: cosine of bf16 vs float32 embeddings close to 1
        cos = (a[k] * b[k]).sum(1)
        assert float(cos.min()) > 0.98
    out = fast.extract_feat(x)['fine'].sum()
    out.backward()
    assert torch.isfinite(fast.backbone.stem.conv.weight.grad).all()
    assert fast.backbone.stem.conv.weight.grad.dtype == torch.float32


def test_gather_similarities_channels_last_rows_equal_the_contiguous_path():
    """The (voxel, channel) row reading of channels_last maps gives the same similarities and
    the same gradient as the advanced indexing of contiguous maps."""
    from mmanat.models.algorithms.sam import gather_similarities
    torch.manual_seed(0)
    base = torch.nn.functional.normalize(torch.randn(4, 6, 3, 5, 7), dim=1)
    M = 3 * 5 * 7
    q = torch.randint(4 * M, (9, ))
    p = torch.randint(4 * M, (9, ))
    for N in (5, 200):   # the gather path and the similarity-matrix path
        neg = torch.randint(4 * M, (9, N))
        outs = []
        for cl in (False, True):
            maps = base.clone()
            if cl:
                maps = maps.contiguous(memory_format=torch.channels_last_3d)
            maps.requires_grad_(True)
            pos_sim, neg_sim = gather_similarities(maps, q, p, neg)
            (pos_sim.sum() * 2 + (neg_sim * torch.linspace(0, 1, N)).sum()).backward()
            outs.append((pos_sim.detach(), neg_sim.detach(), maps.grad))
        assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])
        assert torch.allclose(outs[0][2], outs[1][2], atol=1e-6)


def test_loss_keeps_channels_last_maps_but_extract_feat_stays_contiguous():
    cfg = tiny_cfg()
    model = _pair(cfg, True)
    seen = []
    gather = model.fine_sampler.__call__

    def spy(fine, *args, **kwargs):
        pair = fine[0]   # (2, C, D, H, W) of the first view pair
        seen.append(pair.is_contiguous(memory_format=torch.channels_last_3d)
                    and not pair.is_contiguous())
        return gather(fine, *args, **kwargs)

    model.fine_sampler = spy
    coords = torch.stack(torch.meshgrid(*[torch.arange(n, dtype=torch.float32) * 2.0
                                          for n in (8, 32, 32)], indexing='ij'))[[2, 1, 0]]
    coords = coords[None, None].repeat(1, 2, 1, 1, 1, 1)
    model.train()
    loss = sum(model(torch.randn(1, 2, 1, 8, 32, 32), dict(coords=coords),
                     mode='loss').values())
    loss.backward()
    assert seen == [True] and model._native_layout is False
    assert model.extract_feat(torch.randn(1, 1, 8, 32, 32))['fine'].is_contiguous()


def test_cpu_bf16_is_a_training_switch_only():
    """A model trained with cpu_bf16 embeds in float32 in eval mode (the caller's autocast
    decides), so a recipe's speed-up never changes inference silently."""
    cfg = tiny_cfg()
    ref = _pair(cfg, False)
    fast = MODELS.build(dict(cfg, channels_last=True, cpu_bf16=True))
    fast.load_state_dict(ref.state_dict())
    ref.eval(), fast.eval()
    x = torch.randn(1, 1, 8, 32, 32)
    with torch.no_grad():
        a, b = ref.extract_feat(x), fast.extract_feat(x)
        for k in ('fine', 'coarse'):
            assert torch.allclose(a[k], b[k], atol=1e-5)
        with torch.autocast('cpu', dtype=torch.bfloat16):  # the caller's bf16 still applies
            c = fast.extract_feat(x)
    assert not torch.allclose(a['fine'], c['fine'], atol=1e-5)
