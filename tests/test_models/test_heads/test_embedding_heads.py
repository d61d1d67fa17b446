"""Embedding heads: conv layout of the coarse head, unit-length outputs, float32 under AMP."""
import torch

from mmanat.registry import MODELS


def test_coarse_head_layout_and_unit_norm():
    head = MODELS.build(dict(type='CoarseEmbeddingHead', in_channels=16, channels=8))
    head.init_weights()
    assert [m.conv.kernel_size for m in head.convs] == [(1, 1, 1), (3, 3, 3)]
    assert head.convs[0].conv.out_channels == 8 and head.convs[1].conv.out_channels == 8
    out = head(torch.randn(2, 16, 3, 2, 5))
    assert out.shape == (2, 8, 3, 2, 5)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2, 3, 2, 5))


def test_embedding_head_normalise_only_and_bf16_autocast():
    head = MODELS.build(dict(type='EmbeddingHead', in_channels=5, channels=5))
    x = torch.randn(1, 5, 2, 3, 4) * 7
    out = head(x)
    torch.testing.assert_close(out, x / x.norm(dim=1, keepdim=True))
    conv_head = MODELS.build(dict(type='EmbeddingHead', in_channels=5, channels=3,
                                  kernel_sizes=(3, )))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        y = conv_head(x)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y.norm(dim=1), torch.ones(1, 2, 3, 4), atol=1e-5, rtol=0)
