"""The 2D SAM two-view pipeline: a radiograph lifted to a one-slice volume, two in-plane views
with exact coordinate maps (on the image slice, rotated about its normal only, sharing the
seed point when they overlap), the X-ray intensity augmentation, and the packed batch."""
import os.path as osp

import numpy as np
import pytest
import torch

from mmanat.datasets.transforms.planar_volume import ToPlanarVolume, area_resample_2d
from mmanat.datasets.transforms.two_view_crop import RandomTwoViewCrop, grid_world_coords
from mmanat.datasets.transforms.xray_view_intensity import RandomXrayViewIntensity
from mmanat.registry import TRANSFORMS
from mmanat.structures.image import MedicalImage
from mmanat.structures.planar import as_planar_volume, is_planar
from mmanat.utils.exceptions import InvalidInputError

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def rot2(deg):
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


def linear_field(x, y):
    return 0.7 * x - 0.4 * y + 3.0


def radiograph(shape=(300, 260), spacing=(0.9, 1.1), origin=(-120.0, 35.0), deg=20.0,
               fn=linear_field):
    """A 2D image (oblique, anisotropic, offset) whose pixel value is ``fn`` of its world
    position."""
    img = MedicalImage(np.zeros(shape, np.float32), spacing=spacing, origin=origin,
                       direction=rot2(deg), modality='XR')
    j, i = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing='ij')
    w = img.index_to_world(np.stack([i, j], -1).astype(np.float64))
    img.array = fn(w[..., 0], w[..., 1]).astype(np.float32)
    return img


def interior(volume, coords):
    """View voxels whose position maps to a source index inside [0, n - 1] in-plane."""
    idx = volume.world_to_index(np.moveaxis(coords, 0, -1).astype(np.float64))
    n = volume.size
    return np.all((idx[..., :2] >= 0) & (idx[..., :2] <= n[:2] - 1), axis=-1)


def test_views_lie_in_the_plane_and_their_coordinate_maps_are_exact():
    image = radiograph()
    np.random.seed(0)
    crop = RandomTwoViewCrop(patch_size=(1, 64, 48), spacing=2.0, rotation_range=15.0,
                             seed_margin=(0, 8, 8))
    for _ in range(4):
        res = crop(dict(image=image))
        volume = res['image']
        assert is_planar(volume) and volume.shape == (1, 300, 260)
        assert res['view_imgs'].shape == (2, 1, 64, 48)
        assert res['view_coords'].shape == (2, 3, 1, 64, 48)
        assert np.all(res['view_coords'][:, 2] == 0.0)  # every view voxel on z = 0
        for v in range(2):
            geom = res['view_geometries'][v]
            s = res['two_view_meta']['scales'][v]
            np.testing.assert_allclose(geom['spacing'], (2.0 * s, 2.0 * s, 1.0))
            # rotation about the plane normal only: the third axis stays (0, 0, 1)
            np.testing.assert_array_equal(geom['direction'][:, 2], (0.0, 0.0, 1.0))
            np.testing.assert_array_equal(geom['direction'][2], (0.0, 0.0, 1.0))
            angle = res['two_view_meta']['rotations'][v]
            assert angle[0] == angle[1] == 0.0 and abs(angle[2]) <= 15.0
            coords = res['view_coords'][v].astype(np.float64)
            # the map is index_to_world of the view geometry, voxel by voxel
            grid = MedicalImage(np.zeros((1, 64, 48)), spacing=geom['spacing'],
                                origin=geom['origin'], direction=geom['direction'])
            for k, j, i in ((0, 0, 0), (0, 63, 47), (0, 17, 30)):
                np.testing.assert_allclose(coords[:, k, j, i],
                                           grid.index_to_world(np.array([i, j, k], float)),
                                           atol=1e-3)
            np.testing.assert_allclose(coords, grid_world_coords(geom, np.float64), atol=1e-3)
            # and the view holds the image at those points (bilinear is exact on a plane)
            inside = interior(volume, coords)
            assert inside.mean() > 0.2
            expect = linear_field(coords[0], coords[1])
            err = np.abs(res['view_imgs'][v] - expect)[inside]
            assert err.max() < 1e-2, err.max()
            assert res['view_valid'][v][inside].all()


def test_overlapping_views_share_the_seed_point_and_world_points():
    image = as_planar_volume(radiograph())
    np.random.seed(3)
    crop = RandomTwoViewCrop(patch_size=(1, 40, 40), spacing=2.0, overlap_prob=1.0,
                             seed_margin=(0, 5, 5))
    for _ in range(10):
        res = crop(dict(image=image))
        meta = res['two_view_meta']
        assert meta['overlap'] is True
        seed = meta['seed_world']
        assert seed[2] == 0.0 and image.contains_world(seed[None])[0]
        pts = [res['view_coords'][v].reshape(3, -1).T.astype(np.float64) for v in range(2)]
        for v, g in enumerate(res['view_geometries']):
            grid = MedicalImage(np.zeros((1, 1, 1)), spacing=g['spacing'], origin=g['origin'],
                                direction=g['direction'])
            idx = grid.world_to_index(seed)
            assert abs(idx[2]) < 1e-9
            assert np.all(idx[:2] >= 0) and np.all(idx[:2] <= g['size'][:2] - 1), idx
            # the nearest voxel of each view lies within one view voxel of the seed
            d = np.linalg.norm(pts[v] - seed, axis=1).min()
            assert d <= g['spacing'][0] * np.sqrt(0.5) + 1e-3
        # many world points of view 0 have a voxel of view 1 closer than its spacing
        from scipy.spatial import cKDTree
        dist, _ = cKDTree(pts[1]).query(pts[0])
        assert (dist < res['view_geometries'][1]['spacing'][0]).sum() > 20


def test_a_2d_image_is_lifted_and_3d_patches_are_refused():
    image = radiograph(shape=(80, 90))
    np.random.seed(1)
    res = RandomTwoViewCrop(patch_size=(1, 32, 32), spacing=2.0, seed_margin=(0, 4, 4))(
        dict(image=image))
    assert is_planar(res['image']) and res['view_imgs'].shape == (2, 1, 32, 32)
    with pytest.raises(InvalidInputError, match=r'patch_size=\(1, h, w\)'):
        RandomTwoViewCrop(patch_size=(8, 32, 32))(dict(image=image))


def test_to_planar_volume_from_array_and_area_resampling():
    arr = np.random.default_rng(0).random((90, 120)).astype(np.float32)
    res = ToPlanarVolume()(dict(img=arr, spacing=(0.5, 0.25), img_path='a.png'))
    vol = res['image']
    assert 'img' not in res and res['modality'] == 'XR' and vol.modality == 'XR'
    assert vol.shape == (1, 90, 120) and is_planar(vol)
    np.testing.assert_allclose(vol.spacing, (0.5, 0.25, 1.0))
    np.testing.assert_array_equal(vol.array[0], arr)
    # averaged down to about 1 mm, the image keeps its extent and world positions
    img = radiograph(shape=(200, 180), spacing=(0.25, 0.3), deg=30.0)
    small = area_resample_2d(img, 1.0)
    assert small.shape == (60, 45)
    np.testing.assert_allclose(small.spacing * small.array.shape[::-1],
                               img.spacing * img.array.shape[::-1])
    j, i = np.meshgrid(np.arange(60), np.arange(45), indexing='ij')
    w = small.index_to_world(np.stack([i, j], -1).astype(np.float64))
    # (cv2 area weights for a non-integer factor: within 0.02 of the plane, 1e-2 px)
    np.testing.assert_allclose(small.array, linear_field(w[..., 0], w[..., 1]), atol=0.02)
    assert area_resample_2d(small, 1.0) is small  # not finer: unchanged
    res = TRANSFORMS.build(dict(type='ToPlanarVolume', resample_to=1.0))(dict(image=img))
    assert res['image'].shape == (1, 60, 45)
    with pytest.raises(InvalidInputError, match='3D volume'):
        ToPlanarVolume()(dict(image=MedicalImage(np.zeros((4, 5, 6)))))
    with pytest.raises(InvalidInputError, match='2D array'):
        ToPlanarVolume()(dict(img=np.zeros((2, 3, 4))))


def _views(seed=0):
    image = radiograph(fn=lambda x, y: np.exp(-((x + 40) ** 2 + (y - 80) ** 2) / 3000.0))
    np.random.seed(seed)
    res = RandomTwoViewCrop(patch_size=(1, 48, 48), spacing=2.0, seed_margin=(0, 4, 4))(
        dict(image=image, modality='XR'))
    return TRANSFORMS.build(dict(type='NormalizeViewIntensity'))(res)


def test_xray_intensity_augment_changes_only_intensities():
    res = _views()
    before = {k: np.copy(res[k]) for k in ('view_imgs', 'view_coords', 'view_valid')}
    np.random.seed(5)
    aug = RandomXrayViewIntensity(gamma_prob=1.0, jitter_prob=1.0, blur_prob=1.0,
                                  noise_prob=1.0, noise_std=(0.01, 0.02))
    out = aug(res)
    rec = out['two_view_meta']['xray_augment']
    assert len(rec) == 2 and all(r['gamma'] != 1.0 and r['noise_std'] > 0 for r in rec)
    assert rec[0]['gamma'] != rec[1]['gamma']  # independent draws per view
    assert not np.allclose(out['view_imgs'], before['view_imgs'])
    np.testing.assert_array_equal(out['view_coords'], before['view_coords'])
    np.testing.assert_array_equal(out['view_valid'], before['view_valid'])
    assert out['view_imgs'].dtype == np.float32
    assert -90 < out['view_imgs'].min() and out['view_imgs'].max() < 245


def test_xray_intensity_augment_steps():
    res = _views()
    u = (res['view_imgs'] + 50.0) / 255.0
    # identity when nothing is drawn
    out = RandomXrayViewIntensity(gamma_prob=0, jitter_prob=0, blur_prob=0, noise_prob=0)(
        dict(res, view_imgs=res['view_imgs'].copy()))
    np.testing.assert_allclose(out['view_imgs'], res['view_imgs'], atol=1e-4)
    # inversion: u -> 1 - u
    out = RandomXrayViewIntensity(gamma_prob=0, jitter_prob=0, blur_prob=0, noise_prob=0,
                                  invert_prob=1.0)(dict(res, view_imgs=res['view_imgs'].copy()))
    np.testing.assert_allclose((out['view_imgs'] + 50.0) / 255.0, 1.0 - u, atol=1e-5)
    # gamma only: u ** g with the recorded g
    np.random.seed(2)
    out = RandomXrayViewIntensity(gamma_prob=1.0, jitter_prob=0, blur_prob=0, noise_prob=0)(
        dict(res, view_imgs=res['view_imgs'].copy()))
    g = out['two_view_meta']['xray_augment'][0]['gamma']
    np.testing.assert_allclose((out['view_imgs'][0] + 50.0) / 255.0, np.clip(u[0], 0, 1) ** g,
                               atol=1e-5)
    # blur smooths in-plane, never across the single slice
    np.random.seed(4)
    out = RandomXrayViewIntensity(gamma_prob=0, jitter_prob=0, blur_prob=1.0,
                                  blur_sigma_mm=(6.0, 6.0), noise_prob=0)(
        dict(res, view_imgs=res['view_imgs'].copy()))
    assert np.abs(np.diff(out['view_imgs'], axis=-1)).sum() < np.abs(
        np.diff(res['view_imgs'], axis=-1)).sum()
    with pytest.raises(InvalidInputError):
        RandomXrayViewIntensity(gamma_range=(1.5, 1.0))
    with pytest.raises(InvalidInputError):
        RandomXrayViewIntensity(invert_prob=2.0)


def test_the_config_pipeline_packs_one_slice_pairs():
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'datasets', 'sam2d_two_view.py'))
    pipeline = [TRANSFORMS.build(t) for t in cfg.two_view_pipeline_2d]
    img = np.random.default_rng(0).random((400, 380)).astype(np.float32)
    np.random.seed(0)
    out = dict(img=img, spacing=(0.7, 0.7), img_path='x.png')
    for t in pipeline:
        out = t(out)
    assert out['inputs'].shape == (2, 1, 1, 256, 256) and out['inputs'].dtype == torch.float32
    ds = out['data_samples']
    assert ds['coords'].shape == (2, 3, 1, 256, 256) and ds['valid'].shape == (2, 1, 256, 256)
    assert torch.all(ds['coords'][:, 2] == 0)
    assert ds['meta']['modality'] == 'XR' and 'xray_augment' in ds['meta']


def test_to_planar_volume_spacing_override():
    arr = np.zeros((20, 30), np.float32)
    res = ToPlanarVolume(spacing=0.2)(dict(img=arr, spacing=(1.0, 1.0)))
    np.testing.assert_allclose(res['image'].spacing, (0.2, 0.2, 1.0))
    vol = as_planar_volume(MedicalImage(arr, spacing=(1.0, 1.0)))
    res = ToPlanarVolume(spacing=(0.3, 0.4))(dict(image=vol))
    np.testing.assert_allclose(res['image'].spacing, (0.3, 0.4, 1.0))
    with pytest.raises(InvalidInputError, match='spacing'):
        ToPlanarVolume(spacing=(0.2, 0.2, 1.0))
