"""A batch sampler that puts a fixed number of inter-subject pairs in every batch (UAE-S)."""
from __future__ import annotations

from typing import Iterator, List, Optional

import numpy as np
from torch.utils.data import Sampler

from mmanat.registry import DATA_SAMPLERS
from mmanat.utils.exceptions import InvalidInputError


def _rank_stream(n: int, offset: int, rank: int, world_size: int, seed: int, stream: int,
                 shuffle: bool) -> Iterator[int]:
    """Endless indices ``offset + [0, n)`` for one rank.

    The global stream is the concatenation of permutations of ``range(n)`` (epoch ``e`` uses
    ``default_rng([seed, stream, e])``, so every rank computes the same stream); rank ``r``
    takes positions ``r, r + W, r + 2W, ...``. Ranks therefore never share a position: within
    an epoch they get disjoint indices, and the indices of a rank are spread over the
    dataset even when ``n < W``.
    """
    start = 0  # global position of the current epoch's first element
    epoch = 0
    while True:
        perm = (np.random.default_rng([seed & 0xFFFFFFFF, stream, epoch]).permutation(n)
                if shuffle else np.arange(n))
        first = (rank - start) % world_size
        for i in perm[first::world_size]:
            yield offset + int(i)
        start += n
        epoch += 1


@DATA_SAMPLERS.register_module()
class MixedBatchSampler(Sampler):
    """Batches of ``batch_size - num_inter`` intra-volume pairs plus ``num_inter``
    inter-subject pairs (UAE-S reference: 4 + 1 per GPU), on every rank.

    Works on a ``ConcatDataset`` whose ``intra_index``-th dataset gives intra-volume view
    pairs (e.g. ``SyntheticSubjectDataset`` / ``VolumeListDataset`` with the SAM two-view
    pipeline) and whose ``inter_index``-th dataset gives inter-subject pairs
    (:class:`CrossSubjectPairDataset`)::

        train_dataloader = dict(
            batch_size=5,                       # per GPU: 4 intra + 1 inter
            sampler=dict(type='InfiniteSampler', shuffle=True),   # required by mmengine
            batch_sampler=dict(type='MixedBatchSampler', num_inter=1),
            dataset=dict(type='ConcatDataset', ignore_keys=['dataset_type'],
                         datasets=[intra_dataset, inter_dataset]))

    Rank-aware: each of the two index streams is a sequence of seeded permutations shared by
    all ranks, of which rank ``r`` of ``W`` takes every ``W``-th element starting at ``r``
    (disjoint across ranks). Iteration is infinite (use an iteration-based train loop);
    ``len()`` is the number of batches one rank needs to see every intra pair once.

    Args:
        sampler: the sampler mmengine builds from ``train_dataloader.sampler`` (only its
            ``dataset`` and ``seed`` are used; kept for ``DistSamplerSeedHook``).
        batch_size: pairs per batch per rank (``train_dataloader.batch_size``).
        num_inter: inter-subject pairs per batch (1 <= num_inter <= batch_size).
        dataset: the ConcatDataset (default ``sampler.dataset``).
        intra_index, inter_index: positions of the two datasets in the ConcatDataset.
        shuffle: shuffle each epoch of each stream.
        seed: seed of the permutations (default ``sampler.seed``, else a seed synchronised
            across ranks by ``mmengine.dist.sync_random_seed``).
        rank, world_size: override ``mmengine.dist.get_dist_info()`` (tests).
    """

    def __init__(self, sampler=None, batch_size: int = 5, num_inter: int = 1, dataset=None,
                 intra_index: int = 0, inter_index: int = 1, shuffle: bool = True,
                 seed: Optional[int] = None, rank: Optional[int] = None,
                 world_size: Optional[int] = None):
        dataset = dataset if dataset is not None else getattr(sampler, 'dataset', None)
        if dataset is None or not hasattr(dataset, 'datasets') or not hasattr(
                dataset, 'cumulative_sizes'):
            raise InvalidInputError(
                'MixedBatchSampler needs a ConcatDataset of [intra dataset, inter dataset] '
                "(train_dataloader.dataset=dict(type='ConcatDataset', datasets=[...])), got "
                f'{type(dataset).__name__}')
        n_sets = len(dataset.datasets)
        for name, idx in (('intra_index', intra_index), ('inter_index', inter_index)):
            if not 0 <= int(idx) < n_sets:
                raise InvalidInputError(
                    f'MixedBatchSampler: {name}={idx} but the ConcatDataset has {n_sets} '
                    'datasets')
        if int(intra_index) == int(inter_index):
            raise InvalidInputError('MixedBatchSampler: intra_index and inter_index must '
                                    'name different datasets')
        batch_size, num_inter = int(batch_size), int(num_inter)
        if not 1 <= num_inter <= batch_size:
            raise InvalidInputError(
                f'MixedBatchSampler: need 1 <= num_inter ({num_inter}) <= batch_size '
                f'({batch_size})')
        self.sampler = sampler
        self.dataset = dataset
        self.batch_size = batch_size
        self.num_inter = num_inter
        self.num_intra = batch_size - num_inter
        bounds = [0] + list(dataset.cumulative_sizes)
        self.intra_range = (bounds[int(intra_index)], bounds[int(intra_index) + 1])
        self.inter_range = (bounds[int(inter_index)], bounds[int(inter_index) + 1])
        for name, (lo, hi), need in (('intra', self.intra_range, self.num_intra),
                                     ('inter', self.inter_range, self.num_inter)):
            if need and hi <= lo:
                raise InvalidInputError(f'MixedBatchSampler: the {name} dataset is empty')
        if rank is None or world_size is None:
            from mmengine.dist import get_dist_info
            r, w = get_dist_info()
            rank = r if rank is None else rank
            world_size = w if world_size is None else world_size
        if not 0 <= int(rank) < int(world_size):
            raise InvalidInputError(f'MixedBatchSampler: rank {rank} of world size {world_size}')
        self.rank, self.world_size = int(rank), int(world_size)
        if seed is None:
            seed = getattr(sampler, 'seed', None)
        if seed is None:
            from mmengine.dist import sync_random_seed
            seed = sync_random_seed()
        self.seed = int(seed)
        self.shuffle = bool(shuffle)

    def __iter__(self) -> Iterator[List[int]]:
        intra = _rank_stream(self.intra_range[1] - self.intra_range[0], self.intra_range[0],
                             self.rank, self.world_size, self.seed, 0, self.shuffle)
        inter = _rank_stream(self.inter_range[1] - self.inter_range[0], self.inter_range[0],
                             self.rank, self.world_size, self.seed, 1, self.shuffle)
        while True:
            yield ([next(intra) for _ in range(self.num_intra)]
                   + [next(inter) for _ in range(self.num_inter)])

    def __len__(self) -> int:
        n = self.intra_range[1] - self.intra_range[0]
        per_batch = max(self.num_intra, 1) * self.world_size
        return max(1, -(-n // per_batch))

    def set_epoch(self, epoch: int) -> None:
        """No-op: the streams are endless and already vary per internal epoch."""
