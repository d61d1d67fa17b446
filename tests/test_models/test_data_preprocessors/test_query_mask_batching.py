"""SAMDataPreprocessor / UAESDataPreprocessor carry the per-view query mask (UAE-M stage 2:
MR foreground) as data_samples['query_mask'] (B, 2, D, H, W), padded with False like valid."""
import pytest
import torch
from mmengine.dataset import default_collate, pseudo_collate

from mmanat.datasets.pair_collate import pair_collate
from mmanat.models.data_preprocessors import SAMDataPreprocessor, UAESDataPreprocessor
from mmanat.models.data_preprocessors.sam_data_preprocessor import pad_mask
from mmanat.utils.exceptions import InvalidInputError

SHAPE = (6, 20, 33)       # padded to (8, 32, 48) by the default divisor (4, 16, 16)


def _sample(seed, with_mask=True, shape=SHAPE, inter=False):
    g = torch.Generator().manual_seed(seed)
    D, H, W = shape
    z, y, x = torch.meshgrid(torch.arange(D), torch.arange(H), torch.arange(W), indexing='ij')
    coords = torch.stack([torch.stack([x, y, z]).float() * 2. + v for v in (0., 3.)])
    ds = dict(coords=coords, valid=torch.ones((2, ) + shape, dtype=torch.bool),
              meta=dict(subject_id=f's{seed}'))
    if with_mask:
        ds['query_mask'] = torch.rand((2, ) + shape, generator=g) < 0.4
    if inter:
        ds['meta']['pair_type'] = 'inter'
        ds['labels'] = torch.ones((2, ) + shape, dtype=torch.long)
    return dict(inputs=torch.randn((2, 1) + shape, generator=g), data_samples=ds)


@pytest.mark.parametrize('collate', [pseudo_collate, default_collate])
def test_query_mask_is_stacked_and_padded_like_valid(collate):
    samples = [_sample(s) for s in range(2)]
    out = SAMDataPreprocessor()(collate(samples), training=True)['data_samples']
    q, v = out['query_mask'], out['valid']
    assert q.dtype == torch.bool and q.shape == v.shape == (2, 2, 8, 32, 48)
    src = torch.stack([s['data_samples']['query_mask'] for s in samples])
    assert torch.equal(q[..., :6, :20, :33], src)
    # False wherever valid was padded (and nothing else added)
    assert not q[~v].any() and int(q.sum()) == int(src.sum())


def test_batches_without_masks_are_unchanged():
    batch = pseudo_collate([_sample(s, with_mask=False) for s in range(2)])
    out = SAMDataPreprocessor()(batch, training=True)['data_samples']
    assert set(out) == {'coords', 'valid', 'metas'}


def test_samples_without_a_mask_get_all_true_beside_masked_ones():
    # mixed batches keep their samples whole with mmanat_pair_collate
    samples = [_sample(0), _sample(1, with_mask=False)]
    q = SAMDataPreprocessor()(pair_collate(samples), training=True)['data_samples'][
        'query_mask']
    assert torch.equal(q[0, ..., :6, :20, :33], samples[0]['data_samples']['query_mask'])
    assert q[1, ..., :6, :20, :33].all() and not q[1, ..., 6:, :, :].any()
    assert not q[1, ..., 20:, :].any() and not q[1, ..., 33:].any()


def test_wrong_mask_shapes_are_rejected():
    bad = _sample(0)
    bad['data_samples']['query_mask'] = torch.ones((2, 6, 20, 32), dtype=torch.bool)
    with pytest.raises(InvalidInputError, match='query_mask'):
        SAMDataPreprocessor()(pair_collate([bad, _sample(1)]), training=True)
    with pytest.raises(InvalidInputError, match='query_mask'):
        SAMDataPreprocessor()(default_collate([bad]), training=True)


def test_pad_mask():
    m = torch.ones(2, 3, 5, 7, dtype=torch.bool)
    assert pad_mask(m, (3, 5, 7)) is m
    p = pad_mask(m.to(torch.uint8), (4, 8, 8))
    assert p.dtype == torch.bool and p.shape == (2, 4, 8, 8) and int(p.sum()) == 2 * 105
    with pytest.raises(InvalidInputError):
        pad_mask(m, (2, 5, 7))


def test_uae_s_preprocessor_keeps_the_mask_with_the_intra_pairs():
    samples = [_sample(0), _sample(1, with_mask=False, shape=(8, 16, 16), inter=True)]
    out = UAESDataPreprocessor()(pair_collate(samples), training=True)['data_samples']
    assert out['intra']['query_mask'].shape == (1, 2, 8, 32, 48)
    assert torch.equal(out['intra']['query_mask'][0, ..., :6, :20, :33],
                       samples[0]['data_samples']['query_mask'])
    assert 'query_mask' not in out['inter']
