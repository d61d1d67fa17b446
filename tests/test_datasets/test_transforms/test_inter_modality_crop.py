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
