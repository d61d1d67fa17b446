"""tools/benchmark_inference.py --compare-embedding: the model as is and the optimised
embedding paths side by side (no timing assertions: the machine is shared; the outputs of
the paths must agree)."""
import math
import os.path as osp

import numpy as np
import pytest

from mmanat.apis import init_model
from mmanat.cli import benchmark_inference as bi
from mmanat.fileio import write_image
from mmanat.structures import MedicalImage

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SAM_CKPT = osp.join(ROOT, 'checkpoints', 'sam_default.pth')


def _ct(shape=(28, 40, 44), seed=0):
    """A small CT-like volume at 2 mm: air around a water body with two 'lungs' and noise."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing='ij')
    a = np.full(shape, -1000.0, np.float32)
    body = (y / 0.8) ** 2 + (x / 0.9) ** 2 < 1
    a[body] = 40.0
    a[body & (((np.abs(x) - 0.4) / 0.3) ** 2 + (y / 0.5) ** 2 < 1)] = -850.0
    a += rng.normal(0, 30, shape).astype(np.float32)
    return MedicalImage(a, spacing=2.0, origin=(-40.0, 12.0, -30.0), modality='CT')


@pytest.fixture(scope='module')
def tiny_model():
    if not osp.exists(SAM_CKPT):
        pytest.skip(f'{SAM_CKPT} missing (make checkpoints)')
    return init_model(None, SAM_CKPT, device='cpu')


def test_compare_embedding_paths_agree(tiny_model):
    rows = bi.compare_embedding(tiny_model, _ct(), 'cpu', rounds=2, points=60,
                                tile_size=(16, 32, 32))
    names = [r['name'] for r in rows]
    assert names == [p[0] for p in bi.EMBED_PATHS] + ['before, tiled 16x32x32',
                                                       'after, tiled 16x32x32']
    before, after, bf16, t_before, t_after = rows
    assert t_before['maps'].meta['tiles'] > 1 and t_after['maps'].meta['optimized']
    for lv in ('fine', 'coarse'):  # tiled: the optimised path equals the model's too
        np.testing.assert_allclose(t_after['maps'].maps[lv].numpy(),
                                   t_before['maps'].maps[lv].numpy(), atol=1e-4)
    rows = rows[:3]
    assert before['kwargs'] == dict(optimize=False) and before['ratio'] == 1.0
    assert not before['maps'].meta['optimized'] and after['maps'].meta['optimized']
    assert bf16['maps'].meta['cpu_bf16'] and not after['maps'].meta['cpu_bf16']
    for r in rows:
        assert len(r['times']) == 2 and all(t > 0 for t in r['times'])
        assert math.isfinite(r['ratio']) and r['ratio'] > 0
        assert r['peak_mb'] is not None  # Linux: /proc/self/statm
    # the optimised float32 path computes the same maps (BatchNorm folding, memory format)
    for lv in ('fine', 'coarse'):
        assert after['max_abs'][lv] < 1e-4
        assert after['cos_min'][lv] > 0.99999
        np.testing.assert_allclose(after['maps'].maps[lv].numpy(),
                                   before['maps'].maps[lv].numpy(), atol=1e-4)
    assert after['same_voxel'] == 1.0
    # bf16 changes the numerics a little, not the maps' meaning
    for lv in ('fine', 'coarse'):
        assert 0 < bf16['max_abs'][lv] < 0.1 and bf16['cos_mean'][lv] > 0.999
    assert bf16['same_voxel'] > 0.8


def test_compare_embedding_from_the_command_line(tiny_model, tmp_path, capsys):
    path = str(tmp_path / 'ct.nii.gz')
    write_image(_ct((20, 36, 36), seed=1), path)
    assert bi.main(['--checkpoint', SAM_CKPT, '--image', path, '--compare-embedding',
                    '--compare-only', '--compare-size', '32', '--rounds', '1',
                    '--target-image', 'none']) == 0
    out = capsys.readouterr().out
    assert 'network input (32, 32, 32) voxels' in out
    table = [line for line in out.splitlines() if line.startswith('| ')]
    assert table[0].startswith('| path | median s') and len(table) == 2 + len(bi.EMBED_PATHS)
    assert '| before: model as is |' in table[2] and '1.00x' in table[2]


def test_fit_input_pads_with_air_and_crops():
    from mmanat.apis import preprocess_image
    pre = preprocess_image(_ct((20, 36, 36)))
    cube = bi.fit_input(pre, 32)
    assert cube.shape == (32, 32, 32) and cube.meta['unpadded_shape'] == (32, 32, 32)
    np.testing.assert_array_equal(cube.array[:20, :32, :32], pre.array[:20, :32, :32])
    assert np.all(cube.array[20:] == pre.meta['pad_value'])
    np.testing.assert_allclose(cube.origin, pre.origin)
