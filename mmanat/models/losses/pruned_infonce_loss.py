"""Purposive Pruner (Adam, Hosseinzadeh Taher et al., 2023): InfoNCE over a memory bank with
too-similar bank keys masked out of each query's denominator."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from mmanat.registry import MODELS
from mmanat.utils.exceptions import InvalidInputError


@MODELS.register_module()
class PrunedInfoNCELoss(nn.Module):
    """``L_i = -log( exp(pos_i / T) / (exp(pos_i / T) + sum_{j kept} exp(s_ij / T)) )``.

    ``pos_i = q_i . k_i`` and ``s_ij = q_i . bank_j`` (raw cosines of unit vectors). With
    pruning, bank key ``j`` is removed from query ``i``'s denominator when
    ``s_ij >= prune_threshold`` (a mask over the ``(N, K)`` logits: one vectorised masked
    softmax, nothing is deleted from the bank). The positive is never pruned. With
    ``prune_threshold=None`` or ``prune=False`` it is plain InfoNCE (Adam's stage n = 0).
    Computed in float32.

    Args:
        temperature: T (Adam: 0.2).
        prune_threshold: cosine at or above which bank keys are pruned (Adam: 0.8), or None.
        loss_weight: factor on the loss.
    """

    def __init__(self, temperature: float = 0.2, prune_threshold: Optional[float] = 0.8,
                 loss_weight: float = 1.0):
        super().__init__()
        if temperature <= 0:
            raise InvalidInputError(f'PrunedInfoNCELoss: temperature={temperature} must be > 0')
        self.temperature = float(temperature)
        self.prune_threshold = None if prune_threshold is None else float(prune_threshold)
        self.loss_weight = float(loss_weight)

    def forward(self, q: torch.Tensor, k: torch.Tensor, bank: torch.Tensor,
                prune: bool = True, return_stats: bool = False
                ) -> torch.Tensor:
        """Args:
            q: (N, D) unit query embeddings (carry the gradient).
            k: (N, D) unit positive keys (detached by the caller).
            bank: (K, D) unit memory-bank keys.
            prune: apply the pruner (the model turns it on for stages n > 0).
            return_stats: also return a dict with ``pruned_frac`` (mean fraction of bank
                entries masked per query) and ``all_pruned`` (queries with no negative left).

        Returns the mean loss (times ``loss_weight``), or ``(loss, stats)``.
        """
        if q.dim() != 2 or k.shape != q.shape or bank.dim() != 2 or bank.shape[1] != q.shape[1]:
            raise InvalidInputError(f'PrunedInfoNCELoss: expected q, k (N, D) and bank (K, D), '
                                    f'got {tuple(q.shape)}, {tuple(k.shape)}, '
                                    f'{tuple(bank.shape)}')
        q = q.float()
        pos = (q * k.float()).sum(1, keepdim=True)  # (N, 1)
        neg = q @ bank.float().t()  # (N, K)
        logits = torch.cat([pos, neg], dim=1) / self.temperature
        stats = dict(pruned_frac=q.new_zeros(()), all_pruned=q.new_zeros(()))
        if prune and self.prune_threshold is not None and neg.numel():
            pruned = neg.detach() >= self.prune_threshold  # (N, K)
            mask = torch.cat([torch.zeros_like(pruned[:, :1]), pruned], dim=1)
            logits = logits.masked_fill(mask, float('-inf'))
            stats = dict(pruned_frac=pruned.float().mean(),
                         all_pruned=pruned.all(dim=1).float().sum())
        target = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
        loss = F.cross_entropy(logits, target) * self.loss_weight
        return (loss, stats) if return_stats else loss
