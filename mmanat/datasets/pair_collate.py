"""A collate function for batches that mix different kinds of samples (UAE-S)."""
from typing import Any, Dict, List, Sequence

from mmengine.registry import FUNCTIONS

from ..utils.exceptions import InvalidInputError


@FUNCTIONS.register_module(name='mmanat_pair_collate')
def pair_collate(data_batch: Sequence[dict]) -> Dict[str, List[Any]]:
    """``[{'inputs': a0, 'data_samples': s0}, ...]`` -> ``{'inputs': [a0, ...],
    'data_samples': [s0, ...]}``: one list per top-level key, samples kept whole.

    mmengine's ``pseudo_collate`` also merges the per-sample ``data_samples`` dicts into one
    dict of lists using the keys of the FIRST sample, which silently drops the ``labels`` of
    inter-subject pairs (and fails on their different ``meta`` keys) when a batch mixes them
    with intra-volume view pairs. The SAM/UAE-S data preprocessors accept this list form.

    Registered in mmengine's root ``FUNCTIONS`` registry (mmanat defines no child registry
    for functions) as ``'mmanat_pair_collate'``:
    ``train_dataloader = dict(collate_fn=dict(type='mmanat_pair_collate'), ...)``.
    """
    batch = list(data_batch)
    if not batch:
        return {}
    if not all(isinstance(d, dict) for d in batch):
        raise InvalidInputError(
            'mmanat_pair_collate: every sample must be a dict (e.g. from PackSAMInputs), got '
            f'{sorted({type(d).__name__ for d in batch})}')
    keys = list(batch[0])
    if any(set(d) != set(keys) for d in batch):
        raise InvalidInputError(
            'mmanat_pair_collate: samples have different top-level keys: '
            f'{sorted({tuple(sorted(d)) for d in batch})}')
    return {k: [d[k] for d in batch] for k in keys}
