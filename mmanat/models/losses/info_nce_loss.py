"""InfoNCE (contrastive cross-entropy) loss over one positive and many negatives."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from mmanat.registry import MODELS
from mmanat.utils.exceptions import InvalidInputError


@MODELS.register_module()
class InfoNCELoss(nn.Module):
    """``-log( exp(s_pos / T) / (exp(s_pos / T) + sum_j exp(s_neg_j / T)) )`` per query,
    i.e. cross-entropy over the logits ``[s_pos, s_neg_1, ..., s_neg_N] / T`` with target 0.

    The inputs are similarities (cosine for unit embeddings), not yet divided by ``T``.
    Computed in float32 (safe under fp16 autocast).

    Args:
        temperature: T (SAM: 0.5).
        loss_weight: factor on the loss.
        reduction: 'mean' (over queries), 'sum' or 'none'.
    """

    def __init__(self, temperature: float = 0.5, loss_weight: float = 1.0,
                 reduction: str = 'mean'):
        super().__init__()
        if temperature <= 0:
            raise InvalidInputError(f'InfoNCELoss: temperature={temperature} must be > 0')
        if reduction not in ('mean', 'sum', 'none'):
            raise InvalidInputError(
                f"InfoNCELoss: reduction={reduction!r}; use 'mean', 'sum' or 'none'")
        self.temperature = float(temperature)
        self.loss_weight = float(loss_weight)
        self.reduction = reduction

    def forward(self, pos_sim: torch.Tensor, neg_sim: torch.Tensor,
                neg_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Args:
            pos_sim: (Q,) similarity of each query with its positive key.
            neg_sim: (Q, N) similarities with its negatives.
            neg_mask: optional (Q, N) bool, False marks padding entries (left out).

        Returns the weighted loss (a scalar, or (Q,) with reduction 'none'). With Q = 0 the
        mean is 0 (kept connected to the graph).
        """
        if pos_sim.dim() != 1 or neg_sim.dim() != 2 or neg_sim.shape[0] != pos_sim.shape[0]:
            raise InvalidInputError(
                f'InfoNCELoss: expected pos_sim (Q,) and neg_sim (Q, N), got '
                f'{tuple(pos_sim.shape)} and {tuple(neg_sim.shape)}')
        logits = torch.cat([pos_sim.float()[:, None], neg_sim.float()], dim=1)
        logits = logits / self.temperature
        if neg_mask is not None:
            keep = torch.cat([neg_mask.new_ones(neg_mask.shape[0], 1, dtype=torch.bool),
                              neg_mask.bool()], dim=1)
            logits = logits.masked_fill(~keep, float('-inf'))
        target = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
        loss = F.cross_entropy(logits, target, reduction='none')
        if self.reduction == 'mean':
            loss = loss.mean() if loss.numel() else logits.sum() * 0.
        elif self.reduction == 'sum':
            loss = loss.sum()
        return self.loss_weight * loss
