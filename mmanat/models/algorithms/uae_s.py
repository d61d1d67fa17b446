"""UAE-S: SAM plus an organ-supervised semantic embedding (Bai et al., 2023)."""
import contextlib
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.logging import MessageHub, print_log
from torch import nn

from mmanat.registry import MODELS
from mmanat.utils.exceptions import InvalidInputError
from ..heads.embedding_head import l2_normalize
from .sam import SAM

ALL_HEADS = ('fine', 'coarse', 'semantic')


@MODELS.register_module()
class UAES(SAM):
    """UAE-S (Bai et al., 2023, arXiv:2311.15111): SAM's fine and coarse embeddings plus a
    semantic embedding.

    Network: the SAM network (:class:`SAM`) and a ``semantic_head`` - a second FPN over the
    backbone stages ``semantic_levels`` (same config as the fine neck, its own weights) whose
    output is L2-normalised: 128 channels at ``semantic_stride`` (2, 2, 2).
    :meth:`extract_feat` returns ``dict(fine, coarse, semantic)``; ``semantic`` has the
    shape of ``fine`` (N, C, ceil(D/2), ceil(H/2), ceil(W/2)), so the matching code averages
    the three similarities.

    Training: each iteration draws ``p ~ U(0, 1)``. ``p < semantic_prob`` (0.4): only the
    semantic loss (:class:`SupConMeanLoss`, tau 0.1) on the batch's inter-subject pairs
    (label maps required); otherwise only the SAM intra-volume loss (fine + coarse InfoNCE)
    on the intra-volume view pairs. Batches come from :class:`UAESDataPreprocessor`
    (``inputs=dict(intra=..., inter=...)``); a plain SAM batch (a tensor) counts as intra
    pairs only. If the drawn branch has no data in the batch the other branch is used (with a
    one-time warning): use ``MixedBatchSampler`` so that every batch has both.

    Branch draws and distributed training: ``p`` is a pure function of ``(branch_seed,
    iteration)``; the iteration is the runner's (``MessageHub`` info ``'iter'``, identical on
    all ranks and restored on resume), or a call counter outside a runner. ``branch_seed=None``
    draws a seed from the (runner-seeded) numpy RNG of rank 0 at the first training step and
    broadcasts it (``mmengine.dist.sync_random_seed``), so every rank takes the same branch in
    every iteration. Each branch leaves some heads without gradient (the semantic branch: the
    fine neck and coarse head; the intra branch: the semantic head), so DDP must run with
    ``find_unused_parameters=True`` (the UAE-S configs set ``model_wrapper_cfg``
    accordingly). Unused heads then get no gradient at all - no weight decay, no momentum
    step - exactly as in single-process training.

    Args:
        semantic_head: MODELS config (e.g. ``FPN3D``); its (first) output is L2-normalised.
        loss_semantic: MODELS config of the semantic loss (``SupConMeanLoss``).
        semantic_levels: backbone outputs fed to the semantic head (default ``fine_levels``).
        semantic_stride: (z, y, x) stride of the semantic map (default ``fine_stride``).
        semantic_prob: probability of the semantic branch per iteration (UAE-S: 0.4).
        branch_seed: seed of the branch draws (``None``: from the runner's RNG, see above).
        test_heads: the maps :meth:`extract_feat` returns when no ``heads`` are asked for
            (inference). UAE-S: all three. UAE-M (``uae_m_r18_fpn.py``) carries a semantic
            head but matches with ``('fine', 'coarse')``, like the released UAE-M demo
            (reference ``tools/demo_ct_mr.py``).
        data_preprocessor: default :class:`UAESDataPreprocessor` padding to ``coarse_stride``.
        **kwargs: the arguments of :class:`SAM` (backbone, neck, coarse_head, samplers,
            losses, strides, ...).
    """

    def __init__(self,
                 semantic_head: Union[dict, nn.Module],
                 loss_semantic: Union[dict, nn.Module] = dict(
                     type='SupConMeanLoss', temperature=0.1),
                 semantic_levels: Optional[Sequence[int]] = None,
                 semantic_stride: Optional[Sequence[int]] = None,
                 semantic_prob: float = 0.4,
                 branch_seed: Optional[int] = None,
                 test_heads: Sequence[str] = ALL_HEADS,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 **kwargs):
        if data_preprocessor is None:
            data_preprocessor = dict(type='UAESDataPreprocessor', pad_size_divisor=tuple(
                kwargs.get('coarse_stride', (4, 16, 16))))
        super().__init__(data_preprocessor=data_preprocessor, **kwargs)
        self.semantic_head = self._build(MODELS, semantic_head)
        self.loss_semantic = self._build(MODELS, loss_semantic)
        self.semantic_levels = (self.fine_levels if semantic_levels is None else
                                tuple(int(i) for i in semantic_levels))
        self.semantic_stride = (self.fine_stride if semantic_stride is None else
                                tuple(int(s) for s in semantic_stride))
        if len(self.semantic_stride) != 3:
            raise InvalidInputError(
                f'UAES: semantic_stride={self.semantic_stride} must be 3 ints (z, y, x)')
        if not 0.0 <= float(semantic_prob) <= 1.0:
            raise InvalidInputError(
                f'UAES: semantic_prob={semantic_prob} must lie in [0, 1]')
        self.semantic_prob = float(semantic_prob)
        self.branch_seed = None if branch_seed is None else int(branch_seed)
        self.test_heads = tuple(test_heads)
        if not self.test_heads or set(self.test_heads) - set(ALL_HEADS):
            raise InvalidInputError(
                f'UAES: test_heads={self.test_heads} must be a non-empty subset of {ALL_HEADS}')
        self._heads: Optional[Tuple[str, ...]] = None
        self._calls = 0
        self._branch_counts = [0, 0]  # [intra, semantic] iterations of this process
        self._warned = set()

    # ------------------------------------------------------------------ network
    @contextlib.contextmanager
    def only_heads(self, heads: Sequence[str]):
        """Within the context, :meth:`extract_feat` computes only ``heads`` (a subset of
        ``('fine', 'coarse', 'semantic')``) - used by the training branches."""
        previous, self._heads = self._heads, tuple(heads)
        try:
            yield
        finally:
            self._heads = previous

    def extract_feat(self, inputs: torch.Tensor,
                     heads: Optional[Sequence[str]] = None) -> Dict[str, torch.Tensor]:
        """(N, 1, D, H, W) -> dict(fine=(N, C, ceil(D/2), ceil(H/2), ceil(W/2)),
        coarse=(N, C', ceil(D/4), ceil(H/16), ceil(W/16)), semantic=(N, C'', ceil(D/2),
        ceil(H/2), ceil(W/2))), each unit length over channels, float32 (reference strides).

        ``heads`` (or the :meth:`only_heads` context) restricts the maps computed."""
        if inputs.dim() != 5:
            raise InvalidInputError(
                f'UAES.extract_feat expects (N, 1, D, H, W) volumes, got {tuple(inputs.shape)}')
        heads = tuple(heads) if heads is not None else (self._heads or self.test_heads)
        unknown = set(heads) - set(ALL_HEADS)
        if unknown:
            raise InvalidInputError(f'UAES.extract_feat: unknown heads {sorted(unknown)}; '
                                    f'use a subset of {ALL_HEADS}')
        feats = self.backbone(inputs)
        out = {}
        if 'fine' in heads:
            fine = self.neck([feats[i] for i in self.fine_levels])
            if isinstance(fine, (list, tuple)):
                fine = fine[0]
            out['fine'] = (self.fine_head(fine) if self.fine_head is not None else
                           l2_normalize(fine))
        if 'coarse' in heads:
            out['coarse'] = self.coarse_head(feats[self.coarse_level])
        if 'semantic' in heads:
            sem = self.semantic_head([feats[i] for i in self.semantic_levels])
            if isinstance(sem, (list, tuple)):
                sem = sem[0]
            out['semantic'] = l2_normalize(sem)
        return out

    # ------------------------------------------------------------------ branch draw
    def _iteration(self) -> int:
        it = MessageHub.get_current_instance().get_info('iter')
        if it is None:
            it = self._calls
        self._calls += 1
        return int(it)

    def _ensure_branch_seed(self) -> int:
        if self.branch_seed is None:
            from mmengine.dist import sync_random_seed
            self.branch_seed = int(sync_random_seed())
        return self.branch_seed

    def select_branch(self, iteration: int) -> str:
        """``'semantic'`` if ``p < semantic_prob`` else ``'intra'``, with ``p ~ U(0, 1)`` a
        deterministic function of ``(branch_seed, iteration)`` (the same on every rank)."""
        seed = self._ensure_branch_seed()
        p = np.random.default_rng([seed & 0xFFFFFFFF, int(iteration), 0x0AE5]).random()
        return 'semantic' if p < self.semantic_prob else 'intra'

    def _warn_once(self, key: str, msg: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            print_log(msg, logger='current', level=30)

    # ------------------------------------------------------------------ training
    def semantic_loss(self, inputs: torch.Tensor, data_samples: dict) -> torch.Tensor:
        """SupConMean loss of inter-subject pairs: inputs (B, 2, 1, D, H, W), data_samples
        with ``labels`` (B, 2, D, H, W) and optional ``valid`` (B, 2, D, H, W)."""
        if inputs.dim() != 6 or inputs.shape[1] != 2:
            raise InvalidInputError(
                f'UAES: inter-subject pairs must be (B, 2, 1, D, H, W), got '
                f'{tuple(inputs.shape)}')
        labels = data_samples.get('labels') if isinstance(data_samples, dict) else None
        if labels is None:
            raise InvalidInputError(
                'UAES: the semantic loss needs label maps (data_samples["labels"], (B, 2, D, H, '
                'W)); build inter-subject pairs with CrossSubjectPairDataset')
        B = inputs.shape[0]
        valid = data_samples.get('valid')
        with self.only_heads(('semantic', )):
            sem = self.extract_feat(inputs.flatten(0, 1))['semantic']
        expected = tuple(math.ceil(n / s) for n, s in zip(inputs.shape[-3:],
                                                           self.semantic_stride))
        if tuple(sem.shape[-3:]) != expected:
            raise InvalidInputError(
                f'UAES: the semantic map {tuple(sem.shape[-3:])} does not match the input '
                f'{tuple(inputs.shape[-3:])} at semantic_stride={self.semantic_stride} '
                f'({expected}); set semantic_stride to the stride of the semantic head')
        sem = sem.reshape((B, 2) + tuple(sem.shape[1:]))
        return self.loss_semantic(sem, labels, valid, stride=self.semantic_stride)

    def loss(self, inputs: Union[torch.Tensor, dict], data_samples: Any
             ) -> Dict[str, torch.Tensor]:
        """Semantic or intra-volume loss of one iteration (see the class docstring).

        Returns ``dict(loss_semantic=...)`` or ``dict(loss_fine=..., loss_coarse=...)``, plus
        ``semantic_ratio``: the fraction of this process's iterations so far that took the
        semantic branch (logged, not a loss; it approaches ``semantic_prob``).
        """
        if isinstance(inputs, dict):
            intra_in, inter_in = inputs.get('intra'), inputs.get('inter')
            ds = data_samples if isinstance(data_samples, dict) else {}
            intra_ds, inter_ds = ds.get('intra'), ds.get('inter')
        else:
            intra_in, intra_ds, inter_in, inter_ds = inputs, data_samples, None, None
        branch = self.select_branch(self._iteration())
        if branch == 'semantic' and inter_in is None:
            self._warn_once('no_inter', 'UAES: the semantic branch was drawn but the batch has '
                            'no inter-subject pair; training the intra branch instead. Use '
                            "batch_sampler=dict(type='MixedBatchSampler') with a "
                            'CrossSubjectPairDataset.')
            branch = 'intra'
        elif branch == 'intra' and intra_in is None:
            self._warn_once('no_intra', 'UAES: the intra branch was drawn but the batch has no '
                            'intra-volume view pair; training the semantic branch instead.')
            branch = 'semantic'
        if branch == 'semantic':
            if inter_in is None:
                raise InvalidInputError('UAES.loss: the batch holds no pair at all')
            losses = dict(loss_semantic=self.semantic_loss(inter_in, inter_ds))
        else:
            with self.only_heads(('fine', 'coarse')):
                losses = super().loss(intra_in, intra_ds)
        self._branch_counts[int(branch == 'semantic')] += 1
        dev = next(iter(losses.values())).device
        losses['semantic_ratio'] = torch.tensor(
            self._branch_counts[1] / float(sum(self._branch_counts)), device=dev)
        return losses

    # ------------------------------------------------------------------ inference
    def predict(self, inputs: torch.Tensor,
                data_samples: Optional[List[dict]] = None) -> List[Dict[str, Any]]:
        """As :meth:`SAM.predict`, plus ``semantic`` (C, d, h, w) and ``semantic_stride``."""
        feats = self.extract_feat(inputs)
        out = []
        for i in range(inputs.shape[0]):
            meta = data_samples[i] if isinstance(data_samples, (list, tuple)) else {}
            shape = meta.get('input_shape') if isinstance(meta, dict) else None
            item = dict(fine_stride=self.fine_stride, coarse_stride=self.coarse_stride,
                        semantic_stride=self.semantic_stride, meta=meta)
            for name, stride in (('fine', self.fine_stride), ('coarse', self.coarse_stride),
                                 ('semantic', self.semantic_stride)):
                m = feats[name][i]
                if shape is not None:
                    m = m[(slice(None), ) + tuple(
                        slice(0, math.ceil(n / s)) for n, s in zip(shape, stride))]
                item[name] = m
            out.append(item)
        return out
