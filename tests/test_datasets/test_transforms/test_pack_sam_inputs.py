"""PackSAMInputs: the optional per-view query mask (UAE-M stage 2, MR foreground from
RandomInterModalityCrop(with_masks=True)) is packed as a bool tensor beside valid."""
import numpy as np
import pytest
import torch

from mmanat.datasets.transforms.pack_sam_inputs import PackSAMInputs
from mmanat.utils.exceptions import InvalidInputError

SHAPE = (4, 6, 5)


def _results(seed=0, **extra):
    rng = np.random.default_rng(seed)
    res = dict(view_imgs=rng.normal(size=(2, ) + SHAPE).astype(np.float32),
               view_coords=rng.normal(size=(2, 3) + SHAPE),
               view_valid=rng.random((2, ) + SHAPE) < 0.9, subject_id='s0')
    res.update(extra)
    return res


def test_query_mask_is_packed_as_a_bool_tensor():
    rng = np.random.default_rng(1)
    query = rng.random((2, ) + SHAPE) < 0.3
    res = _results(view_query_mask=query, two_view_meta=dict(query_mask=query, overlap=True))
    ds = PackSAMInputs()(res)['data_samples']
    assert ds['query_mask'].dtype == torch.bool and tuple(ds['query_mask'].shape) == query.shape
    assert np.array_equal(ds['query_mask'].numpy(), query)
    # the crop's own meta copy is left in place
    assert np.array_equal(ds['meta']['query_mask'], query) and ds['meta']['overlap']
    # any nonzero value counts as inside (uint8 masks)
    ds = PackSAMInputs()(_results(view_query_mask=query.astype(np.uint8) * 3))['data_samples']
    assert np.array_equal(ds['query_mask'].numpy(), query)


def test_no_query_mask_no_key():
    ds = PackSAMInputs()(_results())['data_samples']
    assert set(ds) == {'coords', 'valid', 'meta'}
    ds = PackSAMInputs()(_results(view_query_mask=None))['data_samples']
    assert 'query_mask' not in ds


def test_query_mask_shape_must_match_the_views():
    with pytest.raises(InvalidInputError, match='view_query_mask'):
        PackSAMInputs()(_results(view_query_mask=np.ones((2, 4, 6, 4), bool)))
