"""The Python API users call: build a model, embed images (with a cache), match points."""
from .cache import load_embeddings, save_embeddings
from .embedding import embed
from .model import init_model, model_identity
from .preprocessing import preprocess_image
from .matching import Matcher, MatchResult, match

__all__ = [
    'init_model', 'embed', 'match', 'save_embeddings', 'load_embeddings', 'preprocess_image',
    'model_identity', 'Matcher', 'MatchResult'
]
from .registration import (EmbeddingRegistration, fit_affine_robust,  # noqa: E402
                           fit_rigid_ransac, kabsch, register_with_embeddings,
                           save_registration)
__all__ += ['kabsch', 'fit_affine_robust', 'fit_rigid_ransac', 'register_with_embeddings',
            'save_registration',
            'EmbeddingRegistration']
from .eve import (eve_embed_images, eve_embed_patches, eve_norm_params,  # noqa: E402
                  extract_patches)
__all__ += ['eve_embed_images', 'eve_embed_patches', 'eve_norm_params', 'extract_patches']
