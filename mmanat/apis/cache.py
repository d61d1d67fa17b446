"""Embedding cache: embed every image once, match many times.

A cache file (any name; ``.emb.pt`` by convention) is a ``torch.save`` of plain containers
only (dicts, lists, strings, numbers, tensors), so it loads with
``torch.load(weights_only=True)`` - no arbitrary code. It holds:

* ``format`` = ``'mmanat.embedding_maps'`` and ``format_version`` (:data:`FORMAT_VERSION`);
* ``model``: the identity of the model that made the maps (config name, checkpoint name,
  SHA-256 of the checkpoint file or of the weights);
* per level: the tensor (float16 or float32), its stride;
* the network-input grid and the original image grid (spacing, origin, direction, shape);
* ``meta``: source path, modality, preprocessing, tiling.

Writes are atomic (temporary file + rename). Loading a cache from another format version, or
made by another model than ``expected_model``, raises :class:`InvalidInputError`.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Optional, Union

import torch

from ..fileio.atomic import atomic_path
from ..structures.embedding_map import EmbeddingMaps, GridGeometry, model_id_of
from ..utils.exceptions import InvalidInputError
from ..utils.misc import to_plain
from .model import model_identity

FORMAT = 'mmanat.embedding_maps'
FORMAT_VERSION = 1
CACHE_SUFFIX = '.emb.pt'
_DTYPES = {'float16': torch.float16, 'float32': torch.float32}


def save_embeddings(maps: EmbeddingMaps, path: Union[str, os.PathLike],
                    dtype: str = 'float16') -> str:
    """Write ``maps`` to ``path`` atomically.

    Args:
        maps: the embedding maps.
        path: destination file (parent folders are created).
        dtype: storage precision, ``'float16'`` (half the size; values differ from float32 by
            <= 2^-11 relative) or ``'float32'`` (exact).

    Returns:
        The absolute path written.
    """
    if not isinstance(maps, EmbeddingMaps):
        raise InvalidInputError(f'save_embeddings expects EmbeddingMaps, got '
                                f'{type(maps).__name__}.')
    if dtype not in _DTYPES:
        raise InvalidInputError(f"dtype must be 'float16' or 'float32', got {dtype!r}.")
    path = osp.abspath(os.fspath(path))
    obj = {
        'format': FORMAT,
        'format_version': FORMAT_VERSION,
        'model': to_plain(maps.model),
        'levels': {k: {'tensor': v.detach().to('cpu', _DTYPES[dtype]).contiguous(),
                       'stride': list(maps.strides[k])} for k, v in maps.maps.items()},
        'input_grid': maps.input_grid.to_dict(),
        'source_grid': maps.source_grid.to_dict(),
        'meta': to_plain(maps.meta),
    }
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return path


def _expected_identity(expected) -> Optional[dict]:
    if expected is None:
        return None
    if isinstance(expected, EmbeddingMaps):
        return dict(expected.model)
    if isinstance(expected, dict):
        return dict(expected)
    if isinstance(expected, str):
        config, _, sha = expected.partition('@')
        return dict(config=config, sha256=sha or None)
    if isinstance(expected, torch.nn.Module):
        return model_identity(expected)
    raise InvalidInputError(f'expected_model must be a model, an identity dict, a model id '
                            f'string or EmbeddingMaps, got {type(expected).__name__}.')


def _same_model(have: dict, want: dict) -> bool:
    a, b = have.get('sha256'), want.get('sha256')
    if a and b:  # a short id ("config@abc123") matches by prefix
        return a.startswith(b) or b.startswith(a)
    return bool(have.get('config')) and have.get('config') == want.get('config')


def load_embeddings(path: Union[str, os.PathLike], expected_model=None,
                    device: Union[None, str, torch.device] = None) -> EmbeddingMaps:
    """Read a cache written by :func:`save_embeddings`.

    Args:
        path: the cache file.
        expected_model: refuse a cache made by another model: a model (its
            ``mmanat_identity``), an identity dict, a model id ``'config@sha'`` or other maps.
            ``None`` accepts any model.
        device: where to put the maps (default CPU). Maps come back as float32.

    Raises:
        InvalidInputError: missing/unreadable file, not an mmanat cache, another format
            version, another model.
    """
    path = os.fspath(path)
    if not osp.isfile(path):
        raise InvalidInputError(f'{path}: embedding cache not found (working directory '
                                f'{os.getcwd()}); create it with tools/embed.py.')
    try:
        obj = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # noqa: BLE001 - every load failure is a bad file
        raise InvalidInputError(
            f'{path}: cannot read the embedding cache ({type(err).__name__}); the file is '
            'truncated or not an mmanat cache: re-create it with tools/embed.py.') from None
    if not isinstance(obj, dict) or obj.get('format') != FORMAT:
        raise InvalidInputError(f'{path}: not an mmanat embedding cache (no "format": '
                                f'{FORMAT!r}); create caches with tools/embed.py.')
    version = obj.get('format_version')
    if version != FORMAT_VERSION:
        raise InvalidInputError(
            f'{path}: embedding cache format version {version}, this mmanat reads version '
            f'{FORMAT_VERSION}; re-create the cache with tools/embed.py.')
    have = dict(obj.get('model') or {})
    want = _expected_identity(expected_model)
    if want is not None and not _same_model(have, want):
        raise InvalidInputError(
            f'{path}: the cache was made by model {model_id_of(have)} (config '
            f'{have.get("config")!r}, checkpoint {have.get("checkpoint")!r}), not by the '
            f'expected model {model_id_of(want)}; re-embed the image with this model '
            '(tools/embed.py) or use the matching checkpoint.')
    try:
        levels = obj['levels']
        maps = {k: v['tensor'].to(device=device or 'cpu', dtype=torch.float32)
                for k, v in levels.items()}
        strides = {k: tuple(v['stride']) for k, v in levels.items()}
        out = EmbeddingMaps(maps, strides, GridGeometry.from_dict(obj['input_grid']),
                            GridGeometry.from_dict(obj['source_grid']), have,
                            dict(obj.get('meta') or {}))
    except (KeyError, TypeError, AttributeError) as err:
        raise InvalidInputError(f'{path}: the embedding cache is incomplete ({err!r}); '
                                're-create it with tools/embed.py.') from None
    out.meta['cache_path'] = osp.abspath(path)
    return out


def is_cache_path(path: Union[str, os.PathLike]) -> bool:
    """True if ``path`` names an embedding cache by its suffix (``.emb.pt``/``.pt``)."""
    low = os.fspath(path).lower()
    return low.endswith(CACHE_SUFFIX) or low.endswith('.pt')
