"""MoCo v2 projection head: global average pooling + MLP."""
from typing import Sequence, Union

import torch
from mmengine.model import BaseModule
from torch import nn

from mmanat.registry import MODELS


@MODELS.register_module()
class MoCoMLPNeck(BaseModule):
    """Global average pool of the last backbone output, then ``Linear - ReLU - Linear``
    (MoCo v2: 2048 - 2048 - 128 for ResNet-50; no BatchNorm).

    Args:
        in_channels: channels of the backbone output (2048 for ResNet-50, 512 for ResNet-18).
        hid_channels: hidden width.
        out_channels: embedding size.
        with_avg_pool: pool ``(N, C, H, W)`` maps to ``(N, C)`` first (else expects vectors).
        with_bn: ``Linear - BatchNorm1d - ReLU - Linear`` (MoCo v3 / SimCLR style; not in
            MoCo v2). Centring the hidden layer keeps the embeddings of a small, homogeneous
            data set apart early in training; the small CPU config uses it (see there).
    """

    def __init__(self, in_channels: int = 2048, hid_channels: int = 2048,
                 out_channels: int = 128, with_avg_pool: bool = True, with_bn: bool = False,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg or dict(type='Normal', std=0.01, layer='Linear'))
        self.with_avg_pool = bool(with_avg_pool)
        layers = [nn.Linear(in_channels, hid_channels)]
        if with_bn:
            layers.append(nn.BatchNorm1d(hid_channels))
        layers += [nn.ReLU(inplace=True), nn.Linear(hid_channels, out_channels)]
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: Union[torch.Tensor, Sequence[torch.Tensor]]) -> torch.Tensor:
        """``x``: a tensor or the backbone's tuple of outputs (the last one is used)."""
        if isinstance(x, (tuple, list)):
            x = x[-1]
        if self.with_avg_pool and x.dim() == 4:
            x = x.mean(dim=(2, 3))
        return self.mlp(x.flatten(1))
