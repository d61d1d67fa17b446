"""A stack of 3D convolutions followed by L2 normalisation over channels."""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import nn

from mmanat.registry import MODELS
from mmanat.utils.exceptions import InvalidInputError


def l2_normalize(x: torch.Tensor, dim: int = 1, eps: float = 1e-12) -> torch.Tensor:
    """L2-normalise ``x`` along ``dim`` in float32 (safe under fp16 autocast).

    ``eps`` (the smallest norm divided by) is ``F.normalize``'s default, as in the published
    SAM / UAE networks."""
    return F.normalize(x.float(), p=2.0, dim=dim, eps=eps)


@MODELS.register_module()
class EmbeddingHead(BaseModule):
    """Embedding head: ``len(kernel_sizes)`` convs (stride 1, 'same' padding), then L2
    normalisation over channels.

    With ``kernel_sizes=()`` it only normalises (the fine branch of SAM, whose neck already
    produces the embedding channels).

    Args:
        in_channels: input channels.
        channels: channels of every conv (and of the output when there is a conv).
        kernel_sizes: one int (cubic kernel) or (z, y, x) tuple per conv.
        conv_cfg / norm_cfg: mmcv brick configs.
        act_cfg: activation between convs (never after the last one).
        normalize: apply the L2 normalisation (output dtype float32).
        init_cfg: mmengine init config.

    Input (N, in_channels, D, H, W); output (N, channels or in_channels, D, H, W).
    """

    def __init__(self,
                 in_channels: int,
                 channels: int = 128,
                 kernel_sizes: Sequence = (),
                 conv_cfg: Optional[dict] = dict(type='Conv3d'),
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 normalize: bool = True,
                 init_cfg: Optional[dict] = dict(
                     type='Xavier', layer='Conv3d', distribution='uniform')):
        super().__init__(init_cfg=init_cfg)
        if in_channels <= 0 or channels <= 0:
            raise InvalidInputError(
                f'{type(self).__name__}: in_channels={in_channels} and channels={channels} '
                'must be positive')
        self.in_channels = int(in_channels)
        self.normalize = normalize
        convs = []
        c = in_channels
        kernel_sizes = tuple(kernel_sizes)
        for i, k in enumerate(kernel_sizes):
            k = (k, k, k) if isinstance(k, int) else tuple(k)
            last = i == len(kernel_sizes) - 1
            convs.append(ConvModule(c, channels, k, padding=tuple(v // 2 for v in k),
                                    conv_cfg=conv_cfg, norm_cfg=None if last else norm_cfg,
                                    act_cfg=None if last else act_cfg))
            c = channels
        self.convs = nn.Sequential(*convs)
        self.out_channels = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, D, H, W) -> embeddings (N, out_channels, D, H, W), unit length over C."""
        x = self.convs(x)
        return l2_normalize(x, dim=1) if self.normalize else x
