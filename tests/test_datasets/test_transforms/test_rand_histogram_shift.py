"""RandHistogramShift (UAE-M contrast augmentation): monotone or exactly inverted inside the
body mask, untouched outside, probabilities respected, works on volumes and on SAM views."""
import numpy as np
import pytest

from mmanat.datasets.transforms.pack_sam_inputs import PackSAMInputs
from mmanat.datasets.transforms.rand_histogram_shift import (RandHistogramShift,
                                                             histogram_shift)
from mmanat.datasets.transforms.two_view_crop import RandomTwoViewCrop
from mmanat.datasets.transforms.view_intensity import NormalizeViewIntensity
from mmanat.registry import TRANSFORMS
from mmanat.structures.image import MedicalImage
from mmanat.utils.exceptions import InvalidInputError


def _volume(seed=0, shape=(8, 24, 24)):
    rng = np.random.default_rng(seed)
    arr = rng.uniform(-50, 205, size=shape).astype(np.float32)
    mask = np.zeros(shape, bool)
    mask[:, 4:20, 5:19] = True
    arr[~mask] = -50.0 + rng.uniform(0, 5, size=(~mask).sum()).astype(np.float32)
    return MedicalImage(arr, spacing=(2.0, 2.0, 3.0), modality='MR'), mask


def _monotone_sign(x, y):
    """+1 if y is non-decreasing in x, -1 if non-increasing, 0 otherwise."""
    order = np.argsort(x, kind='stable')
    d = np.diff(y[order].astype(np.float64))
    dx = np.diff(x[order].astype(np.float64))
    d = d[dx > 0]
    if np.all(d >= -1e-4):
        return 1
    if np.all(d <= 1e-4):
        return -1
    return 0


def test_monotone_or_inverted_inside_mask_outside_untouched():
    img, mask = _volume()
    t = RandHistogramShift(prob=1.0, invert_prob=0.5, rescale_prob=0.5)
    np.random.seed(3)
    seen = set()
    for _ in range(40):
        res = t(dict(image=img, body_mask=img.with_array(mask.astype(np.uint8))))
        out = res['image'].array
        draw = res['histogram_shift'][0]
        assert draw['yp'] is not None and 5 <= draw['num_points'] <= 15
        np.testing.assert_array_equal(out[~mask], img.array[~mask])
        sign = _monotone_sign(img.array[mask], out[mask])
        assert sign == (-1 if draw['invert'] else 1)
        # not the identity: a random curve really changes the contrast
        assert np.abs(out[mask] - img.array[mask]).max() > 1.0
        lo, hi = draw['range']
        assert out[mask].min() >= lo - 1e-3 and out[mask].max() <= hi + 1e-3
        seen.add((draw['invert'], draw['rescaled']))
    assert len(seen) == 4


def test_exact_inversion_without_curve():
    img, mask = _volume(1)
    t = RandHistogramShift(prob=0.0, invert_prob=1.0, rescale_prob=1.0)
    res = t(dict(image=img, body_mask=mask))
    lo, hi = img.array[mask].min(), img.array[mask].max()
    np.testing.assert_allclose(res['image'].array[mask], lo + hi - img.array[mask], atol=1e-4)
    np.testing.assert_array_equal(res['image'].array[~mask], img.array[~mask])
    # inverting twice restores the image (the masked min-max is preserved by an inversion)
    res2 = t(dict(image=res['image'], body_mask=mask))
    np.testing.assert_allclose(res2['image'].array, img.array, atol=1e-3)


def test_fixed_range_curve_function():
    x = np.linspace(-50, 205, 1001)
    yp = np.array([0.0, 0.1, 0.2, 0.9, 1.0])
    y = histogram_shift(x, -50, 205, yp)
    assert np.all(np.diff(y) >= -1e-4)
    # control points are hit exactly
    np.testing.assert_allclose(histogram_shift(np.array([-50, 13.75, 77.5, 205.0]), -50, 205, yp),
                               [-50, -50 + 0.1 * 255, -50 + 0.2 * 255, 205], atol=1e-3)
    np.testing.assert_allclose(histogram_shift(x, -50, 205, None, invert=True), 155 - x,
                               atol=1e-3)


def test_probabilities_respected():
    img, mask = _volume(2, shape=(2, 8, 8))
    t = RandHistogramShift()  # p = 0.9, invert 0.3, rescale 0.3
    np.random.seed(0)
    n = 2000
    draws = [t._draw() for _ in range(n)]
    curve = np.mean([d['yp'] is not None for d in draws])
    inv = np.mean([d['invert'] for d in draws])
    resc = np.mean([d['rescaled'] for d in draws])
    tol = 4 * np.sqrt(0.25 / n)  # 4 sigma
    assert abs(curve - 0.9) < tol and abs(inv - 0.3) < tol and abs(resc - 0.3) < tol
    counts = np.bincount([d['num_points'] for d in draws if d['yp'] is not None])
    assert counts[:5].sum() == 0 and len(counts) == 16 and np.all(counts[5:] > 0)
    # no curve, no inversion -> the image is unchanged (identity draws happen ~7 %)
    t0 = RandHistogramShift(prob=0.0, invert_prob=0.0)
    res = t0(dict(image=img, body_mask=mask))
    np.testing.assert_array_equal(res['image'].array, img.array)


def test_computed_mask_and_two_view_pipeline():
    # a CT "body" cylinder in air: the mask is computed with the HU rule
    shape = (24, 64, 64)
    zz, yy, xx = np.meshgrid(*[np.arange(n) for n in shape], indexing='ij')
    body = (yy - 32) ** 2 + (xx - 32) ** 2 < 22 ** 2
    arr = np.where(body, 40.0 + 200.0 * np.sin(xx / 5.0) * np.cos(yy / 7.0), -1000.0)
    img = MedicalImage(arr.astype(np.float32), spacing=(4.0, 4.0, 4.0), modality='CT')
    t = RandHistogramShift(prob=1.0, invert_prob=1.0, mask_min_object_size=50)
    res = t(dict(image=img))
    np.testing.assert_array_equal(res['image'].array[~body], img.array[~body])
    assert np.abs(res['image'].array[body] - img.array[body]).max() > 10

    np.random.seed(5)
    pipe = [RandomTwoViewCrop(patch_size=(8, 24, 24), spacing=4.0, overlap_prob=1.0,
                              seed_margin=(1, 2, 2)),
            NormalizeViewIntensity(),
            TRANSFORMS.build(dict(type='RandHistogramShift', prob=1.0, invert_prob=0.5)),
            PackSAMInputs()]
    results = dict(image=img, modality='CT',
                   body_mask=img.with_array(body.astype(np.uint8)))
    for tr in pipe[:2]:
        results = tr(results)
    before = results['view_imgs'].copy()
    results = pipe[2](results)
    rec = results['two_view_meta']['histogram_shift']
    assert len(rec) == 2
    for v in range(2):
        # body voxels of the view = the body mask resampled on the view grid
        w = results['view_coords'][v].reshape(3, -1).T
        idx = np.rint(img.world_to_array_index(w)).astype(int)
        inside = np.all((idx >= 0) & (idx < np.array(shape)), 1)
        in_body = np.zeros(len(w), bool)
        in_body[inside] = body[tuple(idx[inside].T)]
        in_body &= results['view_valid'][v].reshape(-1)
        b, a = before[v].reshape(-1), results['view_imgs'][v].reshape(-1)
        np.testing.assert_array_equal(a[~in_body], b[~in_body])
        assert _monotone_sign(b[in_body], a[in_body]) == (-1 if rec[v]['invert'] else 1)
    packed = pipe[3](results)
    assert tuple(packed['inputs'].shape) == (2, 1, 8, 24, 24)


def test_bad_arguments():
    with pytest.raises(InvalidInputError):
        RandHistogramShift(prob=1.5)
    with pytest.raises(InvalidInputError):
        RandHistogramShift(num_control_points=(1, 3))
    with pytest.raises(InvalidInputError, match='neither'):
        RandHistogramShift()(dict(other=1))
