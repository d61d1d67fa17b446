"""Running the embedding network on a whole volume or on overlapping windows (tiles).

Tiled inference runs the network on overlapping windows whose corners lie on multiples of
the coarse stride (so every window's maps line up voxel-for-voxel with the whole volume's
grids) and blends them with weights that ramp (linearly or with a cosine) across each
overlap. Arrays are (z, y, x); sizes are in network-input voxels.
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch

from ..utils.exceptions import InvalidInputError


def forward_features(model, x: torch.Tensor, amp: bool, inference: bool = False,
                     cpu_bf16: bool = False) -> Dict[str, torch.Tensor]:
    """One forward pass of the embedding network, without gradients.

    Args:
        model: a module with ``extract_feat((N, 1, D, H, W)) -> dict(fine, coarse[,
            semantic])``; an inference copy from
            :func:`mmanat.apis.fast_inference.inference_model` gets its input in the memory
            format it was built for (``channels_last_3d``).
        x: the input ``(N, 1, D, H, W)`` on the model's device.
        amp: run under fp16 autocast (CUDA).
        inference: run under ``torch.inference_mode`` (else ``torch.no_grad``); the
            outputs may then be inference tensors (usable, not modifiable in place, outside
            that mode) in any memory format.
        cpu_bf16: run under bfloat16 autocast when ``x`` is on the CPU.

    Returns:
        The ``fine``, ``coarse`` (and ``semantic``) maps as float32 ``(N, C, d, h, w)``.

    Raises:
        InvalidInputError: ``extract_feat`` does not return such a dict.
    """
    fast = getattr(model, 'mmanat_fast_inference', None) or {}
    if fast.get('channels_last') and x.dim() == 5:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    if amp:
        autocast = torch.autocast(device_type='cuda', dtype=torch.float16)
    else:
        autocast = torch.autocast(device_type='cpu', dtype=torch.bfloat16,
                                  enabled=bool(cpu_bf16) and x.device.type == 'cpu')
    with (torch.inference_mode() if inference else torch.no_grad()), autocast:
        out = model.extract_feat(x)
    if not isinstance(out, dict) or 'fine' not in out or 'coarse' not in out:
        raise InvalidInputError(
            f'{type(model).__name__}.extract_feat must return dict(fine=..., coarse=...[, '
            f'semantic=...]), got {type(out).__name__}'
            + (f' with keys {sorted(out)}' if isinstance(out, dict) else '') + '.')
    return {k: v.float() for k, v in out.items() if k in ('fine', 'coarse', 'semantic')}


def declared_strides(model: torch.nn.Module, outputs: Dict[str, torch.Tensor]
                     ) -> Optional[Dict[str, Tuple[int, int, int]]]:
    """The (z, y, x) strides a model declares for its outputs (``fine_stride``,
    ``coarse_stride``, ``semantic_stride`` attributes, as :class:`mmanat.models.SAM` has), or
    ``None`` when it does not declare one for every output."""
    out = {}
    for k in outputs:
        s = getattr(model, f'{k}_stride', None)
        if s is None or len(tuple(s)) != 3:
            return None
        out[k] = tuple(int(v) for v in s)
    return out


def map_strides(shape_in: Sequence[int], outputs: Dict[str, torch.Tensor],
                declared: Optional[Dict[str, Tuple[int, int, int]]] = None
                ) -> Dict[str, Tuple[int, int, int]]:
    """The (z, y, x) stride of each output map relative to an input of ``shape_in``.

    Args:
        shape_in: (z, y, x) input size in voxels.
        outputs: level -> map whose last three dimensions are (z, y, x).
        declared: the strides the model declares (:func:`declared_strides`); with them an
            unpadded input works: each map size must lie between ``floor`` and ``ceil`` of
            input size / stride (strided convolutions round up, a floor-mode pool down).

    Returns:
        level -> integer (z, y, x) stride.

    Raises:
        InvalidInputError: a map size does not fit the input size.
    """
    strides = {}
    for k, v in outputs.items():
        out_shape = tuple(v.shape[-3:])
        if declared is not None:
            s = declared[k]
            if all(n // st <= m <= -(-n // st) for n, m, st in zip(shape_in, out_shape, s)):
                strides[k] = tuple(s)
                continue
            raise InvalidInputError(
                f'the network maps an input of size {tuple(shape_in)} to a {k} map of size '
                f'{out_shape}, which does not fit its declared stride {tuple(s)}.')
        s = []
        for n, m in zip(shape_in, out_shape):
            if m < 1 or n % m:
                raise InvalidInputError(
                    f'the network maps an input of size {tuple(shape_in)} to a {k} map of '
                    f'size {out_shape}, not an integer stride; the input must be padded to a '
                    'multiple of the coarse stride (preprocess_image pad_multiple).')
            s.append(n // m)
        strides[k] = tuple(s)
    return strides


def _ramp(n: int, left: int, right: int, kind: str) -> torch.Tensor:
    """Per-axis blending weight of a window of ``n`` voxels whose first ``left`` and last
    ``right`` voxels overlap a neighbouring window: across an overlap it rises from ~0 at the
    window edge (where zero padding corrupts the features most) to 1, linearly or as a cosine;
    two neighbours' weights sum to 1 in an overlap of equal length. (Giving the outer part of
    each overlap weight 0 was measured worse for the coarse map.)"""
    w = torch.ones(n, dtype=torch.float64)

    def prof(m):
        t = (torch.arange(m, dtype=torch.float64) + 0.5) / m
        return t if kind == 'linear' else torch.sin(0.5 * math.pi * t) ** 2

    if left > 0:
        w[:left] *= prof(left)
    if right > 0:
        w[n - right:] *= prof(right).flip(0)
    return w


def _tile_starts(n: int, t: int, step: int):
    if t >= n:
        return [0]
    starts = list(range(0, n - t, step))
    if starts[-1] != n - t:
        starts.append(n - t)
    return starts


def _round_up(v: int, m: int) -> int:
    return int(math.ceil(v / m) * m)


def _triple_int(value, what: str, minimum: int):
    a = np.asarray(value).reshape(-1)
    if a.size == 1:
        a = np.repeat(a, 3)
    if a.size != 3 or not np.all(np.equal(np.mod(a, 1), 0)) or np.any(a < minimum):
        raise InvalidInputError(f'{what} must be one or three ints >= {minimum} (z, y, x), '
                                f'got {value!r}.')
    return [int(v) for v in a]


def embed_tiled(model, arr: torch.Tensor, device, amp: bool, tile_size, overlap,
                mult: Tuple[int, int, int], blend: str, progress: bool,
                inference: bool = False, cpu_bf16: bool = False):
    """Run the network on overlapping windows of a padded volume and blend the maps.

    Args:
        model: as in :func:`forward_features`.
        arr: the padded, normalised input volume ``(D, H, W)`` (z, y, x), float32.
        device: the model's device.
        amp: fp16 autocast.
        tile_size: (z, y, x) window size (one int: cubic), rounded up to ``mult``.
        overlap: (z, y, x) overlap of neighbouring windows, rounded up to ``mult``;
            ``None``: a quarter of the window.
        mult: the network's total stride (z, y, x).
        blend: ``'cosine'`` or ``'linear'`` weight ramps across overlaps.
        progress: show a progress bar over windows.
        inference, cpu_bf16: as in :func:`forward_features`.

    Returns:
        ``(outputs, strides, info)``: level -> blended ``(C, d, h, w)`` map (not yet
        re-normalised), level -> (z, y, x) stride, and ``dict(tiles, tile_size, overlap,
        blend)``.

    Raises:
        InvalidInputError: bad ``tile_size`` / ``overlap``, or an overlap not smaller than
            the window.
    """
    shape = tuple(arr.shape)
    if any(n % m for n, m in zip(shape, mult)):
        # the last window starts at n - t: off the coarse grid unless n is a multiple too
        raise InvalidInputError(
            f'tiled embedding needs a volume padded to a multiple of {tuple(mult)} (z, y, x) '
            f'voxels, got {shape}: preprocess it with preprocess_image(..., pad_multiple='
            f'{tuple(mult)}) or pass the original image and let embed() preprocess it.')
    tile = [min(_round_up(t, m), n) for t, m, n in
            zip(_triple_int(tile_size, 'tile_size', 1), mult, shape)]
    if overlap is None:
        ov = [_round_up(t // 4, m) if t < n else 0 for t, m, n in zip(tile, mult, shape)]
    else:
        ov = [_round_up(o, m) for o, m in zip(_triple_int(overlap, 'overlap', 0), mult)]
    for t, o, n in zip(tile, ov, shape):
        if t < n and o >= t:
            raise InvalidInputError(
                f'overlap {ov} must be smaller than the tile size {tile} (z, y, x voxels, '
                f'both rounded to multiples of {mult}).')
    starts = [_tile_starts(n, t, t - o) for n, t, o in zip(shape, tile, ov)]
    boxes = [(z, y, x) for z in starts[0] for y in starts[1] for x in starts[2]]
    acc: Dict[str, torch.Tensor] = {}
    wsum: Dict[str, torch.Tensor] = {}
    strides = None
    it = boxes
    if progress:
        from tqdm import tqdm
        it = tqdm(boxes, desc='embedding tiles', unit='tile', leave=False)
    for box in it:
        sl = tuple(slice(a, a + t) for a, t in zip(box, tile))
        out = forward_features(model, arr[sl][None, None].to(device), amp, inference,
                               cpu_bf16)
        out = {k: v[0] for k, v in out.items()}
        if strides is None:
            strides = map_strides(tile, out)
            for k, v in out.items():
                full = [n // s for n, s in zip(shape, strides[k])]
                acc[k] = torch.zeros((v.shape[0], *full), dtype=torch.float32, device=device)
                wsum[k] = torch.zeros(full, dtype=torch.float32, device=device)
        for k, v in out.items():
            s = strides[k]
            ramps = []
            for ax in range(3):
                a, t, n = box[ax], tile[ax], shape[ax]
                # overlap with the previous / next window along this axis (0 at the borders)
                idx = starts[ax].index(a)
                left = (starts[ax][idx - 1] + t - a) if idx > 0 else 0
                right = (a + t - starts[ax][idx + 1]) if idx + 1 < len(starts[ax]) else 0
                ramps.append(_ramp(t // s[ax], left // s[ax], right // s[ax], blend))
            w = (ramps[0][:, None, None] * ramps[1][None, :, None]
                 * ramps[2][None, None, :]).to(device=device, dtype=torch.float32)
            lsl = tuple(slice(a // si, (a + t) // si) for a, t, si in zip(box, tile, s))
            acc[k][(slice(None),) + lsl] += v * w
            wsum[k][lsl] += w
    outputs = {k: acc[k] / wsum[k].clamp_min(1e-12) for k in acc}
    info = dict(tiles=len(boxes), tile_size=tuple(tile), overlap=tuple(ov), blend=blend)
    return outputs, strides, info
