"""Pack the augmented views of a radiograph for the Adam model."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import BaseDataElement

from mmanat.registry import TRANSFORMS
from mmanat.utils.exceptions import InvalidInputError


@TRANSFORMS.register_module()
class PackTwoViewInputs(BaseTransform):
    """Final transform of the Adam pipeline.

    Output (one sample)::

        {'inputs': FloatTensor (V, C, S, S),
         'data_samples': BaseDataElement(metainfo: the ``meta_keys`` present,
                                         gt_label: FloatTensor (num_classes,) if present)}

    Required key: ``views`` (from :class:`TwoViewXrayAugment`). Single-view pipelines may give
    ``img`` of shape ``(C, S, S)`` or ``(S, S)`` instead (packed as ``(1, C, S, S)``).
    """

    def __init__(self, meta_keys: Sequence[str] = ('img_path', 'sample_idx', 'ad_cell',
                                                   'ad_box', 'seed')):
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        if 'views' in results:
            views = np.asarray(results['views'], dtype=np.float32)
        elif results.get('img') is not None:
            views = np.asarray(results['img'], dtype=np.float32)
            views = views[None, None] if views.ndim == 2 else views[None]
        else:
            raise InvalidInputError('PackTwoViewInputs needs results["views"] (put '
                                    'TwoViewXrayAugment before it) or results["img"].')
        if views.ndim != 4:
            raise InvalidInputError(f'PackTwoViewInputs: views must be (V, C, S, S), got '
                                    f'{views.shape}.')
        sample = BaseDataElement(metainfo={k: results[k] for k in self.meta_keys
                                           if k in results})
        if results.get('gt_label') is not None:
            sample.gt_label = torch.as_tensor(np.asarray(results['gt_label'],
                                                         dtype=np.float32))
        return dict(inputs=torch.from_numpy(np.ascontiguousarray(views)), data_samples=sample)
