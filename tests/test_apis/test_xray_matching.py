"""2D SAM inference on radiographs: embedding a 2D image as a one-slice volume, matching with
2D points in and 2D results out (reference, coarse-to-fine, stable points, consensus), caches,
the 2D point fits and sub-pixel refinement, and the errors of 2D / 3D mixes.

The model is a randomly initialised 2D SAM (mmdet ResNet-18 and FPN with 16 / 32 channels
wrapped by ``Planar``); a radiograph matched against itself must give back its query points.
"""
import numpy as np
import pytest
import torch

from mmanat.apis import embed, init_model, load_embeddings, match, save_embeddings
from mmanat.apis.matching import Matcher
from mmanat.registration.point_fits import (fit_affine_robust, fit_rigid_ransac, kabsch,
                                            thinnest_extent)
from mmanat.structures import MedicalImage, PointSet, is_planar
from mmanat.structures.embedding_map import EmbeddingMaps, GridGeometry
from mmanat.utils.exceptions import InvalidInputError

#: the tiny 2D SAM of these tests (the brief of the 2D SAM configs, with random weights)
SAM2D = dict(
    type='SAM',
    backbone=dict(type='Planar', module=dict(
        type='mmdet.ResNet', depth=18, base_channels=16, stem_channels=16, in_channels=1,
        out_indices=(0, 1, 2, 3))),
    neck=dict(type='Planar', module=dict(type='mmdet.FPN', in_channels=[16, 32, 64],
                                         out_channels=32, num_outs=3)),
    coarse_head=dict(type='CoarseEmbeddingHead', in_channels=128, channels=32,
                     kernel_sizes=((1, 1, 1), (1, 3, 3))),
    fine_levels=(0, 1, 2), coarse_level=3, fine_stride=(1, 4, 4), coarse_stride=(1, 32, 32))
INPUT_SPACING = 1.0


def build_sam2d(input_spacing=INPUT_SPACING, seed=0):
    """A random-init 2D SAM in eval mode on the CPU, with ``input_spacing`` mm."""
    torch.manual_seed(seed)
    model = init_model(dict(model=dict(SAM2D)), None, device='cpu',
                       expect='2d-dense-embedding')
    model.input_spacing = input_spacing  # whether or not SAM's constructor takes it
    return model


def radiograph(seed=0, origin=(-150.0, 40.0)):
    """A synthetic chest radiograph (float in [0, 1], about 4 mm pixels) with an origin off
    zero, and its projected landmarks inside the image (world mm)."""
    from mmanat.datasets.synthetic_radiograph_dataset import render_synthetic_xray
    item = render_synthetic_xray(seed, spacing=4.0, img_size=None)
    img = MedicalImage(item['img'], spacing=item['spacing'], origin=origin, modality='XR',
                       path=f'synthetic_xray_{seed}')
    ok = np.asarray(item['landmark_valid'], bool)
    cr = np.asarray(item['landmarks'], np.float64)[ok]
    names = [n for n, v in zip(item['landmark_names'], ok) if v]
    return img, PointSet(img.index_to_world(cr), names=names)


@pytest.fixture(scope='module')
def model():
    return build_sam2d()


@pytest.fixture(scope='module')
def xray():
    return radiograph(0)


@pytest.fixture(scope='module')
def maps(model, xray):
    return embed(model, xray[0])


def _inner_points(image, n=12, seed=0, margin=0.2):
    """World points spread over the inner part of a 2D image."""
    rng = np.random.default_rng(seed)
    size = image.size.astype(np.float64)
    cr = rng.uniform(margin * size, (1 - margin) * size, size=(n, 2))
    return image.index_to_world(cr)


# ------------------------------------------------------------------------------ embed
def test_embed_2d_image_shapes_and_geometry(model, xray, maps):
    img, _ = xray
    assert is_planar(maps) and maps.meta['modality'] == 'XR'
    assert maps.strides == {'fine': (1, 4, 4), 'coarse': (1, 32, 32)}
    grid = maps.input_grid
    n_in = grid.shape
    # in-plane resampling to the model's spacing, the slice untouched
    assert n_in[0] == 1
    np.testing.assert_allclose(grid.spacing, [INPUT_SPACING, INPUT_SPACING, 1.0])
    expect = np.rint(img.size * img.spacing / INPUT_SPACING).astype(int)
    assert (n_in[2], n_in[1]) == tuple(expect)
    c = maps.channels
    assert maps.fine.shape == (c, 1, -(-n_in[1] // 4), -(-n_in[2] // 4))
    assert maps.coarse.shape == (c, 1, -(-n_in[1] // 32), -(-n_in[2] // 32))
    norms = maps.fine.norm(dim=0)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-4)
    # the input grid keeps the image's centre; every map lies in the plane z = 0
    centre_img = img.index_to_world((img.size - 1) / 2)
    centre_in = grid.index_to_world((grid.size - 1) / 2)
    np.testing.assert_allclose(centre_in[:2], centre_img, atol=1e-6)
    assert centre_in[2] == 0
    # fine voxel (0, r, c) is centred on input pixel 4 * (r, c) + 1.5
    r, col = 5, 7
    world = maps.map_index_to_world('fine', [0, r, col])
    want = grid.index_to_world([4 * col + 1.5, 4 * r + 1.5, 0])
    np.testing.assert_allclose(world, want, atol=1e-9)
    np.testing.assert_allclose(world[:2], grid.origin[:2] + INPUT_SPACING * np.array(
        [4 * col + 1.5, 4 * r + 1.5]), atol=1e-9)
    # the source grid is the original image's (a one-slice volume)
    np.testing.assert_allclose(maps.source_grid.origin, [*img.origin, 0.0])
    assert maps.source_grid.shape == (1, *img.shape)


def test_embed_follows_the_image_geometry_not_its_storage(model, xray, maps):
    """The same radiograph stored with flipped columns (direction -x) gives the same maps:
    the image is brought to +x / +y before the network."""
    img, _ = xray
    last = img.index_to_world([img.size[0] - 1, 0])
    flipped = MedicalImage(img.array[:, ::-1].copy(), spacing=img.spacing, origin=last,
                           direction=[[-1, 0], [0, 1]], modality='XR')
    other = embed(model, flipped)
    assert other.fine.shape == maps.fine.shape
    assert torch.allclose(other.fine, maps.fine, atol=1e-5)
    assert other.input_grid.allclose(maps.input_grid, tol=1e-6)


def test_embed_accepts_a_2d_image_path_and_caches_stay_2d(model, xray, maps, tmp_path):
    from mmanat.fileio import write_image
    img, _ = xray
    path = write_image(img, str(tmp_path / 'cxr.nrrd'))
    from_path = embed(model, path)
    assert is_planar(from_path) and torch.allclose(from_path.fine, maps.fine, atol=1e-5)
    cache = save_embeddings(maps, tmp_path / 'cxr.emb.pt', dtype='float32')
    back = load_embeddings(cache, expected_model=model)
    assert is_planar(back) and torch.equal(back.fine, maps.fine.cpu())
    pts = _inner_points(img, 4)
    res = match(back, pts, back, method='reference', refine=False)
    assert res.points.shape == (4, 2)


def test_tiled_2d_embedding_agrees_with_the_whole_image(model, xray, maps):
    tiled = embed(model, xray[0], tile_size=(160, 160))  # (y, x) input pixels
    assert tiled.meta['tile_size'][0] == 1 and tiled.meta['tiles'] > 1
    assert tiled.fine.shape == maps.fine.shape and is_planar(tiled)
    cos = (tiled.fine * maps.fine).sum(0)
    assert float(cos.mean()) > 0.98


# ------------------------------------------------------------------------------ match
def test_self_match_reference_returns_the_query_points(maps, xray):
    img, landmarks = xray
    fine_mm = maps.grid('fine').spacing[0]
    # at fine voxel centres the query's own voxel scores exactly 1: found exactly
    grid_pts = maps.map_index_to_world('fine', np.array([[0, 10, 12], [0, 20, 30],
                                                         [0, 33, 21]]))[:, :2]
    exact = match(maps, grid_pts, maps, method='reference', refine=False)
    np.testing.assert_allclose(exact.points, grid_pts, atol=1e-6)
    # anywhere (the landmarks): within the sub-pixel refinement of the right voxel
    res = match(maps, landmarks.xyz, maps, method='reference')
    err = np.linalg.norm(res.points - landmarks.xyz, axis=1)
    assert res.points.shape == (len(landmarks), 2)
    assert np.median(err) < 0.5 * fine_mm and np.mean(err < fine_mm) >= 0.9, err


def test_2d_results_and_pixel_round_trip(maps, xray):
    img, landmarks = xray
    res = match(maps, landmarks, maps, method='reference')
    n = len(landmarks)
    assert res.points.shape == res.index.shape == res.index_rounded.shape == (n, 2)
    assert res.index_rounded.dtype == np.int64
    # pixel (column, row) of the original image <-> world mm
    np.testing.assert_allclose(img.index_to_world(res.index), res.points, atol=1e-9)
    np.testing.assert_allclose(img.world_to_index(res.points), res.index, atol=1e-9)
    assert np.all(res.index_rounded >= 0) and np.all(res.index_rounded < img.size)
    ps = res.to_pointset(names=landmarks.names)
    assert ps.xyz.shape == (n, 2) and list(ps.extra) == ['score', 'column', 'row']
    assert ps.extra['column'] == [int(v) for v in res.index_rounded[:, 0]]
    assert 'grid_points' in res.extra and res.extra['grid_points'].shape == (n, 2)
    # (N, 3) points in the plane z = 0 are accepted and still answered in 2D
    lifted = np.concatenate([landmarks.xyz, np.zeros((n, 1))], 1)
    again = match(maps, lifted, maps, method='reference')
    np.testing.assert_allclose(again.points, res.points)


@pytest.mark.parametrize('kwargs', [dict(method='coarse_to_fine'),
                                    dict(method='reference', stable_points=True),
                                    dict(method='consensus')])
def test_other_methods_run_in_2d(maps, xray, kwargs):
    img, _ = xray
    pts = _inner_points(img, 10, seed=1)
    fine_mm = maps.grid('fine').spacing[0]
    if kwargs['method'] == 'consensus':
        kwargs = dict(kwargs, consensus_cfg=dict(template_image=img, n_points=600))
    res = match(maps, pts, maps, **kwargs)
    assert res.points.shape == (10, 2) and res.index.shape == (10, 2)
    err = np.linalg.norm(res.points - pts, axis=1)
    assert np.median(err) < fine_mm, (kwargs, err)
    if kwargs['method'] == 'consensus':
        aff = res.info['affine']
        assert aff.shape == (2, 3)
        np.testing.assert_allclose(aff[:, :2], np.eye(2), atol=0.05)
        assert res.extra['global_points'].shape == (10, 2)
    if kwargs.get('stable_points'):
        assert res.extra['num_kept'].shape == (10,) and res.extra['num_kept'].max() <= 25


def test_cross_subject_match_is_2d_and_inside_the_target(model, maps):
    tgt_img, tgt_pts = radiograph(1, origin=(0.0, 0.0))
    tgt = embed(model, tgt_img)
    _, landmarks = radiograph(0)
    res = Matcher(maps, tgt).match(landmarks, method='reference')
    assert res.points.shape == (len(landmarks), 2)
    assert np.all(tgt_img.contains_world(res.points))


# ------------------------------------------------------------------------------ errors
def _maps_3d():
    c = 8
    maps = {'fine': torch.nn.functional.normalize(torch.randn(c, 4, 8, 8), dim=0),
            'coarse': torch.nn.functional.normalize(torch.randn(c, 2, 2, 2), dim=0)}
    grid = GridGeometry((8, 16, 16), 2.0, (0.0, 0.0, 0.0))
    return EmbeddingMaps(maps, {'fine': (2, 2, 2), 'coarse': (4, 8, 8)}, grid, grid,
                         dict(config='x'), dict(source_path='vol.nrrd'))


def test_2d_and_3d_mixes_are_refused(model, maps, xray):
    img, landmarks = xray
    with pytest.raises(InvalidInputError, match='2D image.*z != 0'):
        match(maps, np.array([[0.0, 100.0, 5.0]]), maps, method='reference')
    vol = _maps_3d()
    with pytest.raises(InvalidInputError, match='3D volume.*2D'):
        match(vol, np.array([[4.0, 4.0]]), vol, method='reference')
    with pytest.raises(InvalidInputError, match='2D image.*3D volume'):
        Matcher(maps, vol)
    volume = MedicalImage(np.zeros((8, 32, 32), np.float32), spacing=2.0, modality='CT')
    with pytest.raises(InvalidInputError, match='3D volume.*2D network'):
        embed(model, volume)
    torch.manual_seed(0)
    sam3d = init_model('configs/_base_/models/sam_tiny.py', None, device='cpu')
    with pytest.raises(InvalidInputError, match='2D image.*3D network.*2D SAM'):
        embed(sam3d, img)


def test_init_model_kinds_for_2d_sam(tmp_path):
    from mmengine.config import Config

    from mmanat.utils.checkpoint import checkpoint_network, config_kind
    assert config_kind(Config(dict(model=SAM2D))) == '2d-dense-embedding'
    assert config_kind(Config.fromfile('configs/_base_/models/sam_tiny.py')) == '3d-embedding'
    with pytest.raises(InvalidInputError, match='needs a 2D dense anatomical embedding'):
        init_model('configs/_base_/models/sam_tiny.py', None, device='cpu',
                   expect='2d-dense-embedding', user='tools/match.py')
    # a checkpoint of the 2D SAM: its stored config and its 2D backbone weights say so
    model = build_sam2d()
    cfg_text = Config(dict(model=SAM2D)).pretty_text
    ckpt = tmp_path / 'sam2d.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {'cfg': cfg_text}}, str(ckpt))
    found = checkpoint_network({'meta': {'cfg': cfg_text}}, model.state_dict())
    assert found == dict(type='SAM', kind='2d-dense-embedding', dims=2)
    assert checkpoint_network({}, model.state_dict())['dims'] == 2  # by the backbone
    loaded = init_model(None, str(ckpt), device='cpu', expect='2d-dense-embedding')
    assert loaded.fine_stride == (1, 4, 4)
    with pytest.raises(InvalidInputError, match='sam2d.pth: the checkpoint holds a 2D dense '
                       r'.*needs a 3D dense'):
        init_model(None, str(ckpt), device='cpu', expect='3d-embedding')
    init_model(None, str(ckpt), device='cpu', expect=('3d-embedding', '2d-dense-embedding'))


# ------------------------------------------------------------------------------ 2D pieces
def test_point_fits_in_2d():
    rng = np.random.default_rng(0)
    src = rng.uniform(-100, 100, (200, 2))
    a = np.deg2rad(12.0)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    dst = src @ rot.T + np.array([5.0, -3.0])
    r, t = kabsch(src, dst)
    np.testing.assert_allclose(r, rot, atol=1e-9)
    np.testing.assert_allclose(t, [5.0, -3.0], atol=1e-9)
    # a mirror image is not a rotation: det stays +1
    r_m, _ = kabsch(src, src * np.array([-1.0, 1.0]))
    assert np.isclose(np.linalg.det(r_m), 1.0)
    bad = dst.copy()
    bad[:60] += rng.uniform(50, 100, (60, 2))
    r2, t2, inl = fit_rigid_ransac(src, bad, 5.0)
    assert inl[60:].all() and not inl[:60].any()
    np.testing.assert_allclose(r2, rot, atol=1e-9)
    aff = np.array([[1.1, 0.2], [-0.1, 0.9]])
    dst_a = src @ aff.T + 2.0
    dst_a[:30] += 80.0
    a2, t2a, inl_a = fit_affine_robust(src, dst_a)
    np.testing.assert_allclose(a2, aff, atol=1e-6)
    assert not inl_a[:30].any()
    assert thinnest_extent(src) > 10.0
    with pytest.raises(InvalidInputError, match='collinear'):
        fit_affine_robust(np.c_[np.arange(6.0), np.zeros(6)], np.c_[np.arange(6.0),
                                                                  np.zeros(6)])


def test_quadratic_peak_offsets_2d_recovers_the_vertex():
    from mmanat.apis.refinement import NEIGHBOUR_OFFSETS, PLANE_ROWS, quadratic_peak_offsets_2d
    d = NEIGHBOUR_OFFSETS[PLANE_ROWS, 1:].astype(np.float64)
    vertex = np.array([0.3, -0.2])  # (y, x)
    h = np.array([[-2.0, 0.5], [0.5, -1.0]])
    diff = d - vertex
    s = 1.0 + 0.5 * np.einsum('ni,ij,nj->n', diff, h, diff)
    centre = torch.tensor([s[4]])
    out = quadratic_peak_offsets_2d(torch.tensor(s)[None], torch.ones(1, 9, dtype=torch.bool),
                                    centre)
    np.testing.assert_allclose(out[0].numpy(), [0.0, 0.3, -0.2], atol=1e-9)


def test_consensus_2d_defaults_and_global_model(maps, xray):
    """On 2D maps consensus uses CONSENSUS_DEFAULTS_2D (a local radius of 80 mm): the default
    answer equals the explicit one; ``global_model`` is checked."""
    from mmanat.apis.consensus import CONSENSUS_DEFAULTS, CONSENSUS_DEFAULTS_2D
    from mmanat.utils.exceptions import InvalidInputError
    img, _ = xray
    assert CONSENSUS_DEFAULTS_2D['local_radius_mm'] != CONSENSUS_DEFAULTS['local_radius_mm']
    pts = _inner_points(img, 10, seed=2)
    base = dict(template_image=img, n_points=600)
    default = match(maps, pts, maps, method='consensus', consensus_cfg=base)
    explicit = match(maps, pts, maps, method='consensus',
                     consensus_cfg=dict(base, **CONSENSUS_DEFAULTS_2D))
    np.testing.assert_array_equal(default.points, explicit.points)
    np.testing.assert_array_equal(default.extra['num_local'], explicit.extra['num_local'])
    sim = match(maps, pts, maps, method='consensus',
                consensus_cfg=dict(base, global_model='similarity'))
    np.testing.assert_allclose(sim.info['affine'][:, :2], np.eye(2), atol=0.05)
    with pytest.raises(InvalidInputError, match='global_model'):
        match(maps, pts, maps, method='consensus', consensus_cfg=dict(base, global_model='tps'))
