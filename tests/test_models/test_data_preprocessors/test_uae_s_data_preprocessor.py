"""UAESDataPreprocessor: a UAE-S batch mixes intra-volume view pairs and inter-subject pairs of
other sizes; each kind is batched on its own, plain SAM batches are left to the parent."""
import torch
from mmengine.dataset import pseudo_collate

from mmanat.datasets.pair_collate import pair_collate

from mmanat.models.data_preprocessors import SAMDataPreprocessor
from mmanat.models.data_preprocessors.uae_s_data_preprocessor import (UAESDataPreprocessor,
                                                                       is_inter_pair)
from mmanat.registry import MODELS


def _pair(shape, seed, inter=False):
    g = torch.Generator().manual_seed(seed)
    D, H, W = shape
    z, y, x = torch.meshgrid(torch.arange(D), torch.arange(H), torch.arange(W), indexing='ij')
    coords = torch.stack([torch.stack([x, y, z]).float() + v for v in (0., 5.)])
    samples = dict(coords=coords, valid=torch.ones((2, ) + shape, dtype=bool),
                   meta=dict(subject_id=f's{seed}', pair_type='inter' if inter else 'intra'))
    if inter:
        samples['labels'] = torch.full((2, ) + shape, 3, dtype=torch.int64)
    return dict(inputs=torch.randn((2, 1) + shape, generator=g), data_samples=samples)


def test_is_inter_pair():
    assert is_inter_pair({'meta': {'pair_type': 'inter'}})
    assert is_inter_pair({'metas': {'pair_type': 'inter'}})
    assert not is_inter_pair({'meta': {'pair_type': 'intra'}})
    assert not is_inter_pair({'meta': None}) and not is_inter_pair(None)


def test_mixed_batch_is_split_by_pair_kind():
    pre = MODELS.build(dict(type='UAESDataPreprocessor'))
    # the UAE-S configs collate with mmanat_pair_collate (samples kept whole)
    batch = pair_collate([_pair((4, 16, 16), 0), _pair((6, 20, 20), 1, inter=True),
                          _pair((4, 16, 16), 2)])
    out = pre(batch, training=True)
    intra, inter = out['inputs']['intra'], out['inputs']['inter']
    assert intra.shape == (2, 2, 1, 4, 16, 16)
    assert inter.shape == (1, 2, 1, 8, 32, 32)  # padded to the (4, 16, 16) divisor
    # the order of samples within a kind is kept: intra = samples 0 and 2
    torch.testing.assert_close(intra[1], batch['inputs'][2].float())
    ds = out['data_samples']
    assert 'labels' not in ds['intra'] and ds['inter']['labels'].shape == (1, 2, 8, 32, 32)
    assert (ds['inter']['labels'][..., :6, :20, :20] == 3).all()
    assert (ds['inter']['labels'][..., 6:, :, :] == 0).all()  # padding is background


def test_only_inter_pairs_leaves_intra_empty():
    out = UAESDataPreprocessor()(pair_collate([_pair((4, 16, 16), 0, inter=True)]))
    assert out['inputs']['intra'] is None and out['data_samples']['intra'] is None
    assert out['inputs']['inter'].shape == (1, 2, 1, 4, 16, 16)


def test_plain_sam_batch_is_returned_as_by_the_parent():
    # a plain SAM batch (pseudo_collate: data_samples merged into one dict of lists)
    batch = pseudo_collate([_pair((4, 16, 16), s) for s in range(2)])
    got = UAESDataPreprocessor()(batch, training=True)
    want = SAMDataPreprocessor()(batch, training=True)
    assert torch.is_tensor(got['inputs'])
    torch.testing.assert_close(got['inputs'], want['inputs'])
    torch.testing.assert_close(got['data_samples']['coords'], want['data_samples']['coords'])
