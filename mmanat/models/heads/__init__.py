from .coarse_embedding_head import CoarseEmbeddingHead
from .embedding_head import EmbeddingHead, l2_normalize

__all__ = ['EmbeddingHead', 'CoarseEmbeddingHead', 'l2_normalize']
