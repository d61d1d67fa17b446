"""SimpleITK helpers of :mod:`mmanat.registration.sitk_registration`: point mapping, affine
conversion and the registration options (the registrations run in
tests/test_evaluation/test_baselines.py and tests/test_apis/test_registration.py)."""
import numpy as np
import pytest

from mmanat.registration import (PRESETS, affine_to_sitk, refine_bspline, registration_config,
                                 transform_points)
from mmanat.structures import MedicalImage
from mmanat.utils.exceptions import InvalidInputError

sitk = pytest.importorskip('SimpleITK')


def test_affine_to_sitk_and_transform_points_match_itk():
    rng = np.random.default_rng(2)
    m = np.eye(3) + rng.normal(scale=0.1, size=(3, 3))
    t = np.array([4.0, -7.5, 12.25])
    aff = affine_to_sitk(m, t)
    pts = rng.uniform(-100, 100, size=(20, 3))
    np.testing.assert_allclose(transform_points(aff, pts), pts @ m.T + t, atol=1e-9)
    # an affine with a centre (the batched path must honour it) and a composite (point-wise)
    aff.SetCenter((10.0, -3.0, 5.0))
    want = np.array([aff.TransformPoint(tuple(p)) for p in pts])
    np.testing.assert_allclose(transform_points(aff, pts), want, atol=1e-9)
    comp = sitk.CompositeTransform([aff, sitk.TranslationTransform(3, (1.0, 2.0, 3.0))])
    want = np.array([comp.TransformPoint(tuple(p)) for p in pts])
    np.testing.assert_allclose(transform_points(comp, pts), want, atol=1e-9)
    assert transform_points(aff, pts[0]).shape == (1, 3)
    assert transform_points(aff, np.zeros((0, 3))).shape == (0, 3)


def test_registration_config():
    cfg = registration_config('quick', affine_iterations=7, seed=3, spacing=None)
    assert cfg['affine_iterations'] == 7 and cfg['seed'] == 3
    assert cfg['spacing'] == PRESETS['quick']['spacing']  # None keeps the preset's value
    assert registration_config() == PRESETS['default']
    with pytest.raises(InvalidInputError, match='unknown registration options'):
        registration_config('quick', iterations=3)
    with pytest.raises(InvalidInputError, match='preset'):
        registration_config('fast')
    with pytest.raises(InvalidInputError, match='same length'):
        registration_config('quick', shrink_factors=(4, 2, 1))


def test_refine_bspline_2d_and_mixed_dimensions():
    yy, xx = np.mgrid[0:40, 0:48].astype(np.float64)
    arr = np.exp(-((xx - 20) ** 2 + (yy - 18) ** 2) / 60.0) + 0.5 * np.exp(
        -((xx - 34) ** 2 + (yy - 28) ** 2) / 30.0)
    img = MedicalImage(arr.astype(np.float32), spacing=2.0, origin=(-10.0, 5.0), modality='XR')
    # every pixel in the metric: a few dozen random samples of so small an image would let
    # the B-spline drift (as it would in 3D)
    composite, info = refine_bspline(img, img, sitk.AffineTransform(2), 'quick', spacing=None,
                                     bspline_sampling_percentage=1.0, threads=1)
    assert composite.GetDimension() == 2 and len(info['mesh']) == 2
    # the same image: the refinement stays close to the identity (within a pixel)
    pts = img.index_to_world(np.array([[10.0, 10.0], [30.0, 25.0]]))
    np.testing.assert_allclose(transform_points(composite, pts), pts, atol=1.0)
    np.testing.assert_allclose(affine_to_sitk(np.eye(2) * 2, [1.0, -1.0]).TransformPoint(
        (1.0, 2.0)), (3.0, 3.0))
    vol = MedicalImage(np.zeros((8, 8, 8), np.float32), spacing=1.0)
    with pytest.raises(InvalidInputError, match='a 3D target .* 2D template'):
        refine_bspline(img, vol, sitk.AffineTransform(2), 'quick')


def test_metric_sampling_draws_at_least_min_samples():
    import SimpleITK as sitk

    from mmanat.registration.sitk_registration import MIN_SAMPLES, _sampling_fraction
    small = sitk.Image([90, 90], sitk.sitkFloat32)  # a radiograph at 4 mm
    big = sitk.Image([100, 100, 60], sitk.sitkFloat32)  # a chest CT at 4 mm
    assert _sampling_fraction(small, 0.02, MIN_SAMPLES) == pytest.approx(MIN_SAMPLES / 8100)
    assert _sampling_fraction(big, 0.02, MIN_SAMPLES) == 0.02  # volumes keep the preset
    assert _sampling_fraction(small, 0.02, 10 ** 6) == 1.0
