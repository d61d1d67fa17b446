"""pair_collate: one list per top-level key, samples kept whole (UAE-S mixed batches)."""
import pytest
import torch
from mmengine.registry import FUNCTIONS
from torch.utils.data import DataLoader

from mmanat.datasets.pair_collate import pair_collate
from mmanat.utils.exceptions import InvalidInputError


def _intra(i):
    """An intra-volume view pair: no labels."""
    return dict(inputs=torch.full((2, 1, 4, 4, 4), float(i)),
                data_samples=dict(meta=dict(kind='views', idx=i)))


def _inter(i):
    """An inter-subject pair: labels and other meta keys."""
    return dict(inputs=torch.full((2, 1, 4, 4, 4), -float(i)),
                data_samples=dict(meta=dict(kind='subjects', pair=(i, i + 1)),
                                  labels=torch.arange(3) + i))


def test_lists_per_key_samples_whole():
    batch = [_intra(0), _inter(1), _intra(2)]
    out = pair_collate(batch)
    assert list(out) == ['inputs', 'data_samples']
    assert len(out['inputs']) == len(out['data_samples']) == 3
    for got, sample in zip(out['inputs'], batch):
        assert got is sample['inputs']  # no copy, no stacking
    # the inter-subject sample keeps its labels although the first sample has none
    assert out['data_samples'][1] is batch[1]['data_samples']
    assert torch.equal(out['data_samples'][1]['labels'], torch.tensor([1, 2, 3]))
    assert 'labels' not in out['data_samples'][0]
    assert out['data_samples'][2]['meta'] == dict(kind='views', idx=2)


def test_accepts_any_sequence_and_empty():
    assert pair_collate([]) == {}
    assert pair_collate(iter([])) == {}
    out = pair_collate((_intra(5), ))
    assert out['inputs'][0][0, 0, 0, 0, 0].item() == 5.0


def test_registered_and_usable_in_a_dataloader():
    assert FUNCTIONS.get('mmanat_pair_collate') is pair_collate
    data = [_intra(0), _inter(1), _intra(2), _inter(3), _intra(4)]
    loader = DataLoader(data, batch_size=2, shuffle=False, collate_fn=pair_collate)
    batches = list(loader)
    assert [len(b['inputs']) for b in batches] == [2, 2, 1]
    assert [s['meta']['kind'] for b in batches for s in b['data_samples']] == \
        ['views', 'subjects', 'views', 'subjects', 'views']


def test_rejects_non_dict_samples():
    with pytest.raises(InvalidInputError, match='every sample must be a dict') as exc:
        pair_collate([_intra(0), ('inputs', 1)])
    assert 'tuple' in str(exc.value)


def test_rejects_different_top_level_keys():
    odd = dict(inputs=torch.zeros(1))  # no data_samples
    with pytest.raises(InvalidInputError, match='different top-level keys') as exc:
        pair_collate([_intra(0), odd])
    assert "('inputs',)" in str(exc.value)
