from .coarse_embedding_head import CoarseEmbeddingHead
from .embedding_head import EmbeddingHead, l2_normalize

__all__ = ['EmbeddingHead', 'CoarseEmbeddingHead', 'l2_normalize']
from .compose_head import ComposeHead  # noqa: F401,E402
from .decompose_head import DecomposeHead  # noqa: F401,E402
from .dino_head import DINOHead  # noqa: F401,E402
