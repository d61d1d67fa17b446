"""SAM intensity normalisation: CT window, MR percentiles, the registered transform."""
import numpy as np
import pytest

from mmanat.datasets.transforms.intensity import (NormalizeIntensity, normalize_ct,
                                                  normalize_intensity, normalize_mr)
from mmanat.registry import TRANSFORMS
from mmanat.structures import MedicalImage
from mmanat.utils.exceptions import InvalidInputError


def test_normalize_ct_window():
    hu = np.array([-3000, -1024, 0, 1023.5, 3071, 5000], dtype=np.int16)
    out = normalize_ct(hu)
    assert out.dtype == np.float32
    expected = (np.clip(hu.astype(float), -1024, 3071) + 1024) / 4095 * 255 - 50
    np.testing.assert_allclose(out, expected, atol=1e-4)
    assert out[0] == out[1] == -50.0 and out[-1] == out[-2] == pytest.approx(205.0)
    assert out[2] == pytest.approx(1024 / 4095 * 255 - 50, abs=1e-4)


def test_normalize_mr_percentiles():
    rng = np.random.default_rng(0)
    arr = rng.gamma(2.0, 100.0, size=(20, 30, 40)).astype(np.float32)
    arr[0, 0, :5] = 1e6  # outliers above the 99.8th percentile
    out = normalize_mr(arr)
    lo, hi = np.percentile(arr, [0.2, 99.8])
    assert out.dtype == np.float32
    assert out.min() == pytest.approx(-50.0) and out.max() == pytest.approx(205.0)
    inside = (arr > lo) & (arr < hi)
    np.testing.assert_allclose(out[inside], (arr[inside] - lo) / (hi - lo) * 255 - 50, rtol=1e-5,
                               atol=1e-3)
    assert np.mean(out <= -50 + 1e-6) == pytest.approx(0.002, abs=0.001)


def test_normalize_mr_mask_sets_percentiles():
    arr = np.zeros((4, 10, 10), np.float32)
    arr[:, 2:8, 2:8] = np.linspace(100, 200, 36 * 4).reshape(4, 6, 6)
    mask = arr > 0
    out = normalize_mr(arr, mask=mask)
    lo, hi = np.percentile(arr[mask], [0.2, 99.8])
    assert out[0, 0, 0] == pytest.approx(-50.0)  # background clipped to the body's low end
    np.testing.assert_allclose(out[mask].max(), 205.0, atol=1e-4)
    assert lo > 99  # computed inside the mask, not dragged to 0 by the background
    with pytest.raises(InvalidInputError, match='mask shape'):
        normalize_mr(arr, mask=mask[0])


def test_constant_image_does_not_divide_by_zero():
    out = normalize_mr(np.full((3, 3), 7.0))
    assert np.all(out == -50.0)


def test_normalize_intensity_dispatch():
    arr = np.array([[-1024.0, 3071.0]])
    np.testing.assert_array_equal(normalize_intensity(arr, 'ct'), normalize_ct(arr))
    np.testing.assert_array_equal(normalize_intensity(arr, 'MR'), normalize_mr(arr))
    for bad in ('PET', None, 'OT'):
        with pytest.raises(InvalidInputError, match='modality'):
            normalize_intensity(arr, bad)


def test_transform_uses_image_modality_and_keeps_geometry(oblique_volume):
    t = TRANSFORMS.build(dict(type='NormalizeIntensity'))
    assert isinstance(t, NormalizeIntensity)
    results = t(dict(image=oblique_volume))
    out = results['image']
    assert isinstance(out, MedicalImage) and out.array.dtype == np.float32
    assert out.same_geometry(oblique_volume) and out.modality == 'CT'
    np.testing.assert_allclose(out.array, normalize_ct(oblique_volume.array))


def test_transform_modality_precedence(oblique_volume):
    mr_like = oblique_volume.with_array(oblique_volume.array + 1024, modality='CT')
    by_results = NormalizeIntensity()(dict(image=mr_like, modality='MR'))['image']
    np.testing.assert_allclose(by_results.array, normalize_mr(mr_like.array))
    by_arg = NormalizeIntensity(modality='CT')(dict(image=mr_like, modality='MR'))['image']
    np.testing.assert_allclose(by_arg.array, normalize_ct(mr_like.array))


def test_transform_unknown_modality_raises(oblique_volume):
    with pytest.raises(InvalidInputError, match='modality unknown'):
        NormalizeIntensity()(dict(image=oblique_volume.with_array(oblique_volume.array,
                                                                  modality=None)))
    with pytest.raises(InvalidInputError, match='OT'):
        NormalizeIntensity()(dict(image=oblique_volume.with_array(oblique_volume.array,
                                                                  modality='OT')))
    with pytest.raises(InvalidInputError, match="no key 'img'"):
        NormalizeIntensity(keys='img')(dict(image=oblique_volume))


def test_transform_mask_key_and_arrays():
    arr = np.zeros((3, 8, 8), np.float32)
    arr[:, 2:6, 2:6] = np.arange(48, dtype=np.float32).reshape(3, 4, 4) + 10
    mask = MedicalImage((arr > 0).astype(np.uint8))
    out = NormalizeIntensity(keys=('image', 'other'), modality='MR', mask_key='body_mask')(
        dict(image=MedicalImage(arr), other=arr.copy(), body_mask=mask))
    np.testing.assert_allclose(out['image'].array, normalize_mr(arr, mask=arr > 0))
    np.testing.assert_allclose(out['other'], normalize_mr(arr, mask=arr > 0))
    assert 'mask_key' in repr(NormalizeIntensity())


def test_real_ct_and_mr_ranges(sample_file):
    from mmanat.fileio import read_volume
    ct = read_volume(sample_file('lung2'))
    mr = read_volume(sample_file('brain1'))
    for image in (ct, mr):
        out = NormalizeIntensity()(dict(image=image))['image'].array
        assert out.dtype == np.float32
        assert out.min() >= -50 - 1e-4 and out.max() <= 205 + 1e-4
    out_mr = NormalizeIntensity()(dict(image=mr))['image'].array
    assert out_mr.max() == pytest.approx(205.0)
