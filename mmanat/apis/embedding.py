"""Turning an image into :class:`EmbeddingMaps` (SAM, Yan et al., IEEE TMI 2022,
arXiv:2012.02383: a global (coarse) and a local (fine) embedding per voxel).

Pipeline::

    image --preprocess_image (LPS, 2 mm, normalised, padded)--> network (whole volume or
    tiles) --> fine (stride 2), coarse (stride (4, 16, 16)) [, semantic (stride 2)] maps,
    cropped to ceil(unpadded size / stride), unit length over channels, and tagged with
    their exact grid geometry.
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Dict, Optional, Sequence

import numpy as np
import torch

from ..structures.embedding_map import EmbeddingMaps, GridGeometry
from ..structures.image import MedicalImage
from ..utils.device import model_device
from ..utils.exceptions import InvalidInputError
from .model import model_identity
from .preprocessing import (DEFAULT_PAD_MULTIPLE, DEFAULT_SPACING, PREPROCESSED_KEY,
                            preprocess_image)
from .tiling import declared_strides, embed_tiled, forward_features, map_strides


def _renormalise(t: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(t, dim=0, eps=1e-12)


def embed(model: torch.nn.Module, image, tile_size: Optional[Sequence[int]] = None,
          overlap: Optional[Sequence[int]] = None, amp: Optional[bool] = None,
          spacing: float = DEFAULT_SPACING, blend: str = 'cosine',
          pad_multiple: Optional[Sequence[int]] = None, progress: bool = False
          ) -> EmbeddingMaps:
    """Embed one volume: fine, coarse (and semantic, when the model has it) maps with their
    grid geometry.

    Args:
        model: a model with ``extract_feat((N, 1, D, H, W)) -> dict(fine, coarse[,
            semantic])`` (e.g. from :func:`init_model`).
        image: :class:`MedicalImage`, a volume path, or the output of
            :func:`preprocess_image` (then used as is).
        tile_size: ``None`` runs the whole volume at once. Otherwise (z, y, x) window size in
            network-input voxels (one int: cubic), rounded up to a multiple of
            ``pad_multiple``; windows overlap by ``overlap`` voxels (default: a quarter of the
            window, rounded up to ``pad_multiple``) and are blended.
        overlap: (z, y, x) overlap of neighbouring windows in input voxels.
        amp: mixed precision (fp16 autocast); ``None``: on when the model is on a GPU.
            Ignored on CPU.
        spacing: network-input voxel size (mm) used by :func:`preprocess_image`.
        blend: ``'cosine'`` or ``'linear'`` weight ramps across overlaps.
        pad_multiple: (z, y, x) multiple the input is padded to with air. ``None``: the
            coarse stride (4, 16, 16), or no padding for a model with
            ``pad_at_inference=False`` (the released SAM / UAE networks, which the reference
            code runs on the image as it is; their maps then equal the reference's everywhere,
            borders included). Tiled embedding always pads to the coarse stride.
        progress: show a progress bar over windows.

    Returns:
        :class:`EmbeddingMaps` on the model's device, float32, unit length over channels,
        cropped to ``ceil(unpadded input size / stride)`` per level.

    Tiling tolerance (cosine similarity between tiled and whole-volume maps, measured with
    random-init SAM; docs/en/advanced_guides/tiled_inference.md): 64 x 128 x 128 windows
    on a chest CT: fine mean 0.9998 (min 0.9965), coarse mean 0.996 (min 0.97); 32 x 64 x 64
    windows (SAM tiny, worst case): fine 0.997, coarse 0.94. The coarse map sees the whole
    window: use large windows.
    """
    device = model_device(model)
    if amp is None:
        amp = device.type == 'cuda'
    if amp and device.type != 'cuda':
        warnings.warn('amp=True ignored: mixed precision is used on GPU only.')
        amp = False
    if blend not in ('cosine', 'linear'):
        raise InvalidInputError(f"blend must be 'cosine' or 'linear', got {blend!r}.")
    if pad_multiple is None:
        pad_multiple = (DEFAULT_PAD_MULTIPLE if tile_size is not None
                        or getattr(model, 'pad_at_inference', True) else (1, 1, 1))
    pre = image if (isinstance(image, MedicalImage) and image.meta.get(PREPROCESSED_KEY)) \
        else preprocess_image(image, spacing=spacing, pad_multiple=pad_multiple)
    unpadded = tuple(pre.meta['unpadded_shape'])
    source_grid = GridGeometry.from_dict(pre.meta['source_grid'])
    input_grid = GridGeometry(unpadded, pre.spacing, pre.origin, pre.direction)
    arr = torch.from_numpy(np.ascontiguousarray(pre.array, dtype=np.float32))
    shape = tuple(arr.shape)
    mult = tuple(int(v) for v in pad_multiple)
    info: Dict[str, Any] = {}

    if tile_size is None:
        outputs = forward_features(model, arr[None, None].to(device), amp)
        outputs = {k: v[0] for k, v in outputs.items()}
        strides = map_strides(shape, outputs, declared_strides(model, outputs))
        info['tiles'] = 1
    else:
        outputs, strides, info = embed_tiled(model, arr, device, amp, tile_size, overlap,
                                             mult, blend, progress)
    maps = {}
    for k, v in outputs.items():
        keep = [min(int(math.ceil(n / s)), m)
                for n, s, m in zip(unpadded, strides[k], v.shape[1:])]
        maps[k] = _renormalise(v[:, :keep[0], :keep[1], :keep[2]].contiguous())
    meta = {'source_path': pre.meta.get('source_path'), 'modality': pre.meta.get('modality'),
            'input_spacing': float(pre.meta.get('input_spacing', spacing)),
            'orientation': pre.meta.get('orientation'), 'amp': bool(amp), **info}
    return EmbeddingMaps(maps, strides, input_grid, source_grid, model_identity(model), meta)
