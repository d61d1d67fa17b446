import time

import numpy as np
import pytest

from mmanat.evaluation.baselines import (IdentityMethod, SitkAffineMethod,
                                         SitkBSplineFromIdentityMethod, SitkBSplineMethod,
                                         default_baselines, register_affine,
                                         transform_points)
from mmanat.structures import MedicalImage
from mmanat.utils.exceptions import InvalidInputError

SHIFT = np.array([6.0, -4.0, 5.0])  # mm, anatomy moves by this from template to target


def _blobs(shift=(0.0, 0.0, 0.0)):
    """A 40^3 volume at 2 mm (origin non-zero) with three Gaussian blobs of different
    brightness, moved by ``shift`` mm (world)."""
    spacing, origin = 2.0, np.array([-40.0, -30.0, 10.0])
    zz, yy, xx = np.meshgrid(*[np.arange(40)] * 3, indexing='ij')
    world = np.stack([xx, yy, zz], -1) * spacing + origin
    centres = np.array([[0.0, 0.0, 50.0], [15.0, 20.0, 40.0], [-15.0, 5.0, 65.0]])
    arr = np.zeros((40, 40, 40), np.float32)
    for c, amp, sig in zip(centres + np.asarray(shift), (1000, 600, 800), (9.0, 6.0, 7.0)):
        arr += amp * np.exp(-np.sum((world - c) ** 2, -1) / (2 * sig ** 2))
    return MedicalImage(arr, spacing=spacing, origin=origin, modality='MR'), centres


def test_identity_is_exact():
    img, centres = _blobs()
    pts = centres + 0.123
    out = IdentityMethod()(img, pts, img)
    np.testing.assert_array_equal(out, pts)
    assert out is not pts


def test_affine_recovers_translation_direction():
    """Template = fixed, target = moving: the transform maps template points to the target,
    so a point moves by +SHIFT (not -SHIFT)."""
    template, centres = _blobs()
    target, _ = _blobs(SHIFT)
    t0 = time.perf_counter()
    res = register_affine(template, target, preset='quick', spacing=None, threads=1)
    assert time.perf_counter() - t0 < 15
    pred = res.map_points(centres)
    err = np.linalg.norm(pred - (centres + SHIFT), axis=1)
    assert err.max() < 2.5 and err.mean() < 1.5, (pred - centres, err)
    # identity would be |SHIFT| = 8.8 mm off; the opposite direction 17.5 mm
    assert res.seconds > 0
    # fixed sampling seed + one thread: repeatable (seed 0 would mean the wall clock)
    again = register_affine(template, target, preset='quick', spacing=None, threads=1)
    np.testing.assert_allclose(again.map_points(centres), pred, rtol=0, atol=1e-6)
    # vectorised affine path == SimpleITK TransformPoint
    loop = np.array([res.transform.TransformPoint(tuple(p)) for p in centres])
    np.testing.assert_allclose(transform_points(res.transform, centres), loop, atol=1e-9)


def test_bspline_method_runs_and_improves_on_identity():
    template, centres = _blobs()
    target, _ = _blobs(SHIFT)
    method = SitkBSplineMethod('quick', spacing=None, bspline_iterations=5,
                               bspline_grid_mm=40.0, threads=1)
    pred = method(template, centres, target)
    assert pred.shape == centres.shape
    err = np.linalg.norm(pred - (centres + SHIFT), axis=1)
    assert err.max() < 3.0
    assert method.last_result.transform.GetName() == 'CompositeTransform'


def test_bspline_from_identity_control():
    """The identity-initialised B-spline control: a deformation only, no affine stage; it
    moves the points towards the shifted target and is a composite (identity, B-spline)."""
    template, centres = _blobs()
    target, _ = _blobs(SHIFT)
    method = SitkBSplineFromIdentityMethod('quick', spacing=None, bspline_iterations=10,
                                           bspline_grid_mm=40.0, threads=1)
    assert method.name == 'identity_bspline'
    pred = method(template, centres, target)
    err = np.linalg.norm(pred - (centres + SHIFT), axis=1)
    assert err.mean() < 0.6 * np.linalg.norm(SHIFT), err
    tr = method.last_result.transform
    assert tr.GetName() == 'CompositeTransform'
    aff = tr.GetNthTransform(0)
    np.testing.assert_allclose(aff.GetParameters(), (1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0))


def test_presets_and_options():
    names = [m.name for m in default_baselines(quick=True)]
    assert names == ['identity', 'sitk_affine', 'sitk_bspline', 'ants_affine', 'ants_syn']
    assert [m.name for m in default_baselines(names=['identity'])] == ['identity']
    with pytest.raises(InvalidInputError, match='unknown registration options'):
        SitkAffineMethod('quick', iterations=3)
    with pytest.raises(InvalidInputError, match='preset'):
        SitkAffineMethod('fast')
