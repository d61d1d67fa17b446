"""The fine (local) neck of SAM: a 3D FPN whose only output is its finest level.

Why not ``type='mmdet.FPN'`` with ``conv_cfg=dict(type='Conv3d')``: mmdet's FPN does run in
3D (its top-down path interpolates to the exact lower-level size), but it insists on
``num_outs >= number of used input levels`` and builds *and runs* one 3x3x3 output conv on
every level. SAM uses the finest level only, so the coarser output convs would be wasted
compute and, worse, parameters that never receive a gradient - DDP then fails unless
``find_unused_parameters=True``. Importing ``mmdet.models`` also needs mmcv's compiled ops,
while the 3D code must keep working with mmcv-lite (docs/en/advanced_guides/architecture.md).
``FPN3D`` computes exactly ``mmdet.FPN(...)(x)[0]`` (tests/test_models/test_necks checks this
against mmdet when mmdet is installed) with only the parameters that output uses.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule, xavier_init
from torch import nn
from torch.nn.modules.conv import _ConvNd

from mmanat.registry import MODELS
from mmanat.utils.exceptions import InvalidInputError


@MODELS.register_module()
class FPN3D(BaseModule):
    """Feature pyramid over 3D feature maps; returns the finest level only.

    ``lateral_i = conv1x1x1(x_i)``; top-down ``lateral_{i-1} += nearest_upsample(lateral_i,
    size of lateral_{i-1})`` from the coarsest level down; ``out = conv3x3x3(lateral_0)``.
    Any input sizes work (upsampling goes to the exact lower-level size).

    Args:
        in_channels: channels of the input levels, finest first (reference (64, 128, 256)).
        out_channels: output channels (the embedding dimension, reference 128).
        out_kernel: kernel of the output conv (3 -> 3x3x3).
        conv_cfg / norm_cfg / act_cfg: mmcv brick configs of laterals and output conv
            (defaults as mmdet's FPN: no norm, no activation).
        upsample_mode: ``F.interpolate`` mode of the top-down path ('nearest').
        init_cfg: mmengine init config; ``None``: Xavier-uniform convs, zero biases (as
            mmdet's FPN).

    Input: a sequence of ``len(in_channels)`` tensors (N, C_i, D_i, H_i, W_i).
    Output: a 1-tuple ``(N, out_channels, D_0, H_0, W_0)`` (mmdet neck convention).
    """

    def __init__(self,
                 in_channels: Sequence[int] = (64, 128, 256),
                 out_channels: int = 128,
                 out_kernel: int = 3,
                 conv_cfg: Optional[dict] = dict(type='Conv3d'),
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 upsample_mode: str = 'nearest',
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.in_channels = tuple(int(c) for c in in_channels)
        if not self.in_channels:
            raise InvalidInputError('FPN3D: in_channels must name at least one level')
        self.out_channels = int(out_channels)
        self.upsample_mode = upsample_mode
        self.lateral_convs = nn.ModuleList(
            ConvModule(c, out_channels, 1, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                       act_cfg=act_cfg, inplace=False) for c in self.in_channels)
        self.out_conv = ConvModule(out_channels, out_channels, out_kernel,
                                   padding=out_kernel // 2, conv_cfg=conv_cfg,
                                   norm_cfg=norm_cfg, act_cfg=act_cfg, inplace=False)

    def init_weights(self):
        """Xavier-uniform init of every conv (zero bias) unless ``init_cfg`` says otherwise.

        (A plain ``init_cfg=dict(type='Xavier')`` would be undone for ``out_conv``: mmengine
        calls the ``init_weights`` of ConvModule children afterwards, which is Kaiming.)
        """
        super().init_weights()
        if self.init_cfg is None:
            for m in self.modules():
                if isinstance(m, _ConvNd):
                    xavier_init(m, distribution='uniform')

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor]:
        """Fuse the levels top-down and return ``(finest_output,)``."""
        if len(inputs) != len(self.in_channels):
            raise InvalidInputError(
                f'FPN3D: got {len(inputs)} input levels, configured for '
                f'{len(self.in_channels)} (in_channels={self.in_channels})')
        laterals = [conv(x) for conv, x in zip(self.lateral_convs, inputs)]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + F.interpolate(
                laterals[i], size=laterals[i - 1].shape[2:], mode=self.upsample_mode)
        return (self.out_conv(laterals[0]), )
