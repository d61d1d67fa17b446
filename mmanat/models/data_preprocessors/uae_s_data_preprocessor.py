"""Data preprocessor of UAE-S: batches that mix intra-volume view pairs and inter-subject pairs."""
from typing import Any, Dict

from mmanat.registry import MODELS
from .sam_data_preprocessor import SAMDataPreprocessor


def is_inter_pair(sample: Any) -> bool:
    """True for a packed sample of :class:`CrossSubjectPairDataset` (its
    ``data_samples['meta']['pair_type'] == 'inter'``)."""
    if not isinstance(sample, dict):
        return False
    meta = sample.get('meta', sample.get('metas'))
    return isinstance(meta, dict) and meta.get('pair_type') == 'inter'


@MODELS.register_module()
class UAESDataPreprocessor(SAMDataPreprocessor):
    """:class:`SAMDataPreprocessor` that keeps the two kinds of pairs of a UAE-S batch apart.

    A UAE-S training batch (``MixedBatchSampler``) holds intra-volume view pairs (SAM, e.g.
    (32, 96, 96) views) and inter-subject pairs with label maps (e.g. (120, 180, 180) crops),
    which cannot be stacked together. Samples whose ``meta['pair_type'] == 'inter'`` are
    batched separately; each group is batched exactly as :class:`SAMDataPreprocessor` does
    (stacked, padded to ``pad_size_divisor``, labels padded with 0)::

        dict(inputs=dict(intra=(B1, 2, 1, D, H, W) or None, inter=(B2, 2, 1, D', H', W') or None),
             data_samples=dict(intra=dict(coords, valid, metas) or None,
                               inter=dict(coords, valid, labels, metas) or None))

    Batches without inter pairs (plain SAM batches, single volumes for inference) are
    returned exactly as by :class:`SAMDataPreprocessor`. Same arguments.
    """

    def forward(self, data: dict, training: bool = False) -> Dict[str, Any]:
        samples = data.get('data_samples') if isinstance(data, dict) else None
        inputs = data.get('inputs') if isinstance(data, dict) else None
        if not (isinstance(inputs, (list, tuple)) and isinstance(samples, (list, tuple))
                and len(inputs) == len(samples) and any(is_inter_pair(s) for s in samples)):
            return super().forward(data, training)
        kinds = [is_inter_pair(s) for s in samples]
        out_inputs, out_samples = {}, {}
        for name, want in (('intra', False), ('inter', True)):
            idx = [i for i, k in enumerate(kinds) if k == want]
            if not idx:
                out_inputs[name] = out_samples[name] = None
                continue
            res = super().forward(
                dict(inputs=[inputs[i] for i in idx], data_samples=[samples[i] for i in idx]),
                training)
            out_inputs[name] = res['inputs']
            out_samples[name] = res['data_samples']
        return dict(inputs=out_inputs, data_samples=out_samples)
