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
