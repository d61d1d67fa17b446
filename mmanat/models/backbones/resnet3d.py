"""3D ResNet backbone of SAM (Yan et al., TMI 2022, Sec. III-A), built from mmcv cnn bricks.

Two layouts share this class; both give the cumulative stage strides (2,2,2), (2,4,4),
(2,8,8), (4,16,16) (z, y, x) that SAM's fine and coarse heads expect.

**Published layout** (``configs/_base_/models/sam_r18_fpn.py``; the network of the released
SAM / UAE-S / UAE-M checkpoints, reference ``sam/models/backbones/resnet3d.py``)::

    module       stride      kernel (z, y, x)   cumulative stride
    stem         (1, 1, 1)   (3, 7, 7)          (1, 1, 1)
    stage 1      (1, 2, 2)   (1, 3, 3)          (1, 2, 2)   1x1x1 projection shortcut
    z max-pool   (2, 1, 1)   (2, 1, 1)          (2, 2, 2)   -> out 0 (floor mode)
    stage 2      (1, 2, 2)   (1, 3, 3)          (2, 4, 4)   -> out 1
    stage 3      (1, 2, 2)   (3, 3, 3)          (2, 8, 8)   -> out 2
    stage 4      (2, 2, 2)   (3, 3, 3)          (4, 16, 16) -> out 3

``ResNet3D(stem_stride=(1, 1, 1), strides=((1, 2, 2), (1, 2, 2), (1, 2, 2), (2, 2, 2)),
z_pool_ceil_mode=False)``. Output sizes: ``floor(D / 2)`` slices after the z-pool (an odd
last slice is dropped), ``ceil(n / 2)`` for every strided convolution.

**Compact layout** (the class defaults; the small CPU models ``sam_tiny.py`` and every
shipped ``checkpoints/*_default.pth``): the in-plane stride moves from stage 1 into the stem
(stem stride (1, 2, 2), stage 1 stride 1 without a projection), so the stem's output and
activation memory are 4x smaller, and the z max-pool rounds up (``ceil_mode``), so a stage with cumulative stride ``S``
has size ``ceil(n / S)`` for any input size.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from mmanat.registry import MODELS
from mmanat.utils.exceptions import InvalidInputError


def _triple(v) -> Tuple[int, int, int]:
    if isinstance(v, int):
        return (v, v, v)
    v = tuple(int(x) for x in v)
    if len(v) != 3:
        raise InvalidInputError(f'expected an int or 3 ints (z, y, x), got {v!r}')
    return v


class BasicBlock3D(nn.Module):
    """3D residual BasicBlock: two ``kernel`` convs (+norm), identity or 1x1x1 projection.

    Args:
        in_channels / out_channels: channels.
        stride: (z, y, x) stride of the first conv and of the projection shortcut.
        kernel: (z, y, x) kernel of both convs (``(1, 3, 3)`` or ``(3, 3, 3)``).
        conv_cfg / norm_cfg / act_cfg: mmcv brick configs.
    """

    expansion = 1

    def __init__(self, in_channels: int, out_channels: int, stride=(1, 1, 1),
                 kernel=(3, 3, 3), conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None, act_cfg: Optional[dict] = None):
        super().__init__()
        stride, kernel = _triple(stride), _triple(kernel)
        padding = tuple(k // 2 for k in kernel)
        self.conv1 = ConvModule(in_channels, out_channels, kernel, stride=stride,
                                padding=padding, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                                act_cfg=act_cfg)
        self.conv2 = ConvModule(out_channels, out_channels, kernel, stride=1, padding=padding,
                                conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=None)
        if stride != (1, 1, 1) or in_channels != out_channels:
            self.downsample = ConvModule(in_channels, out_channels, 1, stride=stride,
                                         conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=None)
        else:
            self.downsample = None
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.conv2(self.conv1(x))
        return self.relu(out + identity)


@MODELS.register_module()
class ResNet3D(BaseModule):
    """3D ResNet of SAM: one input channel, (3,7,7) stem, no stem max-pool, a (2,1,1) z
    max-pool after stage 1, (1,3,3) kernels in stages 1-2 and (3,3,3) in stages 3-4.
    Cumulative stage strides (2,2,2), (2,4,4), (2,8,8), (4,16,16). The defaults build the
    compact layout; the published one is in the module docstring.

    Args:
        depth: 10, 18 (reference: BasicBlock 2-2-2-2) or 34 (3-4-6-3).
        in_channels: input channels (1 for CT/MR).
        base_channels: channels of stage 1; stage i has ``base_channels * 2**i``
            (64 -> 64/128/256/512, the reference).
        stem_channels: stem output channels (default ``base_channels``).
        stem_kernel: stem conv kernel (z, y, x).
        stem_stride: stem conv stride (z, y, x).
        strides: per-stage (z, y, x) strides of the first block of each stage.
        z_pool_after_stage1: apply the (2,1,1) z max-pool after stage 1.
        z_pool_ceil_mode: round the z max-pool up (keeps an odd last slice; compact layout)
            or down (drops it; the published layout).
        inflate: per stage, True -> (3,3,3) kernels, False -> (1,3,3).
        out_indices: stages whose outputs are returned (0-based).
        frozen_stages: -1 freezes nothing, 0 the stem, i the stem and stages 1..i.
        norm_eval: keep norm layers in eval mode while training.
        zero_init_residual: zero the last norm weight of each block (identity at init).
        conv_cfg / norm_cfg / act_cfg: mmcv brick configs.
        init_cfg: mmengine init config; ``None`` keeps the bricks' Kaiming/constant init.
    """

    arch_settings = {10: (1, 1, 1, 1), 18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}

    def __init__(self,
                 depth: int = 18,
                 in_channels: int = 1,
                 base_channels: int = 64,
                 stem_channels: Optional[int] = None,
                 stem_kernel=(3, 7, 7),
                 stem_stride=(1, 2, 2),
                 strides: Sequence = ((1, 1, 1), (1, 2, 2), (1, 2, 2), (2, 2, 2)),
                 z_pool_after_stage1: bool = True,
                 z_pool_ceil_mode: bool = True,
                 inflate: Sequence[bool] = (False, False, True, True),
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 zero_init_residual: bool = True,
                 conv_cfg: Optional[dict] = dict(type='Conv3d'),
                 norm_cfg: Optional[dict] = dict(type='BN3d', requires_grad=True),
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if depth not in self.arch_settings:
            raise InvalidInputError(
                f'ResNet3D: depth={depth!r} is not supported; use one of '
                f'{sorted(self.arch_settings)}')
        num_blocks = self.arch_settings[depth]
        num_stages = len(num_blocks)
        if len(strides) != num_stages or len(inflate) != num_stages:
            raise InvalidInputError(
                f'ResNet3D: strides ({len(strides)}) and inflate ({len(inflate)}) need one entry '
                f'per stage ({num_stages})')
        out_indices = tuple(out_indices)
        if not out_indices or any(i < 0 or i >= num_stages for i in out_indices):
            raise InvalidInputError(
                f'ResNet3D: out_indices={out_indices!r} must be stage indices in 0..'
                f'{num_stages - 1}')
        self.depth = depth
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.zero_init_residual = zero_init_residual
        stem_channels = base_channels if stem_channels is None else stem_channels
        stem_kernel = _triple(stem_kernel)

        self.stem = ConvModule(in_channels, stem_channels, stem_kernel,
                               stride=_triple(stem_stride),
                               padding=tuple(k // 2 for k in stem_kernel),
                               conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        # ceil_mode: an odd z length n gives ceil(n / 2) rather than dropping the last slice
        self.z_pool = (nn.MaxPool3d(kernel_size=(2, 1, 1), stride=(2, 1, 1),
                                    ceil_mode=bool(z_pool_ceil_mode))
                       if z_pool_after_stage1 else None)

        self.stage_names = []
        channels = stem_channels
        self.out_channels = []
        for i, n in enumerate(num_blocks):
            out_ch = base_channels * 2**i
            kernel = (3, 3, 3) if inflate[i] else (1, 3, 3)
            blocks = []
            for b in range(n):
                blocks.append(BasicBlock3D(channels, out_ch,
                                           stride=_triple(strides[i]) if b == 0 else 1,
                                           kernel=kernel, conv_cfg=conv_cfg,
                                           norm_cfg=norm_cfg, act_cfg=act_cfg))
                channels = out_ch
            name = f'layer{i + 1}'
            self.add_module(name, nn.Sequential(*blocks))
            self.stage_names.append(name)
            self.out_channels.append(out_ch)
        self.strides = self.cumulative_strides(stem_stride, strides, z_pool_after_stage1)
        self._freeze_stages()

    @staticmethod
    def cumulative_strides(stem_stride, strides, z_pool_after_stage1=True):
        """Cumulative (z, y, x) stride of every stage output."""
        cur = list(_triple(stem_stride))
        out = []
        for i, s in enumerate(strides):
            cur = [c * v for c, v in zip(cur, _triple(s))]
            if i == 0 and z_pool_after_stage1:
                cur[0] *= 2
            out.append(tuple(cur))
        return out

    def init_weights(self):
        """Default bricks init (Kaiming convs, unit norms), then optionally zero the last norm
        of every residual branch so that each block starts as the identity."""
        super().init_weights()
        if self.zero_init_residual and self.init_cfg is None:
            for m in self.modules():
                if isinstance(m, BasicBlock3D) and m.conv2.with_norm:
                    nn.init.zeros_(m.conv2.norm.weight)

    def _freeze_stages(self):
        if self.frozen_stages >= 0:
            self.stem.eval()
            for p in self.stem.parameters():
                p.requires_grad = False
        for i in range(1, self.frozen_stages + 1):
            layer = getattr(self, f'layer{i}')
            layer.eval()
            for p in layer.parameters():
                p.requires_grad = False

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """(N, C, D, H, W) -> tuple of the stage outputs named by ``out_indices``."""
        if x.dim() != 5:
            raise InvalidInputError(
                f'ResNet3D expects a (N, C, D, H, W) tensor, got shape {tuple(x.shape)}')
        x = self.stem(x)
        outs = []
        for i, name in enumerate(self.stage_names):
            x = getattr(self, name)(x)
            if i == 0 and self.z_pool is not None:
                x = self.z_pool(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def train(self, mode: bool = True):
        """Keep frozen stages (and, with ``norm_eval``, every norm layer) in eval mode."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
