"""RandomViewDeformation: strong per-view deformation with exact world-coordinate maps."""
import numpy as np
import pytest
import torch

from mmanat.datasets.transforms.random_view_deformation import RandomViewDeformation
from mmanat.datasets.transforms.two_view_crop import RandomTwoViewCrop
from mmanat.structures import MedicalImage
from mmanat.utils.exceptions import InvalidInputError


def _field(world):
    """A smooth intensity that is a known function of the world position (mm)."""
    x, y, z = world[..., 0], world[..., 1], world[..., 2]
    return 100.0 + 3.0 * x - 2.0 * y + 1.5 * z + 0.01 * x * y


def _views(seed=0):
    shape = (40, 72, 72)
    img = MedicalImage(np.zeros(shape, np.float32), spacing=(1.5, 1.5, 2.5),
                       origin=(-50.0, -60.0, -80.0), modality='CT')
    zz, yy, xx = np.meshgrid(*[np.arange(n) for n in shape], indexing='ij')
    world = img.array_index_to_world(np.stack([zz, yy, xx], -1))
    img = img.with_array(_field(world).astype(np.float32))
    np.random.seed(seed)
    crop = RandomTwoViewCrop(patch_size=(16, 32, 32), spacing=2.0, overlap_prob=1.0)
    return crop.transform(dict(image=img))


def test_deformed_views_keep_exact_coordinates():
    torch.manual_seed(0)
    res = _views()
    before = {k: np.array(res[k]) for k in ('view_imgs', 'view_coords', 'view_valid')}
    np.random.seed(1)
    out = RandomViewDeformation(prob=1.0, scales=(0.7, 1.4), degrees=15,
                                max_displacement=8.0).transform(res)
    assert out['two_view_meta']['deformed'] == [True, True]
    for v in range(2):
        valid = out['view_valid'][v]
        assert valid.mean() > 0.3
        # the views really moved ...
        assert np.abs(out['view_coords'][v] - before['view_coords'][v]).max() > 3.0
        # ... and each valid voxel shows the intensity of the world point its coordinates name
        world = out['view_coords'][v].transpose(1, 2, 3, 0)
        expect = _field(world)
        err = np.abs(out['view_imgs'][v] - expect)[valid]
        scale = np.ptp(expect[valid])
        assert np.percentile(err, 99) < 0.02 * scale, (np.percentile(err, 99), scale)
        # invalid voxels hold the pad value
        assert np.all(out['view_imgs'][v][~valid] == float(res['view_pad_value']))


def test_prob_zero_changes_nothing_and_bad_options_fail():
    res = _views()
    copy = {k: np.array(res[k]) for k in ('view_imgs', 'view_coords', 'view_valid')}
    out = RandomViewDeformation(prob=0.0).transform(res)
    for k, v in copy.items():
        assert np.array_equal(out[k], v)
    assert out['two_view_meta']['deformed'] == [False, False]
    with pytest.raises(InvalidInputError, match='scales'):
        RandomViewDeformation(scales=(1.2, 0.8))
    with pytest.raises(InvalidInputError, match='num_control_points'):
        RandomViewDeformation(num_control_points=4)
    with pytest.raises(InvalidInputError, match='view_coords'):
        RandomViewDeformation().transform(dict(view_imgs=np.zeros((2, 4, 4, 4)),
                                               view_valid=np.ones((2, 4, 4, 4), bool)))
