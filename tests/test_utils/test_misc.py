import json
import math

import numpy as np
import pytest
import torch

from mmanat.utils import to_plain


def test_to_plain_converts_numpy_and_torch_recursively():
    value = {1: np.float32(0.5), 'a': (np.int64(3), np.bool_(True)),
             'arr': np.arange(4).reshape(2, 2), 't': torch.tensor([1.5, 2.5]),
             's': torch.tensor(7), 'f64': np.float64(2.25), 'none': None, 'obj': object}
    out = to_plain(value)
    assert out['1'] == 0.5 and type(out['1']) is float
    assert out['a'] == [3, True] and type(out['a'][0]) is int and type(out['a'][1]) is bool
    assert out['arr'] == [[0, 1], [2, 3]] and type(out['arr'][0][0]) is int
    assert out['t'] == [1.5, 2.5] and out['s'] == 7
    assert type(out['f64']) is float  # numpy.float64 is a float subclass: made plain too
    assert out['none'] is None and out['obj'] == str(object)
    json.dumps(out)  # JSON-ready


@pytest.mark.parametrize('nan_to_none', [False, True])
def test_to_plain_non_finite(nan_to_none):
    out = to_plain([float('nan'), np.float32('inf'), np.array([np.nan, 1.0])],
                   nan_to_none=nan_to_none)
    if nan_to_none:
        assert out == [None, None, [None, 1.0]]
        json.dumps(out, allow_nan=False)
    else:
        assert math.isnan(out[0]) and out[1] == math.inf and math.isnan(out[2][0])


def test_to_plain_is_loadable_with_weights_only(tmp_path):
    meta = to_plain({'spacing': np.array([2.0, 2.0]), 'n': np.int32(4), 'x': np.float64(1)})
    torch.save(meta, tmp_path / 'm.pt')
    assert torch.load(tmp_path / 'm.pt', weights_only=True) == {'spacing': [2.0, 2.0], 'n': 4,
                                                                  'x': 1.0}
