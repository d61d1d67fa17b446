"""Turning an image into :class:`EmbeddingMaps` (SAM, Yan et al., IEEE TMI 2022,
arXiv:2012.02383: a global (coarse) and a local (fine) embedding per voxel).

Pipeline::

    image --preprocess_image (LPS, 2 mm, normalised, padded)--> network (whole volume or
    tiles) --> fine (stride 2), coarse (stride (4, 16, 16)) [, semantic (stride 2)] maps,
    cropped to ceil(unpadded size / stride), unit length over channels, and tagged with
    their exact grid geometry.

A 2D image (a radiograph) is embedded as the one-slice volume of
:mod:`mmanat.structures.planar` by a 2D SAM (``Planar``-wrapped 2D convolutions, fine stride
(1, 4, 4), coarse (1, 32, 32)): resampled in-plane to the model's ``input_spacing``, padded
in-plane to its coarse stride; the maps are ``(C, 1, h, w)`` and remember that they are 2D
(``meta[PLANAR_KEY]``), so that matching answers in 2D.
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Dict, Optional, Sequence

import numpy as np
import torch

from ..structures.embedding_map import EmbeddingMaps, GridGeometry
from ..structures.image import MedicalImage
from ..structures.planar import PLANAR_KEY, is_planar
from ..utils.device import model_device
from ..utils.exceptions import InvalidInputError
from .fast_inference import inference_model
from .model import model_identity, model_spatial_dims
from .preprocessing import (DEFAULT_PAD_MULTIPLE, DEFAULT_PAD_MULTIPLE_2D, DEFAULT_SPACING,
                            PREPROCESSED_KEY, as_medical_image, preprocess_image)
from .tiling import declared_strides, embed_tiled, forward_features, map_strides


def _renormalise(t: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(t, dim=0, eps=1e-12)


def _check_dims(model: torch.nn.Module, image: MedicalImage, planar: bool) -> None:
    """Refuse a 2D image for a 3D network and a volume for a 2D one."""
    dims = model_spatial_dims(model)
    src = image.path or '<in-memory image>'
    ident = model_identity(model).get('config') if hasattr(model, 'mmanat_identity') else \
        type(model).__name__
    if planar and dims == 3:
        raise InvalidInputError(
            f'{src}: a 2D image (shape {tuple(image.shape)}), but the model {ident} is a 3D '
            'network (SAM / UAE for CT and MR volumes); embed radiographs with a 2D SAM '
            '(checkpoints/sam2d_default.pth, configs/_base_/models/sam2d_*.py).')
    if not planar and dims == 2:
        raise InvalidInputError(
            f'{src}: a 3D volume (shape {tuple(image.shape)}), but the model {ident} is a 2D '
            'network (the 2D SAM for radiographs); embed volumes with a 3D SAM / UAE '
            '(checkpoints/sam_default.pth) or give a 2D image.')


def _planar_triple(value, what: str):
    """A 2D image's tile size / overlap: ``(y, x)`` or ``(z, y, x)`` -> ``(1, y, x)``."""
    if value is None:
        return None
    a = np.asarray(value).reshape(-1)
    if a.size == 1:
        a = np.repeat(a, 2)
    if a.size not in (2, 3):
        raise InvalidInputError(f'{what} of a 2D image must be one, two (y, x) or three '
                                f'(z, y, x) ints, got {value!r}.')
    return [1 if what == 'tile_size' else 0] + [int(v) for v in a[-2:]]


def embed(model: torch.nn.Module, image, tile_size: Optional[Sequence[int]] = None,
          overlap: Optional[Sequence[int]] = None, amp: Optional[bool] = None,
          spacing: Optional[float] = None, blend: str = 'cosine',
          pad_multiple: Optional[Sequence[int]] = None, progress: bool = False,
          optimize: bool = True, cpu_bf16: bool = False) -> EmbeddingMaps:
    """Embed one volume: fine, coarse (and semantic, when the model has it) maps with their
    grid geometry.

    Args:
        model: a model with ``extract_feat((N, 1, D, H, W)) -> dict(fine, coarse[,
            semantic])`` (e.g. from :func:`init_model`).
        image: :class:`MedicalImage` (a volume, or a 2D image such as a radiograph), an
            image path (:func:`mmanat.fileio.read_image`: a DICOM / PNG radiograph comes back
            2D), or the output of :func:`preprocess_image` (then used as is).
        tile_size: ``None`` runs the whole volume at once. Otherwise (z, y, x) window size in
            network-input voxels (one int: cubic), rounded up to a multiple of
            ``pad_multiple``; windows overlap by ``overlap`` voxels (default: a quarter of the
            window, rounded up to ``pad_multiple``) and are blended.
        overlap: (z, y, x) overlap of neighbouring windows in input voxels.
        amp: mixed precision (fp16 autocast); ``None``: on when the model is on a GPU.
            Ignored on CPU.
        spacing: network-input voxel size (mm) used by :func:`preprocess_image` (in-plane
            for 2D images); ``None``: the model's ``input_spacing`` when it has one, else
            2 mm.
        blend: ``'cosine'`` or ``'linear'`` weight ramps across overlaps.
        pad_multiple: (z, y, x) multiple the input is padded to with air. ``None``: the
            coarse stride (4, 16, 16) (2D images: ``(1, y, x)`` of the model's coarse stride,
            (1, 32, 32) when it declares none), or no padding for a model with
            ``pad_at_inference=False`` (the released SAM / UAE networks, which the reference
            code runs on the image as it is; their maps then equal the reference's everywhere,
            borders included). Tiled embedding always pads to the coarse stride.
        progress: show a progress bar over windows.
        optimize: run an inference copy of the network
            (:mod:`mmanat.apis.fast_inference`: BatchNorm folded into the convolutions,
            ``channels_last_3d`` on CPU, ``torch.inference_mode``), built once per model and
            reused until its weights change; the maps equal those of the model itself up to
            float32 rounding (max abs difference ~1e-6, tested below 1e-4). ``False`` runs
            the model as it is (the path before this option existed). A model in training
            mode is always run as it is.
        cpu_bf16: on CPU, run the network under bfloat16 autocast: about 1.5x faster again
            than ``optimize`` alone on a CPU with AVX512-BF16 (expect it slower on CPUs
            without AVX512-BF16 / AMX), at the price of the numerics (max abs difference
            4e-3 for full-size SAM, 2e-2 for SAM tiny; min cosine to the float32 maps 0.999;
            docs/en/advanced_guides/tiled_inference.md, "Faster embedding"). Off by default.

    Returns:
        :class:`EmbeddingMaps` on the model's device, float32, unit length over channels,
        cropped to ``ceil(unpadded input size / stride)`` per level. For a 2D image the maps
        are ``(C, 1, h, w)`` with ``meta[PLANAR_KEY] = True``; ``tile_size`` / ``overlap``
        are then ``(y, x)``.

    Raises:
        InvalidInputError: a 2D image for a 3D network or a volume for a 2D one (judged by
            the dimension of the backbone's convolutions), bad tiling options.

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
    if spacing is None:
        spacing = getattr(model, 'input_spacing', None) or DEFAULT_SPACING
    if not (isinstance(image, MedicalImage) and image.meta.get(PREPROCESSED_KEY)):
        image = as_medical_image(image)
    planar = is_planar(image)
    _check_dims(model, image, planar)
    if planar:
        tile_size = _planar_triple(tile_size, 'tile_size')
        overlap = _planar_triple(overlap, 'overlap')
    if pad_multiple is None:
        cs = getattr(model, 'coarse_stride', None)
        full = (1, int(cs[1]), int(cs[2])) if planar and cs is not None and len(cs) == 3 \
            else (DEFAULT_PAD_MULTIPLE_2D if planar else DEFAULT_PAD_MULTIPLE)
        pad_multiple = (full if tile_size is not None
                        or getattr(model, 'pad_at_inference', True) else (1, 1, 1))
    pre = image if image.meta.get(PREPROCESSED_KEY) \
        else preprocess_image(image, spacing=spacing, pad_multiple=pad_multiple)
    unpadded = tuple(pre.meta['unpadded_shape'])
    source_grid = GridGeometry.from_dict(pre.meta['source_grid'])
    input_grid = GridGeometry(unpadded, pre.spacing, pre.origin, pre.direction)
    arr = torch.from_numpy(np.ascontiguousarray(pre.array, dtype=np.float32))
    shape = tuple(arr.shape)
    mult = tuple(int(v) for v in pad_multiple)
    info: Dict[str, Any] = {}

    net = inference_model(model, device) if optimize else model
    inference = bool(optimize) and not model.training
    cpu_bf16 = bool(cpu_bf16) and device.type == 'cpu'
    if tile_size is None:
        outputs = forward_features(net, arr[None, None].to(device), amp, inference, cpu_bf16)
        outputs = {k: v[0] for k, v in outputs.items()}
        strides = map_strides(shape, outputs, declared_strides(model, outputs))
        info['tiles'] = 1
    else:
        outputs, strides, info = embed_tiled(net, arr, device, amp, tile_size, overlap,
                                             mult, blend, progress, inference, cpu_bf16)
    maps = {}
    for k, v in outputs.items():
        keep = [min(int(math.ceil(n / s)), m)
                for n, s, m in zip(unpadded, strides[k], v.shape[1:])]
        maps[k] = _renormalise(v[:, :keep[0], :keep[1], :keep[2]].contiguous())
    meta = {'source_path': pre.meta.get('source_path'), 'modality': pre.meta.get('modality'),
            'input_spacing': float(pre.meta.get('input_spacing', spacing)),
            'orientation': pre.meta.get('orientation'), 'amp': bool(amp),
            'optimized': net is not model, 'cpu_bf16': cpu_bf16, **info}
    if planar:
        meta[PLANAR_KEY] = True
    return EmbeddingMaps(maps, strides, input_grid, source_grid, model_identity(model), meta)
