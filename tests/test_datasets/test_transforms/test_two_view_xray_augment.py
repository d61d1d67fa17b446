"""TwoViewXrayAugment: shapes, normalisation, no flip, geometry of the warp; packing."""
import numpy as np

from mmanat.datasets.transforms.pack_two_view_inputs import PackTwoViewInputs
from mmanat.datasets.transforms.two_view_xray_augment import TwoViewXrayAugment, warp_crop


def test_views_shape_and_range():
    np.random.seed(0)
    img = np.random.rand(50, 40).astype(np.float32)
    t = TwoViewXrayAugment(out_size=24, channels=3)
    out = t(dict(img=img))
    v = out['views']
    assert v.shape == (2, 3, 24, 24) and v.dtype == np.float32
    assert np.allclose(v[:, 0], v[:, 1])  # grey replicated
    assert v.min() >= (0 - 0.5) / 0.25 - 1e-5 and v.max() <= (1 - 0.5) / 0.25 + 1e-5
    assert not np.allclose(v[0], v[1])  # independent views
    packed = PackTwoViewInputs()(dict(out, ad_cell=(1, 0, 2), gt_label=[1, 0]))
    assert tuple(packed['inputs'].shape) == (2, 3, 24, 24)
    assert packed['data_samples'].ad_cell == (1, 0, 2)
    assert packed['data_samples'].gt_label.tolist() == [1.0, 0.0]


def test_warp_is_exact_for_identity_and_never_flips():
    img = np.arange(16 * 16, dtype=np.float32).reshape(16, 16)
    same = warp_crop(img, (8.0, 8.0, 16.0, 16.0), 0.0, 16)
    np.testing.assert_allclose(same, img, atol=1e-3)
    # half-size crop of the left half keeps left on the left (no flip)
    left = warp_crop(img, (4.0, 8.0, 8.0, 16.0), 0.0, 8)
    assert left[4, 0] < left[4, 7]
    # with every random op off the view is a pure resize of the whole image
    np.random.seed(1)
    t = TwoViewXrayAugment(out_size=16, scale=(1, 1), ratio=(1, 1), rotation=0,
                           jitter_prob=0, blur_prob=0, mean=0, std=1)
    np.testing.assert_allclose(t(dict(img=img / 255))['views'][0, 0], img / 255, atol=1e-4)


def test_rotation_about_centre():
    img = np.zeros((21, 21), np.float32)
    img[10, 15] = 1.0  # 5 px right of the centre
    rot = warp_crop(img, (10.5, 10.5, 21.0, 21.0), 90.0, 21)
    # the output samples the source rotated by +90 deg: the spot appears 5 px above/below
    r, c = np.unravel_index(np.argmax(rot), rot.shape)
    assert c == 10 and abs(r - 10) == 5
