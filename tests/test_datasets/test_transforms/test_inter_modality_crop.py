"""RandomInterModalityCrop (UAE-M stage 2): the same region of an aligned CT/MR pair, packed
in the SAM contract; positives of the fine sampler are within 2 mm in world coordinates."""
import numpy as np
import pytest

from mmanat.datasets.transforms.inter_modality_crop import RandomInterModalityCrop
from mmanat.datasets.transforms.pack_sam_inputs import PackSAMInputs
from mmanat.structures.image import MedicalImage
from mmanat.utils.exceptions import InvalidInputError


def _pair(shape=(30, 48, 48)):
    zz, yy, xx = np.meshgrid(*[np.arange(n) for n in shape], indexing='ij')
    body = ((yy - 24) ** 2 + (xx - 24) ** 2) < 20 ** 2
    organ = ((yy - 20) ** 2 + (xx - 28) ** 2 + (zz - 15) ** 2) < 8 ** 2
    ct = np.where(body, 40.0, -1000.0) + 300.0 * organ
    mr = np.where(body, 300.0, 5.0) - 200.0 * organ
    kw = dict(spacing=(2.0, 2.0, 2.0), origin=(-40.0, 10.0, 100.0))
    return MedicalImage(ct.astype(np.float32), modality='CT', **kw), \
        MedicalImage(mr.astype(np.float32), modality='MR', **kw)


def test_same_region_world_coords_and_packing():
    ct, mr = _pair()
    t = RandomInterModalityCrop(patch_size=(16, 32, 32), jitter=3)
    np.random.seed(0)
    # MR as 'image': view 0 must still be the CT
    res = t(dict(image=mr, pair_image=ct, modality='MR', pair_modality='CT'))
    assert res['view_modalities'] == ['CT', 'MR']
    imgs, coords = res['view_imgs'], res['view_coords']
    assert imgs.shape == (2, 16, 32, 32) and coords.shape == (2, 3, 16, 32, 32)
    # each view's intensities are its image sampled at its own world coordinates
    for v, img in enumerate((ct, mr)):
        w = coords[v].reshape(3, -1).T
        idx = np.rint(img.world_to_array_index(w)).astype(int)
        idx = np.clip(idx, 0, np.array(img.shape) - 1)
        assert np.all(np.abs(img.world_to_array_index(w) - idx).max(1)[res['view_valid'][v]
                                                                        .reshape(-1)] < 1.0)
    # jitter: the two views cover the same region up to 3 voxels (6 mm) per border
    lo = coords.reshape(2, 3, -1).min(-1)
    hi = coords.reshape(2, 3, -1).max(-1)
    assert np.all(np.abs(lo[0] - lo[1]) <= 2 * 6.0 + 1e-6)
    assert np.all(np.abs(hi[0] - hi[1]) <= 2 * 6.0 + 1e-6)
    assert not np.allclose(lo[0], lo[1])
    # fine positives as in SAM: nearest voxel of the other view within 2 mm exists for most
    # query voxels, and such pairs are within 2 mm in world coordinates
    from scipy.spatial import cKDTree
    a = coords[0].reshape(3, -1).T
    b = coords[1].reshape(3, -1).T
    d, _ = cKDTree(b).query(a)
    assert (d <= 2.0).mean() > 0.5
    packed = PackSAMInputs(meta_keys=('subject_id', 'view_modalities'))(res)
    assert tuple(packed['inputs'].shape) == (2, 1, 16, 32, 32)
    assert packed['data_samples']['meta']['view_modalities'] == ['CT', 'MR']
    # normalised: CT rule on view 0 (air, -1000 HU, -> -48.5), MR percentile window on view 1
    assert imgs[0].min() == pytest.approx(-50.0 + 24 * 255 / 4095, abs=1e-3) and imgs[1].max() <= 205.0 + 1e-3


def test_errors():
    ct, mr = _pair()
    t = RandomInterModalityCrop(patch_size=(8, 16, 16))
    with pytest.raises(InvalidInputError, match='one CT and one MR'):
        t(dict(image=ct, pair_image=ct, modality='CT', pair_modality='CT'))
    moved = mr.with_array(mr.array, origin=mr.origin + 5.0)
    with pytest.raises(InvalidInputError, match='share'):
        t(dict(image=ct, pair_image=moved, modality='CT', pair_modality='MR'))
    with pytest.raises(InvalidInputError):
        t(dict(image=ct))


# --------------------------------------------------------------- released-recipe options
def _ramp_pair(shape=(40, 60, 80), spacing=(2.0, 2.0, 2.0), body_x=(44, 70)):
    """CT = a linear ramp of the array index (trilinear resampling reproduces it exactly);
    MR body = a slab of x indices ``body_x`` (the CT body: everything but a 2-voxel rim)."""
    zz, yy, xx = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing='ij')
    ramp = 3.0 * zz + 2.0 * yy + 1.0 * xx
    kw = dict(spacing=spacing, origin=(-60.0, 20.0, -35.0))
    ct = MedicalImage(ramp, modality='CT', **kw)
    mr = MedicalImage((1000.0 - ramp).astype(np.float32), modality='MR', **kw)
    ct_mask = np.zeros(shape, np.uint8)
    ct_mask[2:-2, 2:-2, 2:-2] = 1
    mr_mask = np.zeros(shape, np.uint8)
    mr_mask[:, :, body_x[0]:body_x[1]] = 1
    return ct, mr, ct_mask, mr_mask


def _results(ct, mr, ct_mask=None, mr_mask=None):
    res = dict(image=ct, pair_image=mr, modality='CT', pair_modality='MR')
    if ct_mask is not None:
        res['body_mask'] = ct.with_array(ct_mask, modality=None)
    if mr_mask is not None:
        res['pair_body_mask'] = mr_mask  # a plain array on the grid is accepted too
    return res


def _index_of(img, coords_v):
    """Continuous array index (z, y, x) of every voxel of a view's world-coordinate map."""
    w = coords_v.reshape(3, -1).T.astype(np.float64)
    return img.world_to_array_index(w)


def test_defaults_keep_the_plain_crop():
    ct, mr, ct_mask, mr_mask = _ramp_pair()
    res = RandomInterModalityCrop(patch_size=(8, 16, 16), jitter=2)(
        _results(ct, mr, ct_mask, mr_mask))
    meta = res['two_view_meta']
    assert meta['placement'] == 'volume'
    assert np.all(meta['rotations'] == 0)
    assert 'view_body_mask' not in res and 'query_mask' not in meta
    for g in res['view_geometries']:
        assert np.allclose(g['direction'], ct.direction)


def test_mr_body_placement_keeps_the_window_inside_the_mr_body_box():
    ct, mr, ct_mask, mr_mask = _ramp_pair()
    # MR body: x index 44..69 -> the window (16 voxels of 2 mm along x) lies inside it
    body = RandomInterModalityCrop(patch_size=(8, 16, 16), jitter=0, placement='mr_body')
    plain = RandomInterModalityCrop(patch_size=(8, 16, 16), jitter=0)
    outside = 0
    for seed in range(12):
        np.random.seed(seed)
        res = body(_results(ct, mr, ct_mask, mr_mask))
        assert res['two_view_meta']['placement'] == 'mr_body'
        for v in range(2):
            x = _index_of(ct, res['view_coords'][v])[:, 2]
            assert x.min() >= 44 - 0.5 - 1e-3 and x.max() <= 70 - 0.5 + 1e-3
        np.random.seed(seed)
        x = _index_of(ct, plain(_results(ct, mr, ct_mask, mr_mask))['view_coords'][0])[:, 2]
        outside += bool(x.min() < 44 - 0.5)
    assert outside > 0  # the whole-volume placement does leave the MR body box


def test_mr_body_narrower_than_the_window_is_centred_on_it():
    ct, mr, ct_mask, mr_mask = _ramp_pair(body_x=(50, 56))  # 6 voxels < 16
    np.random.seed(3)
    res = RandomInterModalityCrop(patch_size=(8, 16, 16), jitter=0, placement='mr_body')(
        _results(ct, mr, ct_mask, mr_mask))
    x = _index_of(ct, res['view_coords'][1])[:, 2]
    assert (x.min() + x.max()) / 2.0 == pytest.approx((50 + 56 - 1) / 2.0, abs=1e-3)


def test_empty_mr_mask_falls_back_to_the_volume():
    ct, mr, ct_mask, mr_mask = _ramp_pair()
    res = RandomInterModalityCrop(patch_size=(8, 16, 16), jitter=2, placement='mr_body')(
        _results(ct, mr, ct_mask, np.zeros_like(mr_mask)))
    assert res['two_view_meta']['placement'] == 'volume'


def test_scale_and_rotation_keep_exact_world_coordinates():
    ct, mr, ct_mask, mr_mask = _ramp_pair(shape=(48, 64, 64))
    t = RandomInterModalityCrop(patch_size=(10, 12, 14), jitter=0, normalize=False,
                                scale_range=(0.8, 1.2), rotation_range=5.0)
    spacings, angles = [], []
    for seed in range(6):
        np.random.seed(seed)
        res = t(_results(ct, mr))
        meta = res['two_view_meta']
        for v, img in enumerate((ct, mr)):
            g = res['view_geometries'][v]
            # isotropic per-view spacing 2 mm * s, s in [0.8, 1.2]
            assert np.allclose(g['spacing'], g['spacing'][0])
            assert 1.6 - 1e-9 <= g['spacing'][0] <= 2.4 + 1e-9
            spacings.append(g['spacing'][0])
            # the grid axes are the image axes rotated by at most 5 degrees about each axis
            rot = np.asarray(ct.direction).T @ g['direction']
            assert np.allclose(rot @ rot.T, np.eye(3), atol=1e-9)
            assert np.all(np.abs(meta['rotations'][v]) <= 5.0)
            angles.append(np.degrees(np.arccos(np.clip((np.trace(rot) - 1) / 2, -1, 1))))
            # values = the ramp at each voxel's world position (trilinear is exact on a ramp)
            idx = _index_of(img, res['view_coords'][v])
            # inside the voxel-centre hull (the half-voxel rim replicates the edge value)
            ok = res['view_valid'][v].reshape(-1) & np.all(idx >= 0, 1) \
                & np.all(idx <= np.array(img.shape) - 1, 1)
            assert ok.mean() > 0.5
            expect = 3.0 * idx[:, 0] + 2.0 * idx[:, 1] + idx[:, 2]
            if v == 1:
                expect = 1000.0 - expect
            assert np.abs(res['view_imgs'][v].reshape(-1)[ok] - expect[ok]).max() < 2e-2
        # both views are centred on the same point (no jitter)
        c = res['view_coords'].reshape(2, 3, -1).mean(-1)
        assert np.allclose(c[0], c[1], atol=1e-3)
    assert np.ptp(spacings) > 0.1 and max(angles) > 1.0


def test_masks_follow_each_view_and_the_query_mask_is_mr_foreground():
    ct, mr, ct_mask, mr_mask = _ramp_pair()
    np.random.seed(1)
    t = RandomInterModalityCrop(patch_size=(8, 16, 32), jitter=3, with_masks=True,
                                placement='mr_body', scale_range=(0.8, 1.2),
                                rotation_range=5.0)
    res = t(_results(ct, mr, ct_mask, mr_mask))
    body, query = res['view_body_mask'], res['view_query_mask']
    assert body.shape == query.shape == (2, 8, 16, 32) and body.dtype == bool
    for v, own in enumerate((ct_mask, mr_mask)):
        idx = np.rint(_index_of(ct, res['view_coords'][v])).astype(int)
        idx = np.clip(idx, 0, np.array(ct.shape) - 1)
        ok = res['view_valid'][v].reshape(-1)
        at = tuple(idx[ok].T)
        assert np.array_equal(body[v].reshape(-1)[ok], own[at] > 0)
        assert np.array_equal(query[v].reshape(-1)[ok], mr_mask[at] > 0)
        assert not query[v].reshape(-1)[~ok].any()
    # the window (64 mm) is wider than the MR body slab (52 mm) and centred on it: some
    # CT-view voxels are in the CT body only
    assert (body[0] & ~query[0]).any() and query[0].any()
    assert np.array_equal(query[1], body[1])
    packed = PackSAMInputs(meta_keys=('subject_id',))(res)
    assert np.array_equal(packed['data_samples']['meta']['query_mask'], query)


def test_masks_are_computed_when_absent():
    ct, mr = _pair()
    np.random.seed(0)
    res = RandomInterModalityCrop(patch_size=(8, 16, 16), jitter=2, placement='mr_body',
                                  with_masks=True, mask_min_object_size=50)(
        dict(image=ct, pair_image=mr, modality='CT', pair_modality='MR'))
    assert res['two_view_meta']['placement'] == 'mr_body'
    # body of _pair(): a cylinder of radius 20 voxels about (y, x) = (24, 24)
    idx = _index_of(ct, res['view_coords'][1])
    inside = ((idx[:, 1] - 24) ** 2 + (idx[:, 2] - 24) ** 2) < 17 ** 2
    q = res['view_query_mask'][1].reshape(-1)
    assert q[inside].mean() > 0.95
    outside = ((idx[:, 1] - 24) ** 2 + (idx[:, 2] - 24) ** 2) > 23 ** 2
    assert not q[outside & res['view_valid'][1].reshape(-1)].any()


def test_option_errors():
    ct, mr, ct_mask, mr_mask = _ramp_pair()
    with pytest.raises(InvalidInputError, match='placement'):
        RandomInterModalityCrop(placement='body')
    with pytest.raises(InvalidInputError, match='scale_range'):
        RandomInterModalityCrop(scale_range=(1.2, 0.8))
    with pytest.raises(InvalidInputError, match='rotation_range'):
        RandomInterModalityCrop(rotation_range=(5, 5))
    t = RandomInterModalityCrop(patch_size=(8, 16, 16), jitter=2, with_masks=True)
    with pytest.raises(InvalidInputError, match='pair_body_mask'):
        t(_results(ct, mr, ct_mask, mr_mask[:-1]))


def test_mr_mask_from_the_ct_body():
    ct, mr, ct_mask, mr_mask = _ramp_pair()
    np.random.seed(2)
    t = RandomInterModalityCrop(patch_size=(8, 16, 16), jitter=2, with_masks=True,
                                mr_mask_source='ct')
    res = t(_results(ct, mr, ct_mask))  # no MR mask given: the CT body mask stands for it
    ok = res['view_valid']
    idx = np.clip(np.rint(_index_of(ct, res['view_coords'][1])).astype(int), 0,
                  np.array(ct.shape) - 1)
    expect = (ct_mask[tuple(idx.T)] > 0).reshape(ok[1].shape) & ok[1]
    assert np.array_equal(res['view_query_mask'][1], expect)
    # a given MR mask still wins
    res = t(_results(ct, mr, ct_mask, mr_mask))
    idx = np.clip(np.rint(_index_of(ct, res['view_coords'][1])).astype(int), 0,
                  np.array(ct.shape) - 1)
    expect = (mr_mask[tuple(idx.T)] > 0).reshape(ok[1].shape) & res['view_valid'][1]
    assert np.array_equal(res['view_query_mask'][1], expect)
    with pytest.raises(InvalidInputError, match='mr_mask_source'):
        RandomInterModalityCrop(mr_mask_source='both')
