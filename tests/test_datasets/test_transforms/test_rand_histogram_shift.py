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


# --------------------------------------------------------------- mode='released'
def test_invert_first_is_curve_of_the_inverted_intensity():
    yp = np.array([0.0, 0.1, 0.2, 0.9, 1.0])
    x = np.array([-50.0, 13.75, 77.5, 205.0])  # u = 0, 0.25, 0.5, 1
    # curve then inversion: 1 - yp(u); inversion then curve (released): yp(1 - u)
    np.testing.assert_allclose(histogram_shift(x, -50, 205, yp, invert=True),
                               -50 + 255 * np.array([1.0, 0.9, 0.8, 0.0]), atol=1e-3)
    np.testing.assert_allclose(histogram_shift(x, -50, 205, yp, invert=True, invert_first=True),
                               -50 + 255 * np.array([1.0, 0.9, 0.2, 0.0]), atol=1e-3)


def test_released_draws():
    t = RandHistogramShift(prob=0.9, invert_prob=0.3, rescale_prob=0.3, mode='released')
    np.random.seed(0)
    n = 2000
    draws = [t._draw() for _ in range(n)]
    applied = [d for d in draws if d['yp'] is not None]
    tol = 4 * np.sqrt(0.25 / n)
    assert abs(len(applied) / n - 0.9) < tol
    # all or nothing: no inversion and no rescaling without a curve
    assert not any(d['invert'] or d['rescaled'] for d in draws if d['yp'] is None)
    assert abs(np.mean([d['invert'] for d in applied]) - 0.3) < 2 * tol
    assert abs(np.mean([d['rescaled'] for d in applied]) - 0.3) < 2 * tol
    assert all(d['invert_first'] for d in draws)
    for d in applied:
        yp, k = d['yp'], d['num_points']
        assert 5 <= k <= 15 and len(yp) == k and yp[0] == 0.0 and yp[-1] == 1.0
        assert np.all(np.diff(yp) >= 0)
        # sequential draw: each point below the next reference point linspace(0, 1, k)[i + 1]
        assert np.all(yp[1:-1] <= np.linspace(0, 1, k)[2:] + 1e-12)
    # the sorted-uniform draw of the default mode does not respect that bound
    t_ind = RandHistogramShift(prob=1.0)
    above = 0
    for _ in range(200):
        d = t_ind._draw()
        k = d['num_points']
        above += bool(np.any(d['yp'][1:-1] > np.linspace(0, 1, k)[2:]))
    assert above > 0
    with pytest.raises(InvalidInputError, match='mode'):
        RandHistogramShift(mode='reference')


def test_released_mode_on_views_uses_each_views_body_mask():
    img, mask = _volume(4)
    views = np.stack([img.array, img.array[:, ::-1]])
    masks = np.stack([mask, mask[:, ::-1]])
    t = RandHistogramShift(prob=1.0, invert_prob=1.0, rescale_prob=0.0, mode='released')
    np.random.seed(1)
    res = t(dict(view_imgs=views.copy(), view_body_mask=masks.astype(np.uint8),
                 view_valid=np.ones_like(masks)))
    for v in range(2):
        out = res['view_imgs'][v]
        np.testing.assert_array_equal(out[~masks[v]], views[v][~masks[v]])
        assert _monotone_sign(views[v][masks[v]], out[masks[v]]) == -1
        assert res['histogram_shift'][v]['invert_first']
    # prob = 0: untouched
    t0 = RandHistogramShift(prob=0.0, invert_prob=1.0, mode='released')
    res0 = t0(dict(view_imgs=views.copy(), view_body_mask=masks))
    np.testing.assert_array_equal(res0['view_imgs'], views)
