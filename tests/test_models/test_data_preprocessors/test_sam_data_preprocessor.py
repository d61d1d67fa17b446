"""SAMDataPreprocessor: stacking of collated pairs, padding (invalid, coordinates extended
linearly), plain volumes for tensor/predict mode."""
import pytest
import torch
from mmengine.dataset import default_collate, pseudo_collate

from mmanat.models.data_preprocessors import SAMDataPreprocessor, pad_views
from mmanat.registry import MODELS
from mmanat.utils.exceptions import InvalidInputError


def _sample(shape, seed):
    g = torch.Generator().manual_seed(seed)
    D, H, W = shape
    z, y, x = torch.meshgrid(torch.arange(D), torch.arange(H), torch.arange(W), indexing='ij')
    idx = torch.stack([x, y, z]).float()
    A = torch.randn(3, 3, generator=g) + 2 * torch.eye(3)
    coords = torch.stack([torch.einsum('ij,j...->i...', A, idx) + v for v in (0., 10.)])
    return dict(inputs=torch.randn((2, 1) + shape, generator=g),
                data_samples=dict(coords=coords, valid=torch.ones((2, ) + shape, dtype=bool),
                                  meta=dict(subject_id=f's{seed}', scales=(1.0, 1.1))))


@pytest.mark.parametrize('collate', [pseudo_collate, default_collate])
def test_pairs_are_stacked_and_padded(collate):
    pre = MODELS.build(dict(type='SAMDataPreprocessor'))
    batch = collate([_sample((6, 20, 33), s) for s in range(2)])
    out = pre(batch, training=True)
    x, ds = out['inputs'], out['data_samples']
    assert x.shape == (2, 2, 1, 8, 32, 48) and x.dtype == torch.float32
    assert ds['coords'].shape == (2, 2, 3, 8, 32, 48)
    assert ds['valid'].shape == (2, 2, 8, 32, 48)
    assert ds['valid'][..., :6, :20, :33].all() and not ds['valid'][..., 6:, :, :].any()
    assert not ds['valid'][..., 20:, :].any() and not ds['valid'][..., 33:].any()
    assert (x[..., 6:, :, :] == 0).all()
    # original voxels untouched; padding continues the affine map exactly
    src = torch.stack([s['data_samples']['coords'] for s in
                       [_sample((6, 20, 33), s) for s in range(2)]])
    torch.testing.assert_close(ds['coords'][..., :6, :20, :33], src)
    full = torch.stack([s['data_samples']['coords'] for s in
                        [_sample((8, 32, 48), s) for s in range(2)]])
    torch.testing.assert_close(ds['coords'], full, atol=5e-3, rtol=0)  # float32 rounding
    assert 'labels' not in ds


def test_labels_are_stacked_and_padded_with_background():
    samples = [_sample((6, 20, 33), s) for s in range(2)]
    for s in samples:
        s['data_samples']['labels'] = torch.ones((2, 6, 20, 33), dtype=torch.int64)
    ds = SAMDataPreprocessor()(pseudo_collate(samples))['data_samples']
    assert ds['labels'].shape == (2, 2, 8, 32, 48)
    assert ds['labels'].sum() == 2 * 2 * 6 * 20 * 33


def test_pad_views_noop_and_single_voxel_axis():
    x = torch.zeros(1, 2, 1, 4, 16, 16)
    c = torch.zeros(1, 2, 3, 4, 16, 16)
    assert pad_views(x, c, None)[1] is c
    x1, c1, v1 = pad_views(torch.zeros(1, 1, 16, 16), torch.ones(3, 1, 16, 16),
                           torch.ones(1, 16, 16, dtype=bool))
    assert x1.shape == (1, 4, 16, 16) and (c1 == 1).all() and v1.sum() == 256


def test_plain_volumes_for_predict():
    pre = SAMDataPreprocessor()
    vols = [torch.randn(1, 5, 20, 18), torch.randn(1, 7, 17, 18)]
    out = pre(dict(inputs=vols, data_samples=None))
    assert out['inputs'].shape == (2, 1, 7, 20, 18)
    assert [m['input_shape'] for m in out['data_samples']] == [(5, 20, 18), (7, 17, 18)]
    out = SAMDataPreprocessor(pad_single=True)(dict(inputs=torch.randn(1, 1, 5, 20, 18)))
    assert out['inputs'].shape == (1, 1, 8, 32, 32)
    with pytest.raises(InvalidInputError):
        pre(dict(inputs=torch.randn(2, 3, 4)))
    with pytest.raises(InvalidInputError):
        pre(dict(inputs=torch.randn(1, 2, 1, 4, 16, 16), data_samples=None))
