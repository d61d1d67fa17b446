"""Compose head of Adam v2 (Hosseinzadeh Taher et al., CVPR 2024, Sec. 3, "Composability"):
the features of a whole's parts, concatenated, mapped to a prediction of the whole's
feature."""
from __future__ import annotations

import torch
from mmengine.model import BaseModule
from torch import nn

from mmanat.registry import MODELS
from mmanat.utils.exceptions import InvalidInputError


def mlp(in_dim: int, hid_dim: int, out_dim: int) -> nn.Sequential:
    """``Linear - GELU - Linear``."""
    return nn.Sequential(nn.Linear(in_dim, hid_dim), nn.GELU(), nn.Linear(hid_dim, out_dim))


@MODELS.register_module()
class ComposeHead(BaseModule):
    """``(N, P, C)`` (or ``(N, P * C)``) part features -> ``(N, C)`` through
    ``Linear(P C, hid) - GELU - Linear(hid, C)``; parts concatenated in row-major quadrant
    order (top-left, top-right, bottom-left, bottom-right).

    Args:
        in_channels: C, the backbone feature size.
        hid_channels: hidden width.
        num_parts: P (4).
    """

    def __init__(self, in_channels: int = 2048, hid_channels: int = 2048, num_parts: int = 4,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if min(int(in_channels), int(hid_channels), int(num_parts)) < 1:
            raise InvalidInputError(f'ComposeHead: sizes must be >= 1, got {in_channels}, '
                                    f'{hid_channels}, {num_parts}.')
        self.in_channels, self.num_parts = int(in_channels), int(num_parts)
        self.mlp = mlp(self.num_parts * self.in_channels, int(hid_channels), self.in_channels)

    def forward(self, parts: torch.Tensor) -> torch.Tensor:
        """``(N, P, C)`` or ``(N, P * C)`` -> ``(N, C)``."""
        if parts.shape[-1] * (parts.shape[-2] if parts.dim() == 3 else 1) != \
                self.num_parts * self.in_channels:
            raise InvalidInputError(f'ComposeHead: expected (N, {self.num_parts}, '
                                    f'{self.in_channels}) parts, got {tuple(parts.shape)}.')
        return self.mlp(parts.reshape(parts.shape[0], -1))
