"""TorchioViewIntensity: torchio intensity transforms per view; spatial ones refused."""
import numpy as np
import pytest
import torch

from mmanat.registry import TRANSFORMS
from mmanat.utils.exceptions import InvalidInputError


def _results(shape=(6, 8, 10)):
    rng = np.random.default_rng(0)
    views = rng.uniform(10, 100, size=(2, ) + shape).astype(np.float32)
    geoms = [dict(spacing=(2.0, 2.0, 2.0)), dict(spacing=(1.0, 3.0, 5.0))]
    return dict(view_imgs=views, view_geometries=geoms)


def test_gamma_changes_intensities_but_keeps_shape_and_order():
    t = TRANSFORMS.build(dict(type='TorchioViewIntensity',
                              transforms=[dict(type='RandomGamma', log_gamma=(0.5, 0.5))]))
    res = _results()
    before = res['view_imgs'].copy()
    out = t(res)['view_imgs']
    assert out.shape == before.shape and out.dtype == np.float32
    # RandomGamma rescales nothing here: x ** exp(0.5) elementwise, so the (z, y, x) order of
    # every voxel is preserved exactly through torchio's (x, y, z) layout
    np.testing.assert_allclose(out, before ** np.exp(0.5), rtol=1e-4)


def test_views_get_independent_draws():
    torch.manual_seed(0)
    t = TRANSFORMS.build(dict(type='TorchioViewIntensity',
                              transforms=[dict(type='RandomNoise', std=(5.0, 5.0))]))
    res = _results()
    before = res['view_imgs'].copy()
    out = t(res)['view_imgs']
    d0, d1 = out[0] - before[0], out[1] - before[1]
    assert 4.0 < d0.std() < 6.0 and 4.0 < d1.std() < 6.0
    assert not np.allclose(d0, d1)


def test_blur_in_mm_uses_each_view_spacing():
    t = TRANSFORMS.build(dict(type='TorchioViewIntensity',
                              transforms=[dict(type='RandomBlur', std=(4.0, 4.0))]))
    res = _results(shape=(12, 12, 12))
    out = t(res)['view_imgs']
    # spacing is (x, y, z) in mm: along z (array axis 0) 4 mm are 2 voxels of view 0 but
    # 0.8 voxel of view 1 (5 mm), along x (axis 2) 2 voxels vs 4 voxels (1 mm)
    assert np.diff(out[0], axis=0).std() < np.diff(out[1], axis=0).std()
    assert np.diff(out[0], axis=2).std() > np.diff(out[1], axis=2).std()


def test_spatial_and_unknown_transforms_are_refused():
    with pytest.raises(InvalidInputError, match='intensity-only'):
        TRANSFORMS.build(dict(type='TorchioViewIntensity',
                              transforms=[dict(type='RandomAffine')]))
    with pytest.raises(InvalidInputError, match='no transform named'):
        TRANSFORMS.build(dict(type='TorchioViewIntensity', transforms=[dict(type='Nope')]))
    with pytest.raises(InvalidInputError, match='view_imgs'):
        TRANSFORMS.build(dict(type='TorchioViewIntensity',
                              transforms=[dict(type='RandomGamma')]))({})
