"""Pack the two SAM views into the tensors the model consumes."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform

from mmanat.registry import TRANSFORMS
from mmanat.utils.exceptions import InvalidInputError


@TRANSFORMS.register_module()
class PackSAMInputs(BaseTransform):
    """Final transform of the SAM two-view pipeline.

    Output (one sample)::

        {'inputs': FloatTensor (2, 1, D, H, W)       # view 0 and view 1, normalised
         'data_samples': dict(
             coords=FloatTensor (2, 3, D, H, W),     # world LPS mm (x, y, z) per voxel
             valid=BoolTensor (2, D, H, W),          # voxel inside the original image
             [labels=LongTensor (2, D, H, W)],       # only when a label map was cropped
             [query_mask=BoolTensor (2, D, H, W)],   # only with view_query_mask
             meta=dict(subject_id, img_path, modality, scales, crop_boxes, overlap,
                       seed_world, centres_world, view_spacing, view_origins,
                       view_directions, pad_value, augment))}

    Required keys: ``view_imgs``, ``view_coords``, ``view_valid``. Optional:
    ``view_labels`` and ``view_query_mask`` (2, D, H, W), the voxels that may be drawn as
    fine-level queries (UAE-M stage 2: the MR body mask at every voxel of both views, from
    ``RandomInterModalityCrop(with_masks=True)``; the released fine loss draws its queries
    from MR foreground only, reference
    alibaba-damo-academy/self-supervised-anatomical-embedding-v2,
    sam/models/frameworks/sam_v2_uniform_cross_volume_mask_dual_head_MRI_CT.py,
    ``single_inter_fine_loss``). :class:`SAMDataPreprocessor` stacks and pads it into
    ``data_samples['query_mask']`` and ``SAM.loss`` hands it to the fine pair sampler.
    ``two_view_meta`` entries (including the crop's own copy ``query_mask``, the same
    array) are kept in ``meta`` as they are.

    Args:
        meta_keys: keys of ``results`` copied into ``meta`` (``None`` when absent).
    """

    def __init__(self, meta_keys: Sequence[str] = ('subject_id', 'img_path', 'modality')):
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        missing = [k for k in ('view_imgs', 'view_coords', 'view_valid') if k not in results]
        if missing:
            raise InvalidInputError(f'PackSAMInputs: results lack {missing}; the pipeline must '
                                    'contain RandomTwoViewCrop before PackSAMInputs.')
        imgs = np.ascontiguousarray(results['view_imgs'], dtype=np.float32)
        coords = np.ascontiguousarray(results['view_coords'], dtype=np.float32)
        valid = np.ascontiguousarray(results['view_valid'], dtype=bool)
        if imgs.ndim != 4 or coords.shape != (imgs.shape[0], 3) + imgs.shape[1:] \
                or valid.shape != imgs.shape:
            raise InvalidInputError(
                f'PackSAMInputs: inconsistent shapes view_imgs {imgs.shape}, view_coords '
                f'{coords.shape}, view_valid {valid.shape}; expected (V, D, H, W), '
                '(V, 3, D, H, W), (V, D, H, W).')
        # every meta key is present (None when the item has none), so items from different
        # datasets (e.g. synthetic subjects and real volumes) collate into one batch
        meta = {k: results.get(k) for k in self.meta_keys}
        tv = dict(results.get('two_view_meta') or {})
        meta.update(tv)
        geoms = results.get('view_geometries')
        if geoms:
            meta['view_spacing'] = np.stack([g['spacing'] for g in geoms])
            meta['view_origins'] = np.stack([g['origin'] for g in geoms])
            meta['view_directions'] = np.stack([g['direction'] for g in geoms])
        if 'view_pad_value' in results:
            meta['pad_value'] = results['view_pad_value']
        data_sample = dict(coords=torch.from_numpy(coords), valid=torch.from_numpy(valid),
                           meta=meta)
        if results.get('view_labels') is not None:
            data_sample['labels'] = torch.from_numpy(
                np.ascontiguousarray(results['view_labels'], dtype=np.int64))
        if results.get('view_query_mask') is not None:
            query = np.ascontiguousarray(results['view_query_mask'], dtype=bool)
            if query.shape != imgs.shape:
                raise InvalidInputError(
                    f'PackSAMInputs: view_query_mask has shape {query.shape}, expected the '
                    f'shape of view_imgs {imgs.shape} (V, D, H, W); it must come from the '
                    'same crop (e.g. RandomInterModalityCrop(with_masks=True)).')
            data_sample['query_mask'] = torch.from_numpy(query)
        return dict(inputs=torch.from_numpy(imgs)[:, None], data_samples=data_sample)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'
