"""Decompose head of Adam v2 (Hosseinzadeh Taher et al., CVPR 2024, Sec. 3,
"Decomposability"): a whole's feature mapped to predictions of its parts' features."""
from __future__ import annotations

import torch
from mmengine.model import BaseModule

from mmanat.registry import MODELS
from mmanat.utils.exceptions import InvalidInputError

from .compose_head import mlp


@MODELS.register_module()
class DecomposeHead(BaseModule):
    """``(N, C)`` whole features -> ``(N, P, C)`` part predictions through
    ``Linear(C, hid) - GELU - Linear(hid, P C)``, split in row-major quadrant order.

    Args:
        in_channels: C, the backbone feature size.
        hid_channels: hidden width.
        num_parts: P (4).
    """

    def __init__(self, in_channels: int = 2048, hid_channels: int = 2048, num_parts: int = 4,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if min(int(in_channels), int(hid_channels), int(num_parts)) < 1:
            raise InvalidInputError(f'DecomposeHead: sizes must be >= 1, got {in_channels}, '
                                    f'{hid_channels}, {num_parts}.')
        self.in_channels, self.num_parts = int(in_channels), int(num_parts)
        self.mlp = mlp(self.in_channels, int(hid_channels), self.num_parts * self.in_channels)

    def forward(self, whole: torch.Tensor) -> torch.Tensor:
        """``(N, C)`` -> ``(N, P, C)``."""
        if whole.dim() != 2 or whole.shape[1] != self.in_channels:
            raise InvalidInputError(f'DecomposeHead: expected (N, {self.in_channels}), got '
                                    f'{tuple(whole.shape)}.')
        return self.mlp(whole).view(whole.shape[0], self.num_parts, self.in_channels)
