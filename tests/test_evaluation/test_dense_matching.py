"""The dense-matching budget analysis (mmanat.evaluation.dense_matching): the ranks it reports
must describe what the real searches do."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmanat.apis import embed
from mmanat.apis.matching import Matcher
from mmanat.apis.search import search_matches
from mmanat.evaluation.dense_matching import answer_ranks, containment_table, score_rate
from mmanat.structures.embedding_map import EmbeddingMaps
from tests.helpers.position_encoder_standin import PositionEncoderStandIn, moved, quadratic_volume


@pytest.fixture(scope='module')
def pair():
    model = PositionEncoderStandIn(channels=32)
    image = quadratic_volume()
    return image, embed(model, image), embed(model, moved(image, (5.3, -3.1, 2.2)))


def _noisy(maps, seed, smooth=3):
    """The same geometry with smoothed random embeddings: a target on which coarse-to-fine
    needs more than one block for many points."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for lv, t in maps.maps.items():
        x = torch.randn(t.shape, generator=g)[None]
        x = F.avg_pool3d(x, smooth, stride=1, padding=smooth // 2)[0]
        out[lv] = F.normalize(x, dim=0)
    return EmbeddingMaps(out, dict(maps.strides), maps.input_grid, maps.source_grid,
                         dict(maps.model), dict(maps.meta))


def _queries(image, n, seed=0):
    lo, hi = image.world_bounds()
    return np.random.default_rng(seed).uniform(lo + 6, hi - 6, size=(n, 3))


def _search(tmpl, tgt_maps, pts, method, topk=4):
    m = Matcher(tmpl, tgt_maps, 'cpu')
    _, flat, _ = search_matches(tmpl, pts, m.prepared, method, False, topk, (1, 1, 1),
                                (2, 2, 2), None, False)
    return flat


def test_answer_is_the_exhaustive_search(pair):
    image, a, b = pair
    pts = _queries(image, 60)
    r = answer_ranks(a, b, pts, chunk=17)
    np.testing.assert_array_equal(r['flat'], _search(a, b, pts, 'reference'))
    assert r['window'] == 4 ** 3 and r['valid'] == int(np.prod(b.fine.shape[1:]))
    assert (r['gap'] >= 0).all()
    for k in ('rank_coarse', 'rank_fine', 'topk'):
        assert (r[k] >= 1).all()


def test_topk_is_the_smallest_that_finds_the_answer():
    image = quadratic_volume()
    base = embed(PositionEncoderStandIn(channels=32), image)
    a, b = _noisy(base, 0), _noisy(base, 1)
    pts = _queries(image, 80, seed=1)
    r = answer_ranks(a, b, pts)
    assert (r['topk'] > 1).sum() >= 10  # the check below is not vacuous
    ref = r['flat']
    for t in np.unique(r['topk']):
        sel = r['topk'] == t
        got = _search(a, b, pts[sel], 'coarse_to_fine', topk=int(t))
        np.testing.assert_array_equal(got, ref[sel])  # enough blocks: the exhaustive answer
        if t > 1:
            fewer = _search(a, b, pts[sel], 'coarse_to_fine', topk=int(t) - 1)
            assert (fewer != ref[sel]).all()  # one block fewer: never


def test_fine_rank_is_one_when_the_coarse_term_is_flat(pair):
    image, a, b = pair
    flat = {lv: t.clone() for lv, t in b.maps.items()}
    flat['coarse'][:] = 0
    flat['coarse'][0] = 1  # every target coarse voxel the same unit vector
    b2 = EmbeddingMaps(flat, dict(b.strides), b.input_grid, b.source_grid, dict(b.model),
                       dict(b.meta))
    r = answer_ranks(a, b2, _queries(image, 30))
    assert (r['rank_fine'] == 1).all()
    assert (r['rank_coarse'] == r['valid']).all()  # a flat term orders nothing


def test_containment_table_and_rate(pair):
    image, a, b = pair
    r = answer_ranks(a, b, _queries(image, 40))
    tab = containment_table(r, shares=(0.5, 1.0))
    assert tab['fine'][1] == r['rank_fine'].max()
    assert tab['coarse_to_fine'][0] <= tab['coarse_to_fine'][1]
    assert tab['coarse_to_fine'][1] == r['topk'].max() * r['window']
    assert score_rate(b, points=300, repeats=1) > 0


def test_budget_tool_end_to_end(tmp_path):
    """tools/analysis/dense_matching_budget.py on two small CTs with the shipped SAM: the JSON
    numbers are consistent and the figure is written."""
    import importlib.util
    import json
    import os.path as osp

    from mmanat.fileio import write_image
    from tests.test_tools.test_benchmark_inference_compare import SAM_CKPT, _ct

    if not osp.exists(SAM_CKPT):
        pytest.skip(f'{SAM_CKPT} missing (make checkpoints)')
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    spec = importlib.util.spec_from_file_location(
        'tool_dense_budget', osp.join(root, 'tools', 'analysis', 'dense_matching_budget.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    a, b = str(tmp_path / 'a.nii.gz'), str(tmp_path / 'b.nii.gz')
    write_image(_ct(seed=0), a)
    write_image(_ct(seed=1), b)
    out, fig = tmp_path / 'budget.json', tmp_path / 'budget.png'
    assert tool.main(['--checkpoint', SAM_CKPT, '--image', a, '--target-image', b,
                      '--points', '40', '--rounds', '1', '--pool', '2', '4', '4',
                      '--out', str(out), '--out-fig', str(fig)]) == 0
    res = json.loads(out.read_text())
    assert res['window'] == 4 * 6 * 6
    for rows in res['orderings'].values():
        vox = [r['voxels'] for r in rows]
        assert vox == sorted(vox) and 1 <= vox[0] and vox[-1] <= res['valid']
    assert res['level1_blocks'] < res['valid'] and res['score_rate'] > 0
    assert fig.stat().st_size > 10000
