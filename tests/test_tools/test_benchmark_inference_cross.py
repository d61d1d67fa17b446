"""The cross-image rows of tools/benchmark_inference.py: agreement with the exhaustive search
and the default target."""
import numpy as np

from mmanat.apis.matching import MatchResult
from mmanat.cli import benchmark_inference as bi


def _result(grid, offset=0.0):
    grid = np.asarray(grid, dtype=np.float64)
    pts = grid * 2.0 + offset
    return MatchResult(points=pts, index=pts.copy(), index_rounded=np.rint(pts).astype(int),
                       scores=np.ones(len(pts)), method='x', extra={'grid_points': grid})


def test_agreement_counts_same_voxels_and_measures_the_others():
    ref = _result([[0, 0, 0], [1, 2, 3], [4, 4, 4], [5, 5, 5]])
    # the second answer is 3 voxels (6 mm) away along x, the last lies beyond k
    other = _result([[0, 0, 0], [1, 2, 6], [4, 4, 4], [9, 9, 9]])
    frac, dist = bi.agreement(ref, other, 3)
    assert frac == 2 / 3
    np.testing.assert_allclose(dist, [6.0])
    frac, dist = bi.agreement(ref, ref, 4)
    assert frac == 1.0 and dist.size == 0


def test_cross_image_target_defaults_to_lung2_only_with_the_default_image():
    args = bi.parse_args([])
    assert args.image == bi.DEFAULT_IMAGE and args.target_image is None
    assert bi.parse_args(['--target-image', 'none']).target_image == 'none'
    assert 'lung2' in bi.DEFAULT_TARGET


def test_cross_image_rows_one_row_per_topk(tmp_path, capsys):
    import os.path as osp

    import pytest

    from mmanat.apis import embed, init_model
    from mmanat.fileio import read_volume, write_image
    from tests.test_tools.test_benchmark_inference_compare import SAM_CKPT, _ct

    if not osp.exists(SAM_CKPT):
        pytest.skip(f'{SAM_CKPT} missing (make checkpoints)')
    assert bi.parse_args([]).topk == [4] and bi.parse_args([]).pool == [2, 2, 2]
    a, b = str(tmp_path / 'a.nii.gz'), str(tmp_path / 'b.nii.gz')
    write_image(_ct(seed=0), a)
    write_image(_ct(seed=1), b)
    args = bi.parse_args(['--image', a, '--target-image', b, '--points', '30',
                          '--topk', '1', '500', '--pool', '2', '4', '4'])
    model = init_model(None, SAM_CKPT, device='cpu')
    image = read_volume(a)
    bi.cross_image_rows(args, model, image, embed(model, image), 'cpu',
                        np.random.default_rng(0))
    out = capsys.readouterr().out
    assert 'coarse_to_fine topk 1 pool 2x4x4' in out
    row = [ln for ln in out.splitlines() if 'topk 500 pool' in ln][0]
    assert '100.0%' in row  # every block searched: the exhaustive answer
