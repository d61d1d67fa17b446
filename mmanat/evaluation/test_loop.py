"""The test loop of ``tools/test.py``: point pairs found by embedding and matching.

Why a loop and not a ``test_step`` of the model: finding a template point in a target needs
the whole inference path of :mod:`mmanat.apis` - preprocessing each volume (reorientation,
resampling, intensity normalisation, padding), embedding it (optionally tiled) and matching
(coarse-to-fine, optionally with stable points). The layer rules keep models below apis (a
model may not import it), and ``evaluation`` sits above apis, so the step that calls
:func:`mmanat.apis.embed` and :func:`mmanat.apis.match` on the runner's model lives here, as
a registered mmengine loop; the model needs no test-specific code, only ``extract_feat``. The
predictions are exactly those of ``tools/benchmark.py`` (the same
:class:`~mmanat.evaluation.benchmark.MMAnatMethod`).

Config::

    test_dataloader = dict(batch_size=1, collate_fn=dict(type='mmanat_pair_collate'),
                           dataset=dict(type='SyntheticLandmarkPairDataset', ...))
    test_evaluator = dict(type='LandmarkMetric')
    test_cfg = dict(type='LandmarkTestLoop')
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.model import is_model_wrapper
from mmengine.runner import TestLoop

from ..registry import LOOPS
from ..utils.exceptions import InvalidInputError
from .benchmark.methods import MMAnatMethod

__all__ = ['LandmarkTestLoop']

#: keys of a dataset item that are images, not per-sample annotations for the metric
_IMAGE_KEYS = ('template', 'target')


def _samples_of(data_batch) -> List[dict]:
    """A list of item dicts from a batch collated by ``mmanat_pair_collate`` (a dict of one
    list per key, items kept whole) or left as a list of dicts."""
    if isinstance(data_batch, dict):
        n = len(data_batch['template'])
        return [{k: v[i] for k, v in data_batch.items()} for i in range(n)]
    return list(data_batch)


@LOOPS.register_module()
class LandmarkTestLoop(TestLoop):
    """Test loop over (template, target) image pairs: predict where the template's query
    points are in the target, then hand the predictions to the evaluator.

    Each dataset item is a dict with ``template`` and ``target``
    (:class:`~mmanat.structures.MedicalImage`, 3D) and ``template_points`` (``(N, 3)`` world
    LPS mm in the template), plus the ground truth the metric reads (``gt_points`` for
    :class:`~mmanat.evaluation.LandmarkMetric`; ``gt_center`` / ``gt_radius`` for
    :class:`~mmanat.evaluation.LesionTrackingMetric`, with ``pred_key='pred_center'`` here).
    The loop embeds both images with the runner's model (:func:`mmanat.apis.embed`), matches
    the points (:func:`mmanat.apis.match`) and passes the item without its images, plus the
    predictions (``(N, 3)`` world mm) under ``pred_key``, to ``evaluator.process``.

    Args:
        runner: the mmengine runner.
        dataloader: dataloader or its config.
        evaluator: evaluator or its config.
        fp16: embed in mixed precision (GPU only; default float32).
        stable_points: match with stable points (UAE's structural inference) instead of the
            naive coarse-to-fine argmax.
        match_method: ``method`` of :func:`mmanat.apis.match` (``'consensus'``: samples in
            the template's body mask).
        embed_kwargs: further arguments of :func:`mmanat.apis.embed` (e.g. ``tile_size``).
        match_kwargs: further arguments of :func:`mmanat.apis.match`.
        pred_key: the sample key of the predictions, as the metric reads it
            (``'pred_points'`` for ``LandmarkMetric``, ``'pred_center'`` for
            ``LesionTrackingMetric``).

    Attributes:
        pair_results: after :meth:`run`, one dict per pair of this process (``pair_name``,
            ``names``, ``pred_points`` and ``gt_points``: the item's ``gt_points`` or
            ``gt_center``, or ``None``).
    """

    def __init__(self, runner, dataloader, evaluator, fp16: bool = False,
                 stable_points: bool = False, match_method: str = 'reference',
                 embed_kwargs: Optional[Dict] = None, match_kwargs: Optional[Dict] = None,
                 pred_key: str = 'pred_points'):
        super().__init__(runner, dataloader, evaluator, fp16=fp16)
        self.stable_points = bool(stable_points)
        self.match_method = match_method
        self.embed_kwargs = dict(embed_kwargs or {})
        self.embed_kwargs.setdefault('amp', bool(fp16) and torch.cuda.is_available())
        self.match_kwargs = dict(match_kwargs or {})
        self.pred_key = str(pred_key)
        self.pair_results: List[dict] = []

    def _method(self) -> MMAnatMethod:
        model = self.runner.model
        if is_model_wrapper(model):
            model = model.module
        if not hasattr(model, 'extract_feat'):
            raise InvalidInputError(
                f'LandmarkTestLoop needs a model with extract_feat (SAM, UAE-S, UAE-M); the '
                f'config builds {type(model).__name__}.')
        return MMAnatMethod(model, type(model).__name__, stable_points=self.stable_points,
                            match_method=self.match_method, embed_kwargs=self.embed_kwargs,
                            **self.match_kwargs)

    def run(self) -> dict:
        """Run every pair and return the evaluator's metrics."""
        self.pair_results = []
        return super().run()

    @torch.no_grad()
    def run_iter(self, idx: int, data_batch: Sequence) -> None:
        """Predict the points of every pair of one batch and feed the evaluator."""
        self.runner.call_hook('before_test_iter', batch_idx=idx, data_batch=data_batch)
        method = self._method()
        outputs = []
        for item in _samples_of(data_batch):
            missing = [k for k in _IMAGE_KEYS + ('template_points', ) if item.get(k) is None]
            if missing:
                raise InvalidInputError(
                    f'LandmarkTestLoop: dataset item {item.get("sample_idx", idx)} lacks '
                    f'{missing}; use a pair dataset (SyntheticLandmarkPairDataset, '
                    'LandmarkPairDataset, LesionPairDataset).')
            points = np.asarray(item['template_points'], dtype=np.float64).reshape(-1, 3)
            pred = method(item['template'], points, item['target'])
            out = {k: v for k, v in item.items() if k not in _IMAGE_KEYS}
            out[self.pred_key] = pred
            outputs.append(out)
            self.pair_results.append(dict(
                pair_name=item.get('pair_name', str(item.get('sample_idx', idx))),
                names=list(item.get('names') or []), pred_points=pred,
                gt_points=item.get('gt_points', item.get('gt_center'))))
        self.evaluator.process(data_samples=outputs, data_batch=data_batch)
        self.runner.call_hook('after_test_iter', batch_idx=idx, data_batch=data_batch,
                              outputs=outputs)
