"""Released-format SAM / UAE checkpoints built from the reference fixture's weight rule.

``tests/data/reference_sam/`` holds numbers produced by the published SAM / UAE network code
(its README explains them): the exact state-dict keys of the three released models, a rule
that fills every tensor from its key name, two inputs and the embeddings the reference network
returns for them. With the rule a test builds a checkpoint in the released mmcv 1.x format
(``{'meta', 'state_dict'}``) without the real 130 MB files.
"""
import math
import os.path as osp
import zlib
from collections import OrderedDict
from functools import lru_cache
from typing import Dict

import torch

FIXTURE_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'data',
                       'reference_sam')

#: mmanat kind -> fixture file stem
FIXTURES = {'sam': 'sam', 'uae_s': 'samv2', 'uae_m': 'crosssam'}


@lru_cache(maxsize=None)
def load_fixture(kind: str) -> dict:
    """The fixture of one released model (``'sam'``, ``'uae_s'``, ``'uae_m'``)."""
    return torch.load(osp.join(FIXTURE_DIR, FIXTURES[kind] + '.pt'), weights_only=True)


def rule_tensor(key: str, shape, dtype: str) -> torch.Tensor:
    """The tensor the fixture's weight rule assigns to ``key`` (see its README)."""
    if key.endswith('num_batches_tracked'):
        return torch.tensor(0, dtype=torch.int64)
    g = torch.Generator().manual_seed(zlib.crc32(key.encode('utf-8')))
    w = torch.randn(tuple(shape), generator=g, dtype=torch.float64)
    if key.endswith('.weight') and len(shape) >= 2:
        w = w / math.sqrt(math.prod(shape[1:]))
    elif key.endswith('.weight'):
        w = 1.0 + 0.1 * w
    elif key.endswith('.bias'):
        w = 0.1 * w
    elif key.endswith('.running_mean'):
        w = 0.1 * w
    elif key.endswith('.running_var'):
        w = 1.0 + 0.5 * w.abs()
    assert dtype == 'float32', (key, dtype)
    return w.to(torch.float32)


def released_state_dict(kind: str) -> 'OrderedDict[str, torch.Tensor]':
    """Every key of the released ``kind`` model, filled by the weight rule, in its order."""
    return OrderedDict((k, rule_tensor(k, shape, dtype))
                       for k, shape, dtype in load_fixture(kind)['keys'])


def write_released_checkpoint(path: str, kind: str, *, prefix: str = '',
                              meta: Dict = None, drop=(), extra=None) -> str:
    """Save a released-format checkpoint of ``kind`` at ``path``.

    Args:
        prefix: prepended to every key (``'module.'`` as saved from DDP).
        meta: the ``meta`` entry (default: what an mmcv 1.x runner writes, without config).
        drop: keys to leave out; ``extra``: additional ``{key: tensor}``.
    """
    state = released_state_dict(kind)
    for k in drop:
        del state[k]
    state.update(extra or {})
    state = OrderedDict((prefix + k, v) for k, v in state.items())
    if meta is None:
        meta = dict(mmcv_version='1.4.7', time='Tue Mar  1 00:00:00 2022', iter=20000)
    torch.save(dict(meta=meta, state_dict=state), path)
    return path
