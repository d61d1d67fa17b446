"""DINO head (MLP, L2 bottleneck, weight-normalised prototypes) and the compose /
decompose heads of Adam v2."""
import torch

from mmanat.models.heads import ComposeHead, DecomposeHead, DINOHead


def test_dino_head_shapes_and_weight_norm():
    head = DINOHead(in_channels=8, hid_channels=16, bottleneck_channels=4, out_channels=10)
    head.init_weights()
    keys = set(head.state_dict())
    assert {'mlp.0.weight', 'mlp.2.weight', 'mlp.4.weight', 'last_layer.weight_g',
            'last_layer.weight_v'} <= keys
    assert not head.last_layer.weight_g.requires_grad  # norm_last_layer
    torch.testing.assert_close(head.last_layer.weight.norm(dim=1), torch.ones(10))
    x = torch.randn(5, 8, 3, 3)
    out = head(x)
    assert out.shape == (5, 10)
    z = head.embed(x)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(5))
    torch.testing.assert_close(out, z @ head.last_layer.weight.t())
    # logits of unit vectors onto unit prototypes are cosines
    assert out.abs().max() <= 1.0 + 1e-5


def test_compose_and_decompose_heads():
    comp, dec = ComposeHead(in_channels=6, hid_channels=8), DecomposeHead(6, 8)
    parts = torch.randn(3, 4, 6)
    assert comp(parts).shape == (3, 6)
    torch.testing.assert_close(comp(parts), comp(parts.reshape(3, 24)))
    assert dec(torch.randn(3, 6)).shape == (3, 4, 6)
