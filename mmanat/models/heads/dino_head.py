"""Projection head of DINO (Caron et al., ICCV 2021, Sec. 3.1 "Network architecture" and
Appendix), used as the localizability head of Adam v2 (Hosseinzadeh Taher et al., CVPR 2024):
a 3-layer MLP (hidden 2048, bottleneck 256), L2 normalisation, then a weight-normalised linear
layer without bias onto K prototypes (65,536)."""
from __future__ import annotations

from typing import Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

from mmanat.registry import MODELS
from mmanat.utils.exceptions import InvalidInputError


class WeightNormLinear(nn.Module):
    """``y = x W^T`` with ``W_k = g_k v_k / |v_k|`` (weight normalisation, Salimans and Kingma
    2016) and no bias. Parameters ``weight_v`` ``(K, D)`` and ``weight_g`` ``(K, 1)`` carry
    the names of ``torch.nn.utils.weight_norm`` (so DINO checkpoints map one to one);
    ``fix_g`` keeps ``g = 1`` frozen (DINO's ``norm_last_layer=True``)."""

    def __init__(self, in_features: int, out_features: int, fix_g: bool = True):
        super().__init__()
        self.weight_v = nn.Parameter(torch.empty(out_features, in_features))
        self.weight_g = nn.Parameter(torch.ones(out_features, 1), requires_grad=not fix_g)
        nn.init.trunc_normal_(self.weight_v, std=0.02)

    @property
    def weight(self) -> torch.Tensor:
        """The effective ``(K, D)`` weight."""
        return self.weight_g * F.normalize(self.weight_v, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight)


@MODELS.register_module()
class DINOHead(BaseModule):
    """``Linear - GELU - Linear - GELU - Linear`` (``in -> hid -> hid -> bottleneck``), L2
    normalisation, :class:`WeightNormLinear` ``bottleneck -> out`` (Adam v2 / DINO:
    2048 - 2048 - 256 -> 65,536). Key names follow DINO's ``DINOHead`` (``mlp.0``, ``mlp.2``,
    ``mlp.4``, ``last_layer.weight_g``, ``last_layer.weight_v``).

    Args:
        in_channels: backbone feature size (1024 for ConvNeXt-B).
        hid_channels: hidden width (2048).
        bottleneck_channels: bottleneck width (256).
        out_channels: K prototypes (65,536).
        num_layers: MLP layers (3; at least 1).
        norm_last_layer: freeze the weight-norm gains at 1.
        with_avg_pool: pool ``(N, C, H, W)`` maps to ``(N, C)`` first.
    """

    def __init__(self, in_channels: int = 2048, hid_channels: int = 2048,
                 bottleneck_channels: int = 256, out_channels: int = 65536,
                 num_layers: int = 3, norm_last_layer: bool = True,
                 with_avg_pool: bool = True, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if min(int(in_channels), int(hid_channels), int(bottleneck_channels),
               int(out_channels), int(num_layers)) < 1:
            raise InvalidInputError('DINOHead: channel counts and num_layers must be >= 1, got '
                                    f'{in_channels}, {hid_channels}, {bottleneck_channels}, '
                                    f'{out_channels}, {num_layers}.')
        self.with_avg_pool = bool(with_avg_pool)
        dims = [int(in_channels)] + [int(hid_channels)] * (int(num_layers) - 1) + \
            [int(bottleneck_channels)]
        layers = []
        for i in range(len(dims) - 1):
            layers.append(nn.Linear(dims[i], dims[i + 1]))
            if i < len(dims) - 2:
                layers.append(nn.GELU())
        self.mlp = nn.Sequential(*layers)
        self.last_layer = WeightNormLinear(int(bottleneck_channels), int(out_channels),
                                           fix_g=norm_last_layer)

    def init_weights(self) -> None:
        """DINO's initialisation: truncated normal (std 0.02) weights, zero biases."""
        super().init_weights()
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def embed(self, x: Union[torch.Tensor, Sequence[torch.Tensor]]) -> torch.Tensor:
        """The L2-normalised bottleneck ``(N, bottleneck)``."""
        if isinstance(x, (tuple, list)):
            x = x[-1]
        if self.with_avg_pool and x.dim() == 4:
            x = x.mean(dim=(2, 3))
        return F.normalize(self.mlp(x.flatten(1)), dim=-1)

    def forward(self, x: Union[torch.Tensor, Sequence[torch.Tensor]]) -> torch.Tensor:
        """``(N, C)`` features (or maps, or a backbone tuple) -> ``(N, K)`` logits."""
        return self.last_layer(self.embed(x))
