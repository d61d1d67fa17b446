"""The coarse (global) embedding head of SAM (Yan et al., TMI 2022)."""
from typing import Optional, Sequence

from mmanat.registry import MODELS
from .embedding_head import EmbeddingHead


@MODELS.register_module()
class CoarseEmbeddingHead(EmbeddingHead):
    """On the last backbone stage (512 ch, stride (4,16,16)): a 1x1x1 conv to ``channels``,
    then a 3x3x3 conv to ``channels``, then L2 normalisation over channels.

    Args:
        in_channels: channels of the backbone stage (reference 512).
        channels: embedding dimension (reference 128).
        kernel_sizes: kernels of the convs (reference (1, 3)).
        act_cfg: activation between the two convs (reference: none).
        Other args as :class:`EmbeddingHead`.
    """

    def __init__(self,
                 in_channels: int = 512,
                 channels: int = 128,
                 kernel_sizes: Sequence = (1, 3),
                 conv_cfg: Optional[dict] = dict(type='Conv3d'),
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 normalize: bool = True,
                 init_cfg: Optional[dict] = dict(
                     type='Xavier', layer='Conv3d', distribution='uniform')):
        super().__init__(in_channels=in_channels, channels=channels,
                         kernel_sizes=kernel_sizes, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                         act_cfg=act_cfg, normalize=normalize, init_cfg=init_cfg)
