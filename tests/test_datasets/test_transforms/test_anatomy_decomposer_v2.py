"""AnatomyDecomposerV2 (anchors of side S / 2^g, quadrants tile them) and the Adam v2 views
and packing."""
import numpy as np
import pytest
import torch

from mmanat.datasets.transforms.adam_v2_views import AdamV2Views
from mmanat.datasets.transforms.anatomy_decomposer_v2 import (AnatomyDecomposerV2,
                                                              quadrant_boxes)
from mmanat.datasets.transforms.pack_adam_v2_inputs import PackAdamV2Inputs
from mmanat.utils.exceptions import InvalidInputError


def test_quadrants_tile_the_square():
    for side in (8, 9, 24):
        cover = np.zeros((side, side), int)
        for x0, y0, x1, y1 in quadrant_boxes(side):
            cover[y0:y1, x0:x1] += 1
        assert np.all(cover == 1)
    assert quadrant_boxes(8) == [(0, 0, 4, 4), (4, 0, 8, 4), (0, 4, 4, 8), (4, 4, 8, 8)]


@pytest.mark.parametrize('g, side', [(0, 96), (1, 48), (2, 24)])
def test_anchor_side_and_content(g, side):
    np.random.seed(g)
    img = np.arange(96 * 100, dtype=np.float32).reshape(96, 100)  # non-square: side = 96
    t = AnatomyDecomposerV2(granularity=g)
    for _ in range(20):
        r = t.transform(dict(img=img.copy(), landmarks=np.array([[50.0, 40.0]])))
        x0, y0, x1, y1 = r['ad_box']
        assert x1 - x0 == y1 - y0 == side
        assert 0 <= x0 and x1 <= 100 and 0 <= y0 and y1 <= 96
        np.testing.assert_array_equal(r['img'], img[y0:y1, x0:x1])
        assert r['ad_parts'] == quadrant_boxes(side) and r['ad_granularity'] == g
        np.testing.assert_allclose(r['landmarks'], [[50.0 - x0, 40.0 - y0]])
        inside = (x0 - 0.5 <= 50 < x1 - 0.5) and (y0 - 0.5 <= 40 < y1 - 0.5)
        assert bool(r['landmark_valid'][0]) == inside


def test_anchor_positions_cover_the_image():
    np.random.seed(0)
    t = AnatomyDecomposerV2(granularity=2)
    boxes = {t.anchor_box((64, 64))[:2] for _ in range(400)}
    xs, ys = {b[0] for b in boxes}, {b[1] for b in boxes}
    assert min(xs) == 0 and max(xs) == 48 and min(ys) == 0 and max(ys) == 48


def test_bad_granularity_or_tiny_anchor():
    with pytest.raises(InvalidInputError):
        AnatomyDecomposerV2(granularity=-1)
    with pytest.raises(InvalidInputError):
        AnatomyDecomposerV2(granularity=4, min_anchor_size=8).transform(
            dict(img=np.zeros((64, 64), np.float32)))


def test_views_and_pack():
    np.random.seed(0)
    img = np.random.rand(48, 48).astype(np.float32)
    r = AnatomyDecomposerV2(granularity=0).transform(dict(img=img))
    r = AdamV2Views(global_size=24, local_size=12, num_local=3, blur_sigma=(0.05, 0.3),
                    mean=0.5, std=0.25).transform(r)
    assert r['views'].shape == (6, 1, 24, 24) and r['local_views'].shape == (3, 1, 12, 12)
    # view 0 is the anchor, views 2-5 the quadrants, geometry untouched (area resize)
    anchor = img.reshape(24, 2, 24, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(r['views'][0, 0] * 0.25 + 0.5, anchor, atol=1e-5)
    q1 = img[0:24, 24:48]
    np.testing.assert_allclose(r['views'][3, 0] * 0.25 + 0.5, q1, atol=1e-5)
    packed = PackAdamV2Inputs().transform(r)
    assert isinstance(packed['inputs']['global_views'], torch.Tensor)
    assert packed['inputs']['local_views'].shape == (3, 1, 12, 12)
    with pytest.raises(InvalidInputError):
        AdamV2Views().transform(dict(img=img))
