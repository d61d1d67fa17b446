"""Composability loss of Adam v2 (Hosseinzadeh Taher et al., CVPR 2024, Sec. 3,
"Composability"): the whole's embedding is predicted from its parts."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mmanat.registry import MODELS
from mmanat.utils.exceptions import InvalidInputError


def normalized_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean_i || pred_i / |pred_i| - target_i / |target_i| ||^2`` over the rows of
    ``(M, D)`` tensors, i.e. ``mean_i (2 - 2 cos(pred_i, target_i))`` (the normalised MSE of
    BYOL, Grill et al., NeurIPS 2020, Eq. 2). ``target`` is detached. Float32."""
    p = F.normalize(pred.float(), dim=-1)
    t = F.normalize(target.detach().float(), dim=-1)
    return (p - t).pow(2).sum(-1).mean()


@MODELS.register_module()
class ComposabilityLoss(nn.Module):
    """``L = mean_i || n(g_c([f(x_i^1), ..., f(x_i^4)])) - n(f_t(x_i)) ||^2``: the compose
    head ``g_c`` maps the concatenated student features of the anchor's 4 quadrants to a
    prediction of the teacher's feature ``f_t`` of the anchor; ``n`` = L2 normalisation
    (see :func:`normalized_mse`).

    Args:
        loss_weight: factor on the loss (Adam v2: 1).
    """

    def __init__(self, loss_weight: float = 1.0):
        super().__init__()
        self.loss_weight = float(loss_weight)

    def forward(self, composed: torch.Tensor, whole: torch.Tensor) -> torch.Tensor:
        """Args:
            composed: ``(N, D)`` compose-head outputs.
            whole: ``(N, D)`` teacher features of the anchors (the target, detached).
        """
        if composed.dim() != 2 or composed.shape != whole.shape:
            raise InvalidInputError(f'ComposabilityLoss: expected two (N, D) tensors, got '
                                    f'{tuple(composed.shape)} and {tuple(whole.shape)}.')
        return normalized_mse(composed, whole) * self.loss_weight
