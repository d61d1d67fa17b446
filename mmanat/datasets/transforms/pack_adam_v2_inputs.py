"""Pack the views of :class:`AdamV2Views` for the Adam v2 model."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import BaseDataElement

from mmanat.registry import TRANSFORMS
from mmanat.utils.exceptions import InvalidInputError


@TRANSFORMS.register_module()
class PackAdamV2Inputs(BaseTransform):
    """Final transform of the Adam v2 pipeline. Output (one sample)::

        {'inputs': {'global_views': FloatTensor (6, C, G, G),
                    'local_views': FloatTensor (L, C, g, g)},
         'data_samples': BaseDataElement(metainfo: the ``meta_keys`` present)}
    """

    def __init__(self, meta_keys: Sequence[str] = ('img_path', 'sample_idx', 'ad_box',
                                                   'ad_granularity', 'seed')):
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        if 'views' not in results or 'local_views' not in results:
            raise InvalidInputError('PackAdamV2Inputs needs results["views"] and '
                                    'results["local_views"]: put AdamV2Views before it.')
        g = np.asarray(results['views'], dtype=np.float32)
        loc = np.asarray(results['local_views'], dtype=np.float32)
        if g.ndim != 4 or loc.ndim != 4:
            raise InvalidInputError(f'PackAdamV2Inputs: views must be (V, C, S, S), got '
                                    f'{g.shape} and {loc.shape}.')
        sample = BaseDataElement(metainfo={k: results[k] for k in self.meta_keys
                                           if k in results})
        inputs = dict(global_views=torch.from_numpy(np.ascontiguousarray(g)),
                      local_views=torch.from_numpy(np.ascontiguousarray(loc)))
        return dict(inputs=inputs, data_samples=sample)
