"""init_model, preprocess_image and embed: geometry of the maps, padding, tiling, bad input."""
import hashlib
import os.path as osp

import numpy as np
import pytest
import torch

from mmanat.apis import embed, init_model, preprocess_image
from mmanat.structures import MedicalImage, reorient
from mmanat.utils.exceptions import InvalidInputError
from tests.helpers.position_encoder_standin import FIELD, PositionEncoderStandIn, quadratic_volume

STANDIN_CFG = dict(model=dict(type='PositionEncoderStandIn', channels=32))


def _flipped_volume(shape=(30, 50, 70)):
    """A quadratic-field CT whose voxel axes run R->L reversed (x) and A->P reversed (y)."""
    img = MedicalImage(np.zeros(shape, np.float32), spacing=2.0, origin=(60.0, 40.0, -25.0),
                       direction=np.diag([-1.0, -1.0, 1.0]), modality='CT')
    zz, yy, xx = np.meshgrid(*[np.arange(n) for n in shape], indexing='ij')
    world = img.array_index_to_world(np.stack([zz, yy, xx], -1))
    arr = FIELD['base'] + ((world - np.array(FIELD['vertex'])) ** 2 * np.array(FIELD['a'])).sum(-1)
    return img.with_array(arr.astype(np.float32))


def test_padding_keeps_geometry():
    img = _flipped_volume()
    pre = preprocess_image(img)
    canon = reorient(img)
    assert pre.meta['unpadded_shape'] == (30, 50, 70)
    assert pre.shape == (32, 64, 80)  # multiples of (4, 16, 16)
    np.testing.assert_allclose(pre.direction, np.eye(3))
    np.testing.assert_allclose(pre.origin, canon.origin)
    np.testing.assert_allclose(pre.spacing, 2.0)
    # every original voxel keeps its world position and (normalised) value
    idx = np.array([[0, 0, 0], [29, 49, 69], [7, 3, 11]], float)
    np.testing.assert_allclose(pre.array_index_to_world(idx), canon.array_index_to_world(idx))
    expect = ((canon.array + 1024) * 255 / 4095 - 50).astype(np.float32)
    np.testing.assert_allclose(pre.array[:30, :50, :70], expect, atol=1e-3)
    # padding is air (-1024 HU normalised) and only after the last voxel
    assert np.all(pre.array[30:] == pytest.approx(-50.0))
    assert np.all(pre.array[:, 50:] == pytest.approx(-50.0))
    assert pre.meta['pad_value'] == pytest.approx(-50.0)


def test_mr_padding_is_the_darkest_value():
    rng = np.random.default_rng(0)
    img = MedicalImage(rng.uniform(100, 900, (10, 20, 20)).astype(np.float32), spacing=2.0,
                       modality='MR')
    pre = preprocess_image(img)
    assert pre.shape == (12, 32, 32)
    assert pre.meta['pad_value'] == pytest.approx(pre.array[:10, :20, :20].min())


def test_map_grids_are_exact():
    """Map voxels sit at input index stride * idx + (stride - 1) / 2, and the stand-in's
    embedding of a fine voxel is that of its world position: geometry exact end to end."""
    model = PositionEncoderStandIn(channels=32)
    img = _flipped_volume()
    maps = embed(model, img)
    assert tuple(maps.fine.shape[1:]) == (15, 25, 35)  # ceil((30, 50, 70) / 2)
    assert tuple(maps.coarse.shape[1:]) == (8, 4, 5)  # ceil((30, 50, 70) / (4, 16, 16))
    inp = maps.input_grid
    np.testing.assert_allclose(maps.map_index_to_world('fine', [0, 0, 0]),
                               inp.array_index_to_world([0.5, 0.5, 0.5]))
    np.testing.assert_allclose(maps.map_index_to_world('coarse', [1, 2, 3]),
                               inp.array_index_to_world([4 + 1.5, 32 + 7.5, 48 + 7.5]))
    idx = np.array([[2.0, 3.5, 7.25], [0.0, 24.0, 34.0]])
    np.testing.assert_allclose(
        maps.world_to_map_index('fine', maps.map_index_to_world('fine', idx)), idx, atol=1e-9)
    # fine voxel (5, 7, 9): its embedding encodes its world position relative to the vertex
    w = maps.map_index_to_world('fine', [5, 7, 9])
    p = torch.tensor((w - np.array(FIELD['vertex']))[::-1].copy()).view(1, 3, 1, 1, 1)
    expect = model._encode(p, model.freqs)[0, :, 0, 0, 0]
    # (1e-4: the stand-in decodes positions from float32 intensities)
    np.testing.assert_allclose(maps.fine[:, 5, 7, 9].numpy(), expect.numpy(), atol=1e-4)
    # the original geometry is kept for voxel indices of the source image
    np.testing.assert_allclose(maps.world_to_source_index(img.index_to_world([3, 4, 5])),
                               [3, 4, 5], atol=1e-9)


def test_tiled_equals_whole_for_a_local_network():
    """The stand-in only looks at 3 voxels, so tiling must reproduce whole-volume maps
    exactly: this checks window placement, stride alignment and blending."""
    model = PositionEncoderStandIn(channels=32, semantic=True)
    img = quadratic_volume(shape=(40, 80, 96))
    whole = embed(model, img)
    for blend in ('cosine', 'linear'):
        tiled = embed(model, img, tile_size=(16, 32, 48), overlap=(8, 16, 16), blend=blend)
        assert tiled.meta['tiles'] > 8
        for lv in whole.levels:
            assert tiled.maps[lv].shape == whole.maps[lv].shape
            diff = (tiled.maps[lv] - whole.maps[lv]).abs().flatten()
            # float32 rounding of the stand-in's finite differences at window edges gives a
            # few outliers up to ~0.04 far from the field's vertex; a window misplaced by
            # one voxel would differ by ~0.3 on a whole face
            assert diff.mean() < 1e-4 and diff.quantile(0.999) < 2e-3 and diff.max() < 0.1


def test_tile_size_is_checked():
    model = PositionEncoderStandIn(channels=8)
    img = quadratic_volume(shape=(16, 32, 32))
    with pytest.raises(InvalidInputError, match='overlap'):
        embed(model, img, tile_size=(8, 16, 16), overlap=(8, 16, 16))
    with pytest.raises(InvalidInputError, match='tile_size'):
        embed(model, img, tile_size=(0, 16, 16))


def test_tiled_embedding_of_an_unpadded_preprocessed_image_is_refused():
    """A preprocessed image whose size is not a multiple of the network stride would put the
    last window off the coarse grid; embed() says so instead of returning shifted maps."""
    model = PositionEncoderStandIn(channels=8)
    img = quadratic_volume(shape=(30, 50, 70))
    pre = preprocess_image(img, spacing=2.0, pad_multiple=(1, 1, 1))
    with pytest.raises(InvalidInputError, match=r'multiple of \(4, 16, 16\)'):
        embed(model, pre, tile_size=(16, 32, 32))
    padded = preprocess_image(img, spacing=2.0, pad_multiple=(4, 16, 16))
    assert embed(model, padded, tile_size=(16, 32, 32)).meta['tiles'] > 1


def test_tiny_image_is_padded_not_refused():
    model = PositionEncoderStandIn(channels=8)
    img = quadratic_volume(shape=(3, 5, 5))
    maps = embed(model, img)
    assert tuple(maps.fine.shape[1:]) == (2, 3, 3)
    assert tuple(maps.coarse.shape[1:]) == (1, 1, 1)


def test_amp_is_off_on_cpu():
    model = PositionEncoderStandIn(channels=8)
    img = quadratic_volume(shape=(8, 16, 16))
    assert embed(model, img).meta['amp'] is False
    with pytest.warns(UserWarning, match='GPU only'):
        assert embed(model, img, amp=True).meta['amp'] is False


def test_embed_reads_a_path(tmp_path):
    from mmanat.fileio import write_image
    img = quadratic_volume(shape=(8, 16, 16))
    path = write_image(img, str(tmp_path / 'vol.nrrd'))
    maps = embed(PositionEncoderStandIn(channels=8), path)
    assert maps.meta['source_path'] == path and maps.meta['modality'] == 'CT'


def test_2d_image_becomes_a_one_slice_volume():
    """2D images are embedded by the 2D SAM (tests/test_apis/test_xray_matching.py): they are
    resampled in-plane only and padded in-plane only."""
    img = MedicalImage(np.arange(40 * 24, dtype=np.float32).reshape(40, 24), spacing=0.5,
                       modality='XR')
    pre = preprocess_image(img)
    assert pre.shape == (1, 32, 32) and pre.meta['unpadded_shape'] == (1, 10, 6)
    np.testing.assert_allclose(pre.spacing, [2.0, 2.0, 1.0])
    assert pre.meta['modality'] == 'XR' and pre.meta['source_grid']['shape'] == [1, 40, 24]


# ------------------------------------------------------------------------------ init_model
def _save(tmp_path, state, meta=None, name='ckpt.pth'):
    path = str(tmp_path / name)
    torch.save({'state_dict': state, 'meta': meta or {}}, path)
    return path


def test_init_model_loads_weights_and_records_identity(tmp_path):
    trained = PositionEncoderStandIn(channels=32, seed=3)
    ckpt = _save(tmp_path, trained.state_dict())
    cfg = tmp_path / 'standin_cfg.py'
    cfg.write_text("model = dict(type='PositionEncoderStandIn', channels=32, seed=0)\n")
    model = init_model(str(cfg), ckpt, device='cpu')
    assert torch.equal(model.freqs, trained.freqs)
    assert not model.training
    ident = model.mmanat_identity
    assert ident['config'] == 'standin_cfg' and ident['checkpoint'] == 'ckpt.pth'
    assert ident['sha256'] == hashlib.sha256(open(ckpt, 'rb').read()).hexdigest()


def test_init_model_uses_the_config_stored_in_the_checkpoint(tmp_path):
    trained = PositionEncoderStandIn(channels=16, seed=4)
    ckpt = _save(tmp_path, trained.state_dict(),
                 meta={'cfg': "model = dict(type='PositionEncoderStandIn', channels=16)\n"})
    model = init_model(None, ckpt, device='cpu')
    assert torch.equal(model.coarse_freqs, trained.coarse_freqs)


def test_checkpoint_that_does_not_fit_is_refused(tmp_path):
    state = PositionEncoderStandIn(channels=32).state_dict()
    state.pop('coarse_freqs')
    state['head.extra_weight'] = torch.zeros(3)
    state['freqs'] = torch.zeros(4, 3)  # wrong shape
    ckpt = _save(tmp_path, state)
    with pytest.raises(InvalidInputError) as err:
        init_model(STANDIN_CFG, ckpt, device='cpu')
    msg = str(err.value)
    assert 'missing key(s): coarse_freqs' in msg
    assert 'unexpected key(s): head.extra_weight' in msg
    assert 'freqs (4, 3) vs (16, 3)' in msg and 'ckpt.pth' in msg


def test_missing_or_corrupt_checkpoint_is_refused(tmp_path):
    with pytest.raises(InvalidInputError, match='checkpoint not found'):
        init_model(STANDIN_CFG, str(tmp_path / 'nope.pth'), device='cpu')
    bad = tmp_path / 'bad.pth'
    bad.write_bytes(b'not a checkpoint at all')
    with pytest.raises(InvalidInputError, match='cannot load the checkpoint'):
        init_model(STANDIN_CFG, str(bad), device='cpu')
    with pytest.raises(InvalidInputError, match='config file not found'):
        init_model(str(tmp_path / 'missing_cfg.py'), None, device='cpu')


def test_random_init_identity_hashes_the_weights():
    a = init_model(STANDIN_CFG, None, device='cpu')
    b = init_model(dict(model=dict(type='PositionEncoderStandIn', channels=32, seed=1)), None,
                   device='cpu')
    assert a.mmanat_identity['source'] == 'random-init'
    assert a.mmanat_identity['sha256'] != b.mmanat_identity['sha256']


# ------------------------------------------------------------------------------ real SAM
@pytest.fixture(scope='module')
def sam_tiny():
    pytest.importorskip('mmcv.cnn', reason='SAM needs mmcv')
    torch.manual_seed(0)
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    return init_model(osp.join(root, 'configs', '_base_', 'models', 'sam_tiny.py'),
                      device='cpu')


def test_sam_tiled_and_whole_volume_agree(sam_tiny):
    """Random-init SAM tiny, 32 x 96 x 96 voxels in 32 x 64 x 64 windows (the smallest
    useful windows, the worst case): fine maps agree to a mean cosine of about 0.997, coarse
    maps (receptive field larger than a window) about 0.93; full-size numbers:
    docs/en/advanced_guides/tiled_inference.md."""
    from scipy.ndimage import gaussian_filter
    rng = np.random.default_rng(0)
    arr = gaussian_filter(rng.normal(size=(32, 96, 96)), 3) * 3000 - 200
    img = MedicalImage(arr.astype(np.float32), spacing=2.0, modality='CT')
    whole = embed(sam_tiny, img)
    tiled = embed(sam_tiny, img, tile_size=(32, 64, 64))
    assert tiled.meta["tiles"] == 4
    cos = {lv: (whole.maps[lv] * tiled.maps[lv]).sum(0) for lv in whole.levels}
    assert cos['fine'].mean() > 0.99 and cos['fine'].min() > 0.9
    assert cos['coarse'].mean() > 0.9
    for lv in whole.levels:  # unit vectors
        np.testing.assert_allclose(tiled.maps[lv].norm(dim=0).numpy(), 1.0, atol=1e-5)


def test_sam_maps_have_the_documented_shapes(sam_tiny):
    img = MedicalImage(np.zeros((21, 37, 45), np.float32) - 1000, spacing=2.0, modality='CT')
    maps = embed(sam_tiny, img)
    assert tuple(maps.fine.shape) == (32, 11, 19, 23)
    assert tuple(maps.coarse.shape) == (32, 6, 3, 3)
    assert maps.strides == {'fine': (2, 2, 2), 'coarse': (4, 16, 16)}
    assert maps.model['config'] == 'sam_tiny'
