"""mmanat: self-supervised anatomical embeddings for medical imaging (SAM/UAE, Adam/Eve).

Importing the package is cheap: it never imports ``mmdet.models`` or any compiled mmcv op.
Components are registered lazily through :mod:`mmanat.registry`.
"""
from .version import __version__
from .utils.exceptions import InvalidInputError, MMAnatError

__all__ = ['__version__', 'MMAnatError', 'InvalidInputError']
