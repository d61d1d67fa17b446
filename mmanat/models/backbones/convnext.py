"""ConvNeXt (Liu et al., "A ConvNet for the 2020s", CVPR 2022), the backbone of Adam v2's
published model (ConvNeXt-B; Hosseinzadeh Taher et al., CVPR 2024).

Key names and outputs follow mmpretrain's ``ConvNeXt`` (``downsample_layers.i``,
``stages.i.j.{depthwise_conv, norm, pointwise_conv1, pointwise_conv2, gamma}``, ``norm3``;
the last stage is globally pooled, then layer-normalised), so weights move between the two
without renaming; :mod:`mmanat.apis.published_adam` converts the authors' / facebook key
layout. mmpretrain itself is not a dependency (see docs/en/advanced_guides/architecture.md).
"""
from __future__ import annotations

from typing import Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

from mmanat.registry import MODELS
from mmanat.utils.exceptions import InvalidInputError

#: depths and widths of the published variants (Liu et al. 2022, Sec. 2.6; atto from timm)
ARCH_SETTINGS = {
    'atto': dict(depths=(2, 2, 6, 2), channels=(40, 80, 160, 320)),
    'tiny': dict(depths=(3, 3, 9, 3), channels=(96, 192, 384, 768)),
    'small': dict(depths=(3, 3, 27, 3), channels=(96, 192, 384, 768)),
    'base': dict(depths=(3, 3, 27, 3), channels=(128, 256, 512, 1024)),
    'large': dict(depths=(3, 3, 27, 3), channels=(192, 384, 768, 1536)),
}


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of ``(N, C, H, W)`` maps (or of ``(N, C)`` vectors)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            x = x.permute(0, 2, 3, 1)
            return F.layer_norm(x, self.normalized_shape, self.weight, self.bias,
                                self.eps).permute(0, 3, 1, 2)
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)


class ConvNeXtBlock(nn.Module):
    """``x + drop_path(gamma * pw2(GELU(pw1(LN(dw7x7(x))))))`` (pointwise convolutions as
    linear layers on channels-last maps)."""

    def __init__(self, channels: int, layer_scale_init_value: float = 1e-6,
                 drop_path: float = 0.0):
        super().__init__()
        self.depthwise_conv = nn.Conv2d(channels, channels, 7, padding=3, groups=channels)
        self.norm = LayerNorm2d(channels, eps=1e-6)
        self.pointwise_conv1 = nn.Linear(channels, 4 * channels)
        self.act = nn.GELU()
        self.pointwise_conv2 = nn.Linear(4 * channels, channels)
        self.gamma = nn.Parameter(layer_scale_init_value * torch.ones(channels)) \
            if layer_scale_init_value > 0 else None
        self.drop_path = float(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.depthwise_conv(x)).permute(0, 2, 3, 1)
        y = self.pointwise_conv2(self.act(self.pointwise_conv1(y)))
        if self.gamma is not None:
            y = y * self.gamma
        y = y.permute(0, 3, 1, 2)
        if self.training and self.drop_path > 0:  # stochastic depth, per sample
            keep = torch.rand(y.shape[0], 1, 1, 1, device=y.device) >= self.drop_path
            y = y * keep.to(y.dtype) / (1.0 - self.drop_path)
        return x + y


@MODELS.register_module()
class ConvNeXt(BaseModule):
    """ConvNeXt returning a tuple of the ``out_indices`` stages' outputs.

    Args:
        arch: a key of :data:`ARCH_SETTINGS` or ``dict(depths=..., channels=...)``.
        in_channels: image channels (3 for the published models, 1 for grey radiographs).
        out_indices: stages to return.
        gap_before_final_norm: return globally pooled, layer-normalised ``(N, C)`` vectors
            (the classification / DINO setting, norm layer ``norm{i}``); otherwise the
            normalised ``(N, C, H, W)`` maps.
        drop_path_rate: stochastic depth, linearly increasing over the blocks.
        layer_scale_init_value: initial ``gamma`` (1e-6).
    """

    def __init__(self, arch: Union[str, dict] = 'tiny', in_channels: int = 3,
                 out_indices: Sequence[int] = (3, ), gap_before_final_norm: bool = True,
                 drop_path_rate: float = 0.0, layer_scale_init_value: float = 1e-6,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if isinstance(arch, str):
            if arch not in ARCH_SETTINGS:
                raise InvalidInputError(f'ConvNeXt: unknown arch {arch!r}; use one of '
                                        f'{sorted(ARCH_SETTINGS)} or dict(depths, channels).')
            arch = ARCH_SETTINGS[arch]
        depths, channels = tuple(arch['depths']), tuple(arch['channels'])
        if len(depths) != len(channels) or not depths:
            raise InvalidInputError(f'ConvNeXt: depths {depths} and channels {channels} '
                                    'must have the same length.')
        self.channels = channels
        self.out_indices = tuple(int(i) % len(depths) for i in out_indices)
        self.gap_before_final_norm = bool(gap_before_final_norm)
        self.downsample_layers = nn.ModuleList([nn.Sequential(
            nn.Conv2d(in_channels, channels[0], 4, stride=4), LayerNorm2d(channels[0], eps=1e-6))])
        for i in range(1, len(channels)):
            self.downsample_layers.append(nn.Sequential(
                LayerNorm2d(channels[i - 1], eps=1e-6),
                nn.Conv2d(channels[i - 1], channels[i], 2, stride=2)))
        total = sum(depths)
        rates = [float(drop_path_rate) * j / max(total - 1, 1) for j in range(total)]
        self.stages = nn.ModuleList()
        k = 0
        for d, c in zip(depths, channels):
            self.stages.append(nn.Sequential(*[ConvNeXtBlock(c, layer_scale_init_value,
                                                             rates[k + j]) for j in range(d)]))
            k += d
        for i in self.out_indices:
            self.add_module(f'norm{i}', LayerNorm2d(channels[i], eps=1e-6))

    def init_weights(self) -> None:
        """Truncated normal (std 0.02) for convolutions and linear layers, zero biases."""
        super().init_weights()
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        outs = []
        for i, (down, stage) in enumerate(zip(self.downsample_layers, self.stages)):
            x = stage(down(x))
            if i in self.out_indices:
                norm = getattr(self, f'norm{i}')
                outs.append(norm(x.mean(dim=(2, 3))) if self.gap_before_final_norm
                            else norm(x))
        return tuple(outs)
