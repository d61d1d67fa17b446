"""MixedBatchSampler: exactly ``num_inter`` inter-subject pairs per batch on every rank,
disjoint indices across (simulated) ranks, deterministic, usable from an mmengine config."""
import itertools

import pytest
from mmengine.dataset import BaseDataset, ConcatDataset

from mmanat.datasets.samplers import MixedBatchSampler
from mmanat.registry import DATA_SAMPLERS
from mmanat.utils.exceptions import InvalidInputError


class _Items(BaseDataset):
    """n items that say which kind they are."""
    METAINFO = dict(dataset_type='toy')

    def __init__(self, n, kind):
        self.n, self.kind = n, kind
        super().__init__(serialize_data=False)

    def load_data_list(self):
        return [dict(kind=self.kind, i=i) for i in range(self.n)]

    def prepare_data(self, idx):
        return dict(self.get_data_info(idx))


def concat(n_intra=23, n_inter=7):
    return ConcatDataset([_Items(n_intra, 'intra'), _Items(n_inter, 'inter')])


def take(sampler, n):
    return list(itertools.islice(iter(sampler), n))


@pytest.mark.parametrize('batch_size,num_inter', [(5, 1), (4, 2)])
def test_exact_inter_count_per_batch_on_every_rank(batch_size, num_inter):
    ds = concat()
    for rank in range(2):
        s = MixedBatchSampler(dataset=ds, batch_size=batch_size, num_inter=num_inter, seed=3,
                              rank=rank, world_size=2)
        for batch in take(s, 40):
            kinds = [ds[i]['kind'] for i in batch]
            assert len(batch) == batch_size
            assert kinds.count('inter') == num_inter
            assert kinds.count('intra') == batch_size - num_inter


def test_ranks_get_disjoint_indices_and_cover_the_data():
    ds = concat(n_intra=24, n_inter=8)
    per_rank = []
    for rank in range(2):
        s = MixedBatchSampler(dataset=ds, batch_size=5, num_inter=1, seed=11, rank=rank,
                              world_size=2)
        per_rank.append(take(s, 3))   # 3 batches x 2 ranks: 24 intra, 6 inter slots
    intra = [set(i for b in batches for i in b[:4]) for batches in per_rank]
    inter = [set(b[4] for b in batches) for batches in per_rank]
    assert not intra[0] & intra[1] and not inter[0] & inter[1]
    assert intra[0] | intra[1] == set(range(24))          # one epoch of intra pairs
    assert all(24 <= i < 32 for s in inter for i in s)     # offsets into the ConcatDataset
    # the same seed gives the same batches (all ranks share the permutations)
    again = MixedBatchSampler(dataset=ds, batch_size=5, num_inter=1, seed=11, rank=0,
                              world_size=2)
    assert take(again, 3) == per_rank[0]
    other = MixedBatchSampler(dataset=ds, batch_size=5, num_inter=1, seed=12, rank=0,
                              world_size=2)
    assert take(other, 3) != per_rank[0]


def test_endless_and_more_ranks_than_inter_items():
    ds = concat(n_intra=6, n_inter=2)
    seen = []
    for rank in range(4):
        s = MixedBatchSampler(dataset=ds, batch_size=3, num_inter=1, seed=0, rank=rank,
                              world_size=4)
        batches = take(s, 50)                           # many epochs, never exhausted
        assert all(sum(i >= 6 for i in b) == 1 for b in batches)
        seen.append([b[2] for b in batches[:1]])
    assert sorted(sum(seen, [])) == [6, 6, 7, 7]        # 4 ranks share 2 items evenly
    assert len(MixedBatchSampler(dataset=ds, batch_size=3, rank=0, world_size=4, seed=0)) == 1


def test_built_from_config_with_mmengine_sampler():
    from mmengine.runner import Runner
    ds = concat()
    loader = Runner.build_dataloader(dict(
        batch_size=5, num_workers=0,
        sampler=dict(type='InfiniteSampler', shuffle=True),
        batch_sampler=dict(type='mmanat.MixedBatchSampler', num_inter=1),
        collate_fn=dict(type='pseudo_collate'),
        dataset=ds), seed=5)
    assert isinstance(loader.batch_sampler, MixedBatchSampler)
    assert loader.batch_sampler.seed == 5        # taken from the InfiniteSampler
    batch = next(iter(loader))
    assert batch['kind'] == ['intra'] * 4 + ['inter']
    assert DATA_SAMPLERS.get('MixedBatchSampler') is MixedBatchSampler


def test_bad_configuration_is_reported():
    with pytest.raises(InvalidInputError, match='ConcatDataset'):
        MixedBatchSampler(dataset=_Items(3, 'intra'), batch_size=5, seed=0)
    with pytest.raises(InvalidInputError, match='num_inter'):
        MixedBatchSampler(dataset=concat(), batch_size=2, num_inter=3, seed=0)
    with pytest.raises(InvalidInputError, match='inter_index'):
        MixedBatchSampler(dataset=concat(), batch_size=5, inter_index=2, seed=0)
