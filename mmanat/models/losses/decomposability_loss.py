"""Decomposability loss of Adam v2 (Hosseinzadeh Taher et al., CVPR 2024, Sec. 3,
"Decomposability"): the parts' embeddings are predicted from the whole."""
from __future__ import annotations

import torch
from torch import nn

from mmanat.registry import MODELS
from mmanat.utils.exceptions import InvalidInputError

from .composability_loss import normalized_mse


@MODELS.register_module()
class DecomposabilityLoss(nn.Module):
    """``L = mean_{i, j} || n(g_d(f(x_i))_j) - n(f_t(x_i^j)) ||^2``: the decompose head
    ``g_d`` maps the student feature of the anchor ``x_i`` to ``P * D`` numbers, split into
    ``P`` (= 4 quadrants, row-major) predictions of the teacher features of the parts
    ``x_i^j``; ``n`` = L2 normalisation of each part's vector (see
    :func:`~mmanat.models.losses.composability_loss.normalized_mse`).

    Args:
        num_parts: P (4).
        loss_weight: factor on the loss (Adam v2: 1).
    """

    def __init__(self, num_parts: int = 4, loss_weight: float = 1.0):
        super().__init__()
        if int(num_parts) < 1:
            raise InvalidInputError(f'DecomposabilityLoss: num_parts >= 1, got {num_parts}.')
        self.num_parts = int(num_parts)
        self.loss_weight = float(loss_weight)

    def forward(self, decomposed: torch.Tensor, parts: torch.Tensor) -> torch.Tensor:
        """Args:
            decomposed: ``(N, P * D)`` (or ``(N, P, D)``) decompose-head outputs.
            parts: ``(N, P, D)`` teacher features of the parts (the target, detached).
        """
        if parts.dim() != 3 or parts.shape[1] != self.num_parts:
            raise InvalidInputError(f'DecomposabilityLoss: parts must be (N, {self.num_parts}, '
                                    f'D), got {tuple(parts.shape)}.')
        n, p, d = parts.shape
        if decomposed.numel() != n * p * d or decomposed.shape[0] != n:
            raise InvalidInputError(f'DecomposabilityLoss: decomposed {tuple(decomposed.shape)}'
                                    f' does not split into {tuple(parts.shape)}.')
        return normalized_mse(decomposed.reshape(n * p, d), parts.reshape(n * p, d)) * \
            self.loss_weight
