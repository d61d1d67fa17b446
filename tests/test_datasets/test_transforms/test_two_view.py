"""The SAM two-view pipeline: shapes, exact coordinate maps, overlap, padding, intensities."""
import numpy as np
import pytest
import torch

from mmanat.datasets.transforms.intensity import normalize_ct
from mmanat.datasets.transforms.intensity_augment import RandomIntensityAugment
from mmanat.datasets.transforms.pack_sam_inputs import PackSAMInputs
from mmanat.datasets.transforms.two_view_crop import (RandomTwoViewCrop, grid_world_coords,
                                                      sample_on_grid, view_grid_geometry)
from mmanat.datasets.transforms.view_intensity import (NormalizeViewIntensity,
                                                       volume_percentile_window)
from mmanat.registry import TRANSFORMS
from mmanat.structures.image import MedicalImage
from mmanat.utils.exceptions import InvalidInputError


def rotation(axis, deg):
    axis = np.asarray(axis, dtype=np.float64)
    axis /= np.linalg.norm(axis)
    a = np.deg2rad(deg)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * (k @ k)


def field(w):
    """A smooth analytic intensity of world position (mm)."""
    return (0.5 * w[..., 0] - 0.3 * w[..., 1] + 0.8 * w[..., 2]
            + 20.0 * np.sin(w[..., 0] / 30.0) + 10.0 * np.cos(w[..., 2] / 25.0))


def analytic_volume(shape=(40, 100, 100), spacing=(3.0, 2.7, 3.2), origin=(-140.0, 85.5, 300.0),
                    direction=None, modality='CT'):
    direction = rotation((1.0, 2.0, 3.0), 25.0) if direction is None else direction
    img = MedicalImage(np.zeros(shape, np.float32), spacing=spacing, origin=origin,
                       direction=direction, modality=modality)
    k, j, i = np.meshgrid(*[np.arange(n) for n in shape], indexing='ij')
    world = img.index_to_world(np.stack([i, j, k], -1))
    img.array = field(world).astype(np.float32)
    return img


@pytest.fixture(scope='module')
def volume():
    return analytic_volume()


def interior(image, coords):
    """Voxels whose world position maps to a source index inside [0, n-1] (no edge
    replication)."""
    idx = image.world_to_index(np.moveaxis(coords, 0, -1).astype(np.float64))
    return np.all((idx >= 0) & (idx <= image.size - 1), axis=-1)


def test_registered_and_shapes(volume):
    np.random.seed(0)
    pipeline = [TRANSFORMS.build(dict(type='RandomTwoViewCrop')),
                TRANSFORMS.build(dict(type='NormalizeViewIntensity')),
                TRANSFORMS.build(dict(type='RandomIntensityAugment')),
                TRANSFORMS.build(dict(type='PackSAMInputs'))]
    results = dict(image=volume, modality='CT', subject_id='s0', img_path='x.nii.gz')
    for t in pipeline:
        results = t(results)
    assert set(results) == {'inputs', 'data_samples'}
    assert results['inputs'].shape == (2, 1, 32, 96, 96)
    assert results['inputs'].dtype == torch.float32
    ds = results['data_samples']
    assert ds['coords'].shape == (2, 3, 32, 96, 96) and ds['coords'].dtype == torch.float32
    assert ds['valid'].shape == (2, 32, 96, 96) and ds['valid'].dtype == torch.bool
    meta = ds['meta']
    assert meta['subject_id'] == 's0' and meta['modality'] == 'CT'
    assert meta['crop_boxes'].shape == (2, 2, 3) and len(meta['scales']) == 2
    assert isinstance(meta['overlap'], bool)
    # normalised CT lies in [-50, 205] up to the added noise
    assert -80 < float(results['inputs'].min()) and float(results['inputs'].max()) < 235


def test_view_intensity_equals_field_at_coords(volume):
    """The strong test: with an oblique, offset, anisotropic volume and random rotations,
    every interior view voxel holds f(coords) up to trilinear interpolation error."""
    np.random.seed(3)
    t = RandomTwoViewCrop(rotation_range=15)
    for _ in range(2):
        res = t(dict(image=volume, modality='CT'))
        coords = res['view_coords'].astype(np.float64)
        for v in range(2):
            inside = interior(volume, coords[v])
            assert inside.mean() > 0.3
            expect = field(np.moveaxis(coords[v], 0, -1))
            err = np.abs(res['view_imgs'][v] - expect)[inside]
            assert err.max() < 0.15, err.max()  # f'' is tiny: linear interpolation ~exact
            # valid covers every interior voxel; invalid voxels hold the pad value
            assert res['view_valid'][v][inside].all()
            assert np.all(res['view_imgs'][v][~res['view_valid'][v]] == res['view_pad_value'])


def test_coords_are_the_view_grid(volume):
    np.random.seed(1)
    res = RandomTwoViewCrop()(dict(image=volume))
    for v in range(2):
        s = res['two_view_meta']['scales'][v]
        assert 0.8 <= s <= 1.2
        c = res['view_coords'][v].astype(np.float64)
        # neighbouring voxels are 2 mm * s apart along each axis, axes follow the direction
        for axis, arr_axis in ((0, 3), (1, 2), (2, 1)):
            step = np.diff(c, axis=arr_axis).reshape(3, -1).mean(1)
            np.testing.assert_allclose(np.linalg.norm(step), 2.0 * s, rtol=1e-4)
            np.testing.assert_allclose(step / np.linalg.norm(step), volume.direction[:, axis],
                                       atol=1e-4)
        geom = res['view_geometries'][v]
        np.testing.assert_allclose(c, grid_world_coords(geom, np.float64), atol=1e-3)
        # view centre = crop box centre; the box is ceil(patch * s * 1.05) 2-mm voxels
        box = res['two_view_meta']['crop_boxes'][v]
        size_mm = (box[1] - box[0]) * volume.spacing
        np.testing.assert_allclose(size_mm, np.ceil(np.array([96, 96, 32]) * s * 1.05) * 2.0,
                                   atol=1e-6)
        centre = volume.index_to_world(box.mean(0))
        np.testing.assert_allclose(c[:, 15:17, 47:49, 47:49].reshape(3, -1).mean(1), centre,
                                   atol=1e-3)


def test_overlap_seed_inside_both_views(volume):
    np.random.seed(7)
    t = RandomTwoViewCrop(patch_size=(16, 48, 48), overlap_prob=1.0)
    for _ in range(12):
        res = t(dict(image=volume))
        meta = res['two_view_meta']
        assert meta['overlap'] is True
        seed = meta['seed_world']
        assert volume.contains_world(seed[None])[0]
        for g in res['view_geometries']:
            grid = MedicalImage(np.zeros((1, 1, 1)), spacing=g['spacing'], origin=g['origin'],
                                direction=g['direction'])
            idx = grid.world_to_index(seed)
            assert np.all(idx >= 0) and np.all(idx <= g['size'] - 1), idx


def test_no_overlap_mode_gives_disjoint_views_sometimes():
    big = analytic_volume(shape=(60, 60, 60), spacing=(8.0, 8.0, 8.0), direction=np.eye(3))
    np.random.seed(11)
    t = RandomTwoViewCrop(patch_size=(8, 24, 24), overlap_prob=0.0)
    disjoint = 0
    for _ in range(10):
        res = t(dict(image=big))
        assert res['two_view_meta']['overlap'] is False
        assert res['two_view_meta']['seed_world'] is None
        lo = res['view_coords'].reshape(2, 3, -1).min(-1)
        hi = res['view_coords'].reshape(2, 3, -1).max(-1)
        disjoint += bool(np.any((lo[0] > hi[1]) | (lo[1] > hi[0])))
    assert disjoint >= 1


def test_overlap_probability_close_to_p(volume):
    np.random.seed(5)
    t = RandomTwoViewCrop(patch_size=(4, 8, 8), overlap_prob=0.8)
    flags = [t(dict(image=volume))['two_view_meta']['overlap'] for _ in range(200)]
    assert 0.7 < np.mean(flags) < 0.9


def test_tiny_volume_is_padded_and_invalid():
    tiny = analytic_volume(shape=(6, 10, 12), spacing=(1.0, 1.2, 2.0), origin=(5.0, -3.0, 7.0))
    tiny.array[:] = 100.0
    np.random.seed(2)
    res = RandomTwoViewCrop(pad_value=-7.0)(dict(image=tiny))
    assert res['view_imgs'].shape == (2, 32, 96, 96)
    valid = res['view_valid']
    for v in range(2):
        s = res['two_view_meta']['scales'][v]
        n_expect = np.prod(tiny.size * tiny.spacing) / (2.0 * s) ** 3
        assert 0.6 * n_expect < valid[v].sum() < 1.6 * n_expect
        assert np.all(res['view_imgs'][v][~valid[v]] == -7.0)
        np.testing.assert_allclose(res['view_imgs'][v][valid[v]], 100.0, atol=1e-4)
        # valid voxels lie inside the image, invalid ones outside (voxel-edge extent)
        pts = np.moveaxis(res['view_coords'][v], 0, -1).astype(np.float64)
        inside = tiny.contains_world(pts, margin=0.5 + 1e-3)
        assert np.all(inside[valid[v]])
        assert not np.any(tiny.contains_world(pts[~valid[v]], margin=0.5 - 1e-3))


def test_label_is_resampled_nearest(volume):
    lab_arr = (volume.array > np.median(volume.array)).astype(np.int16) * 3
    label = volume.with_array(lab_arr, modality=None)
    np.random.seed(4)
    res = RandomTwoViewCrop(with_label=True)(dict(image=volume, label=label))
    assert res['view_labels'].shape == (2, 32, 96, 96)
    assert set(np.unique(res['view_labels'])) <= {0, 3}
    # away from the boundary, the label agrees with the thresholded field at the coords
    thr = np.median(volume.array)
    f = field(np.moveaxis(res['view_coords'].astype(np.float64), 1, -1))
    sure = (np.abs(f - thr) > 8) & res['view_valid']
    assert sure.sum() > 1000
    np.testing.assert_array_equal(res['view_labels'][sure] == 3, f[sure] > thr)


def test_sample_on_grid_identity_and_validation():
    img = analytic_volume(shape=(8, 9, 10), direction=np.eye(3))
    geom = dict(origin=img.origin, spacing=img.spacing, direction=img.direction,
                size=img.size)
    vals, valid = sample_on_grid(img, geom, pad_value=0.0)
    np.testing.assert_allclose(vals, img.array, atol=1e-3)
    assert valid.all()
    with pytest.raises(InvalidInputError):
        sample_on_grid(img.with_array(img.array[0]), geom, 0.0)
    with pytest.raises(InvalidInputError):
        RandomTwoViewCrop()(dict(image=np.zeros((4, 4, 4))))
    with pytest.raises(InvalidInputError):
        RandomTwoViewCrop(scale_range=(1.2, 0.8))
    g = view_grid_geometry(img, (4.5, 4.0, 3.5), (3, 3, 3), 2.0)
    np.testing.assert_allclose(g['origin'] + 2.0 * np.ones(3) @ g['direction'].T,
                               img.index_to_world((4.5, 4.0, 3.5)))


def test_normalize_views_ct_and_mr(volume):
    np.random.seed(0)
    res = RandomTwoViewCrop()(dict(image=volume, modality='CT'))
    raw, raw_pad = res['view_imgs'].copy(), res['view_pad_value']
    out = NormalizeViewIntensity()(res)
    np.testing.assert_allclose(out['view_imgs'], normalize_ct(raw))
    assert out['view_pad_value'] == pytest.approx(float(normalize_ct(np.float32(raw_pad))))

    mr = volume.with_array(volume.array - volume.array.min(), modality='MR')
    res = RandomTwoViewCrop()(dict(image=mr, modality='MR'))
    raw = res['view_imgs'].copy()
    out = NormalizeViewIntensity()(res)
    lo, hi = np.percentile(mr.array, (0.2, 99.8))
    assert out['intensity_window'] == pytest.approx((lo, hi), rel=1e-4)
    expect = (np.clip(raw, lo, hi) - lo) * 255.0 / (hi - lo) - 50.0
    np.testing.assert_allclose(out['view_imgs'], expect, atol=1e-3)
    # a window stored by the cache wins over the estimate
    res = RandomTwoViewCrop()(dict(image=mr, modality='MR', intensity_window=(0.0, 10.0)))
    out = NormalizeViewIntensity()(res)
    assert out['view_imgs'].max() == pytest.approx(205.0)
    with pytest.raises(InvalidInputError, match='modality'):
        NormalizeViewIntensity()(dict(view_imgs=np.zeros((2, 2, 2, 2)), modality='OT'))
    assert volume_percentile_window(np.arange(1000.0), (0, 100), max_samples=10**6) == \
        (0.0, 999.0)


def test_intensity_augment_blur_noise_and_coords_untouched(volume):
    np.random.seed(0)
    res = RandomTwoViewCrop()(dict(image=volume))
    coords = res['view_coords'].copy()
    noise = np.random.RandomState(0).standard_normal(res['view_imgs'].shape) * 20
    res['view_imgs'] = (res['view_imgs'] + noise).astype(np.float32)
    before = res['view_imgs'].copy()
    out = RandomIntensityAugment(blur_prob=1.0, blur_sigma_mm=(3.0, 4.0), noise_prob=0.0)(res)
    # blurring removes most of the white noise: the high-frequency energy drops
    assert np.diff(out['view_imgs'], axis=-1).std() < 0.5 * np.diff(before, axis=-1).std()
    np.testing.assert_array_equal(out['view_coords'], coords)
    sig = [a['blur_sigma_mm'] for a in out['two_view_meta']['augment']]
    assert all(3.0 <= s <= 4.0 for s in sig)
    res2 = dict(view_imgs=np.zeros((2, 8, 8, 8), np.float32))
    out2 = RandomIntensityAugment(blur_prob=0.0, noise_prob=1.0, noise_std=(2.0, 2.0))(res2)
    assert out2['view_imgs'].std() == pytest.approx(2.0, rel=0.15)
    with pytest.raises(InvalidInputError):
        RandomIntensityAugment(blur_prob=2.0)


def test_pack_rejects_missing_keys():
    with pytest.raises(InvalidInputError, match='RandomTwoViewCrop'):
        PackSAMInputs()(dict(image=None))
