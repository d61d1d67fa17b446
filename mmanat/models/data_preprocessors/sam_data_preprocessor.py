"""Data preprocessor of SAM: batches two-view samples (or plain volumes) on the model device."""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseDataPreprocessor

from mmanat.registry import MODELS
from mmanat.utils.exceptions import InvalidInputError


def _pad_amounts(shape: Sequence[int], divisor: Sequence[int]) -> Tuple[int, int, int]:
    return tuple(int((-n) % d) for n, d in zip(shape, divisor))


def extrapolate_coords(coords: torch.Tensor, pad: Sequence[int]) -> torch.Tensor:
    """Extend coordinate maps ``(..., 3, D, H, W)`` at the end of each spatial axis by ``pad``
    = (pz, py, px) voxels, continuing the last voxel step linearly (exact for the affine maps
    that crops/resampling produce, so pooled coordinates of padded blocks stay correct)."""
    dtype = coords.dtype
    coords = coords.double()
    for axis, p in zip((-3, -2, -1), pad):
        if not p:
            continue
        n = coords.shape[axis]
        last = coords.narrow(axis, n - 1, 1)
        step = last - coords.narrow(axis, n - 2, 1) if n >= 2 else torch.zeros_like(last)
        shape = [1] * coords.dim()
        shape[axis] = p
        k = torch.arange(1, p + 1, dtype=coords.dtype, device=coords.device).view(shape)
        coords = torch.cat([coords, last + step * k], dim=axis)
    return coords.to(dtype)


def pad_views(inputs: torch.Tensor, coords: Optional[torch.Tensor] = None,
              valid: Optional[torch.Tensor] = None, divisor: Sequence[int] = (4, 16, 16),
              pad_value: float = 0.) -> Tuple[torch.Tensor, Optional[torch.Tensor],
                                              Optional[torch.Tensor]]:
    """Pad the spatial (last three) axes at their end to multiples of ``divisor`` (z, y, x).

    ``inputs`` (..., D, H, W) gets ``pad_value``; ``coords`` (..., 3, D, H, W) is extended
    linearly (:func:`extrapolate_coords`); ``valid`` (..., D, H, W) is False on the padding.
    Nothing is copied when the sizes already fit.
    """
    pad = _pad_amounts(inputs.shape[-3:], divisor)
    if not any(pad):
        return inputs, coords, valid
    pz, py, px = pad
    inputs = F.pad(inputs, (0, px, 0, py, 0, pz), value=pad_value)
    if coords is not None:
        coords = extrapolate_coords(coords, pad)
    if valid is not None:
        valid = F.pad(valid.to(torch.uint8), (0, px, 0, py, 0, pz), value=0).bool()
    return inputs, coords, valid


def pad_mask(mask: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Pad a boolean map ``(..., D, H, W)`` at the end of each spatial axis with False up to
    ``shape`` (D', H', W') - the padding of ``valid`` in :func:`pad_views`."""
    pz, py, px = (int(n) - m for n, m in zip(shape, mask.shape[-3:]))
    if min(pz, py, px) < 0:
        raise InvalidInputError(
            f'pad_mask: the mask {tuple(mask.shape[-3:])} is larger than the padded size '
            f'{tuple(shape)}')
    mask = mask.bool()
    if not (pz or py or px):
        return mask
    return F.pad(mask.to(torch.uint8), (0, px, 0, py, 0, pz), value=0).bool()


def _stack_padded(tensors: List[torch.Tensor], pad_value: float) -> torch.Tensor:
    """Stack tensors whose last three sizes may differ, padding each at the end to the max."""
    shapes = torch.tensor([t.shape[-3:] for t in tensors])
    target = shapes.max(0).values.tolist()
    out = []
    for t in tensors:
        pz, py, px = (m - n for m, n in zip(target, t.shape[-3:]))
        out.append(F.pad(t, (0, px, 0, py, 0, pz), value=pad_value) if pz or py or px else t)
    return torch.stack(out)


@MODELS.register_module()
class SAMDataPreprocessor(BaseDataPreprocessor):
    """Moves a collated batch to the model device and stacks it.

    Training batches (from the two-view pipeline; per sample ``inputs`` (2, 1, D, H, W) and
    ``data_samples`` dict(coords=(2, 3, D, H, W) mm, valid=(2, D, H, W) bool, meta=dict)),
    collated by ``pseudo_collate`` (lists) or ``default_collate`` (stacked), become::

        dict(inputs=(B, 2, 1, D, H, W) float32,
             data_samples=dict(coords=(B, 2, 3, D, H, W), valid=(B, 2, D, H, W), metas=[...]))

    padded at the end of each axis to multiples of ``pad_size_divisor`` (padding invalid,
    coordinates extended linearly). Optional per-sample ``labels`` (2, D, H, W) are stacked
    and padded with 0 as ``data_samples['labels']``. Optional per-sample ``query_mask``
    (2, D, H, W) bool (the voxels that may be fine-level queries, e.g. the MR foreground of
    UAE-M stage 2, see :class:`PackSAMInputs`) is stacked into ``data_samples['query_mask']``
    (B, 2, D, H, W) and padded with False exactly as ``valid``; in a batch where only some
    samples carry one, the others get an all-True mask (no restriction). Batches without
    any mask have no ``query_mask`` key.

    Plain volumes (``inputs`` per sample (1, D, H, W) or a batch (B, 1, D, H, W), e.g. for
    ``mode='tensor'``/``'predict'``) are stacked (padded at the end to the largest size when
    they differ) and returned with ``data_samples`` = a list of meta dicts carrying
    ``input_shape`` (D, H, W) of each volume before batching. They are padded to
    ``pad_size_divisor`` only when ``pad_single=True`` (the network accepts any size).

    Args:
        pad_size_divisor: (z, y, x) multiple, the coarse stride (4, 16, 16).
        pad_value: intensity of padded voxels.
        pad_single: also pad plain volumes to the divisor.
        non_blocking: non-blocking host-to-device copies.
    """

    def __init__(self, pad_size_divisor: Sequence[int] = (4, 16, 16), pad_value: float = 0.,
                 pad_single: bool = False, non_blocking: bool = False):
        super().__init__(non_blocking=non_blocking)
        if len(pad_size_divisor) != 3 or min(pad_size_divisor) < 1:
            raise InvalidInputError(
                f'SAMDataPreprocessor: pad_size_divisor={pad_size_divisor!r} must be 3 '
                'positive ints (z, y, x)')
        self.pad_size_divisor = tuple(int(v) for v in pad_size_divisor)
        self.pad_value = float(pad_value)
        self.pad_single = bool(pad_single)

    @staticmethod
    def _as_batch(x: Any, name: str) -> Optional[torch.Tensor]:
        if x is None:
            return None
        if isinstance(x, torch.Tensor):
            return x
        if isinstance(x, (list, tuple)) and x and all(isinstance(t, torch.Tensor) for t in x):
            return torch.stack(list(x))
        raise InvalidInputError(
            f'SAMDataPreprocessor: {name} must be a tensor or a list of tensors, got '
            f'{type(x).__name__}')

    def forward(self, data: dict, training: bool = False) -> Dict[str, Any]:
        """Stack, cast to float32, move to the device and pad (see the class docstring)."""
        if not isinstance(data, dict) or 'inputs' not in data:
            raise InvalidInputError(
                "SAMDataPreprocessor: expected a dict with 'inputs' (and 'data_samples'), got "
                f'{type(data).__name__}')
        data = self.cast_data(data)
        inputs = data['inputs']
        samples = data.get('data_samples')
        ori_shapes = None
        if isinstance(inputs, (list, tuple)):
            if not inputs:
                raise InvalidInputError('SAMDataPreprocessor: empty batch')
            inputs = [t if t.dim() > 3 else t[None] for t in inputs]
            is_pair = inputs[0].dim() == 5
            ori_shapes = [tuple(t.shape[-3:]) for t in inputs]
            inputs = (torch.stack(inputs) if is_pair else
                      _stack_padded(inputs, self.pad_value))
        if not isinstance(inputs, torch.Tensor) or inputs.dim() not in (5, 6):
            raise InvalidInputError(
                'SAMDataPreprocessor: inputs must be (B, 2, 1, D, H, W) view pairs or '
                f'(B, 1, D, H, W) volumes, got {getattr(inputs, "shape", type(inputs))}')
        inputs = inputs.float()
        if inputs.dim() == 6:
            return self._pairs(inputs, samples)
        return self._singles(inputs, samples, ori_shapes)

    def _pairs(self, inputs: torch.Tensor, samples: Any) -> Dict[str, Any]:
        B = inputs.shape[0]
        if inputs.shape[1] != 2:
            raise InvalidInputError(
                f'SAMDataPreprocessor: view pairs must be (B, 2, 1, D, H, W), got '
                f'{tuple(inputs.shape)}')
        if isinstance(samples, (list, tuple)):
            coords = self._as_batch([s['coords'] for s in samples], 'coords')
            valid = (self._as_batch([s['valid'] for s in samples], 'valid')
                     if 'valid' in samples[0] else None)
            labels = (self._as_batch([s['labels'] for s in samples], 'labels')
                      if 'labels' in samples[0] else None)
            metas = [s.get('meta', s.get('metas', {})) for s in samples]
            query_mask = self._query_masks(samples, inputs)
        elif isinstance(samples, dict):
            coords = self._as_batch(samples.get('coords'), 'coords')
            valid = self._as_batch(samples.get('valid'), 'valid')
            labels = self._as_batch(samples.get('labels'), 'labels')
            metas = samples.get('meta', samples.get('metas'))
            query_mask = self._as_batch(samples.get('query_mask'), 'query_mask')
        else:
            raise InvalidInputError(
                'SAMDataPreprocessor: view pairs need data_samples with coords (2, 3, D, H, W) '
                f'per sample; got {type(samples).__name__}')
        if coords is None or tuple(coords.shape) != (B, 2, 3) + tuple(inputs.shape[-3:]):
            raise InvalidInputError(
                f'SAMDataPreprocessor: coords must be {(B, 2, 3) + tuple(inputs.shape[-3:])}, '
                f'got {None if coords is None else tuple(coords.shape)}')
        if valid is None:
            valid = torch.ones((B, 2) + tuple(inputs.shape[-3:]), dtype=torch.bool,
                               device=inputs.device)
        valid = valid.bool()
        if query_mask is not None and tuple(query_mask.shape) != tuple(valid.shape):
            raise InvalidInputError(
                f'SAMDataPreprocessor: query_mask must be {tuple(valid.shape)} (B, 2, D, H, W) '
                f'like the views, got {tuple(query_mask.shape)}; pack it with PackSAMInputs '
                'from the same crop')
        inputs, coords, valid = pad_views(inputs, coords.float(), valid,
                                          self.pad_size_divisor, self.pad_value)
        out = dict(coords=coords, valid=valid, metas=metas)
        if query_mask is not None:  # optional (B, 2, D, H, W); padding = False, as valid
            out['query_mask'] = pad_mask(query_mask.to(valid.device), inputs.shape[-3:])
        if labels is not None:  # optional label maps (B, 2, D, H, W); padding = 0
            pz, py, px = (n - m for n, m in zip(inputs.shape[-3:], labels.shape[-3:]))
            out['labels'] = F.pad(labels.long(), (0, px, 0, py, 0, pz), value=0)
        return dict(inputs=inputs, data_samples=out)

    def _query_masks(self, samples: Sequence[dict], inputs: torch.Tensor
                     ) -> Optional[torch.Tensor]:
        """(B, 2, D, H, W) bool from the per-sample ``query_mask`` entries; samples without
        one get all True; None when no sample has one."""
        if not any(s.get('query_mask') is not None for s in samples):
            return None
        shape = (2, ) + tuple(inputs.shape[-3:])
        masks = [s['query_mask'] if s.get('query_mask') is not None else
                 torch.ones(shape, dtype=torch.bool, device=inputs.device) for s in samples]
        for i, m in enumerate(masks):
            if not isinstance(m, torch.Tensor) or tuple(m.shape) != shape:
                raise InvalidInputError(
                    f'SAMDataPreprocessor: query_mask of sample {i} must be a {shape} tensor '
                    f'(2, D, H, W) like its views, got '
                    f'{getattr(m, "shape", type(m).__name__)}')
        return torch.stack([m.to(inputs.device).bool() for m in masks])

    def _singles(self, inputs: torch.Tensor, samples: Any,
                 ori_shapes: Optional[List[tuple]] = None) -> Dict[str, Any]:
        B = inputs.shape[0]
        if ori_shapes is None:
            ori_shapes = [tuple(inputs.shape[-3:])] * B
        if isinstance(samples, (list, tuple)) and len(samples) == B:
            metas = [dict(s) if isinstance(s, dict) else dict(meta=s) for s in samples]
        else:
            metas = [dict() for _ in range(B)]
        for m, shape in zip(metas, ori_shapes):
            m.setdefault('input_shape', shape)
        if self.pad_single:
            inputs, _, _ = pad_views(inputs, None, None, self.pad_size_divisor, self.pad_value)
        return dict(inputs=inputs, data_samples=metas)
