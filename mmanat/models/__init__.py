"""Models: backbones, necks, heads, pixel-pair samplers, losses, data preprocessors and the
algorithms that join them. Importing this package registers every component (never imports
``mmdet.models``; cross-scope types such as ``type='mmdet.FPN'`` resolve lazily)."""
from . import (algorithms, backbones, data_preprocessors, heads, losses, necks,  # noqa: F401
               pair_samplers, utils)
from .algorithms import SAM, UAES
from .backbones import ResNet3D
from .data_preprocessors import SAMDataPreprocessor, UAESDataPreprocessor
from .heads import CoarseEmbeddingHead, EmbeddingHead
from .losses import InfoNCELoss, SupConMeanLoss
from .necks import FPN3D
from .pair_samplers import SAMCoarsePairSampler, SAMFinePairSampler
from .utils import Planar

__all__ = [
    'SAM', 'ResNet3D', 'FPN3D', 'EmbeddingHead', 'CoarseEmbeddingHead', 'InfoNCELoss',
    'SAMFinePairSampler', 'SAMCoarsePairSampler', 'SAMDataPreprocessor', 'UAES',
    'SupConMeanLoss', 'UAESDataPreprocessor', 'Planar'
]
