"""Eve embedding helpers: patches are centred exactly on the given pixel point; embeddings
are unit length with the expected shapes; points outside the image are rejected."""
import numpy as np
import pytest
import torch
from torch import nn

from mmanat.apis import eve_embed_images, eve_embed_patches, eve_norm_params, extract_patches
from mmanat.utils.exceptions import InvalidInputError


class FlattenStandIn(nn.Module):
    """Identity-like model: ``extract_feat`` returns the flattened input (plus a constant so
    an all-zero input still has a direction)."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))
        self.seen = []

    def extract_feat(self, x):
        self.seen.append(x.detach().clone())
        return x.flatten(1) + 1.0


def _dot_image(h=40, w=50, col=17, row=23):
    img = np.zeros((h, w), np.float32)
    img[row, col] = 1.0
    return img


def test_odd_patch_puts_the_dot_at_the_centre_pixel():
    img = _dot_image()
    p = extract_patches(img, [[17, 23], [17.0, 23.0]], patch_size=9)
    assert p.shape == (2, 9, 9)
    for q in p:
        assert np.unravel_index(np.argmax(q), q.shape) == (4, 4)
        assert q[4, 4] == pytest.approx(1.0)
        assert q.sum() == pytest.approx(1.0)


def test_even_patch_and_resizing_keep_the_dot_centred():
    img = _dot_image()
    yy, xx = np.mgrid[:8, :8]
    for ps, size in ((8, 8), (16, 8), (6, 12)):
        q = extract_patches(img, [[17, 23]], patch_size=ps, size=size)[0]
        assert q.shape == (size, size)
        c = (size - 1) / 2.0
        yy, xx = np.mgrid[:size, :size]
        assert np.sum(q * xx) / q.sum() == pytest.approx(c, abs=1e-5)
        assert np.sum(q * yy) / q.sum() == pytest.approx(c, abs=1e-5)


def test_subpixel_centre_shifts_the_crop_and_borders_read_air():
    img = _dot_image()
    q = extract_patches(img, [[16.0, 22.0]], patch_size=5)[0]  # dot 1 px right, 1 px down
    assert np.unravel_index(np.argmax(q), q.shape) == (3, 3)
    # half-pixel centre with an even patch: samples fall on pixel centres 16..19, 21..24
    q = extract_patches(img, [[17.5, 22.5]], patch_size=4)[0]
    assert q[2, 1] == pytest.approx(1.0, abs=1e-5) and q.sum() == pytest.approx(1.0, abs=1e-5)
    q = extract_patches(img + 0.5, [[0, 0]], patch_size=5)[0]  # corner: 2 rows/cols of air
    assert np.all(np.abs(q[:2]) < 1e-5) and np.all(np.abs(q[:, :2]) < 1e-5)
    assert np.all(q[2:, 2:] >= 0.5 - 1e-5)


def test_points_outside_the_image_are_rejected():
    with pytest.raises(InvalidInputError, match='outside'):
        extract_patches(_dot_image(), [[10, 10], [50.2, 3]], patch_size=5)


def test_patch_embeddings_are_the_normalised_centred_crops():
    img = _dot_image()
    model = FlattenStandIn()
    e = eve_embed_patches(model, img, [[17, 23], [5, 5]], patch_size=9, size=9, mean=0.0,
                          std=1.0)
    assert e.shape == (2, 81) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-6)
    x = model.seen[0]
    assert x.shape == (2, 1, 9, 9)
    assert x[0, 0, 4, 4] == 1.0 and x[0].sum() == 1.0 and x[1].sum() == 0.0
    # normalisation (x - mean) / std reaches the network
    eve_embed_patches(model, img, [[17, 23]], 9, 9, mean=0.5, std=0.25)
    assert model.seen[-1][0, 0, 4, 4] == pytest.approx(2.0)
    assert model.seen[-1][0, 0, 0, 0] == pytest.approx(-2.0)


def test_image_embeddings_batches_shapes_and_channels():
    model = FlattenStandIn()
    rng = np.random.default_rng(0)
    imgs = [rng.random((30, 20)).astype(np.float32) for _ in range(5)]
    e = eve_embed_images(model, imgs, size=8, batch_size=2, channels=3)
    assert e.shape == (5, 3 * 64)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-6)
    assert [t.shape[0] for t in model.seen] == [2, 2, 1]
    assert model.seen[0].shape[1:] == (3, 8, 8)


def test_norm_params_read_from_the_pipeline():
    cfg = dict(train_dataloader=dict(dataset=dict(pipeline=[
        dict(type='AnatomyDecomposer'),
        dict(type='TwoViewXrayAugment', out_size=48, mean=0.4, std=0.2, channels=3)])))
    assert eve_norm_params(cfg) == dict(size=48, mean=0.4, std=0.2, channels=3)
    assert eve_norm_params(dict()) == dict(size=224, mean=0.5, std=0.25, channels=1)
